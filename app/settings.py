"""Server settings: ``conf/serve`` defaults, overridden by the environment, then by ``config``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from caretflow.paths import ROOT

_TRUE = {"1", "true", "yes", "on"}


def _keys(value) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(k.strip() for k in items if k and k.strip())


def _bool(value) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE


def _weights(value) -> tuple[float, float]:
    parts = [float(p) for p in (value.split(",") if isinstance(value, str) else value)]
    if len(parts) != 2 or min(parts) < 0 or sum(parts) <= 0:
        raise ValueError("AB_WEIGHTS must be two non-negative numbers, e.g. 90,10")
    return parts[0] / sum(parts), parts[1] / sum(parts)


def _max_batch(value) -> int:
    number = int(value)
    if not 1 <= number <= 65536:  # a prediction id has four hex digits for the position
        raise ValueError(f"MAX_BATCH must be between 1 and 65536, not {number}")
    return number


def keys_from_file(path: str | None) -> tuple[str, ...]:
    """One key per line; blank lines and ``#`` comments are ignored.

    Args:
        path: the key file, or None.

    Returns:
        The keys in the file (empty when no path is given).
    """
    if not path:
        return ()
    lines = Path(path).read_text().splitlines()
    return tuple(s for s in (ln.split("#", 1)[0].strip() for ln in lines) if s)


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from its configuration (names match the env variables)."""

    MODEL_NAME: str = "churn"
    SERVING_ALIAS: str = "champion"
    CHALLENGER_ALIAS: str = "challenger"
    API_KEYS: tuple[str, ...] = ()
    ADMIN_API_KEYS: tuple[str, ...] = ()
    API_KEYS_FILE: str | None = None
    ADMIN_API_KEYS_FILE: str | None = None
    INSECURE_DEV_MODE: bool = False
    RATE_LIMIT: str | None = None
    RATE_LIMIT_STORAGE_URI: str = "memory://"
    PREDICTION_DB_URL: str = f"sqlite:///{ROOT / 'predictions.db'}"
    MLFLOW_TRACKING_URI: str | None = None
    AB_WEIGHTS: tuple[float, float] = (0.9, 0.1)
    SHADOW_MODE: bool = False
    PREDICTION_LOG: bool = True  # off: predictions and inline feedback are not stored
    ALIAS_REFRESH_SECONDS: float = 2.0
    LIVE_METRICS_SECONDS: float = 2.0
    STARTUP_WAIT_SECONDS: float = 20.0
    MAX_CONTENT_LENGTH: int = 5 * 1024 * 1024
    MAX_BATCH: int = 10_000
    PREDICT_THREADS: int = 2  # cores one large forest batch may use (1: never split)
    DB_BUSY_TIMEOUT_SECONDS: float = 10.0
    HEALTH_WINDOW_HOURS: float | None = None
    BACKGROUND: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def client_keys(self) -> tuple[str, ...]:
        """Client keys from the variable and the optional key file."""
        return self.API_KEYS + keys_from_file(self.API_KEYS_FILE)

    @property
    def admin_keys(self) -> tuple[str, ...]:
        """Admin keys from the variable and the optional key file."""
        return self.ADMIN_API_KEYS + keys_from_file(self.ADMIN_API_KEYS_FILE)


_CONVERT = {
    "API_KEYS": _keys, "ADMIN_API_KEYS": _keys, "INSECURE_DEV_MODE": _bool, "SHADOW_MODE": _bool,
    "BACKGROUND": _bool, "AB_WEIGHTS": _weights, "ALIAS_REFRESH_SECONDS": float,
    "LIVE_METRICS_SECONDS": float, "STARTUP_WAIT_SECONDS": float, "MAX_CONTENT_LENGTH": int,
    "PREDICTION_LOG": _bool, "MAX_BATCH": _max_batch, "PREDICT_THREADS": int,
    "DB_BUSY_TIMEOUT_SECONDS": float, "HEALTH_WINDOW_HOURS": float, "PORT": int,
}
_FROM_YAML = {"model_name": "MODEL_NAME", "serving_alias": "SERVING_ALIAS"}


def load_settings(config: dict | None = None, serve_defaults: dict | None = None) -> Settings:
    """Merge defaults (``conf/serve``), environment variables and an explicit ``config``.

    Args:
        config: explicit overrides (the ``create_app`` argument); wins over everything.
        serve_defaults: the composed ``serve`` config group.

    Returns:
        The frozen settings.
    """
    names = {f.name for f in fields(Settings)} - {"extra"}
    values: dict = {}
    for key, value in (serve_defaults or {}).items():
        if key in _FROM_YAML and value is not None:
            values[_FROM_YAML[key]] = value
    for name in names:
        if os.environ.get(name) not in (None, ""):
            values[name] = os.environ[name]
    extra = {}
    for key, value in (config or {}).items():
        (values if key in names else extra)[key] = value
    for key, value in list(values.items()):
        if key in _CONVERT and value is not None:
            values[key] = _CONVERT[key](value)
    return Settings(**values, extra=extra)
