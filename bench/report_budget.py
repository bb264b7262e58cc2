"""The "server CPU per request, layer by layer" part of ``docs/benchmarks.md``.

Written from ``bench/results/request_budget.json`` (``bench/request_budget.py``).
"""

from __future__ import annotations

from bench.report_serving import table

# server -> (what runs, the row its "added" column is measured from)
RUNS = {"wsgi-constant": ("bare WSGI app, constant answer: the connection and gunicorn", None),
        "flask-constant": ("Flask app, constant answer: + Flask/werkzeug", "wsgi-constant"),
        "caretflow-log-off": ("caretflow `/invocations`, `PREDICTION_LOG=0`, on its lean route "
                              "(no Flask dispatch, `app.lean`): + validation, model, answer, "
                              "telemetry", "wsgi-constant"),
        "caretflow-log-on": ("caretflow `/invocations`, log on (the served default): + the "
                             "prediction-log write", "caretflow-log-off"),
        "caretflow-lean-off": ("the same with `LEAN_ROUTES=0`: + Flask's dispatch, which the "
                               "lean route skips", "caretflow-log-on")}


def rows(budget: dict) -> list[list]:
    """Per model, the servers in ``RUNS`` order, each with what it adds to its base row."""
    cores = budget["machine"]["cores"]
    by_cell = {(r["model"], r["server"]): r for r in budget["summary"]}
    out = []
    for model in dict.fromkeys(r["model"] for r in budget["summary"]):
        for server, (what, base) in RUNS.items():
            cell = by_cell.get((model, server))
            if cell is None:
                continue
            cpu = cell["cpu_us_per_request"]
            under = by_cell.get((model, base))
            added = "–" if under is None else (
                f"{cpu - under['cpu_us_per_request']:+.1f} over `{base}`")
            out.append([model, f"`{server}`", what, cell["rps"], cpu, added,
                        round(cores * 1e6 / cpu) if cpu else "–", cell["errors"]])
    return out


def in_process_rows(budget: dict) -> list[list]:
    """Per model and log setting: warm and cold in-process µs beside the server's CPU."""
    by_cell = {(r["model"], r["server"]): r["cpu_us_per_request"] for r in budget["summary"]}
    out = []
    for r in budget.get("in_process", []):
        server = f"caretflow-log-{'on' if r['prediction_log'] else 'off'}"
        cpu, floor = by_cell.get((r["model"], server)), by_cell.get((r["model"], "wsgi-constant"))
        app_cpu = "–" if cpu is None or floor is None else round(cpu - floor, 1)
        out.append([r["model"], f"`{server}`", r["warm_us"], r["cold_us"],
                    f"×{r['cold_us'] / r['warm_us']:.2f}", "–" if cpu is None else cpu, app_cpu])
    return out


def _in_process(budget: dict) -> str:
    rows = in_process_rows(budget)
    if not rows:
        return ""
    sweep = budget["in_process"][0]["sweep_mb"]
    return ("\n\nThe same request in-process (`bench/request_cold.py`, same run, before the "
            "servers start): the app called through its WSGI entry with no HTTP and no "
            "background threads, the lowest of 3 rounds of the mean over "
            f"{budget['in_process'][0]['calls']} calls; \"warm\" back to back, \"cold\" with "
            f"a {sweep} MB buffer written between two calls (outside the timed part), as a "
            "worker's request starts after the other worker, the load client and the kernel "
            "ran on its core. \"Server minus bare WSGI\" is the server's CPU per request "
            "above, less the `wsgi-constant` row (the connection and gunicorn).\n\n"
            + table(["model", "server", "in-process warm µs", "in-process cold µs",
                     "cold / warm", "server CPU µs per request", "server minus bare WSGI µs"],
                    rows))


def section(budget: dict) -> str:
    """The table and the sentence naming its run."""
    run = budget["machine"]
    keepalive = "on" if budget["keepalive"] else "off"
    return (f"`bench/request_budget.py` (run {run['at']}, commit `{run['commit']}`, load "
            f"{run['load']} at the start, {run.get('load_end')} at the end): the same one-record "
            f"`/invocations` body at concurrency {budget['concurrency']}, `{budget['tool']}` "
            f"with keep-alive {keepalive}, {budget['workers']} workers of caretflow's gunicorn "
            f"worker for every server, {budget['rounds']} interleaved rounds of "
            f"{budget['seconds']} s. CPU per request is the user + system time of the server's "
            "processes over the requests answered, the median of the rounds (req/s: the "
            "median round); the load client runs on the "
            f"same cores and is not counted. \"Bound\" is {run['cores']} cores divided by that "
            "CPU: the req/s the server could reach with the cores to itself.\n\n"
            + table(["model", "server", "what runs", "req/s", "CPU µs per request",
                     "added µs", "bound req/s", "errors"], rows(budget))
            + _in_process(budget))
