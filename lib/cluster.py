"""A Dask backend for the grid API: the same chapter code trains its runs on a cluster's workers.

:func:`lib.runs.train_missing` (so :func:`~lib.runs.run_grid`, :func:`~lib.runs.grid_history` and
:func:`~lib.runs.run_best_of`) trains its missing runs with a :class:`DaskExecutor` when
``$LIB_DASK_SCHEDULER`` (or their ``scheduler=`` argument) names a cluster:

- ``tcp://host:8786`` (any Dask scheduler address): an existing cluster, e.g. one started by
  ``dask-jobqueue`` on SLURM (see README, "Scaling out");
- ``local:N``: a ``dask.distributed.LocalCluster`` of N worker processes on this machine (one GPU each
  where there are GPUs: worker ``i`` trains on ``cuda:i mod count``);
- a path to a scheduler file (``dask scheduler --scheduler-file``, ``dask-mpi``).

The grid runner plans the chunks (:func:`lib.runs.plan_chunks`, for the workers' kind of device,
:attr:`DaskExecutor.device`) and hands them to the executor with the callable that trains one chunk;
each chunk is one Dask task, so runs the stacked trainer batches on a GPU stay batched within a worker
(chunks of up to ``max_batch`` runs with equal :func:`lib.batched.batch_key` when the workers have GPUs;
one run per task on CPU workers, where runs train one by one anyway and the cluster runs them in parallel).
This module knows nothing of the run cache beyond what it is given (the chunk trainer, the cache folder,
the code version): it does not import :mod:`lib.runs`. Workers write into the run cache folder passed to
them (a shared filesystem path on a real cluster) with the cache's own guarantees: atomic entries with a
manifest, a per-run lock, checkpoints. When a worker dies mid-run, Dask reschedules its task on another
worker (``retries`` more on errors); the dead worker left no finished-looking entry (only a temporary folder
or a checkpoint, from which the retry resumes), so every run is stored exactly once. Workers that
advertise a ``GPU`` resource (``dask worker --resources GPU=1``) get one task at a time per GPU.
"""

from __future__ import annotations

import atexit
import os
import uuid
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm import tqdm

from lib import settings
from lib.train import RunConfig, progress_enabled

ENV_SCHEDULER = settings.DASK_SCHEDULER
_CLIENTS: dict[str, object] = {}

#: What trains one planned chunk on a worker: ``train_chunk(chunk, device) -> code_version`` (picklable:
#: a module-level function, such as :func:`lib.runs.train_chunk`).
ChunkTrainer = Callable[[Sequence[RunConfig], torch.device | None], str]


def client_for(spec: str):
    """A ``dask.distributed.Client`` for ``spec`` (see the module docstring), made once per process."""
    from dask.distributed import Client, LocalCluster

    spec = spec.strip()
    client = _CLIENTS.get(spec)
    if client is not None and client.status == "running":
        return client
    if spec.startswith("local"):
        count = spec.partition(":")[2]
        try:
            n_workers = int(count) if count else max(1, (os.cpu_count() or 2) // 2)
        except ValueError:
            raise ValueError(f"{ENV_SCHEDULER}={spec!r}: write local:N with N the number of workers") from None
        if n_workers < 1:
            raise ValueError(f"{ENV_SCHEDULER}={spec!r}: N must be a positive integer")
        gpus = torch.cuda.device_count()
        try:
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                                   resources={"GPU": 1} if gpus else None, silence_logs=40)
        except Exception as error:
            if "failed to start" in str(error):  # distributed's "Nanny failed to start."
                raise RuntimeError(f"{error} {_main_guard_hint(spec)}") from error
            raise
        client = Client(cluster)
    elif spec.startswith(("tcp://", "tls://", "ucx://", "inproc://", "ws://", "wss://")) or ":" in spec and not Path(spec).exists():
        client = Client(spec)
    elif Path(spec).is_file():
        client = Client(scheduler_file=spec)
    else:
        raise ValueError(f"{ENV_SCHEDULER}={spec!r} is neither a scheduler address (tcp://host:8786), "
                         f"local:N, nor an existing scheduler file")
    _CLIENTS[spec] = client
    atexit.unregister(close_clients)  # registered once, when this process first makes a client (not at import)
    atexit.register(close_clients)
    return client


