"""Server settings: defaults, overridden by the environment, then by ``create_app(config)``.

Nothing here reads ``conf/``: what a model means comes from the model it serves (its
contract), what the server does comes from these settings.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from caretflow.paths import ROOT

log = logging.getLogger(__name__)


def _keys(value) -> tuple[str, ...]:
    """Comma-separated (or listed) keys, stripped, empties dropped."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(k.strip() for k in items if k and k.strip())


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


KEYS = Annotated[tuple[str, ...], NoDecode]  # "k1,k2" in the environment, not JSON


class Settings(BaseSettings):
    """Everything the server reads from its configuration (names match the env variables)."""

    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, frozen=True,
                                      extra="ignore")

    MODEL_NAME: str = "churn"
    SERVING_ALIAS: str = "champion"
    CHALLENGER_ALIAS: str = "challenger"
    API_KEYS: KEYS = ()
    ADMIN_API_KEYS: KEYS = ()
    API_KEYS_FILE: str | None = None
    ADMIN_API_KEYS_FILE: str | None = None
    INSECURE_DEV_MODE: bool = False
    RATE_LIMIT: str | None = None
    LEAN_ROUTES: bool = True  # off: Flask answers every request (app.lean)
    RATE_LIMIT_STORAGE_URI: str = "memory://"
    PREDICTION_DB_URL: str = f"sqlite:///{ROOT / 'predictions.db'}"
    MLFLOW_TRACKING_URI: str | None = None
    AB_WEIGHTS: Annotated[tuple[float, float], NoDecode] = (0.9, 0.1)
    SHADOW_MODE: bool = False
    PREDICTION_LOG: bool = True  # off: predictions and inline feedback are not stored
    ALIAS_REFRESH_SECONDS: float = 2.0
    LIVE_METRICS_SECONDS: float = 2.0
    STARTUP_WAIT_SECONDS: float = 20.0
    MAX_CONTENT_LENGTH: int = 5 * 1024 * 1024
    MAX_BATCH: int = 10_000
    PREDICT_THREADS: int = 2  # cores one large forest batch may use (1: never split)
    DB_BUSY_TIMEOUT_SECONDS: float = 10.0
    HEALTH_WINDOW_HOURS: float | None = Field(default=None, gt=0, le=24 * 365)
    # Purge prediction groups and labels older than this many days (unset: keep everything).
    PREDICTION_RETENTION_DAYS: float | None = Field(default=None, gt=0)
    BACKGROUND: bool = True
    PORT: int = Field(default=8000, ge=1, le=65535)  # read by app/gunicorn.conf.py
    WORKERS: int = Field(default=2, ge=1)  # read by app/gunicorn.conf.py
    # Observe and act (docs/monitoring.md)
    OBSERVE_SECONDS: float = Field(default=10.0, gt=0)  # gauges, alerts, A/B verdict
    ALERT_WEBHOOK_URLS: KEYS = ()
    ALERT_RECOVERY_SECONDS: float = Field(default=300.0, ge=0)  # recovery must hold this long
    ALERT_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0)
    AB_AUTO_PROMOTE: bool = False
    AB_MIN_EFFECT: float | None = Field(default=None, gt=0)  # default per metric
    AB_ALPHA: float = Field(default=0.05, gt=0, lt=0.5)
    AB_POWER: float = Field(default=0.8, gt=0.5, lt=1)
    PREVIOUS_ALIAS: str = "previous"

    @field_validator("API_KEYS", "ADMIN_API_KEYS", "ALERT_WEBHOOK_URLS", mode="before")
    @classmethod
    def _split_keys(cls, value):
        return _keys(value)

    @field_validator("AB_WEIGHTS", mode="before")
    @classmethod
    def _weights(cls, value):
        try:
            parts = [float(p) for p in (value.split(",") if isinstance(value, str) else value)]
        except (TypeError, ValueError):
            parts = []
        if len(parts) != 2 or min(parts) < 0 or sum(parts) <= 0:
            raise ValueError("AB_WEIGHTS must be two non-negative numbers, e.g. 90,10")
        return parts[0] / sum(parts), parts[1] / sum(parts)

    @field_validator("MAX_BATCH")
    @classmethod
    def _max_batch(cls, number: int) -> int:
        if not 1 <= number <= 65536:  # a prediction id has four hex digits for the position
            raise ValueError(f"MAX_BATCH must be between 1 and 65536, not {number}")
        return number

    @property
    def client_keys(self) -> tuple[str, ...]:
        """Client keys from the variable and the optional key file."""
        return self.API_KEYS + keys_from_file(self.API_KEYS_FILE)

    @property
    def admin_keys(self) -> tuple[str, ...]:
        """Admin keys from the variable and the optional key file."""
        return self.ADMIN_API_KEYS + keys_from_file(self.ADMIN_API_KEYS_FILE)


def load_settings(config: dict | None = None) -> Settings:
    """Defaults, then environment variables (empty ones ignored), then ``config``.

    Args:
        config: explicit overrides (the ``create_app`` argument); wins over everything.
            Unknown names are ignored with a warning.

    Returns:
        The frozen settings.

    Raises:
        ValueError: a setting is invalid (one line per bad setting, values not echoed).
    """
    config = dict(config or {})
    unknown = sorted(set(config) - set(Settings.model_fields))
    if unknown:
        log.warning("ignoring unknown settings %s", unknown)
    try:
        return Settings(**{k: v for k, v in config.items() if k not in unknown})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors(include_url=False, include_input=False))
        raise ValueError(f"invalid server settings: {problems}") from None
