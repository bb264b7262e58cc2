"""Per-app state shared by the blueprints (``app.extensions["caretflow"]``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from app.auth import KeyRing
from app.model_store import ModelStore
from app.schemas import RequestModels
from app.settings import Settings


@dataclass
class State:
    """Everything a request handler needs."""

    settings: Settings
    dataset: dict
    keys: KeyRing
    store: ModelStore
    engine: object
    requests: RequestModels
    live: object
    tasks: list = field(default_factory=list)
    cache: dict = field(default_factory=dict)

    @property
    def task(self) -> str:
        """``classification`` or ``regression``."""
        return self.dataset["task"]

    def stop(self) -> None:
        """Stop the background threads and release the database."""
        for task in self.tasks:
            task.stop()
        self.engine.dispose()


def state() -> State:
    """The current app's state."""
    return current_app.extensions["caretflow"]
