"""Regenerate ``docs/benchmarks.md`` and its plots from the JSON files in ``bench/results``.

Usage: ``python -m bench.report`` (reads bench/results/*.json, writes docs/).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from bench import report_budget, report_plots, report_scaleout, report_serving
from bench.report_serving import table
from bench.report_text import TARGETS_HEAD, analysis, header

log = logging.getLogger("bench.report")
ROOT = Path(__file__).resolve().parent.parent


def _read(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def floor_section(floor: dict) -> str:
    """In-process floor table."""
    rows = [[r["rows"], f"`{r['path']}`", r["p50_ms"], r["p90_ms"]] for r in floor["rows"]]
    return table(["rows", "path", "p50 ms", "p90 ms"], rows)


def batch_section(batch: dict) -> str:
    """Latency vs batch size table."""
    rows = [[r["rows"], r["http_p50_ms"], r["http_p90_ms"], r["model_p50_ms"], r["rows_per_s"],
             r["errors"]] for r in batch["rows"]]
    return table(["records/request", "HTTP p50 ms", "HTTP p90 ms", "model p50 ms",
                  "records/s at p50", "errors"], rows)


def phases_section(phases: dict) -> str:
    """Where one large request's time goes (in-process)."""
    rows = [[r["phase"], r["p50_ms"], r["p90_ms"]] for r in phases["phases"]]
    return (f"One `{phases['rows']}`-record `/predict` request of the same champion, stage by "
            "stage (`bench/batch_phases.py`, real app, no HTTP; each stage timed on its own, "
            "so they need not add up exactly):\n\n"
            + table(["stage", "p50 ms", "p90 ms"], rows))


def writers_section(writers: dict) -> str:
    """CPU per prediction-log write, per writer count and page size; a large group's write."""
    rows = [[r["writers"], r["page_size"], r["cpu_us_per_write"], r["writes_per_s"]]
            for r in writers["rows"]]
    run = writers["machine"]
    large = [[r["page_size"], r["records"], r["bytes"], r["p50_ms"]] for r in writers["large"]]
    return ("One-record groups written through `db.write` by 1 and 2 processes into a new "
            "SQLite log of each page size, checkpointed every second "
            f"(`bench/log_writers.py`, {writers['seconds']} s a cell; run {run['at']}, commit "
            f"`{run['commit']}`, load {run['load']}). A write that follows another "
            "process's write reads its pages again:\n\n"
            + table(["writer processes", "page size (bytes)", "CPU µs per write",
                     "writes/s (all writers)"], rows)
            + "\n\nOne writer, one large group (its JSON in overflow pages):\n\n"
            + table(["page size (bytes)", "records", "JSON bytes", "p50 ms per write"], large))


def training_section(train: list[dict]) -> str:
    """Per-step times and cached fractions."""
    summary = [[r["dataset"], r["profile"], r["first_run_seconds"], r["cached_rerun_seconds"],
                f"{100 * r['cached_fraction']:.1f} %"] for r in train]
    steps = [[r["dataset"], r["profile"], s["step"], s["version"] or "–", s["seconds"]]
             for r in train for s in r["steps"]]
    return "\n\n".join([
        table(["data set", "profile", "first run s", "cached rerun s", "cached / first"], summary),
        table(["data set", "profile", "step", "version", "seconds"], steps)])


def quality_section(train: list[dict]) -> str:
    """Test metrics of every version, both data sets, and the ratings noise floor."""
    rows = []
    for r in train:
        for q in r["quality"]:
            metrics = {k: v for k, v in q.items() if k.startswith("test_")}
            rows.append([r["dataset"], r["profile"], q["version_name"], ", ".join(q["aliases"]),
                         ", ".join(f"{k.removeprefix('test_')} {v}" for k, v in metrics.items())])
    floors = [f"{r['dataset']} ({r['profile']}): noise floor RMSE {r['noise_floor_rmse']:.4f}"
              for r in train if r.get("noise_floor_rmse")]
    return "\n\n".join([table(["data set", "profile", "version", "aliases", "test metrics"], rows),
                        "Ratings noise floor (RMSE of the generator's true ratings on the test "
                        "split — no model can beat it): " + "; ".join(floors) + "."])