def _main_guard_hint(spec: str) -> str:
    """Why a LocalCluster's workers usually fail to start, naming the script when it lacks the guard."""
    import __main__

    script = getattr(__main__, "__file__", None)
    guarded = True
    if script and Path(script).is_file():
        import re

        guarded = re.search(r"""^if\s+__name__\s*==\s*['"]__main__['"]\s*:""", Path(script).read_text(errors="replace"),
                            re.M) is not None
    where = f"{script} has no such guard; " if not guarded else ""
    return (f"Hint: the workers of {ENV_SCHEDULER}={spec} are new processes that import the script that started "
            f"them again (multiprocessing's 'spawn'), so a script must start its work under "
            f"`if __name__ == \"__main__\":`; {where}put the code that trains (run_grid and what leads to it) "
            f"under it. The workers' own errors are printed above.")


def close_clients() -> None:
    """Close every client (and the LocalClusters this process started); also run at exit."""
    for spec, client in list(_CLIENTS.items()):
        cluster = getattr(client, "cluster", None)
        try:
            client.close()
            if cluster is not None and spec.startswith("local"):
                cluster.close()
        except Exception:  # pragma: no cover - shutting down anyway
            pass
        _CLIENTS.pop(spec, None)


def _workers_have_gpus(client) -> bool:
    workers = client.scheduler_info().get("workers", {})
    return bool(workers) and all(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers.values())


def _worker_device() -> torch.device | None:
    """This worker's device: GPU ``i mod count`` for the worker named ``i`` where there are GPUs, else ``None``
    (the trainer's default)."""
    if not torch.cuda.is_available():
        return None
    index = 0
    try:
        from dask.distributed import get_worker

        name = get_worker().name
        index = int(name) % torch.cuda.device_count() if str(name).isdigit() else 0
    except (ImportError, ValueError):
        pass
    return torch.device(f"cuda:{index}")


def _on_worker(train_chunk: ChunkTrainer, chunk: list[RunConfig], cache_dir: str) -> str:
    """On a worker: ``train_chunk`` the runs of ``chunk`` into ``cache_dir`` (``$LIB_CACHE_DIR`` for the task
    only) on this worker's device; returns the code version the worker trained with."""
    with settings.override(LIB_CACHE_DIR=cache_dir):
        return train_chunk(chunk, _worker_device())


class DaskExecutor:
    """Trains planned chunks of runs on the Dask cluster ``spec`` (see the module docstring) into the run cache
    folder ``cache_dir`` (a path every worker can reach), one task per chunk; a bar counts finished runs.

    ``code_version``: this process's version of the training code (:func:`lib.keys.code_version`); a worker
    that reports another one runs other code, and that is an error. A task whose worker dies is rescheduled by
    Dask (up to the scheduler's ``allowed-failures``); one that raises is retried ``retries`` times, then its
    error is raised here. The cluster is contacted when :attr:`device` or the executor is first used."""

    def __init__(self, spec: str, cache_dir: str | os.PathLike, code_version: str, retries: int = 2):
        self.spec = spec.strip()
        self.cache_dir = str(cache_dir)
        self.code_version = code_version
        self.retries = retries
        self._gpus: bool | None = None

    @property
    def client(self):
        return client_for(self.spec)

    @property
    def gpus(self) -> bool:
        """Whether every worker advertises a ``GPU`` resource (asked once, then kept, so that the chunks are
        planned and submitted for the same workers)."""
        if self._gpus is None:
            self._gpus = _workers_have_gpus(self.client)
        return self._gpus

    @property
    def device(self) -> torch.device:
        """The kind of device the workers train on, for the chunk planner: ``cuda`` when they have GPUs."""
        return torch.device("cuda" if self.gpus else "cpu")

    def __call__(self, chunks: Sequence[Sequence[RunConfig]], train_chunk: ChunkTrainer) -> None:
        from dask.distributed import as_completed

        chunks = [list(chunk) for chunk in chunks if chunk]
        if not chunks:
            return
        client, gpus = self.client, self.gpus
        futures = {}
        for chunk in chunks:
            future = client.submit(_on_worker, train_chunk, chunk, self.cache_dir, pure=False, retries=self.retries,
                                   resources={"GPU": 1} if gpus else None,
                                   key=f"lib-chunk-{len(chunk)}-runs-{uuid.uuid4().hex[:12]}")
            futures[future] = chunk
        bar = tqdm(total=sum(len(chunk) for chunk in chunks), disable=not progress_enabled(),
                   desc=f"runs on {self.spec}")
        try:
            for future in as_completed(futures):
                version = future.result()
                if version != self.code_version:
                    raise RuntimeError(f"the Dask workers train with another version of lib's training code "
                                       f"(code_version {version}) than this process ({self.code_version}): "
                                       f"install the same code on every worker")
                bar.update(len(futures[future]))
        finally:
            bar.close()
