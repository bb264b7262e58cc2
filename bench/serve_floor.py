"""In-process floor: what the registered champion costs without HTTP, per call.

For 1 and 1000 rows: the logged pipeline on a DataFrame (what ``mlflow models serve``
calls), the same pipeline on column arrays (what caretflow hands it), caretflow's served
model (with the verified fast path where it applies) and the bare estimator on an
already-transformed feature matrix.

    python -m bench.serve_floor --tracking-uri sqlite:////tmp/caretflow-bench/mlflow.db
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from bench import payloads

log = logging.getLogger("bench.floor")
RESULTS = Path(__file__).parent / "results"


def time_call(fn, min_seconds: float = 1.0, max_calls: int = 2000) -> dict:
    """Median and p90 wall time of ``fn()`` in milliseconds (after one warm-up call)."""
    fn()
    times, deadline = [], time.perf_counter() + min_seconds
    while len(times) < max_calls and (len(times) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(float(np.median(times)), 3),
            "p90_ms": round(float(np.percentile(times, 90)), 3), "calls": len(times)}


def load_served(tracking_uri: str, alias: str = "champion"):
    """(logged model, model as caretflow serves it) for ``churn@alias``."""
    import mlflow

    from caretflow.fastpath import accelerate
    from caretflow.registry import load_model

    mlflow.set_tracking_uri(tracking_uri)
    model = load_model(f"models:/churn@{alias}")
    return model, accelerate(model)


def columns(df) -> dict[str, np.ndarray]:
    """Column arrays, like ``app.schemas.columns`` builds from validated records."""
    return {c: df[c].to_numpy() for c in df.columns}


def floor(model, served, sizes=(1, 1000), min_seconds: float = 1.0) -> list[dict]:
    """Per-call times of every in-process path for each batch size."""
    pipe = model.pipeline
    transforms = [s for _, s in pipe.steps[:-1] if hasattr(s, "transform")]
    final = pipe.steps[-1][1]
    out = []
    for n in sizes:
        df = payloads.frame(n, seed=n)
        cols = columns(df)
        Z = df
        for step in transforms:
            Z = step.transform(Z)
        paths = {
            "pipeline_predict_dataframe": lambda df=df: model.predict(df),
            "pipeline_details_columns": lambda c=cols: model.predict_details(c),
            "caretflow_served_model": lambda c=cols: served.predict_details(c),
            "bare_estimator_predict_proba": lambda z=Z: final.predict_proba(z),
        }
        for name, fn in paths.items():
            out.append({"rows": n, "path": name, **time_call(fn, min_seconds)})
    return out


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--seconds", type=float, default=2.0, help="timing budget per path")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve_floor.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model, served = load_served(args.tracking_uri)
    rows = floor(model, served, min_seconds=args.seconds)
    estimator = type(model.pipeline.steps[-1][1]).__name__
    result = {"estimator": estimator, "fast_path": served is not model, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for r in rows:
        log.info("%-5d %-30s p50 %8.3f ms", r["rows"], r["path"], r["p50_ms"])
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
