"""Batch scoring of files: find the input, read it in chunks, score a frame, write Parquet.

Shared by the two modes of the ``score`` entry point: local streaming (chunk after chunk
in this process) and Dask (one partition per task on the workers; ``score_partition``).
Every input row is either scored or rejected with its reason; its ``row`` number counts
from 0 over the input files in order, whatever the chunking.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from caretflow.cache import sha256_of
from caretflow.config import stable_hash
from caretflow.inference.validation import validate

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
ERRORS_SCHEMA = pa.schema([("row", pa.int64()), ("reason", pa.string())])
PART = "part-{:05d}.parquet"


class BatchInputError(ValueError):
    """The input cannot be scored: no files, unknown format, or missing columns."""


@dataclass(frozen=True)
class Scoring:
    """What every chunk is scored with: the model's contract and the output's columns."""

    features: list[str]
    schema: dict
    task: str
    keep: list[str]
    model_version: str
    version_name: str

    @property
    def outputs(self) -> list[str]:
        """The prediction columns of the task."""
        if self.task == "classification":
            return ["prediction", "probability"]
        return ["prediction", "lower", "upper"]


def input_files(spec: str) -> tuple[list[Path], str]:
    """The files a file, folder or glob names, in order, and their format (csv/parquet)."""
    path = Path(spec)
    if any(ch in spec for ch in "*?["):
        files = sorted(Path(f) for f in glob.glob(spec, recursive=True) if Path(f).is_file())
    elif path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in FORMATS)
    else:
        files = [path] if path.is_file() else []
    if not files:
        raise BatchInputError(f"no CSV or Parquet files match {spec!r}")
    unknown = [f.name for f in files if f.suffix.lower() not in FORMATS]
    if unknown:
        raise BatchInputError(f"not CSV or Parquet (.csv, .parquet, .pq): {unknown}")
    kinds = {FORMATS[f.suffix.lower()] for f in files}
    if len(kinds) > 1:
        raise BatchInputError(f"{spec!r} mixes CSV and Parquet files: score them separately")
    return files, kinds.pop()


def _columns(path: Path, kind: str) -> list[str]:
    return list(pd.read_csv(path, nrows=0).columns) if kind == "csv" else pq.read_schema(path).names


def check_columns(files: list[Path], kind: str, scoring: Scoring) -> None:
    """A ``BatchInputError`` naming the columns a file lacks (features or ``keep``)."""
    for path in files:
        present = set(_columns(path, kind))
        missing = [c for c in [*scoring.features, *scoring.keep] if c not in present]
        if missing:
            raise BatchInputError(f"{path} lacks columns {missing} (the model needs "
                                  f"{scoring.features}; keep asks for {scoring.keep})")


def csv_dtypes(first: Path, scoring: Scoring, typed: bool = False) -> dict:
    """CSV read types: features as text (validation types them), keep columns from a sample.

    With ``typed`` the ``int`` / ``float`` features are read as float64 by the CSV parser
    itself (validation still checks them; a chunk that fails is read again as text).
    Fixed once for the whole input, so every chunk or partition reads alike.
    """
    sample = pd.read_csv(first, usecols=scoring.keep, nrows=10_000) if scoring.keep else None
    dtypes = {}
    for name in scoring.keep:
        kind = sample[name].dtype.kind
        dtypes[name] = {"i": "Int64", "u": "Int64", "f": "float64", "b": "boolean"}.get(kind, str)
    features = {name: "float64" if typed and scoring.schema[name]["type"] in ("int", "float")
                else str for name in scoring.features}
    return {**dtypes, **features}


def count_rows(files: list[Path], kind: str) -> int:
    """Rows in the input (Parquet metadata; CSV lines after the header, read in blocks)."""
    if kind == "parquet":
        return sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    total = 0
    for path in files:
        with open(path, "rb") as fh:
            last = b"\n"
            for block in iter(lambda fh=fh: fh.read(1 << 22), b""):
                total += block.count(b"\n")
                last = block[-1:]
            total += (last != b"\n") - 1
    return total


def _csv_rows(path: Path, columns, dtypes, start: int, **kwargs):
    """``pd.read_csv`` of ``path`` from data row ``start`` on (the header kept)."""
    skip = (lambda i: 0 < i <= start) if start else None
    return pd.read_csv(path, usecols=columns, dtype=dtypes, skiprows=skip, **kwargs)


def _csv_chunks(path: Path, columns, typed: dict, chunk_rows: int):
    """``(start, frame, is_typed)`` of one CSV: typed chunks, a text one where parsing fails."""
    start, text = 0, {**typed, **{c: str for c, t in typed.items() if t == "float64"}}
    while True:
        reader = _csv_rows(path, columns, typed, start, chunksize=chunk_rows)
        try:
            for frame in reader:
                yield start, frame, True
                start += len(frame)
            return
        except ValueError:  # a value the float parser refuses: this chunk goes by text
            frame = _csv_rows(path, columns, text, start, nrows=chunk_rows)
            if not len(frame):
                return
            yield start, frame, False
            start += len(frame)
        finally:
            reader.close()


def iter_chunks(files: list[Path], kind: str, scoring: Scoring, chunk_rows: int):
    """``(path, start, frame, is_typed)`` of chunks of at most ``chunk_rows`` rows.

    File after file, so memory stays flat in file size; CSV numbers come typed
    (``csv_dtypes(typed=True)``), Parquet as stored.
    """
    columns = list(dict.fromkeys([*scoring.features, *scoring.keep]))
    typed = csv_dtypes(files[0], scoring, typed=True) if kind == "csv" else None
    for path in files:
        if kind == "csv":
            for start, frame, is_typed in _csv_chunks(path, columns, typed, chunk_rows):
                yield path, start, frame, is_typed
        else:
            start = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows,
                                                           columns=columns):
                yield path, start, batch.to_pandas(), False
                start += batch.num_rows


def score_chunks(model, files: list[Path], kind: str, scoring: Scoring, chunk_rows: int):
    """``(rows, scored, errors)`` per chunk, the row numbers counted over all the files.

    A typed CSV chunk with any rejected row is read and validated again as text, so the
    reasons quote the values as written: the result is the text path's, row for row.
    """
    columns = list(dict.fromkeys([*scoring.features, *scoring.keep]))
    text = csv_dtypes(files[0], scoring) if kind == "csv" else None
    done = 0
    for path, start, frame, is_typed in iter_chunks(files, kind, scoring, chunk_rows):
        frame.index = pd.RangeIndex(done, done + len(frame))
        scored, errors = score_frame(model, frame, scoring)
        if is_typed and len(errors):
            frame = _csv_rows(path, columns, text, start, nrows=len(frame))
            frame.index = pd.RangeIndex(done, done + len(frame))
            scored, errors = score_frame(model, frame, scoring)
        done += len(frame)
        yield len(frame), scored, errors


def input_digest(files: list[Path]) -> str:
    """sha256 of the input files' names and contents, in order."""
    return stable_hash([[f.name, sha256_of(f)] for f in files])


