"""Per-app state shared by the blueprints (``app.extensions["caretflow"]``).

What a request may carry and what the answer means come from the serving (default)
version's contract; the request models and the batch checker built from it are cached per
contract, so a default that moves to another contract brings its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from app.auth import KeyRing
from app.batchcheck import BatchChecker
from app.errors import ApiError
from app.model_store import ModelStore
from app.schemas import RequestModels, build_models
from app.settings import Settings


def contract_key(contract: dict) -> tuple:
    """What the request models depend on: the schema digest and the request-side columns."""
    target_range = contract.get("target_range")
    return (contract["schema_digest"], contract.get("routing_key"),
            tuple(contract.get("id_columns") or ()),
            tuple(target_range) if target_range is not None else None)


@dataclass
class State:
    """Everything a request handler needs."""

    settings: Settings
    keys: KeyRing
    store: ModelStore
    engine: object
    live: object
    tasks: list = field(default_factory=list)
    cache: dict = field(default_factory=dict)

    @property
    def contract(self) -> dict:
        """The serving (default) version's contract; 503 until a model is loaded."""
        served = self.store.default
        if served is None:
            raise ApiError(503, "no model loaded yet", ["see /health"])
        return served.contract

    def cached(self, kind: str, build):
        """``build(contract)`` for the serving contract, built once per contract."""
        contract = self.contract
        key = (kind, contract_key(contract))
        if key not in self.cache:
            self.cache[key] = build(contract)
        return self.cache[key]

    @property
    def requests(self) -> RequestModels:
        """The pydantic request models of the serving contract."""
        return self.cached("requests", lambda c: build_models(c, self.settings.MAX_BATCH))

    @property
    def checker(self) -> BatchChecker:
        """The column-wise batch validator of the serving contract."""
        return self.cached("batch_checker", BatchChecker)

    def stop(self) -> None:
        """Stop the background threads and release the database."""
        for task in self.tasks:
            task.stop()
        self.engine.dispose()


def state() -> State:
    """The current app's state."""
    return current_app.extensions["caretflow"]
