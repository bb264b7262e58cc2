"""The prediction log: one row per scored group, one per label (SQLAlchemy Core)."""