GENERATED = ("## Targets", "## 1. Serving side by side", "## 2. Cost of the prediction log",
             "## 2. Cost of the prediction log and feedback path", "## 3. Latency vs batch size",
             "## 4. Training", "## 5. Quality", "## 6. Scale-out on Dask")


def kept_sections(page: str) -> list[str]:
    """The ``## `` sections of an existing page that this report does not write (kept as is)."""
    chunks = page.split("\n## ")[1:]
    return ["## " + c.rstrip() for c in chunks
            if not any(("## " + c).startswith(g + "\n") for g in GENERATED)]


def _measured(train: list[dict]) -> str:
    dates = sorted({r.get("measured_at") or "date not recorded" for r in train})
    return ("From `bench/results/train_*.json` (`bench/train_pipeline.py`, measured: "
            f"{', '.join(dates)}; not part of the serving run above unless the dates match).")


def render(results: Path, docs: Path, existing: str = "") -> str:
    """The whole page (and its PNGs under ``docs/img``) from the result files present.

    Sections of ``existing`` (the current page) that the report does not write, such as
    another script's section, are kept at the end.
    """
    img = docs / "img"
    img.mkdir(parents=True, exist_ok=True)
    cmp, floor = _read(results / "serve_compare.json"), _read(results / "serve_floor.json")
    batch, phases = _read(results / "serve_batch.json"), _read(results / "batch_phases.json")
    reg, probe = _read(results / "registry.json"), _read(results / "ack_probe.json")
    writers, scale = _read(results / "log_writers.json"), _read(results / "scale_out.json")
    budget = _read(results / "request_budget.json")
    train = [r for p in ("quick", "full") for r in (_read(results / f"train_{p}.json") or [])]
    parts = [header(cmp, reg), TARGETS_HEAD, analysis(cmp, train)]
    if reg:
        parts += ["### The registry served", registry_section(reg)]
    if cmp:
        report_plots.throughput(cmp, img / "bench_throughput.png")
        parts += ["## 1. Serving side by side", "![throughput](img/bench_throughput.png)",
                  report_serving.headline(cmp)]
    if cmp or probe:
        parts += ["### Keep-alive, load clients and the ~4 ms grid",
                  report_serving.ack_section(cmp, probe)]
    if cmp:
        parts += ["### Every cell", report_serving.every_cell(cmp)]
    if budget:
        parts += ["### Server CPU per request, layer by layer", report_budget.section(budget)]
    if floor:
        parts += ["### In-process floor (no HTTP, one call)", floor_section(floor)]
    if cmp:
        parts += ["## 2. Cost of the prediction log", report_serving.log_cost(cmp)]
    if writers:
        parts += ["### One write, one or two writers", writers_section(writers)]
    if batch:
        report_plots.batch_curve(batch, img / "bench_batch_latency.png")
        parts += ["## 3. Latency vs batch size", "![batch](img/bench_batch_latency.png)",
                  batch_section(batch)]
    if phases:
        parts += ["### Where a large batch spends its time", phases_section(phases)]
    if train:
        report_plots.training(train, img / "bench_training.png")
        parts += ["## 4. Training", _measured(train), "![training](img/bench_training.png)",
                  training_section(train), "## 5. Quality", quality_section(train)]
    if scale:
        parts += ["## 6. Scale-out on Dask", *report_scaleout.section(scale)]
    return "\n\n".join(parts + kept_sections(existing)) + "\n"


def registry_section(reg: dict) -> str:
    """Every version of every model the benchmark served: aliases, CV and test metric."""
    rows = [[name, v["version"], v["version_name"], v["estimator"], ", ".join(v["aliases"]),
             f"{v['metric']} {v['cv']}", f"{v['metric']} {v['test']}", v.get("automl_choice")]
            for name, model in reg["models"].items() for v in model["versions"]]
    return ("`python -m bench.registry` printed these (the champion is chosen by the CV "
            "figure; the test figure gates it):\n\n"
            + table(["model", "version", "version name", "estimator", "aliases", "CV", "test",
                     "automl choice"], rows))


def main() -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    target = args.docs / "benchmarks.md"
    page = render(args.results, args.docs, target.read_text() if target.exists() else "")
    target.write_text(page)
    log.info("wrote %s", args.docs / "benchmarks.md")


if __name__ == "__main__":
    main()
