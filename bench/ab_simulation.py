"""The A/B verdict's error rates by simulation, with the server's own looking schedule.

Two arms of a churn-like classifier (binormal scores, 20 % positives) receive labels in
batches; after every batch the verdict of ``caretflow.ab_stats`` is taken, as the server's
background loop does. We count how often it ever says ``promote_challenger``:
- null: both models equally good (AUC 0.85): the false promotion rate (target <= 5 %);
- better: challenger better by exactly the configured effect (AUC 0.85 + 0.02): the share of
  tests that promote by the sample size the verdict itself reports as needed (target >= 80 %).

Usage: ``python -m bench.ab_simulation [--tests 500] [--batch 100]``; writes
``bench/results/ab_simulation.json`` and ``docs/img/ab_simulation.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
from scipy import stats

from caretflow.ab_stats import verdict

log = logging.getLogger("bench.ab_simulation")
ROOT = Path(__file__).resolve().parent.parent
BASE_AUC, EFFECT, POSITIVES = 0.85, 0.02, 0.2


def _scores(rng, y: np.ndarray, auc: float) -> np.ndarray:
    mu = math.sqrt(2) * stats.norm.ppf(auc)  # binormal, unit variances: AUC = Phi(mu/sqrt 2)
    return 1 / (1 + np.exp(-(mu * y + rng.standard_normal(len(y)))))


def one_test(rng, challenger_auc: float, batch: int, max_per_arm: int) -> dict:
    """Labels arrive ``batch`` per arm at a time; the verdict is read after every batch."""
    n = max_per_arm
    arms = {}
    for name, auc in (("champion", BASE_AUC), ("challenger", challenger_auc)):
        y = (rng.random(n) < POSITIVES).astype(int)
        arms[name] = {"version": name, "y": y, "score": _scores(rng, y, auc)}
    needed, looks = None, []
    for k in range(batch, n + 1, batch):
        cut = {a: {**v, "y": v["y"][:k], "score": v["score"][:k]} for a, v in arms.items()}
        out = verdict("roc_auc", ["roc_auc"], cut["champion"], cut["challenger"],
                      effect=EFFECT)
        needed = out["needed_per_arm"] or needed
        looks.append((k, out["decision"]))
        if out["decision"] != "insufficient_data":
            break
    return {"looks": looks, "needed": needed}


def simulate(tests: int, batch: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    probe = one_test(np.random.default_rng(seed + 1), BASE_AUC, batch, 20000)
    horizon = int(probe["needed"] * 1.5)
    result = {"tests": tests, "batch_per_look": batch, "effect": EFFECT, "alpha": 0.05,
              "base_auc": BASE_AUC, "max_per_arm": horizon}
    for case, auc in (("null", BASE_AUC), ("better", BASE_AUC + EFFECT)):
        start, first_promote, neededs = time.perf_counter(), [], []
        for i in range(tests):
            run = one_test(rng, auc, batch, horizon)
            neededs.append(run["needed"])
            hits = [k for k, d in run["looks"] if d == "promote_challenger"]
            first_promote.append(hits[0] if hits else None)
            if (i + 1) % 100 == 0:
                log.info("%s: %d/%d tests", case, i + 1, tests)
        needed = int(np.median([n for n in neededs if n]))
        promoted = [k for k in first_promote if k is not None]
        result[case] = {
            "promote_rate": len(promoted) / tests,
            "promote_rate_by_needed": sum(k <= needed for k in promoted) / tests,
            "median_needed_per_arm": needed,
            "first_promotion_at": first_promote,
            "seconds": round(time.perf_counter() - start, 1),
        }
        log.info("%s: promoted %.1f %% of %d tests (%.1f %% by the reported n=%d per arm)",
                 case, 100 * result[case]["promote_rate"], tests,
                 100 * result[case]["promote_rate_by_needed"], needed)
    return result


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    grid = np.arange(0, result["max_per_arm"] + 1, result["batch_per_look"])
    for case, label in (("null", "equal models (false promotions)"),
                        ("better", f"challenger +{result['effect']} AUC (power)")):
        hits = np.array([k for k in result[case]["first_promotion_at"] if k is not None])
        ax.plot(grid, [(hits <= g).sum() / result["tests"] for g in grid], label=label)
    ax.axvline(result["better"]["median_needed_per_arm"], ls="--", c="grey",
               label="needed_per_arm (reported)")
    ax.axhline(0.05, ls=":", c="red")
    ax.axhline(0.8, ls=":", c="green")
    ax.set_xlabel("labels per arm")
    ax.set_ylabel("share of tests promoted so far")
    ax.set_title(f"A/B verdict, {result['tests']} simulated tests per case, looks every "
                 f"{result['batch_per_look']} labels")
    ax.legend(loc="center right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "ab_simulation.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    result = simulate(args.tests, args.batch)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    plot(result, ROOT / "docs" / "img" / "ab_simulation.png")
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