def score_frame(model, frame: pd.DataFrame, scoring: Scoring):
    """Validate and score one frame whose index holds the input row numbers.

    Returns:
        ``(scored, errors)``: the scored rows (prediction columns, ``model_version``,
        ``version_name``, then the ``keep`` columns) and the rejected ones (``row``,
        ``reason``).
    """
    valid, reasons = validate(frame, scoring.features, scoring.schema)
    if len(valid):
        details = model.predict_details(valid[scoring.features])
    else:
        details = {c: np.empty(0, dtype=int if c == "prediction" and scoring.task ==
                                "classification" else float) for c in scoring.outputs}
    scored = pd.DataFrame({c: details[c] for c in scoring.outputs})
    scored["model_version"] = scoring.model_version
    scored["version_name"] = scoring.version_name
    for name in scoring.keep:
        values = frame.loc[valid.index, name]
        if isinstance(values.dtype, pd.StringDtype):
            values = values.astype(object)
        scored[name] = values.to_numpy()
    errors = pd.DataFrame({"row": reasons.index.to_numpy(dtype=np.int64),
                           "reason": reasons.to_numpy(dtype=object)})
    return scored, errors


class ParquetSink:
    """Appends frames to one Parquet file (the first non-empty frame fixes the schema)."""

    def __init__(self, path: Path, schema: pa.Schema | None = None):
        self.path, self.schema, self.writer, self.empty = Path(path), schema, None, None

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame`` (an empty one only sets the schema of an empty file)."""
        if not len(frame) and self.writer is None:
            self.empty = frame
            return
        table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table.cast(self.writer.schema))

    def close(self) -> None:
        """Finish the file (an empty one when nothing was written)."""
        if self.writer is None:
            frame = self.empty if self.empty is not None else pd.DataFrame()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
            pq.write_table(table, self.path)
        else:
            self.writer.close()


def score_partition(frame: pd.DataFrame, model, scoring: Scoring, folder: str, number: int):
    """A Dask task: score one partition, write its Parquet part; return (rows, errors).

    The errors' ``row`` counts within the partition; the caller adds the offset.
    """
    frame = frame.reset_index(drop=True)
    scored, errors = score_frame(model, frame, scoring)
    sink = ParquetSink(Path(folder) / PART.format(number))
    sink.write(scored)
    sink.close()
    return len(frame), errors
