"""Raw data: load (CSV with checksum, or generator), validate, split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from sklearn.model_selection import train_test_split

from caretflow.cache import sha256_of
from caretflow.config import resolve_path, to_container
from caretflow.data.ratings_generator import generate_ratings
from caretflow.retrain.timesplit import time_split

ORACLE_COLUMNS = ["expected_rating"]


class DataValidationError(ValueError):
    """Raw data does not match the data set config; the message names each problem."""


def load_raw(ds: DictConfig) -> pd.DataFrame:
    """Load the raw table named by the data set config."""
    source = ds.source
    if source.kind == "generator":
        return generate_ratings(**to_container(source, "generator"))
    if source.kind == "movielens":
        from caretflow.data.movielens import load_movielens

        return load_movielens(resolve_path(source.path))
    if source.kind not in ("csv", "parquet"):
        raise DataValidationError(f"dataset.source.kind: unknown kind {source.kind!r}")
    path = resolve_path(source.path)
    if not path.exists():
        raise DataValidationError(f"dataset.source.path: file not found: {path}")
    if source.get("sha256_file"):
        _verify_checksum(path, resolve_path(source.sha256_file))
    if source.kind == "parquet":  # a retrain snapshot (caretflow.retrain.snapshot)
        return pd.read_parquet(path)
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(f"{path.name}: the file is empty") from exc


def _verify_checksum(path: Path, sha_file: Path) -> None:
    if not sha_file.exists():
        raise DataValidationError(f"checksum file not found: {sha_file}")
    expected = sha_file.read_text().split()[0].strip().lower()
    actual = sha256_of(path)
    if actual != expected:
        raise DataValidationError(
            f"{path.name}: sha256 {actual} does not match {sha_file.name} ({expected}); "
            "the file was altered"
        )


def validate(df: pd.DataFrame, ds: DictConfig, task: str) -> pd.DataFrame:
    """Check the raw frame against the schema; return it with typed columns.

    Raises:
        DataValidationError: with one line per problem, each naming its column.
    """
    if df.empty:
        raise DataValidationError("the data set has no rows")
    problems: list[str] = []
    schema = to_container(ds, "schema")
    missing = [c for c in [*schema, ds.target] if c not in df.columns]
    problems += [f"column {c!r}: missing" for c in missing]
    out = df.copy()
    for col, spec in schema.items():
        if col in df.columns:
            problems += _check_column(out, col, spec)
    if ds.target in df.columns:
        problems += _check_target(out, ds.target, task)
    if problems:
        raise DataValidationError("raw data failed validation:\n  " + "\n  ".join(problems))
    return out


def _check_column(df: pd.DataFrame, col: str, spec: dict) -> list[str]:
    values = df[col]
    n_missing = int(values.isna().sum())
    problems = [f"column {col!r}: {n_missing} missing values"] if n_missing else []
    if spec["type"] == "category":
        unknown = sorted(set(values.dropna().astype(str)) - set(spec["categories"]))
        if unknown:
            problems.append(
                f"column {col!r}: unknown categories {unknown[:5]} (allowed {spec['categories']})"
            )
        return problems
    numeric = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numeric.isna()
    if bad.any():
        examples = values[bad].astype(str).unique()[:3].tolist()
        return [*problems, f"column {col!r}: expected {spec['type']}, got {examples}"]
    if spec["type"] == "int" and not np.all(np.mod(numeric.dropna(), 1) == 0):
        problems.append(f"column {col!r}: expected int, got fractional values")
    low, high = spec.get("min"), spec.get("max")
    if low is not None and (numeric < low).any():
        problems.append(f"column {col!r}: {int((numeric < low).sum())} values below {low}")
    if high is not None and (numeric > high).any():
        problems.append(f"column {col!r}: {int((numeric > high).sum())} values above {high}")
    df[col] = numeric
    return problems


def _check_target(df: pd.DataFrame, target: str, task: str) -> list[str]:
    y = pd.to_numeric(df[target], errors="coerce")
    if y.isna().any():
        return [f"target {target!r}: {int(y.isna().sum())} missing or non-numeric values"]
    df[target] = y
    if task == "classification":
        labels = set(np.unique(y))
        if not labels <= {0, 1}:
            return [f"target {target!r}: expected labels 0/1, got {sorted(labels)[:5]}"]
        if len(labels) < 2:
            return [f"target {target!r}: only one class ({labels.pop()}) present"]
    elif y.nunique() < 2:
        return [f"target {target!r}: constant, nothing to learn"]
    return []


def subsample(df: pd.DataFrame, max_rows: int | None, target: str, stratify: bool, seed: int):
    """Keep at most ``max_rows`` rows (stratified on the target when asked)."""
    if not max_rows or len(df) <= max_rows:
        return df
    strat = df[target] if stratify else None
    keep, _ = train_test_split(df, train_size=max_rows, stratify=strat, random_state=seed)
    return keep.sort_index()


def split(df: pd.DataFrame, ds: DictConfig, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Held-out split (stratified on the target for classification).

    With ``dataset.split.time_column`` (a retrain snapshot) the newest ``test_size`` of the
    timed rows are the test instead (``caretflow.retrain.timesplit``).
    """
    if ds.split.get("time_column"):
        return time_split(df, ds.split.time_column, ds.split.test_size)
    strat = df[ds.target] if ds.split.stratify else None
    return train_test_split(df, test_size=ds.split.test_size, stratify=strat, random_state=seed)


def training_split(raw: pd.DataFrame, cfg: DictConfig):
    """Validated frame without identifiers, then the held-out ``(train, test)`` split of it.

    Returns:
        ``(df, train, test)``: every kept row, and the two splits preprocess logs.
    """
    ds = cfg.dataset
    df = validate(raw, ds, ds.task)
    df = df.drop(columns=[c for c in ds.id_columns if c in df.columns])
    df = subsample(df, cfg.profile.max_rows, ds.target, ds.split.stratify, cfg.seed)
    train, test = split(df, ds, cfg.seed)
    return df, train, test


def feature_columns(ds: DictConfig) -> list[str]:
    """The raw input columns a model takes (the schema's columns)."""
    return list(ds.schema.keys())
