"""The auto-select (``model=auto``): PyCaret's model zoo, scored honestly within a time budget.

PyCaret supplies the candidates (its estimators with its default arguments, by id:
``lr``, ``lightgbm`` ...); for recommender data the factorization families of
``conf/model/`` (``model.automl.recommender``) join them. Each candidate is scored by
k-fold CV of caretflow's own pipeline with the id encoders fitted inside every fold
(``caretflow.modelling.encoded_folds``), never on encodings that saw the validation
targets. ``compare_models`` itself is not called: it scores pre-encoded features and
reports nothing until it ends. Instead every candidate is timed on two small samples
first, the ones whose projected cost does not fit ``model.budget_minutes`` are dropped
(``caretflow.modelling.budget``), and each scored candidate logs one progress line with
its CV score, its time, the time elapsed and the time left. The winner, or a soft-voting
blend of the top models affordable in the time left (``caretflow.modelling.ensemble``),
is returned unfitted; ``fit_version`` calibrates and fits it like every version.
PyCaret's own experiment logging is not used (it breaks on MLflow 3).
"""

from __future__ import annotations

import logging

import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict
from sklearn.base import clone

from caretflow.modelling import ensemble
from caretflow.modelling.budget import (
    Cost,
    candidate_cost,
    clock_text,
    fits,
    plan,
    process_budget,
    progress_line,
)
from caretflow.modelling.build import make_estimator, make_pipeline, set_n_jobs
from caretflow.modelling.encoded_folds import EncodedFolds, shared_folds
from caretflow.modelling.factorization import for_dataset
from caretflow.modelling.fold_fits import split_pipeline
from caretflow.modelling.search import cv_splitter
from caretflow.paths import CONF_DIR

log = logging.getLogger(__name__)
ENCODED, RAW = "encoded", "raw"  # candidates on caretflow's features / on the raw columns


def settings(cfg: DictConfig) -> dict:
    """The auto-select's settings: the profile's values where set, else the model's.

    ``budget_minutes`` is the smaller of ``model.budget_minutes`` and the profile's cap
    (``profile.automl.budget_minutes``); None or 0 in both means no budget.
    """
    task, model, prof = cfg.dataset.task, cfg.model.automl, cfg.profile.automl
    blend = prof.get("blend") or model.get("blend") or {}
    recommender = prof.get("recommender")
    recommender = model.get("recommender") if recommender is None else recommender
    budgets = [b for b in (cfg.model.get("budget_minutes"), prof.get("budget_minutes")) if b]
    return {
        "include": list((prof.include or model.include)[task]),
        "recommender": list(recommender or []) if cfg.dataset.get("recommender") else [],
        "sort": model.sort[task],
        "folds": int(prof.folds),
        "blend": OmegaConf.to_container(blend, resolve=True) if blend else {},
        "budget_minutes": min(budgets) if budgets else None,
        "probe_rows": int(model.get("probe_rows", 4000)),
        "max_share": float(model.get("max_share", 1.0)),
    }


