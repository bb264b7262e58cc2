"""Calls to the model registry, with its failures told apart: unknown name, or no answer."""

from __future__ import annotations

import re

from mlflow.exceptions import MlflowException

from app.errors import ApiError

RETRY_AFTER_SECONDS = "5"
NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}  # unknown version or alias


class RegistryUnavailable(RuntimeError):
    """The model registry did not answer (the client may retry)."""


def registry_call(call, *args):
    """``call(*args)`` against the registry.

    Raises:
        MlflowException: the registry answered that the version or alias does not exist.
        RegistryUnavailable: anything else (connection refused, timeout, store broken).
    """
    try:
        return call(*args)
    except MlflowException as exc:
        if exc.error_code in NOT_FOUND:
            raise
        raise RegistryUnavailable(reason(exc)) from None
    except Exception as exc:  # noqa: BLE001 - connection refused, database gone, ...
        raise RegistryUnavailable(reason(exc)) from None


def reason(exc: Exception) -> str:
    """A short reason without stack traces or local paths."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = re.sub(r"(\w+://)?(/[^\s'\"]+)+", "<path>", text)
    return f"{type(exc).__name__}: {text[:200]}"


def unavailable(exc: RegistryUnavailable | None = None) -> ApiError:
    """The 503 answered while the registry does not answer (with ``Retry-After``)."""
    return ApiError(503, "model registry unreachable; retry later",
                    [str(exc)] if exc else [], {"Retry-After": RETRY_AFTER_SECONDS})
