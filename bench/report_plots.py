"""PNG plots for ``docs/benchmarks.md`` (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def throughput(compare: dict, out: Path) -> Path:
    """Bars: req/s per server and concurrency under the headline client setting.

    One panel per model and batch size.
    """
    plt = _pyplot()
    h = compare.get("headline") or {}
    rows = [r for r in compare["results"]
            if r["tool"] == h.get("tool") and r["keepalive"] == h.get("keepalive")]
    panels = sorted({(r["model"], r["batch"]) for r in rows})
    names = list(dict.fromkeys(r["server"] for r in rows))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, (model, batch) in zip(axes[0], panels, strict=True):
        mine = [r for r in rows if r["model"] == model and r["batch"] == batch]
        concs = sorted({r["connections"] for r in mine})
        here = [n for n in names if any(r["server"] == n for r in mine)]  # no empty slots
        width = 0.8 / len(here)
        for k, name in enumerate(here):
            vals = [next((r["rps"] for r in mine if r["server"] == name
                          and r["connections"] == c), 0) for c in concs]
            ax.bar([i + k * width for i in range(len(concs))], vals, width, label=name,
                   color=f"C{names.index(name)}")  # a server keeps its colour in every panel
        ax.set_xticks([i + width * (len(here) - 1) / 2 for i in range(len(concs))],
                      [f"c={c}" for c in concs])
        ax.set_title(f"{model}, {batch} record(s) per request", fontsize=9)
        ax.set_ylabel("requests / s")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def batch_curve(batch: dict, out: Path) -> Path:
    """Log-log latency vs batch size: HTTP p50/p90 and the model's own time."""
    plt = _pyplot()
    rows = batch["rows"]
    sizes = [r["rows"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(sizes, [r["http_p50_ms"] for r in rows], "o-", label="HTTP p50 (log on)")
    ax.loglog(sizes, [r["http_p90_ms"] for r in rows], "o--", label="HTTP p90 (log on)")
    ax.loglog(sizes, [r["model_p50_ms"] for r in rows], "s-", label="model only p50")
    ax.axhline(10, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("records per request")
    ax.set_ylabel("ms")
    ax.set_title("caretflow /predict latency vs batch size")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def training(train: list[dict], out: Path) -> Path:
    """Horizontal bars: seconds per step (and version) for each data set and profile."""
    plt = _pyplot()
    labels, secs = [], []
    for res in train:
        for s in res["steps"]:
            labels.append(f"{res['dataset']}/{res['profile']}: {s['step']} {s['version']}".strip())
            secs.append(s["seconds"])
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(labels) + 1))
    ax.barh(labels[::-1], secs[::-1])
    ax.set_xlabel("seconds")
    ax.set_title("training wall time per step")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
