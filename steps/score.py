"""Entry point ``score``: a registered model over CSV / Parquet files, written to Parquet.

``python -m steps.score --model churn@champion --input 'data/*.csv' --output out.parquet
--keep CustomerId [--compute dask] [--overrides "compute.address=tcp://..."]``. The model's
own contract (features, schema, task) decides what a valid row is, never ``conf/``;
rejected rows go to ``<output>.errors.parquet`` with their row number and reason. Each
job is an MLflow run (model URI and version, input digest, rows scored and rejected).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from caretflow import compute, registry, runtime, tracking
from caretflow.config import compose, split_overrides
from caretflow.fastpath import accelerate
from caretflow.inference import batch
from caretflow.inference.contract import ContractError, check

log = logging.getLogger("caretflow.score")


class ScoreError(ValueError):
    """The model to score with cannot be found or used."""


def resolve_model(spec: str) -> tuple[str, str]:
    """``(registered name, version)`` of ``name@alias`` or ``name/version``."""
    text = spec.removeprefix("models:/")
    client = MlflowClient()
    try:
        if "@" in text:
            name, alias = text.split("@", 1)
            return name, str(client.get_model_version_by_alias(name, alias).version)
        if "/" in text:
            name, version = text.rsplit("/", 1)
            return name, str(client.get_model_version(name, version).version)
    except MlflowException as exc:
        raise ScoreError(f"unknown model {spec!r}: {exc.message}") from exc
    raise ScoreError(f"model {spec!r}: expected name@alias or name/version")


def _clear(path: Path) -> None:
    if path.is_file():
        path.unlink()
    elif path.is_dir():
        for part in path.glob("part-*.parquet"):
            part.unlink()


def errors_path(output: str) -> Path:
    """Where the rejected rows go: ``<output>.errors.parquet``."""
    return Path(f"{output.rstrip('/')}.errors.parquet")


def _progress(done: int, total: int | None, start: float) -> None:
    rate = done / max(time.perf_counter() - start, 1e-9)
    of = f"/{total}" if total is not None else ""
    pct = f" ({100 * done / total:.0f}%)" if total else ""
    log.info("scored %d%s rows%s, %.0f rows/s", done, of, pct, rate)


def score_local(model, scoring: batch.Scoring, files, kind, output: str, chunk_rows: int):
    """Stream the input chunk by chunk into one Parquet file; return (rows, rejected)."""
    out = Path(output)
    target = out if out.suffix == ".parquet" else out / batch.PART.format(0)
    _clear(out)
    total, done, rejected, start = batch.count_rows(files, kind), 0, 0, time.perf_counter()
    scored_sink = batch.ParquetSink(target)
    errors_sink = batch.ParquetSink(errors_path(output), batch.ERRORS_SCHEMA)
    for rows, scored, errors in batch.score_chunks(model, files, kind, scoring, chunk_rows):
        scored_sink.write(scored)
        errors_sink.write(errors)
        done, rejected = done + rows, rejected + len(errors)
        _progress(done, total, start)
    scored_sink.close()
    errors_sink.close()
    return done, rejected


def score_dask(client, model, scoring: batch.Scoring, files, kind, output: str, blocksize):
    """Score the input's partitions on the workers into one Parquet dataset (a folder)."""
    import dask
    import dask.dataframe as dd

    columns = list(dict.fromkeys([*scoring.features, *scoring.keep]))
    paths = [str(f) for f in files]
    with dask.config.set({"dataframe.convert-string": False}):
        if kind == "csv":
            frame = dd.read_csv(paths, usecols=columns, blocksize=blocksize,
                                dtype=batch.csv_dtypes(files[0], scoring))
        else:
            frame = dd.read_parquet(paths, columns=columns)
        parts = frame.to_delayed()
    out = Path(output)
    _clear(out)
    out.mkdir(parents=True, exist_ok=True)
    shipped = compute.with_lineage(client, model)  # recomputed if its worker is lost
    tasks = [dask.delayed(batch.score_partition)(part, shipped, scoring, str(out.resolve()), i)
             for i, part in enumerate(parts)]
    futures = client.compute(tasks)
    start, done, results = time.perf_counter(), 0, []
    for future in futures:  # in partition order; the workers run ahead
        results.append(future.result())
        done += results[-1][0]
        _progress(done, None, start)
    offsets = pd.Series([rows for rows, _ in results]).cumsum().shift(fill_value=0)
    errors = pd.concat([e.assign(row=e["row"] + off) for (_, e), off in zip(results, offsets,
                                                                              strict=True)])
    sink = batch.ParquetSink(errors_path(output), batch.ERRORS_SCHEMA)
    sink.write(errors.reset_index(drop=True))
    sink.close()
    return done, len(errors)