def select_estimator(cfg: DictConfig, X: pd.DataFrame, y: pd.Series):
    """Score the candidates within the budget, then try blends of the best.

    Returns:
        ``(estimator, leaderboard, choice, cv_scores)``: the unfitted winner or blend,
        one leaderboard row per candidate (scored, dropped or skipped, with seconds),
        the chosen candidate's name (``single`` or ``blend_...``) and the CV scores of
        every scored candidate and blend.
    """
    task, label, s = cfg.dataset.task, cfg.version_name, settings(cfg)
    metric = cfg.dataset.primary_metric[task]
    budget = process_budget(s["budget_minutes"])
    cv = cv_splitter(task, s["folds"], cfg.seed)
    rec = cfg.dataset.get("recommender")
    groups = X[rec.user] if rec else None
    prep = split_pipeline(make_pipeline(cfg, estimator=None, task=task))[0]
    folds = {ENCODED: shared_folds(prep, X, y, cv, task, cfg.n_jobs, lazy=True, groups=groups)}
    log.info("%s: features fitted inside fold 1 of %d in %.1fs", label, s["folds"],
             folds[ENCODED].seconds)
    pool = _candidates(cfg, task, s, folds[ENCODED])
    kind = {n: RAW if getattr(e, "takes_raw_inputs", False) else ENCODED for n, e in pool.items()}
    if RAW in kind.values():  # the same folds, raw columns: these estimators encode themselves
        folds[RAW] = shared_folds(None, X, y, cv, task, cfg.n_jobs, groups=groups)
    log.info("%s: auto-select over %s (%d folds, sort=%s, budget %s)", label, list(pool),
             s["folds"], s["sort"], clock_text(budget.seconds))
    # Calibration on the selection's own folds reuses the winner's out-of-fold predictions.
    reused = folds[ENCODED].same_splits(cv_splitter(task, cfg.profile.cv_folds, cfg.seed))
    costs = {}
    for name, est in pool.items():
        f = folds[kind[name]]
        probe = f.probe(_single_threaded(est), s["probe_rows"], cfg.seed, give_up=budget.left())
        cost = candidate_cost(probe, len(y), s["folds"], cfg.profile.cv_folds, cfg.n_jobs,
                              f.encode_seconds, calibration_reused=reused)
        # Encoded candidates also pay for the other folds' encodings until they are done.
        costs[name] = Cost(cost.cv + f.pending_seconds, cost.final, cost.exponent)
        log.info("%s: %s projected cv %.0fs + final %.0fs (cost ~ rows^%.1f)", label, name,
                 costs[name].cv, costs[name].final, costs[name].exponent)
    kept, dropped = plan(costs, budget.left(), s["max_share"])
    kept.sort(key=lambda n: costs[n].total)  # cheapest first: the costly ones get what is left
    if not kept:  # nothing fits: score the cheapest rather than return nothing
        kept = [min(dropped, key=lambda n: costs[n].total)]
        log.warning("%s: no candidate fits the budget; scoring the cheapest, %s", label, kept[0])
        del dropped[kept[0]]
    if any(kind[n] == ENCODED for n in kept):  # pay for the encodings now, once
        pending = folds[ENCODED].pending_seconds
        folds[ENCODED].complete()
        log.info("%s: features fitted inside all %d folds in %.1fs", label, s["folds"],
                 folds[ENCODED].seconds)
        for n in pool:
            if kind[n] == ENCODED:
                costs[n] = Cost(max(0.0, costs[n].cv - pending), costs[n].final, costs[n].exponent)
    rows = [_row(n, "dropped", costs[n], reason=r) for n, r in dropped.items()]
    for name, reason in dropped.items():
        log.info("%s: dropped %s before starting: %s", label, name, reason)
    scorers = {n: folds[kind[n]].score for n in pool}
    scored = _score_all(cfg, kept, pool, costs, scorers, budget, rows, metric)
    board = _leaderboard(rows, metric, ascending=task == "regression")
    ranked = sorted(scored, key=scored.get, reverse=task != "regression")
    # Blends average members that read the same inputs: the winner's kind only.
    ranked = [n for n in ranked if kind[n] == kind[ranked[0]]]
    reserve = costs[ranked[0]].final

    def affordable(members: tuple[int, ...]) -> bool:
        blend = _blend_cost([costs[ranked[r]] for r in members])
        return fits(blend, budget.left(), reserve)

    blend = s["blend"] if kind[ranked[0]] == ENCODED else {}
    estimator, choice, scores = ensemble.choose(
        cfg, X, y, [pool[n] for n in ranked], blend, scorer=scorers[ranked[0]],
        known={ensemble.SINGLE: scored[ranked[0]]}, affordable=affordable)
    final = _blend_cost([costs[ranked[r]] for r in ensemble.members(choice)]).final
    log.info("%s: chose %s (%s) after %s; %s left for calibration and the final fit "
             "(projected %.0fs)", label, choice, ranked[0], clock_text(budget.elapsed()),
             clock_text(budget.left()), final)
    return estimator, board, choice, {**scored, **scores}


