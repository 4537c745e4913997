"""A Dask backend for the grid API: the same chapter code trains its runs on a cluster's workers.

:func:`lib.runs.train_missing` (so :func:`~lib.runs.run_grid`, :func:`~lib.runs.grid_history` and
:func:`~lib.runs.run_best_of`) hands the missing runs to :func:`train_on_cluster` when
``$LIB_DASK_SCHEDULER`` (or their ``scheduler=`` argument) names a cluster:

- ``tcp://host:8786`` (any Dask scheduler address): an existing cluster, e.g. one started by
  ``dask-jobqueue`` on SLURM (see README, "Scaling out");
- ``local:N``: a ``dask.distributed.LocalCluster`` of N worker processes on this machine (one GPU each
  where there are GPUs: worker ``i`` trains on ``cuda:i mod count``);
- a path to a scheduler file (``dask scheduler --scheduler-file``, ``dask-mpi``).

Each task is a chunk of runs that one worker trains with :func:`lib.runs.train_missing` on its own
device, so runs the stacked trainer would batch on a GPU stay batched within a worker (chunks of
``max_batch`` runs with equal :func:`lib.batched.batch_key` when the workers have GPUs; one run per
task on CPU workers, where runs train one by one anyway and the cluster runs them in parallel).
Workers write into the run cache (:func:`lib.runs.cache_dir`, passed to them: a shared filesystem
path on a real cluster) with the cache's own guarantees: atomic entries with a manifest, a per-run
lock, checkpoints. When a worker dies mid-run, Dask reschedules its task on another worker
(``retries`` more on errors); the dead worker left no finished-looking entry (only a temporary folder
or a checkpoint, from which the retry resumes), so every run is stored exactly once. Workers that
advertise a ``GPU`` resource (``dask worker --resources GPU=1``) get one task at a time per GPU.
"""

from __future__ import annotations

import atexit
import os
import uuid
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from lib.train import RunConfig, progress_enabled

ENV_SCHEDULER = "LIB_DASK_SCHEDULER"
_CLIENTS: dict[str, object] = {}


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
        import torch

        gpus = torch.cuda.device_count()
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               resources={"GPU": 1} if gpus else None, silence_logs=40)
        client = Client(cluster)
    elif spec.startswith(("tcp://", "tls://", "ucx://", "inproc://", "ws://", "wss://")) or ":" in spec and not Path(spec).exists():
        client = Client(spec)
    elif Path(spec).is_file():
        client = Client(scheduler_file=spec)
    else:
        raise ValueError(f"{ENV_SCHEDULER}={spec!r} is neither a scheduler address (tcp://host:8786), "
                         f"local:N, nor an existing scheduler file")
    _CLIENTS[spec] = client
    return client


@atexit.register
def close_clients() -> None:
    """Close every client (and the LocalClusters this process started)."""
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


def chunks_for(configs: Sequence[RunConfig], gpus: bool, batched: bool | None = None,
               max_batch: int | None = None) -> list[list[RunConfig]]:
    """The tasks of a grid: runs that share a :func:`lib.batched.batch_key` in chunks of ``max_batch``
    (32) on GPU workers when batching pays there; otherwise one run per task."""
    from lib.batched import architecture, batch_key, prefers_batched
    from lib.runs import batching_enabled

    import torch

    groups: dict[tuple, list[RunConfig]] = {}
    for config in configs:
        groups.setdefault(batch_key(config), []).append(config)
    size = max_batch or 32
    chunks = []
    for group in groups.values():
        arch = architecture(group[0])
        if batched is None:
            stack = gpus and batching_enabled() and prefers_batched(arch, torch.device("cuda"))
        else:
            stack = batched and arch[0] != "unbatchable"
        chunks += [group[i:i + size] for i in range(0, len(group), size)] if stack else [[c] for c in group]
    return chunks


def _train_chunk(configs: list[RunConfig], cache: str, batched: bool | None, max_batch: int | None) -> list[str]:
    """On a worker: train ``configs`` into ``cache`` on this worker's device; returns their run keys
    (as this worker's code computes them, so the client can tell if the workers run other code)."""
    os.environ["LIB_CACHE_DIR"] = cache
    import torch

    from lib import runs

    device = None
    if torch.cuda.is_available():
        index = 0
        try:
            from dask.distributed import get_worker

            name = get_worker().name
            index = int(name) % torch.cuda.device_count() if str(name).isdigit() else 0
        except (ImportError, ValueError):
            pass
        device = torch.device(f"cuda:{index}")
    runs.train_missing(configs, device=device, batched=batched, max_batch=max_batch, scheduler="")
    return [runs.run_key(c) for c in configs]


def train_on_cluster(configs: Sequence[RunConfig], spec: str, batched: bool | None = None,
                     max_batch: int | None = None, retries: int = 2) -> None:
    """Train ``configs`` on the Dask cluster ``spec`` into the shared run cache; a bar counts finished runs.

    A task whose worker dies is rescheduled by Dask (up to the scheduler's ``allowed-failures``);
    one that raises is retried ``retries`` times, then its error is raised here."""
    from dask.distributed import as_completed

    from lib import runs

    configs = list(configs)
    if not configs:
        return
    client = client_for(spec)
    gpus = _workers_have_gpus(client)
    chunks = chunks_for(configs, gpus, batched, max_batch)
    cache = str(runs.cache_dir().resolve())
    futures = {}
    for chunk in chunks:
        future = client.submit(_train_chunk, chunk, cache, batched, max_batch, pure=False, retries=retries,
                               resources={"GPU": 1} if gpus else None,
                               key=f"lib-runs-{runs.run_key(chunk[0])}-{len(chunk)}-{uuid.uuid4().hex[:8]}")
        futures[future] = chunk
    bar = tqdm(total=len(configs), disable=not progress_enabled(), desc=f"runs on {spec}")
    try:
        for future in as_completed(futures):
            keys = future.result()
            chunk = futures[future]
            expected = [runs.run_key(c) for c in chunk]
            if keys != expected:
                raise RuntimeError(f"the Dask workers compute other run keys than this process ({keys[0]} vs "
                                   f"{expected[0]}): they run another version of lib (code_version "
                                   f"{runs.code_version()} here); install the same code on every worker")
            bar.update(len(chunk))
    finally:
        bar.close()
