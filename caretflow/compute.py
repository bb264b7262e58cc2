"""Where joblib-parallel work runs: on this machine (``compute=local``) or a Dask cluster.

With ``compute=dask`` a ``distributed.Client`` connects to the scheduler
(``compute.address``, else ``DASK_SCHEDULER_ADDRESS``) and the block runs under joblib's
Dask backend, so every joblib ``Parallel`` call made in it (scikit-learn and
imbalanced-learn searches, candidates x folds; out-of-fold calibration folds; PyCaret's
``compare_models`` cross-validation; permutation importance; batches of Optuna trials)
becomes tasks on the cluster. Work nested inside one task (a forest's trees, a
neighbour search) runs sequentially on its worker, so each task holds one worker thread
and nothing fans out twice. Large arguments travel as tasks Dask can recompute, so a
worker lost mid-search has its tasks rerun on the others.
"""

from __future__ import annotations

import contextlib
import logging
import uuid

from omegaconf import DictConfig

log = logging.getLogger(__name__)


class ComputeError(RuntimeError):
    """The configured cluster cannot be used (no address, unreachable, no workers)."""


class SequentialBatch:
    """A batch of joblib calls run on a worker with nested joblib work kept sequential.

    joblib's own Dask batch re-enters the Dask backend on the worker, so a forest inside a
    search candidate would fan its trees out to the cluster again.
    """

    def __init__(self, batch):
        self.batch = batch

    def __call__(self, tasks=None):
        """Run ``tasks`` (``(func, args, kwargs)`` triples) in order; return their results."""
        from joblib import parallel_config

        with parallel_config(backend="sequential"):
            return [func(*args, **kwargs) for func, args, kwargs in tasks]

    def __repr__(self):
        return repr(self.batch)


def _value(data):
    return data


def with_lineage(client, data):
    """A future holding ``data`` that Dask can recompute if the worker holding it is lost.

    ``client.scatter`` data has no lineage, and the scheduler's active memory manager keeps
    one replica of it even after a broadcast: losing that worker would fail every task that
    needs it. A task returning ``data`` (the data in its spec, kept by the scheduler) is
    simply rerun on a surviving worker.
    """
    return client.submit(_value, data, key=f"{type(data).__name__}-{uuid.uuid4().hex}")


class LineageScatter:
    """A ``distributed.Client`` whose ``scatter`` makes futures ``with_lineage``.

    joblib's Dask backend scatters a call's large arguments (the training frame, the fold
    indices); through this client they survive a worker lost mid-search, so Dask reruns
    the lost worker's tasks on the others and the search finishes.
    """

    def __init__(self, client):
        self._client = client

    async def scatter(self, data, **_):
        """The awaitable joblib expects from ``Client.scatter(..., asynchronous=True)``."""
        return with_lineage(self._client, data)

    def __getattr__(self, name):
        return getattr(self._client, name)


def _cluster_backend(client, wait_for_workers: float):
    """Joblib's Dask backend (joblib 1.3) whose tasks keep their nested work sequential."""
    from joblib._dask import DaskDistributedBackend
    from joblib._parallel_backends import SequentialBackend

    class ClusterBackend(DaskDistributedBackend):
        def get_nested_backend(self):
            return SequentialBackend(nesting_level=1), None

        async def _to_func_args(self, func):
            batch, tasks = await super()._to_func_args(func)
            return SequentialBatch(batch), tasks

    return ClusterBackend(client=LineageScatter(client),
                          wait_for_workers_timeout=wait_for_workers)


def connect(address: str | None, timeout: float = 5.0):
    """A ``distributed.Client`` on ``address``, or a ``ComputeError`` within ``timeout`` s.

    Args:
        address: the scheduler, e.g. ``tcp://10.0.0.5:8786``.
        timeout: seconds to reach the scheduler.

    Returns:
        The connected client.
    """
    if not address:
        raise ComputeError(
            "compute=dask needs a scheduler address: set compute.address=tcp://HOST:8786 "
            "or DASK_SCHEDULER_ADDRESS"
        )
    from distributed import Client

    try:
        client = Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ComputeError(
            f"Dask scheduler {address} is unreachable (no answer within {timeout:g}s): "
            "start it with `dask scheduler` or fix compute.address / DASK_SCHEDULER_ADDRESS"
        ) from exc
    workers = len(client.scheduler_info().get("workers", {}))
    log.info("connected to Dask scheduler %s (%d workers, dashboard %s)",
             address, workers, client.dashboard_link)
    return client


def check(cfg: DictConfig) -> None:
    """Fail now (``ComputeError``) if ``compute=dask`` and its scheduler is unreachable.

    A step calls it before its first piece of work, so a wrong address costs seconds.
    """
    compute = cfg.get("compute") or {}
    if compute.get("name", "local") == "dask":
        connect(compute.get("address"), float(compute.get("connect_timeout", 5))).close()


@contextlib.contextmanager
def session(cfg: DictConfig):
    """Run the block on the configured compute; yield the Dask client (None when local).

    Args:
        cfg: the composed config (``compute.name``, ``compute.address``,
            ``compute.connect_timeout``).

    Yields:
        The ``distributed.Client`` for ``compute=dask``, else None.
    """
    compute = cfg.get("compute") or {}
    name = compute.get("name", "local")
    if name == "local":
        yield None
        return
    if name != "dask":
        raise ComputeError(f"compute.name: unknown {name!r} (local, dask)")
    import joblib

    timeout = float(compute.get("connect_timeout", 5))
    client = connect(compute.get("address"), timeout)
    try:
        with joblib.parallel_backend(_cluster_backend(client, max(timeout, 10.0)), n_jobs=-1):
            yield client
    finally:
        client.close()