def _score_all(cfg, names, pool, costs, scorers, budget, rows, metric) -> dict[str, float]:
    """Score ``names`` in order while each still fits; one progress line per candidate."""
    label, scored = cfg.version_name, {}
    for i, name in enumerate(names, start=1):
        reserve = max((costs[n].final for n in scored), default=0.0)
        if scored and not fits(costs[name], budget.left(), reserve):
            log.info("%s: [%d/%d] %s skipped: projected %.0fs, %s left", label, i, len(names),
                     name, costs[name].cv + max(costs[name].final, reserve),
                     clock_text(budget.left()))
            rows.append(_row(name, "skipped", costs[name], reason="did not fit the time left"))
            continue
        start = budget.elapsed()
        scored[name] = scorers[name](_single_threaded(pool[name]))
        seconds = budget.elapsed() - start
        costs[name] = Cost(cv=seconds, final=costs[name].final, exponent=costs[name].exponent)
        rows.append(_row(name, "scored", costs[name], **{metric: scored[name]}))
        log.info("%s", progress_line(label, i, len(names), name, metric, scored[name], seconds,
                                     budget))
    return scored


def _leaderboard(rows: list[dict], metric: str, ascending: bool) -> pd.DataFrame:
    """Scored candidates best first, then the skipped, then the dropped ones."""
    board = pd.DataFrame(rows)
    order = board["status"].map({"scored": 0, "skipped": 1, "dropped": 2})
    board = board.assign(_order=order).sort_values(["_order", metric], ascending=[True, ascending])
    return board.drop(columns="_order").reset_index(drop=True)


def _row(name: str, status: str, cost: Cost, reason: str = "", **score) -> dict:
    return {"model": name, "status": status, **score, "cv_seconds": round(cost.cv, 2),
            "projected_final_seconds": round(cost.final, 2), "growth_exponent": cost.exponent,
            "reason": reason}


def _blend_cost(members: list[Cost]) -> Cost:
    """A blend fits each member in turn: the members' measured and projected costs add up."""
    return Cost(cv=sum(c.cv for c in members), final=sum(c.final for c in members))


def _single_threaded(estimator):
    """A copy for scoring: folds run in parallel, so each candidate stays on one thread."""
    return set_n_jobs(clone(estimator), 1)


def _candidates(cfg: DictConfig, task: str, s: dict, folds: EncodedFolds) -> dict:
    """Name -> unfitted estimator: PyCaret's ids, then the factorization families."""
    pool = _pycaret_zoo(cfg, task, s["include"], folds)
    for family in s["recommender"]:
        estimator = family_estimator(cfg, family, task)
        if estimator is None:
            log.warning("%s: model family %r not found in conf/model/; not a candidate",
                        cfg.version_name, family)
        else:
            pool[family] = estimator
    return pool


def family_estimator(cfg: DictConfig, family: str, task: str):
    """The estimator of ``conf/model/<family>.yaml``, its data set columns filled in.

    None when the family is absent or has no estimator for the task.
    """
    path = CONF_DIR / "model" / f"{family}.yaml"
    if not path.exists():
        return None
    sub = cfg.copy()
    with open_dict(sub):
        sub.model = OmegaConf.load(path)
    if task not in sub.model.estimator:
        return None
    return for_dataset(make_estimator(sub, task), cfg.dataset)


def _pycaret_zoo(cfg: DictConfig, task: str, ids: list[str], folds: EncodedFolds) -> dict:
    """PyCaret's estimators for ``ids`` with the arguments compare_models would give them."""
    Mf, yf, _, _ = folds.folds[0]
    frame = pd.DataFrame(Mf[:300], columns=[f"f{i}" for i in range(Mf.shape[1])])
    frame["__target__"] = yf[:300]
    exp = _experiment(task)
    exp.setup(data=frame, target="__target__", session_id=cfg.seed, fold=2, preprocess=False,
              html=False, verbose=False, n_jobs=cfg.n_jobs, log_experiment=False)
    table = exp.models(internal=True)
    pool = {}
    for model_id in ids:
        row = table.loc[model_id]
        estimator = row["Class"](**row["Args"])
        if type(estimator).__module__.startswith("lightgbm"):
            estimator.set_params(verbose=-1)  # no warning per tree
        pool[model_id] = estimator
    return pool


def _experiment(task: str):
    if task == "classification":
        from pycaret.classification import ClassificationExperiment

        return ClassificationExperiment()
    from pycaret.regression import RegressionExperiment

    return RegressionExperiment()
