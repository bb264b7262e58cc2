"""The scale-out section of ``docs/benchmarks.md``, from ``bench/results/scale_out.json``.

Every figure is the JSON's (``bench/scale_out.py`` printed it); ratios are computed here
from two figures of the same run.
"""

from __future__ import annotations

from bench.report_serving import table

MEMORY_TOLERANCE = 0.2  # the peak of a 5x larger file may be this much above the smaller's
MODES = (("local", "`mlflow run . -e score -P compute=local`"),
         ("dask", "`mlflow run . -e score -P compute=dask` (2 workers, blocks of 16 MB)"),
         ("mlflow_predict", "`mlflow models predict -t csv --env-manager local`"),
         ("local_large", "`mlflow run . -e score -P compute=local`"))


def _when(so: dict) -> str:
    facts = so.get("machine")
    if not facts:
        return ("Run: not recorded (this JSON predates `bench/scale_out.py` recording its "
                "machine, commit and time).")
    dirty = " plus uncommitted changes" if facts.get("dirty") else ""
    return (f"Run: {facts['at']} (start), commit `{facts['commit']}`{dirty}, "
            f"{facts['cores']} cores ({facts['cpu']}), load {facts['load']} at the start.")


def _rss(rss: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in rss.items())


def scoring_section(sc: dict) -> str:
    """Batch scoring of one generated file three ways (and a larger one locally, if run)."""
    rows = [[sc[key]["mode"], command, f"{sc[key]['rows']:,}", sc[key]["seconds"],
             sc[key].get("step_loop_seconds", "–"), sc[key]["rows_per_s"],
             _rss(sc[key]["peak_rss_mb"]),
             f"{sc[key]['load_before']} → {sc[key]['load_after']}"]
            for key, command in MODES if key in sc]
    lines = [f"Model `{sc['model']}` (`churn@champion` of the store the script was given; "
             "in `make bench`, the registry above); input "
             f"{sc['input_mb']} MB of CSV (the real churn table resampled with noise, written "
             "to a temporary folder). \"seconds\" is the whole command's wall time, "
             "\"loop seconds\" `steps.score`'s own scoring loop.", "",
             table(["mode", "command", "rows", "seconds", "loop seconds", "rows/s",
                    "peak RSS MB", "load before → after"], rows), "",
             f"- `local_equals_dask`: {str(sc['local_equals_dask']).lower()}; "
             f"`mlflow_predict_equals_prediction`: "
             f"{str(sc['mlflow_predict_equals_prediction']).lower()}.",
             f"- Columns written by `score`: {', '.join(f'`{c}`' for c in sc['columns'])}."]
    local, mlflow, dask = (sc[k]["seconds"] for k in ("local", "mlflow_predict", "dask"))
    if sc["local"]["rows"] == sc["mlflow_predict"]["rows"]:
        verdict = "met" if local <= mlflow else "**not met**"
        lines.append(f"- `score` local at least as fast as `mlflow models predict`: {verdict} "
                     f"({local} s against {mlflow} s, ×{mlflow / local:.2f}).")
    lines.append(f"- Dask / local: {dask} / {local} s = {dask / local:.2f} (one machine: "
                 "the cluster's two workers share the same two cores).")
    if "peak_rss_ratio" in sc:
        ratio = sc["peak_rss_ratio"]
        verdict = "met" if ratio <= 1 + MEMORY_TOLERANCE else "**not met**"
        lines.append(f"- Peak memory flat in file size (within {MEMORY_TOLERANCE:.0%}): {verdict}; "
                     f"{sc['local_large']['rows']:,} rows against {sc['local']['rows']:,}, "
                     f"peak RSS ratio {ratio}.")
    else:
        lines.append("- Peak memory against file size: not measured in this run "
                     "(`--memory-rows` scores a second, larger file).")
    return "\n".join(lines)


def grid_section(grid: dict) -> str:
    """The fixed v4_xgboost grid, local against the cluster."""
    rows = [[mode, grid[mode]["seconds"], grid[mode]["fit_seconds"],
             ", ".join(f"{k.removeprefix('best.')} {v}" for k, v in grid[mode]["best"].items()),
             grid[mode]["cv_roc_auc"]] for mode in ("local", "dask")]
    earlier = (" These figures are from an earlier run of the script (the JSON marks them "
               "`from_an_earlier_run`).") if grid.get("from_an_earlier_run") else ""
    return "\n".join([
        f"`steps.train version=v4_xgboost` with the grid "
        f"{', '.join(f'`{g}`' for g in grid['grid'])}; local "
        f"is `n_jobs=2`.{earlier}", "",
        table(["mode", "step seconds", "fit seconds", "best parameters", "cv_roc_auc"], rows),
        "", f"- `equal`: {str(grid['equal']).lower()} (best parameters, CV score and every "
        f"candidate's score); load {grid['load_before']} before, {grid['load_after']} after.",
        f"- Dask / local: {grid['dask']['seconds'] / grid['local']['seconds']:.2f} (step), "
        f"{grid['dask']['fit_seconds'] / grid['local']['fit_seconds']:.2f} (fit)."])


def section(so: dict) -> list[str]:
    """The section's parts: when it ran, batch scoring, and the grid search if present."""
    parts = [_when(so), "### Batch scoring", scoring_section(so["scoring"])]
    if so.get("grid_search", {}).get("local"):
        parts += ["### Grid search", grid_section(so["grid_search"])]
    return parts