def predict_threads(cfg) -> int:
    """Threads one chunk's model call may use: ``compute.predict_threads``, 0 for every core."""
    value = cfg.compute.get("predict_threads", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ScoreError(f"compute.predict_threads must be 0 (every core) or a positive "
                         f"number of threads, not {value!r}")
    return value or os.cpu_count() or 1


def score(model: str, input: str, output: str, keep: str = "", compute_name: str = "local",
          overrides: list[str] = ()) -> dict:
    """Score ``input`` with a registered model; return the run id and the counts."""
    cfg = compose([f"compute={compute_name}", *overrides])
    compute.check(cfg)
    threads = predict_threads(cfg)
    mlflow.set_tracking_uri(tracking.tracking_uri())
    name, version = resolve_model(model)
    uri = f"models:/{name}/{version}"
    loaded = registry.load_model(uri)
    contract = check(loaded.contract)
    scoring = batch.Scoring(
        features=list(contract["features"]), schema=contract["schema"], task=contract["task"],
        keep=[c.strip() for c in keep.split(",") if c.strip()], model_version=version,
        version_name=str(loaded.version_name or ""))
    files, kind = batch.input_files(input)
    batch.check_columns(files, kind, scoring)
    scorer = accelerate(loaded, threads)  # as logged, unless verified faster
    tracking.setup(name)
    path = getattr(scorer.pipeline, "kind", "the pipeline as logged")
    log.info("scoring %d %s file(s) with %s (%s) on %s through %s, %d thread(s) per chunk",
             len(files), kind, uri, scoring.version_name, cfg.compute.name, path, threads)
    with compute.session(cfg) as client, mlflow.start_run(run_name=f"score-{name}") as run:
        mlflow.set_tags({tracking.TAG_STEP: "score", tracking.TAG_DATASET: name,
                         "input_digest": batch.input_digest(files),
                         "git_commit": tracking.git_commit()})
        mlflow.log_params({"model": model, "model_uri": uri, "model_version": version,
                           "version_name": scoring.version_name, "input": input,
                           "output": output, "keep": ",".join(scoring.keep),
                           "compute": cfg.compute.name, "input_files": len(files),
                           "predict_threads": threads, "scoring_path": path})
        start = time.perf_counter()
        if client is None:
            rows, rejected = score_local(scorer, scoring, files, kind, output,
                                         int(cfg.compute.chunk_rows))
        else:
            rows, rejected = score_dask(client, scorer, scoring, files, kind, output,
                                        cfg.compute.blocksize)
        seconds = time.perf_counter() - start
        metrics = {"rows_scored": rows - rejected, "rows_rejected": rejected,
                   "seconds": seconds, "rows_per_second": rows / max(seconds, 1e-9)}
        mlflow.log_metrics(metrics)
    log.info("scored %d rows, rejected %d (%s) in %.1fs -> %s", rows - rejected, rejected,
             errors_path(output), seconds, output)
    return {"run_id": run.info.run_id, "model_version": version, **metrics}


def _parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Score CSV / Parquet files with a model.")
    parser.add_argument("--model", required=True, help="name@alias or name/version")
    parser.add_argument("--input", required=True, help="file, folder or glob (CSV / Parquet)")
    parser.add_argument("--output", required=True, help="folder or .parquet path")
    parser.add_argument("--keep", default="", help="comma list of pass-through columns")
    parser.add_argument("--compute", default="local", choices=["local", "dask"])
    parser.add_argument("--overrides", default="", help="Hydra overrides, space separated")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    """CLI: ``python -m steps.score --model ... --input ... --output ...``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = _parse(argv)
    try:
        score(args.model, args.input, args.output, args.keep, args.compute,
              split_overrides([args.overrides] if args.overrides else []))
    except (ScoreError, batch.BatchInputError, compute.ComputeError, ContractError) as exc:
        log.error("%s", exc)
        raise SystemExit(1) from exc


if __name__ == "__main__":
    runtime.freeze_imports()
    main()
    runtime.freeze_before_exit()
