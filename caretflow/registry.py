"""Model Registry: log the model safely (skops), register it, tag it, and load it back."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import mlflow
import skops.io
import yaml
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from caretflow.inference.contract import ContractError, registry_tags, same_contract
from caretflow.paths import PACKAGE_DIR

log = logging.getLogger(__name__)

# Only these modules may appear in a model file; anything else refuses to load.
TRUSTED_PREFIXES = (
    "caretflow.",
    "sklearn.",
    "imblearn.",
    "xgboost.",
    "lightgbm.",
    "numpy.",
    "scipy.",
    "collections.OrderedDict",
)
MODEL_FILE = "model.skops"
RUNTIME_PACKAGES = (
    "mlflow",
    "scikit-learn",
    "imbalanced-learn",
    "xgboost",
    "lightgbm",
    "skops",
    "numpy",
    "pandas",
    "scipy",
)


class UntrustedModelError(RuntimeError):
    """A model file holds types outside the trusted allow-list, or is not in skops format."""


def trusted_types(data: bytes) -> list[str]:
    """The types in a skops payload, all of which must be in the allow-list."""
    found = skops.io.get_untrusted_types(data=data)
    bad = [t for t in found if not t.startswith(TRUSTED_PREFIXES)]
    if bad:
        raise UntrustedModelError(f"model holds untrusted types: {bad}")
    return found


def model_requirements() -> list[str]:
    """Pinned runtime requirements of a logged model (skips MLflow's slow inference)."""
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in RUNTIME_PACKAGES]


def log_and_register(model, X_example, registered_name: str, alias: str, tags: dict) -> str:
    """Log ``model`` (skops) to the active run, register it, set alias and tags; return version.

    The model's contract goes into the MLmodel file's ``metadata`` (key ``caretflow``) and its
    task and schema digest into version tags, so both can be read without loading the model.

    Raises:
        ContractError: ``registered_name`` holds versions of another task or input schema
            (``check_contract``); nothing is logged or registered.
    """
    if model.contract:
        check_contract(registered_name, model.contract)
    example = X_example.head(5)
    signature = infer_signature(example, model.predict(example))
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        serialization_format="skops",
        skops_trusted_types=trusted_types(skops.io.dumps(model)),
        signature=signature,
        input_example=example,
        registered_model_name=registered_name,
        pip_requirements=model_requirements(),
        code_paths=[str(PACKAGE_DIR)],
        metadata={"caretflow": model.contract} if model.contract else None,
    )
    version = str(info.registered_model_version)
    client = MlflowClient()
    if model.contract:
        tags = {**registry_tags(model.contract), **tags}
    for key, value in tags.items():
        client.set_model_version_tag(registered_name, version, key, str(value))
    client.set_registered_model_alias(registered_name, alias, version)
    log.info("registered %s version %s as @%s", registered_name, version, alias)
    return version


def load_model(model_uri: str):
    """Download a registered model and load it with skops against caretflow's allow-list.

    The trusted-type list is caretflow's own, not the one stored in the model's MLmodel
    file, so a tampered artifact cannot widen what gets loaded.
    """
    with tempfile.TemporaryDirectory(prefix="caretflow-model-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"].get("sklearn", {})
        if flavor.get("serialization_format") != "skops":
            raise UntrustedModelError(f"{model_uri} is not saved in skops format")
        data = (local / flavor.get("pickled_model", MODEL_FILE)).read_bytes()
    return skops.io.loads(data, trusted=trusted_types(data))


def versions_of_pipeline(name: str, preprocess_run_id: str) -> list:
    """Newest registered version per version name made from one preprocess run."""
    client = MlflowClient()
    found = client.search_model_versions(f"name = '{name}'")
    chosen: dict[str, object] = {}
    for mv in found:
        if mv.tags.get("preprocess_run_id") != preprocess_run_id:
            continue
        vname = mv.tags.get("version_name", mv.version)
        if vname not in chosen or int(mv.version) > int(chosen[vname].version):
            chosen[vname] = mv
    return sorted(chosen.values(), key=lambda mv: int(mv.version))


def alias_version(name: str, alias: str):
    """The model version an alias points to, or None."""
    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None


def registered_contracts(name: str) -> list[tuple[object, dict]]:
    """``(version, contract)`` of every version of ``name`` that states its contract.

    The ``task`` / ``schema_digest`` version tags are read first; a version without them
    (registered by an older caretflow) is read from its MLmodel ``metadata.caretflow``, and
    skipped with a warning when that is missing too.
    """
    out = []
    for mv in MlflowClient().search_model_versions(f"name = '{name}'"):
        if "task" in mv.tags and "schema_digest" in mv.tags:
            out.append((mv, {"task": mv.tags["task"], "schema_digest": mv.tags["schema_digest"]}))
            continue
        try:
            metadata = mlflow.models.get_model_info(f"models:/{name}/{mv.version}").metadata
        except mlflow.exceptions.MlflowException as exc:
            log.warning("%s v%s: MLmodel unreadable (%s); not compared", name, mv.version, exc)
            continue
        found = (metadata or {}).get("caretflow") or {}
        if "task" in found and "schema_digest" in found:
            out.append((mv, found))
        else:
            log.warning("%s version %s states no contract (legacy); not compared", name, mv.version)
    return out


def check_contract(name: str, contract: dict) -> None:
    """Refuse a model whose task or input schema differs from the versions under ``name``.

    One registered name holds one task and one input schema, so that every version of it
    answers the same records in the same way (and can share an A/B test).

    Raises:
        ContractError: naming each differing version and the ``registry.name`` fix.
    """
    conflicts = [
        (mv, diff)
        for mv, existing in registered_contracts(name)
        if (diff := same_contract(contract, existing))
    ]
    if not conflicts:
        return
    lines = [
        f"version {mv.version} ({mv.tags.get('version_name', '?')}): {'; '.join(diff)}"
        for mv, diff in conflicts
    ]
    raise ContractError(
        f"registered model {name!r} holds another task or input schema than this model "
        f"(this model vs registered):\n  " + "\n  ".join(lines) + "\n"
        f"One registered name holds one task and one input schema: register this model "
        f"under another name, e.g. registry.name={name}_{contract['task']}"
    )
