"""Registered models served by alias: cached per version, re-resolved in the background.

Each loaded version keeps its contract (``caretflow.inference.contract``): the serving
(default) version's contract is what requests are validated against and answered by; a
challenger with another contract is not used for A/B.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from app import telemetry
from app.contracts import check_outputs, differences
from app.registry_calls import RegistryUnavailable, reason, registry_call
from caretflow.fastpath import accelerate, probe_columns
from caretflow.inference.contract import ContractError, check
from caretflow.registry import load_model

log = logging.getLogger(__name__)
CACHE_SIZE = 8
RETRY_FAILED_SECONDS = 30.0  # a version that failed to load is retried this often


@dataclass(frozen=True)
class Served:
    """One loaded model version."""

    version: str
    version_name: str
    run_id: str
    model: object  # CaretflowModel, possibly with the verified fast path
    contract: dict | None  # None: the model carries none (``contract_error`` says why)
    contract_error: str | None = None


class LoadError(RuntimeError):
    """A model version could not be loaded (the reason is kept for /health and /versions)."""


class ModelStore:
    """Which versions serve, and the loaded models.

    Args:
        client: MLflow client bound to the tracking store.
        name: registered model name.
        alias: serving alias (the default version).
        challenger_alias: alias of the A/B challenger.
        threads: cores one large batch may use (the compiled forest splits its rows).
    """

    def __init__(self, client: MlflowClient, name: str, alias: str, challenger_alias: str,
                 threads: int = 1):
        self.client, self.name = client, name
        self.threads = max(1, min(int(threads), os.cpu_count() or 1))
        self.alias, self.challenger_alias = alias, challenger_alias
        self.aliases: dict[str, str] = {}
        self.default: Served | None = None
        self.challenger: Served | None = None
        self._followed: Served | None = None  # what @challenger points to, usable or not
        self.load_errors: dict[str, str] = {}
        self.registry_error: str | None = None
        self.challenger_problem: dict | None = None  # a challenger not used for A/B, and why
        self.last_refresh: float | None = None
        self._cache: OrderedDict[str, Served] = OrderedDict()
        self._lock = threading.RLock()
        self._loading: dict[str, threading.Lock] = {}
        self._failed_at: dict[str, float] = {}
        self._contracts: dict[str, dict | None] = {}  # read from MLmodel files, not loaded
        self.attempted = threading.Event()  # set once the first refresh has finished

    @property
    def ready(self) -> bool:
        """A default model is loaded."""
        return self.default is not None

    def refresh(self) -> None:
        """Re-resolve the aliases and load what they point to; keep the old model on failure."""
        try:
            self._refresh()
        finally:
            self.attempted.set()

    def _refresh(self) -> None:
        try:
            aliases = {a: str(v) for a, v in self.client.get_registered_model(self.name)
                       .aliases.items()}
        except Exception as exc:  # noqa: BLE001 - registry down or model missing
            self.registry_error = reason(exc)
            log.warning("registry lookup for %s failed: %s", self.name, self.registry_error)
            return
        self.registry_error, self.aliases = None, aliases
        self.last_refresh = time.time()
        self.default = self._follow(self.alias, self.default)
        self._followed = self._follow(self.challenger_alias, self._followed)
        self.challenger = self._usable(self._followed)

    def _usable(self, challenger: Served | None) -> Served | None:
        """The challenger, unless it is the default or its contract differs from the default's."""
        default = self.default
        if challenger is None or default is None or challenger.version == default.version:
            self.challenger_problem = None
            return None
        reasons = differences(default.contract, challenger.contract)
        problem = {"version": challenger.version, "reasons": reasons} if reasons else None
        if problem and problem != self.challenger_problem:
            log.warning("@%s (%s version %s) is not used for A/B: its contract differs from "
                        "the default version %s: %s", self.challenger_alias, self.name,
                        challenger.version, default.version, "; ".join(reasons))
        self.challenger_problem = problem
        return None if problem else challenger

    def _follow(self, alias: str, current: Served | None) -> Served | None:
        version = self.aliases.get(alias)
        if version is None:
            return None if alias != self.alias else current
        if current is not None and current.version == version:
            return current
        if time.time() - self._failed_at.get(version, 0.0) < RETRY_FAILED_SECONDS:
            return current
        try:
            served = self.get(version)
        except (LoadError, RegistryUnavailable):
            return current
        if alias == self.alias and served.contract is None:  # nothing to validate requests by
            self.load_errors[version] = f"not served: {served.contract_error}"
            return current
        log.info("@%s now serves %s version %s (%s)", alias, self.name, version,
                 served.version_name)
        return served

    def get(self, version: str) -> Served:
        """The loaded model of ``version`` (loaded once, then cached)."""
        with self._lock:
            if version in self._cache:
                self._cache.move_to_end(version)
                return self._cache[version]
            gate = self._loading.setdefault(version, threading.Lock())
        with gate:
            with self._lock:
                if version in self._cache:
                    return self._cache[version]
            served = self._load(version)
            with self._lock:
                self._cache[version] = served
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
                self.load_errors.pop(version, None)
                self._failed_at.pop(version, None)
            return served

    def _load(self, version: str) -> Served:
        contract, problem = None, None
        try:
            mv = registry_call(self.client.get_model_version, self.name, version)
            model = load_model(f"models:/{self.name}/{version}")
            try:
                contract = check(getattr(model, "contract", None))
            except ContractError as exc:
                problem = str(exc)
            schema = contract["schema"] if contract else model.input_schema
            fast = accelerate(model, self.threads)
            probe = fast.predict_details(probe_columns(schema, n=2))  # warm up
            if contract:  # answers that do not match the contract never serve
                check_outputs(contract, probe, 2)
        except RegistryUnavailable:
            raise  # not the version's fault: tried again at once when the registry is back
        except Exception as exc:  # noqa: BLE001 - any failure keeps the old model serving
            self.load_errors[version] = reason(exc)
            self._failed_at[version] = time.time()
            telemetry.get().load_failures.labels(version=version).inc()
            log.error("cannot load %s version %s: %s", self.name, version,
                      self.load_errors[version])
            raise LoadError(self.load_errors[version]) from None
        name = mv.tags.get("version_name") or getattr(model, "version_name", None) or version
        return Served(version, name, mv.run_id, fast, contract, problem)

    def resolve(self, version_name: str) -> str | None:
        """Version number for an alias or a version number, or None when unknown.

        Raises:
            RegistryUnavailable: the registry did not answer.
        """
        if version_name in self.aliases:
            return self.aliases[version_name]
        lookup = (self.client.get_model_version if version_name.isdigit()
                  else self.client.get_model_version_by_alias)
        try:
            return str(registry_call(lookup, self.name, version_name).version)
        except MlflowException:
            return None

    def contract_of(self, version: str) -> dict | None:
        """A version's contract: from its loaded model, else from its MLmodel metadata.

        Returns None for a version that carries no contract; registry errors propagate
        (the caller tries again later).
        """
        with self._lock:
            served = self._cache.get(version)
        if served is not None:
            return served.contract
        if version not in self._contracts:
            info = mlflow.models.get_model_info(f"models:/{self.name}/{version}")
            try:
                self._contracts[version] = check((info.metadata or {}).get("caretflow"))
            except ContractError:
                self._contracts[version] = None
        return self._contracts[version]

    def move_alias(self, version: str, tags: dict[str, str]) -> Served:
        """Point the serving alias at ``version`` (loaded first) and tag who/when.

        The caller checks the contract first (``app.contracts.require_same``).

        Raises:
            LoadError: the version cannot be loaded (nothing changed).
            RegistryUnavailable: the registry did not answer.
        """
        served = self.get(version)
        registry_call(self.client.set_registered_model_alias, self.name, self.alias, version)
        for key, value in tags.items():
            registry_call(self.client.set_model_version_tag, self.name, version, key, value)
        self.aliases[self.alias] = version
        self.default = served
        if self.challenger is not None and self.challenger.version == version:
            self.challenger = None
        return served

    def status(self) -> dict:
        """What /health and /versions report about serving."""
        return {
            "model_name": self.name,
            "serving_alias": self.alias,
            "default_version": self.default.version if self.default else None,
            "default_version_name": self.default.version_name if self.default else None,
            "challenger_version": self.challenger.version if self.challenger else None,
            "challenger_not_used": self.challenger_problem,
            "alias_target": self.aliases.get(self.alias),
            "load_errors": dict(self.load_errors),
            "registry_error": self.registry_error,
            "last_refresh_age_s": None if self.last_refresh is None
            else round(time.time() - self.last_refresh, 3),
        }
