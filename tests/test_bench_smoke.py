"""Smoke runs of the serving benchmark scripts with tiny settings, so they cannot rot.

The real benchmark (``make bench``) is not a test; these only check that every script runs
end to end and writes what the report reads. No ``wrk`` needed: the Python client is used.
Tests never import ``bench``: every script runs as ``python -m bench.<script>``.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import sys
import threading

import pytest

from caretflow.launch import ROOT, env_with


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server API
        self.rfile.read(int(self.headers["Content-Length"]))
        code = 200 if self.path == "/ok" else 500
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _bench(module: str, *args: str, uri: str | None = None) -> str:
    """Run ``python -m <module> [--tracking-uri uri] args``; its stdout."""
    cmd = [sys.executable, "-m", module, *(["--tracking-uri", uri] if uri else []), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env_with(uri), capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _load(url: str, connections: int, max_requests: int) -> dict:
    out = _bench("bench.loadgen", url, "--tool", "python", "--connections", str(connections),
                 "--seconds", "5", "--max-requests", str(max_requests))
    return json.loads(out.strip().splitlines()[-1])


def _render(results, docs) -> str:
    docs.mkdir(parents=True, exist_ok=True)
    _bench("bench.report", "--results", str(results), "--docs", str(docs))
    return (docs / "benchmarks.md").read_text()


def test_python_load_client_counts_requests_and_errors(echo_server):
    ok = _load(f"{echo_server}/ok", 2, max_requests=40)
    bad = _load(f"{echo_server}/bad", 1, max_requests=5)
    assert ok["tool"] == "python" and ok["requests"] == 40 and ok["errors"] == 0
    assert ok["p50_ms"] > 0
    assert bad["requests"] == 5 and bad["errors"] == 5


@pytest.mark.slow
def test_serving_scripts_and_report_end_to_end(tiny_registry, tmp_path):
    results, docs = tmp_path / "results", tmp_path / "docs"
    uri = tiny_registry["uri"]
    _bench("bench.serve_floor", "--seconds", "0.05", "--out", str(results / "serve_floor.json"),
         uri=uri)
    _bench("bench.serve_compare", "--models", "churn", "--no-mlflow", "--also", "",
         "--tools", "python", "--keepalive", "on,off", "--seconds", "0.5",
         "--batches", "1,5", "--concurrency", "1,2", "--rounds", "2",
         "--out", str(results / "serve_compare.json"), uri=uri)
    _bench("bench.serve_batch", "--sizes", "1,5", "--seconds", "0.4",
         "--out", str(results / "serve_batch.json"), uri=uri)
    _bench("bench.batch_phases", "--rows", "300", "--seconds", "0.05",
         "--out", str(results / "batch_phases.json"), uri=uri)
    _bench("bench.log_writers", "--seconds", "0.3", "--page-sizes", "4096,1024",
           "--batch", "50", "--large-writes", "20", "--out", str(results / "log_writers.json"))
    writers = json.loads((results / "log_writers.json").read_text())
    assert [(r["writers"], r["page_size"]) for r in writers["rows"]] == [
        (1, 4096), (1, 1024), (2, 4096), (2, 1024)]
    assert all(r["writes"] > 0 and r["cpu_us_per_write"] > 0 for r in writers["rows"])
    assert [(r["page_size"], r["records"]) for r in writers["large"]] == [(4096, 50), (1024, 50)]
    assert all(r["p50_ms"] > 0 for r in writers["large"]) and writers["machine"]["commit"]
    _bench("bench.worker_close", "--models", "churn", "--tools", "python", "--seconds", "0.5",
           "--rounds", "1", "--out", str(results / "worker_close.json"), uri=uri)
    workers = json.loads((results / "worker_close.json").read_text())
    assert {r["server"] for r in workers["rows"]} == {"gunicorn-sync", "caretflow-worker"}
    assert all(r["errors"] == 0 and r["requests"] > 0 for r in workers["rows"])
    assert workers["ratios"][0]["ratio"] > 0
    _bench("bench.request_budget", "--models", "churn", "--tool", "python", "--seconds", "1",
           "--rounds", "1", "--calls", "50", "--out", str(results / "request_budget.json"),
           uri=uri)
    budget_json = json.loads((results / "request_budget.json").read_text())
    budget = {r["server"]: r for r in budget_json["summary"]}
    cold = budget_json["in_process"]  # the same request in-process, warm and after a sweep
    assert [(r["model"], r["prediction_log"]) for r in cold] == [("churn", False),
                                                                  ("churn", True)]
    assert all(r["warm_us"] > 0 and r["cold_us"] > 0 and r["calls"] == 50 for r in cold)
    assert set(budget) == {"wsgi-constant", "flask-constant", "caretflow-log-off",
                           "caretflow-log-on", "caretflow-lean-off"}
    assert all(r["errors"] == 0 and r["rps"] > 0 for r in budget.values())
    assert budget["caretflow-log-on"]["cpu_us_per_request"] > budget["wsgi-constant"][
        "cpu_us_per_request"]  # a constant answer costs less than a scored, logged one
    compare = json.loads((results / "serve_compare.json").read_text())
    assert {r["server"] for r in compare["results"]} == {"caretflow-log-on", "caretflow-log-off"}
    assert all(r["errors"] == 0 and r["requests"] > 0 for r in compare["results"])
    assert all(len(r["rps_rounds"]) == 2 and r["rps"] == min(r["rps_rounds"])
               for r in compare["results"])  # the lower median of two rounds
    assert {r["keepalive"] for r in compare["results"]} == {True, False}
    assert compare["log_cost"] and compare["champions"]["churn"]["version"]
    assert compare["headline"]["tool"] == "python" and compare["machine"]["cores"]
    (results / "train_quick.json").write_text(json.dumps([_fake_train()]))
    page = _render(results, docs)
    assert "## 1. Serving side by side" in page and "## 5. Quality" in page
    assert "### Every cell" in page and "- Machine: " in page
    phases = json.loads((results / "batch_phases.json").read_text())["phases"]
    assert {"log write (one transaction)", "whole request, log on (no HTTP)"} <= {
        r["phase"] for r in phases} and all(r["p50_ms"] > 0 for r in phases)
    assert "### Where a large batch spends its time" in page
    assert "### One write, one or two writers" in page
    assert "### Server CPU per request, layer by layer" in page
    assert "| churn | `caretflow-log-on` |" in page
    assert "| in-process warm µs | in-process cold µs |" in page  # the in-process table
    assert all((docs / "img" / f"bench_{n}.png").stat().st_size > 0
               for n in ("throughput", "batch_latency", "training"))


@pytest.mark.parametrize("tool", ["wrk", "ab"])
def test_external_load_clients_with_and_without_keepalive(echo_server, tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed (make system-deps)")
    for keepalive in (True, False):
        args = ["--tool", tool, "--connections", "2", "--seconds", "1"]
        out = _bench("bench.loadgen", f"{echo_server}/ok", *args,
                     *([] if keepalive else ["--no-keepalive"]))
        res = json.loads(out.strip().splitlines()[-1])
        assert res["tool"] == tool and res["keepalive"] is keepalive
        assert res["requests"] > 0 and res["errors"] == 0 and res["p50_ms"] > 0
    bad = json.loads(_bench("bench.loadgen", f"{echo_server}/bad", "--tool", tool,
                            "--connections", "1", "--seconds", "1").strip().splitlines()[-1])
    assert bad["requests"] > 0 and bad["errors"] == bad["requests"]


def _fake_train() -> dict:
    return {"dataset": "ratings", "profile": "full", "first_run_seconds": 100.0,
            "cached_rerun_seconds": 5.0, "cached_fraction": 0.05, "noise_floor_rmse": 0.51,
            "steps": [{"step": "preprocess", "version": "", "seconds": 3.0},
                      {"step": "train", "version": "v2_random_forest", "seconds": 20.0}],
            "quality": [{"version": 1, "version_name": "v2_random_forest", "aliases": ["champion"],
                         "test_rmse": 0.56, "test_r2": 0.73,
                         "test_rmse_over_noise_floor": 1.0981}]}


def test_report_renders_the_targets_from_results(tmp_path):
    quick = {**_fake_train(), "dataset": "churn", "profile": "quick", "first_run_seconds": 130.0,
             "cached_fraction": 0.2, "quality": []}
    (tmp_path / "train_full.json").write_text(json.dumps([_fake_train()]))
    (tmp_path / "train_quick.json").write_text(json.dumps([quick]))
    page = _render(tmp_path, tmp_path / "docs")
    assert "cached rerun ≤ 10 % of first (ratings, default profile) | 5.0 % | yes" in page
    assert "| churn pipeline, quick profile ≤ 120 s | 130.0 s | **no** |" in page
    assert ("| ratings champion test_rmse_over_noise_floor <= 1.05 (held-out test) | "
            "1.0981 (v2_random_forest) | **no** |") in page
    assert ("| ratings champion test_r2 > 0.6 (held-out test) | 0.73 (v2_random_forest) | yes |"
            in page)
    assert "cached rerun ≤ 10 % of first (churn" not in page  # a quick-profile ratio is no target
    assert "noise floor RMSE 0.5100" in page


def _fake_scoring(mode: str, seconds: float, **extra) -> dict:
    return {"mode": mode, "rows": 1000, "seconds": seconds, "rows_per_s": round(1000 / seconds),
            "peak_rss_mb": {"command": 600}, "load_before": 1.0, "load_after": 1.5, **extra}


def test_report_writes_the_scale_out_section_from_its_json(tmp_path):
    grid = {"seconds": 40.0, "fit_seconds": 20.0, "best": {"best.max_depth": "3"},
            "cv_roc_auc": 0.86, "candidate_scores": [0.86]}
    scale = {"machine": {"at": "2026-12-02 18:30 UTC", "commit": "abc1234", "dirty": False,
                         "cores": 2, "cpu": "test cpu", "load": [1.0, 1.0, 1.0]},
             "scoring": {"model": "churn/3", "input_mb": 1, "columns": ["prediction"],
                         "local": _fake_scoring("score local", 8.0, step_loop_seconds=3.0),
                         "dask": _fake_scoring("score dask", 16.0, step_loop_seconds=9.0),
                         "mlflow_predict": _fake_scoring("mlflow models predict", 10.0),
                         "local_equals_dask": True, "mlflow_predict_equals_prediction": True},
             "grid_search": {"grid": ["a=[1]"], "load_before": 1.0, "load_after": 2.0,
                             "local": grid, "dask": {**grid, "seconds": 50.0}, "equal": True}}
    (tmp_path / "scale_out.json").write_text(json.dumps(scale))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "benchmarks.md").write_text("# old\n\n## 6. Scale-out on Dask\n\nAdded by hand.\n")
    page = _render(tmp_path, docs)
    assert "Added by hand" not in page and page.count("## 6. Scale-out on Dask") == 1
    assert "Run: 2026-12-02 18:30 UTC (start), commit `abc1234`" in page
    assert "| score dask | `mlflow run . -e score -P compute=dask`" in page
    assert "`mlflow models predict`: met (8.0 s against 10.0 s, ×1.25)" in page
    assert "Dask / local: 16.0 / 8.0 s = 2.00" in page
    assert "Peak memory against file size: not measured in this run" in page
    assert "Dask / local: 1.25 (step), 1.00 (fit)" in page
    scale["scoring"]["local"]["seconds"] = 12.0
    scale["scoring"].update(local_large={**_fake_scoring("score local", 30.0), "rows": 5000},
                            peak_rss_ratio=1.25)
    (tmp_path / "scale_out.json").write_text(json.dumps(scale))
    page = _render(tmp_path, docs)
    assert "`mlflow models predict`: **not met** (12.0 s against 10.0 s" in page
    assert ("Peak memory flat in file size (within 20%): **not met**; 5,000 rows against 1,000, "
            "peak RSS ratio 1.25.") in page


def test_fast_path_numpy_fallback_is_exact(monkeypatch):
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor

    from caretflow.fastpath import forest as fastpath

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 4)), rng.normal(size=300)
    forest = RandomForestRegressor(n_estimators=7, random_state=0).fit(X, y)
    compiled = fastpath.CompiledForest(forest)
    for rows in (X[:3], X):  # few rows: level-wise; many: tree by tree
        want = forest.predict(rows)
        assert np.array_equal(compiled.mean(rows), want)
        monkeypatch.setattr(fastpath, "compiled_walk", lambda: None)
        assert np.array_equal(compiled.mean(rows), want)
        monkeypatch.undo()
