"""The prediction database's tables (SQLAlchemy 2 Core): one ``metadata`` for all of them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# One row per scored group of a request: the records a version scored for one arm, with
# their inputs and outputs as columns of JSON. A record's prediction id is its request id
# followed by its position in the request (``prediction_ids``).
prediction_groups = Table(
    "prediction_groups", metadata,
    Column("request_id", String(28), primary_key=True),
    Column("arm", String(16), primary_key=True),  # default | champion | challenger | shadow
    Column("created_at", Float, nullable=False),
    Column("model_name", String(100), nullable=False),
    Column("model_version", String(20), nullable=False),
    Column("version_name", String(100)),
    Column("size", Integer, nullable=False),
    Column("positions", Text),  # JSON list of record positions; NULL: 0 .. size-1
    Column("routing", Text),  # JSON list of routing keys (A/B stickiness), or NULL
    Column("inputs", Text, nullable=False),  # JSON {feature: [values]}, no personal data
    Column("outputs", Text, nullable=False),  # JSON {prediction: [...], probability | lower, upper}
)
# Health and drift read one version's recent groups.
Index("ix_groups_version_time", prediction_groups.c.model_name,
      prediction_groups.c.model_version, prediction_groups.c.created_at)

# One row per labelled score: the true value beside the prediction it judges (copied from
# its group when the feedback arrives), so live metrics never read the prediction groups.
# A shadow score gets its own row for the same prediction id.
labels = Table(
    "labels", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("prediction_id", String(32), nullable=False),
    Column("arm", String(16), nullable=False),
    Column("model_name", String(100), nullable=False),
    Column("model_version", String(20), nullable=False),
    Column("true_value", Float, nullable=False),
    Column("prediction", Float, nullable=False),
    Column("probability", Float),
    Column("lower", Float),
    Column("upper", Float),
    Column("created_at", Float, nullable=False),
    Column("source", String(8), nullable=False),  # inline | api
    UniqueConstraint("prediction_id", "arm", name="uq_labels_prediction_arm"),
)
Index("ix_labels_version_time", labels.c.model_name, labels.c.model_version,
      labels.c.created_at)

live_progress = Table(
    "live_progress", metadata,
    Column("model_name", String(100), primary_key=True),
    Column("model_version", String(20), primary_key=True),
    Column("feedback_count", Integer, nullable=False),
)

metric_outbox = Table(
    "metric_outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("key", String(100), nullable=False),
    Column("value", Float, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("claim", String(32)),
    Column("claimed_at", Float),
    Column("sent", Boolean, nullable=False, default=False),
)

# Alerts (``app.alerts``): one row per state change, whatever the number of workers. The
# current status per version lives in ``health_states`` and moves by compare-and-set; the
# worker whose update wins writes the alert and one delivery row per webhook URL.
health_states = Table(
    "health_states", metadata,
    Column("model_name", String(100), primary_key=True),
    Column("model_version", String(20), primary_key=True),
    Column("kind", String(16), primary_key=True),  # health | drift | ab
    Column("status", String(32), nullable=False),
    Column("candidate", String(32)),  # a status seen but not yet held long enough
    Column("candidate_since", Float),
    Column("changed_at", Float, nullable=False),
)

alerts = Table(
    "alerts", metadata,
    Column("alert_id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("model_name", String(100), nullable=False),
    Column("model_version", String(20)),
    Column("status", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("details", Text, nullable=False),  # JSON object
    Column("created_at", Float, nullable=False),
)
Index("ix_alerts_time", alerts.c.created_at)

alert_deliveries = Table(
    "alert_deliveries", metadata,
    Column("alert_id", String(32), primary_key=True),
    Column("url", String(500), primary_key=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", Float, nullable=False),
    Column("claim", String(32)),
    Column("claimed_at", Float),
    Column("sent_at", Float),
    Column("last_error", String(300)),
)

# Records rejected by validation (422), one row per request, field and reason code: counts
# only, never a rejected value (``app.rejections``). ``created_at`` is what the monitor's
# windows and the retention purge go by.
rejections = Table(
    "rejections", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("route", String(100), nullable=False),
    Column("model_name", String(100), nullable=False),
    Column("model_version", String(20)),  # the contract's version, or the requested one
    Column("field", String(100), nullable=False),  # input field, or body / records / record
    Column("reason", String(64), nullable=False),  # pydantic's error type, e.g. less_than_equal
    Column("rows", Integer, nullable=False),  # records of the request with this problem
    Column("request_rows", Integer, nullable=False),  # records the rejected request carried
)
Index("ix_rejections_time", rejections.c.model_name, rejections.c.created_at)
