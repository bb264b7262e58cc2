"""Request bodies and responses: JSON in (415/400 on bad input), fast JSON out."""

from __future__ import annotations

import orjson
from flask import Response, request

from app.errors import ApiError


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
