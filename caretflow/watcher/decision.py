"""The watcher's decision: pure functions of one health check, the persisted state and the rules.

Nothing here reads the clock, the network or a file: the caller passes ``now``, what the
server reported and whether a retrain already runs, and gets back the action, its reason (one
human line) and the state to persist.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

RETRAIN, WAIT = "retrain", "wait"
MAX_WINDOW_HOURS = 24 * 365  # what /model_health accepts


@dataclass(frozen=True)
class Rules:
    """When a champion's trouble justifies a retrain (the ``watch`` config group).

    Args:
        consecutive: checks in a row the champion must be degraded (or drifting).
        min_new_labels: labels that must have arrived since the last retrain.
        cooldown_minutes: minutes after a retrain started before another may start.
        on_drift: input drift alone (PSI status ``drift``) counts as trouble.
    """

    consecutive: int = 2
    min_new_labels: int = 200
    cooldown_minutes: float = 60.0
    on_drift: bool = True

    @classmethod
    def from_config(cls, node) -> Rules:
        """The rules from the ``watch`` node (a mapping; other keys are ignored)."""
        return cls(**{f.name: node[f.name] for f in fields(cls) if f.name in node})


@dataclass(frozen=True)
class Check:
    """What one poll of the server says about the champion.

    Args:
        champion: the version serving by default (None when nothing serves).
        status: its /model_health status (``healthy``, ``degraded``, ``insufficient_data``,
            ``absent`` when the report does not list it).
        drift: its input drift status (``ok``, ``warn``, ``drift``, ``insufficient_data`` ...).
        new_labels: labels (of every version) that arrived since the last retrain.
        failures: the gate failures the server named.
    """

    champion: str | None
    status: str
    drift: str
    new_labels: int
    failures: tuple[str, ...] = ()


@dataclass
class WatchState:
    """What the watcher remembers between checks (persisted by ``caretflow.watcher.state``)."""

    streak: int = 0
    streak_version: str | None = None
    last_retrain_at: float | None = None
    last_retrain_champion: str | None = None
    last_outcome: str | None = None
    history: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> WatchState:
        """From :meth:`to_dict` output (unknown keys of older files ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Decision:
    """The action of one check, why, and the state after it."""

    action: str
    reason: str
    state: WatchState


def labels_window_hours(state: WatchState, now: float, default: float) -> float:
    """The /model_health window that counts labels since the last retrain (else ``default``)."""
    if state.last_retrain_at is None:
        return default
    hours = max(now - state.last_retrain_at, 1.0) / 3600
    return min(hours, MAX_WINDOW_HOURS)


def champion_check(health: dict, report: dict, labels_report: dict | None = None) -> Check:
    """Read a :class:`Check` from the server's ``/health`` and ``/model_health`` bodies.

    Args:
        health: the ``/health`` body (its ``default_version`` is the champion serving).
        report: ``/model_health`` over the health window.
        labels_report: ``/model_health`` over the window since the last retrain (default:
            ``report``); its ``feedback`` counts, summed over versions, are the new labels.
    """
    champion = health.get("default_version")
    champion = None if champion is None else str(champion)
    entry = next((v for v in report.get("versions", ())
                  if champion is not None and str(v["version"]) == champion), None)
    counted = labels_report if labels_report is not None else report
    new_labels = sum(int(v.get("feedback", 0)) for v in counted.get("versions", ()))
    if entry is None:
        return Check(champion, "absent", "no_data", new_labels)
    return Check(champion, entry["status"], (entry.get("drift") or {}).get("status", "no_data"),
                 new_labels, tuple(entry.get("failures") or ()))


def trouble(check: Check, rules: Rules) -> str | None:
    """Why the champion is in trouble (``degraded`` / ``drifting``), or None."""
    if check.status == "degraded":
        return "degraded" + (f" ({'; '.join(check.failures)})" if check.failures else "")
    if rules.on_drift and check.drift == "drift":
        return "drifting (input PSI above the drift threshold)"
    return None


def decide(check: Check, state: WatchState, rules: Rules, now: float,
           running: bool = False) -> Decision:
    """Whether this check starts a retrain.

    A retrain starts when the champion is in trouble for ``rules.consecutive`` checks in a row
    (the count restarts when the champion changes or is fine), no retrain runs, the cool-down
    since the last one has passed and ``rules.min_new_labels`` labels arrived since it.

    Args:
        check: this poll's view of the champion.
        state: the state persisted by the previous check.
        rules: the thresholds.
        now: epoch seconds.
        running: a retrain holds the lock right now.

    Returns:
        The decision; its ``state`` carries the updated streak (the caller records the
        retrain's start and outcome when it runs one).
    """
    if check.champion is None:
        return Decision(WAIT, "no champion serving", replace(state, streak=0,
                                                             streak_version=None))
    why = trouble(check, rules)
    who = f"champion v{check.champion}"
    if why is None:
        return Decision(WAIT, f"{who} {check.status}, drift {check.drift}: nothing to do",
                        replace(state, streak=0, streak_version=check.champion))
    same = state.streak_version == check.champion
    streak = state.streak + 1 if same else 1
    new = replace(state, streak=streak, streak_version=check.champion)
    seen = f"{who} {why} for {streak}/{rules.consecutive} checks"
    if streak < rules.consecutive:
        return Decision(WAIT, f"{seen}: waiting for more checks", new)
    if running:
        return Decision(WAIT, f"{seen}, but a retrain is already running", new)
    if state.last_retrain_at is not None:
        left = rules.cooldown_minutes * 60 - (now - state.last_retrain_at)
        if left > 0:
            return Decision(WAIT, f"{seen}, but in cool-down ({left / 60:.1f} min left)", new)
    if check.new_labels < rules.min_new_labels:
        return Decision(WAIT, f"{seen}, but only {check.new_labels} new labels "
                              f"(need {rules.min_new_labels})", new)
    return Decision(RETRAIN, f"{seen} with {check.new_labels} new labels: retrain", new)


def after_retrain(state: WatchState, champion: str, started: float, outcome: str,
                  keep: int = 20) -> WatchState:
    """The state once a retrain ran: cool-down starts, streak cleared, outcome remembered."""
    history = [*state.history, {"started": started, "champion": champion,
                                "outcome": outcome}][-keep:]
    return replace(state, streak=0, streak_version=None, last_retrain_at=started,
                   last_retrain_champion=champion, last_outcome=outcome, history=history)


def finished(state: WatchState, outcome: str) -> WatchState:
    """The state once the retrain recorded by :func:`after_retrain` ended with ``outcome``."""
    history = [*state.history[:-1], {**state.history[-1], "outcome": outcome}] \
        if state.history else []
    return replace(state, last_outcome=outcome, history=history)
