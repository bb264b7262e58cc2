"""Reading the server's prediction log without importing the server.

The tables belong to ``app.prediction_log.db``; here they are reflected by name from the
database itself (``Table(name, MetaData(), autoload_with=engine)``), so the core library
never imports ``app`` and never restates the table definitions.
"""

from __future__ import annotations

import json
import logging

import pandas as pd
from sqlalchemy import MetaData, Table, create_engine, func, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import NoSuchTableError

log = logging.getLogger(__name__)
OUTPUTS = ("prediction", "probability", "lower", "upper")
MAX_ROWS = 200_000  # scored records read per version and window


class LogReader:
    """The prediction log of one database, read over time windows.

    Args:
        url: SQLAlchemy URL of the prediction database (``PREDICTION_DB_URL``).
    """

    def __init__(self, url: str):
        self.engine: Engine = create_engine(url)
        self._tables: dict[str, Table | None] = {}

    def table(self, name: str) -> Table | None:
        """The reflected table ``name``, or None when the database does not hold it."""
        if name not in self._tables:
            try:
                self._tables[name] = Table(name, MetaData(), autoload_with=self.engine)
            except NoSuchTableError:
                self._tables[name] = None
        return self._tables[name]

    def has_log(self) -> bool:
        """Whether the database holds a prediction log at all."""
        return "prediction_groups" in inspect(self.engine).get_table_names()

    def served(self, model: str, since: float, until: float) -> dict[str, int]:
        """Scored records per version in ``[since, until)`` (shadow scores included)."""
        g = self.table("prediction_groups")
        if g is None:
            return {}
        query = (select(g.c.model_version, func.sum(g.c.size))
                 .where(g.c.model_name == model, g.c.created_at >= since,
                        g.c.created_at < until).group_by(g.c.model_version))
        with self.engine.connect() as conn:
            return {str(v): int(n) for v, n in conn.execute(query)}

    def first_seen(self, model: str, version: str) -> float | None:
        """When the version scored its first record (None: never)."""
        g = self.table("prediction_groups")
        query = select(func.min(g.c.created_at)).where(g.c.model_name == model,
                                                       g.c.model_version == version)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def scored(self, model: str, version: str, since: float, until: float,
               limit: int = MAX_ROWS) -> pd.DataFrame:
        """One row per scored record: ``created_at``, ``arm``, the inputs and the outputs.

        Output columns are prefixed ``out_`` (``out_prediction``, ``out_probability`` ...)
        so they never clash with an input feature's name.
        """
        g = self.table("prediction_groups")
        query = (select(g.c.created_at, g.c.arm, g.c.size, g.c.inputs, g.c.outputs)
                 .where(g.c.model_name == model, g.c.model_version == version,
                        g.c.created_at >= since, g.c.created_at < until)
                 .order_by(g.c.created_at.desc()))
        frames, total = [], 0
        with self.engine.connect() as conn:
            for created, arm, size, inputs, outputs in conn.execute(query):
                part = pd.DataFrame(json.loads(inputs))
                for key, values in json.loads(outputs).items():
                    if key in OUTPUTS:
                        part[f"out_{key}"] = values
                frames.append(part.assign(created_at=created, arm=arm))
                total += size
                if total >= limit:
                    break
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def labelled(self, model: str, since: float, until: float) -> pd.DataFrame:
        """Label rows (true value beside the score it judges) whose feedback came in the window."""
        t = self.table("labels")
        if t is None:
            return pd.DataFrame()
        query = (select(t.c.prediction_id, t.c.arm, t.c.model_version, t.c.true_value,
                        t.c.prediction, t.c.probability, t.c.lower, t.c.upper, t.c.created_at)
                 .where(t.c.model_name == model, t.c.created_at >= since,
                        t.c.created_at < until))
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).mappings().all())
        if not frame.empty:
            frame["model_version"] = frame["model_version"].astype(str)
        return frame

    def alerts(self, model: str, since: float, until: float) -> list[dict] | None:
        """The server's alerts of the window, newest first (None: no ``alerts`` table)."""
        t = self.table("alerts")
        if t is None:
            return None
        query = (select(t.c.kind, t.c.model_version, t.c.status, t.c.text, t.c.created_at)
                 .where(t.c.model_name == model, t.c.created_at >= since,
                        t.c.created_at < until).order_by(t.c.created_at.desc()).limit(200))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]


    def rejected(self, model: str, since: float, until: float) -> pd.DataFrame | None:
        """The server's rejection rows of the window (None: no ``rejections`` table).

        One row per rejected request, field and reason code: ``request_id``,
        ``model_version``, ``field``, ``reason``, ``rows`` (its records with that problem),
        ``request_rows`` (the records the request carried), ``created_at``.
        """
        t = self.table("rejections")
        if t is None:
            return None
        query = (select(t.c.request_id, t.c.model_version, t.c.route, t.c.field, t.c.reason,
                        t.c.rows, t.c.request_rows, t.c.created_at)
                 .where(t.c.model_name == model, t.c.created_at >= since,
                        t.c.created_at < until))
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).mappings().all(),
                                columns=[c.name for c in query.selected_columns])
