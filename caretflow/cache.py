"""Cache keys: what makes two step runs interchangeable (kept light: ``main`` imports it).

A key hashes the entry point, the config scope that can change the step's output, the raw
data's identity, the upstream run ids and the code version.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from caretflow.config import ROOT, resolve_path, stable_hash, to_container

CODE_PATHS = ("steps", "conf", "MLproject")
# Config keys that can change what a step produces (anything else is runtime detail).
CACHE_SCOPE = {
    "preprocess": ("dataset", "seed", "profile.max_rows"),
    "train": None,  # the whole resolved config
    "evaluate": ("dataset", "registry", "retrain"),  # retrain: how a retrain promotes
}


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(ds: DictConfig) -> str:
    """Identity of the raw input: the files' sha256, or the generator's parameters."""
    source = ds.source
    if source.kind in ("csv", "parquet", "movielens"):
        path = resolve_path(source.path)
        files = sorted(path.glob("u.*")) if path.is_dir() else [path]
        return stable_hash([sha256_of(f) if f.exists() else f"missing:{f}" for f in files])
    return stable_hash(to_container(source))


def code_version() -> str:
    """Hash of the pipeline code and configs (works without git)."""
    digest = hashlib.sha256()
    for top in CODE_PATHS:
        path = ROOT / top
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for f in files:
            if f.is_file() and f.suffix in {".py", ".yaml", ""} and "__pycache__" not in f.parts:
                digest.update(str(f.relative_to(ROOT)).encode())
                digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


def cache_key(step: str, cfg: DictConfig, data_fingerprint: str, upstream=()) -> str:
    """Identity of a step's inputs: entry point, scoped config, data, upstream runs, code."""
    scope = CACHE_SCOPE[step]
    resolved = OmegaConf.create(to_container(cfg))
    conf = (
        OmegaConf.to_container(resolved)
        if scope is None
        else {k: _plain(OmegaConf.select(resolved, k)) for k in scope}
    )
    return stable_hash(
        {
            "step": step,
            "config": conf,
            "data": data_fingerprint,
            "upstream": sorted(upstream),
            "code": code_version(),
        }
    )


def _plain(value):
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def preprocess_key(cfg: DictConfig) -> str:
    """Cache key of the preprocess step for this config."""
    return cache_key("preprocess", cfg, fingerprint(cfg.dataset))


def train_key(cfg: DictConfig, preprocess_run_id: str) -> str:
    """Cache key of the train step: whole config, data, upstream preprocess run, code."""
    return cache_key("train", cfg, fingerprint(cfg.dataset), [preprocess_run_id])


def evaluate_key(cfg: DictConfig, preprocess_run_id: str, train_run_ids) -> str:
    """Cache key of the evaluate step: data set config, preprocess run, every train run."""
    return cache_key("evaluate", cfg, fingerprint(cfg.dataset), [preprocess_run_id, *train_run_ids])
