"""Per-app state shared by the blueprints (``app.extensions["caretflow"]``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
from flask import Response, current_app, request

from app.auth import KeyRing
from app.errors import ApiError
from app.models import ModelStore
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


def json_body():
    """The request's JSON body: 415 when it is not JSON, 400 when malformed, 413 when big."""
    if not request.is_json:
        raise ApiError(415, "send the body as application/json")
    raw = request.get_data(cache=False)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed JSON body") from None


def json_response(obj, status: int = 200) -> Response:
    """A fast JSON response."""
    return Response(orjson.dumps(obj), status=status, mimetype="application/json")
