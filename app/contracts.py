"""The served model's contract at serving time: what it must answer, one contract per name.

The contract itself is ``caretflow.inference.contract`` (written by training, carried by
the model); this module holds what the server checks against it.
"""

from __future__ import annotations

from app.errors import ApiError
from caretflow.inference.contract import ContractError, same_contract

OUTPUTS = {"classification": ("prediction", "probability"),
           "regression": ("prediction", "lower", "upper")}
NO_CONTRACT = "carries no contract (logged before models carried one?)"


def check_outputs(contract: dict, details: dict, n: int) -> None:
    """Refuse model outputs that are not what the contract's task answers, one per row.

    Args:
        contract: the model's contract.
        details: the model's ``predict_details`` answer.
        n: number of rows scored.

    Raises:
        ContractError: an output is missing or has the wrong length.
    """
    wanted = OUTPUTS[contract["task"]]
    missing = [k for k in wanted if k not in details]
    if missing:
        raise ContractError(f"a {contract['task']} model must answer {list(wanted)}; "
                            f"this one lacks {missing}")
    short = [k for k in wanted if len(details[k]) != n]
    if short:
        raise ContractError(f"outputs {short} do not have one value per row ({n})")


def differences(default: dict | None, other: dict | None) -> list[str]:
    """Why a version with contract ``other`` cannot serve beside ``default`` (empty: it can)."""
    if other is None:
        return [f"the version {NO_CONTRACT}"]
    if default is None:
        return []
    return same_contract(default, other)


def tag_differences(default: dict | None, tags: dict) -> list[str] | None:
    """``differences`` from a version's registry tags (``task``, ``schema_digest``).

    None when there is no default contract to compare with.
    """
    if default is None:
        return None
    if not tags.get("task") or not tags.get("schema_digest"):
        return [f"the version {NO_CONTRACT}"]
    return same_contract(default, {"task": tags["task"], "schema_digest": tags["schema_digest"]})


def threshold(contract: dict) -> float:
    """The probability of class 1 at or above which a classification answers 1."""
    return float(contract["decision"]["threshold"])


def interval_level(contract: dict) -> float | None:
    """The nominal coverage of a regression interval (None when the contract has none)."""
    level = contract["decision"].get("interval_level")
    return None if level is None else float(level)


def require_same(store, served) -> None:
    """409 unless ``served`` may answer under the serving (default) version's contract.

    Args:
        store: the ``ModelStore``.
        served: the explicitly requested version (``version_name``, ``/load_version``).

    Raises:
        ApiError: 409 naming both versions and what differs.
    """
    default = store.default
    if default is not None and served.version == default.version:
        return
    reasons = differences(default.contract if default else None, served.contract)
    if not reasons:
        return
    against = (f"the serving version {default.version} ({default.version_name})"
               if default is not None else "any servable contract")
    raise ApiError(409, f"version {served.version} ({served.version_name}) of {store.name} "
                   f"does not match {against}: one registered name holds one task and one "
                   "input schema", reasons)
