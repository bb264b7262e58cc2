"""API keys checked in constant time; client and admin roles.

A request presents its key in ``X-API-Key``, or as ``Authorization: Bearer <key>``, or as the
password of HTTP Basic auth (any user name), so clients that read ``~/.netrc`` (``requests``,
MLflow's scoring client, curl ``--netrc``) need no code change. ``X-API-Key`` wins when a
request carries several.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from flask import current_app, g, request
from werkzeug.datastructures import Authorization

from app.errors import ApiError

HEADER = "X-API-Key"
ROLES = {"client": 1, "admin": 2}
CHALLENGE = 'Basic realm="caretflow", Bearer realm="caretflow"'  # WWW-Authenticate of a 401


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def key_id(key: str) -> str:
    """A short, non-reversible identifier of a key for tags and logs (never the key)."""
    return "key-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:10]


class KeyRing:
    """Known keys as digests; lookups compare against every key without short-circuit.

    Args:
        client_keys: keys that may call the client routes.
        admin_keys: keys that may call every route.
        insecure: development mode: every caller is admin.
    """

    def __init__(self, client_keys, admin_keys, insecure: bool = False):
        self._keys = [(_digest(k), "client") for k in client_keys]
        self._keys += [(_digest(k), "admin") for k in admin_keys]
        self.insecure = insecure

    def role(self, key: str | None) -> str | None:
        """The role of ``key`` (``admin`` wins when a key is in both lists), or None."""
        if self.insecure:
            return "admin"
        if not key:
            return None
        digest, found = _digest(key), None
        for known, role in self._keys:
            if hmac.compare_digest(digest, known) and (found is None or role == "admin"):
                found = role
        return found


def presented_key() -> str | None:
    """The key the request presents: ``X-API-Key``, else a Bearer token, else a Basic password."""
    return key_of(request.headers.get(HEADER), request.headers.get("Authorization"))


def key_of(api_key: str | None, authorization: str | None) -> str | None:
    """The key of a request with these ``X-API-Key`` and ``Authorization`` header values."""
    if api_key:
        return api_key
    credentials = Authorization.from_header(authorization)  # None: absent or malformed
    if credentials is None:
        return None
    if credentials.type == "bearer":
        return credentials.token or None
    if credentials.type == "basic":
        return credentials.password or None
    return None


def current_role() -> str | None:
    """Role of the request's key (cached on ``g``)."""
    if "role" not in g:
        g.role = current_app.extensions["caretflow"].keys.role(presented_key())
    return g.role


def requires(role: str):
    """Route decorator: 401 without a valid key, 403 when the key's role is too low.

    Args:
        role: ``client`` or ``admin``.
    """

    def wrap(view):
        @functools.wraps(view)
        def checked(*args, **kwargs):
            have = current_role()
            if have is None:
                raise ApiError(401, "missing or unknown API key",
                               [f"send the key in the {HEADER} header, as a Bearer token or "
                                "as the HTTP Basic password"], {"WWW-Authenticate": CHALLENGE})
            if ROLES[have] < ROLES[role]:
                raise ApiError(403, "this route needs an admin key")
            return view(*args, **kwargs)

        checked.required_role = role
        return checked

    return wrap


def limit_key() -> str:
    """Rate-limit bucket: the key's id when it is valid, else the client address."""
    key = presented_key()
    if key and current_role() is not None:
        return key_id(key)
    return f"addr-{request.remote_addr}"
