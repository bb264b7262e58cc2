"""Paths, override parsing and Hydra composition shared by every step."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from caretflow.paths import CONF_DIR, ROOT


def split_overrides(tokens: Iterable[str]) -> list[str]:
    """Split tokens that hold several space-separated overrides.

    ``mlflow run`` hands a string parameter over as one shell-quoted argv token,
    so ``"profile=quick model.params.max_depth=6"`` arrives as a single token.
    """
    out: list[str] = []
    for token in tokens:
        parts = shlex.split(token)
        several = len(parts) > 1 and all(_looks_like_override(p) for p in parts)
        out.extend(parts if several or not parts else [token])
    return out


def _looks_like_override(token: str) -> bool:
    return "=" in token or token.startswith(("-", "~"))


def normalise_argv() -> None:
    """Rewrite ``sys.argv`` in place so Hydra sees one override per token."""
    sys.argv = [sys.argv[0], *split_overrides(sys.argv[1:])]


def compose(overrides: Iterable[str] = ()) -> DictConfig:
    """Compose the real config (as a step would see it) outside ``@hydra.main``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def resolve_path(path: str | Path) -> Path:
    """Resolve a config path: absolute as given, relative to the repo root otherwise."""
    p = Path(path)
    return p if p.is_absolute() else ROOT / p


def to_container(cfg: DictConfig, key: str | None = None) -> dict:
    """Resolved plain-dict view of ``cfg`` (or of one of its keys)."""
    node = cfg if key is None else cfg[key]
    return OmegaConf.to_container(node, resolve=True)


def stable_hash(obj) -> str:
    """Hash a JSON-serialisable object independently of key order."""
    data = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()


def flatten(d: dict, prefix: str = "") -> dict[str, object]:
    """Flatten nested dicts to dotted keys (for MLflow params)."""
    out: dict[str, object] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out
