"""The CI machine's PostgreSQL and Redis: availability checks, throw-away databases."""

from __future__ import annotations

import contextlib
import uuid

import pytest

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379"


def _postgres_error() -> str | None:
    try:
        import psycopg

        psycopg.connect(PG_ADMIN, connect_timeout=2).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "absent"
        return f"PostgreSQL not reachable at 127.0.0.1:5432 ({type(exc).__name__})"
    return None


def _redis_error() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        return f"Redis not reachable at 127.0.0.1:6379 ({type(exc).__name__})"
    return None


def require_postgres() -> None:
    """Skip the test when PostgreSQL is absent (a laptop); CI has it."""
    reason = _postgres_error()
    if reason:
        pytest.skip(reason)


def require_redis() -> None:
    """Skip the test when Redis is absent."""
    reason = _redis_error()
    if reason:
        pytest.skip(reason)


@contextlib.contextmanager
def fresh_database(prefix: str = "caretflow"):
    """A new PostgreSQL database for one test; yields its SQLAlchemy URL, drops it after.

    The URL is a bare ``postgresql://``: SQLAlchemy 2.1 takes psycopg 3 for it, as installed.
    """
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
