"""The run cache and grids: a chapter declares configurations and gets back tidy DataFrames.

A finished run is stored under a content key (:func:`lib.keys.run_key`): the SHA-256 of its
:class:`~lib.train.RunConfig`, of the behaviour of the modules that determine its result (:data:`TRAINING_MODULES`,
docstrings and comments left out) and of the content of the data it reads. Changing a parameter, that code or the
data therefore never returns a stale result, while editing a chapter, a plot, a probe or a docstring reuses every
run. Each run directory is written to a temporary name and renamed into place, so an interrupted build never leaves
a half-written run; a run that was interrupted in the middle resumes from its checkpoint.

Layout: ``<cache>/<key>/{config.json, summary.json, history.json, model.pt, corrupted.pt, manifest.json}``
(and ``snapshots.pt``, the weights at ``config.save_epochs``, for runs that ask for them)
with ``<cache>`` = ``$LIB_CACHE_DIR`` or the user's cache folder, ``$XDG_CACHE_HOME/lib/runs`` or
``~/.cache/lib/runs`` (:func:`lib.settings.cache_dir`; a shared filesystem path when several machines share it, see
README "Scaling out"), so every checkout of the project finds the runs any other one trained.

Faults: ``manifest.json`` (each file's size and SHA-256) is written last inside the temporary folder, and a
run counts as cached only when its folder and manifest agree; a damaged entry (a truncated ``model.pt`` or
``history.json``, a missing file) is never used: :func:`load` reports it with its path and the command that
clears it, and :func:`run` / :func:`run_grid` move it aside (``<cache>/.damaged/``) and train it again. A
per-run lock (``<cache>/.locks/<key>.lock``, ``fcntl.flock``, released by the kernel if its process dies)
makes two processes that ask for the same run at once train it once: the second waits and reads the first's
result. Checkpoints (``<cache>/.checkpoints/``) are written every ``$LIB_CHECKPOINT_EVERY_S`` seconds (60),
so a killed run resumes where it stopped; a run's checkpoint is removed only once the run is stored, so a failure
while storing it (a full disk: :class:`RunNotStoredError` says so) keeps the checkpoint and the next attempt resumes.
The temporary files an interrupted write left (``<cache>/.tmp-<key>-*``, ``.checkpoints/<key>.tmp``) are removed
when that run next starts, under its lock. Every stored run appends one line to ``<cache>/.finished.log``
(an audit: each key should appear once).

Grids: :func:`train_missing` plans the missing runs into chunks (:func:`plan_chunks`: one run, or several
trained as one stacked model) and hands them, with :func:`train_chunk`, to an executor: :class:`LocalExecutor`
(this process, the default) or, with ``$LIB_DASK_SCHEDULER`` or ``scheduler=``, a Dask cluster's
(:class:`lib.cluster.DaskExecutor`). Every environment variable is read through :mod:`lib.settings`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import socket
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Protocol, Sequence

import pandas as pd
import torch
from tqdm import tqdm

from lib import cluster, precision, settings
from lib.cache import held_locks, quarantine
from lib.keys import PACKAGE_DIR, TRAINING_MODULES, code_version, run_key, training_digest  # noqa: F401 (lib.runs names them too)
from lib.train import RunConfig, TrainedRun, default_device, progress_enabled, train

def cache_dir() -> Path:
    """The run cache: ``$LIB_CACHE_DIR``, default the user's cache folder (:func:`lib.settings.cache_dir`)."""
    return settings.cache_dir()


def _run_path(config: RunConfig) -> Path:
    return cache_dir() / run_key(config)


MANIFEST = "manifest.json"
RUN_FILES = ("config.json", "summary.json", "history.json", "model.pt", "corrupted.pt")
SNAPSHOTS = "snapshots.pt"  # only in runs with save_epochs


class DamagedRunError(RuntimeError):
    """A cached run's files do not match its manifest (truncated, missing or changed): it is not used."""


class RunNotStoredError(OSError):
    """A trained run could not be written into the cache (a full disk, a read-only folder). The message says why,
    and where the run's checkpoint is kept for the next attempt to resume from."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry_problem(path: Path, verify: Iterable[str] = ()) -> str | None:
    """What is wrong with the cache entry at ``path`` (``None``: intact). Sizes of every file are checked
    against the manifest; the files named in ``verify`` also by their SHA-256."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        return f"no {MANIFEST} (an unfinished write, or an entry from an older lib)"
    try:
        manifest = json.loads(manifest_path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"{MANIFEST} is unreadable ({type(error).__name__})"
    for name in RUN_FILES + ((SNAPSHOTS,) if (path / SNAPSHOTS).exists() or SNAPSHOTS in manifest else ()):
        if name not in manifest:
            return f"{MANIFEST} does not list {name}"
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        size = file.stat().st_size
        if size != manifest[name]["bytes"]:
            return f"{name} has {size} bytes, the manifest says {manifest[name]['bytes']} (truncated?)"
    for name in verify:
        if _sha256(path / name) != manifest[name]["sha256"]:
            return f"{name} does not match its SHA-256 in the manifest (changed or corrupted)"
    return None


def in_cache(config: RunConfig) -> bool:
    """Whether an intact entry of ``config`` is in the run cache (its files' sizes match its manifest)."""
    path = _run_path(config)
    return path.is_dir() and entry_problem(path) is None


def is_cached(config: RunConfig) -> bool:
    """Whether ``config``'s run needs no training: an intact entry is in the run cache, or the committed results
    store (:mod:`lib.results`) records it (curves and metrics, no weights). A damaged or foreign record raises
    :class:`lib.results.RecordError`."""
    from lib import results

    return in_cache(config) or results.load_run(config) is not None


#: The keys of every run this process used (read, trained or taken from the results store), in order: a chapter
#: recorded with ``--record`` lists them (:meth:`lib.book.chapter.Chapter.close`).
USED_RUNS: list[str] = []


def _used(trained: TrainedRun) -> TrainedRun:
    """Note that ``trained`` was used, and with ``$LIB_RECORD`` set record it into the results store at that scale."""
    from lib import results

    key = run_key(trained.config)
    if key not in USED_RUNS:
        USED_RUNS.append(key)
    scale = settings.record_scale()
    if scale is not None:
        manifest_path = cache_dir() / key / MANIFEST
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
        recorded = results.run_path(scale, key)
        if manifest is not None or not recorded.is_file():
            if manifest is None:  # only in the store at another scale: copy its record, provenance and all
                source = results.find_run(trained.config)
                recorded.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, recorded)
            else:
                results.record_run(scale, trained, manifest)
    return trained


def _clear_command(path: Path) -> str:
    return f"rm -rf {path}"


def _write_file(path: Path, data: bytes | None = None, obj=None) -> None:
    """Write bytes (or a torch object) and flush them to disk before the manifest names them."""
    with open(path, "wb") as f:
        if obj is not None:
            torch.save(obj, f)
        else:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _checkpoint_path(key: str) -> Path:
    return cache_dir() / ".checkpoints" / f"{key}.pt"


def _remove_temporaries(keys: Iterable[str]) -> None:
    """Remove what interrupted writes of ``keys`` left: ``<cache>/.tmp-<key>-*`` and ``.checkpoints/<key>.tmp``.
    Call it holding the keys' locks: no live process is then writing them."""
    for key in keys:
        for leftover in cache_dir().glob(f".tmp-{key}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        _checkpoint_path(key).with_suffix(".tmp").unlink(missing_ok=True)


def _not_stored(path: Path, error: BaseException, checkpoint: Path | None) -> RunNotStoredError:
    """The error of a run that could not be stored at ``path``: why (a full disk said so), and what is kept."""
    import errno as errnos

    try:
        full = shutil.disk_usage(path.parent).free < (64 << 20)
    except OSError:
        full = False
    full = full or getattr(error, "errno", None) in (errnos.ENOSPC, errnos.EDQUOT)
    why = "the disk is full" if full else "writing failed"
    message = f"could not store run {path.name} in {path.parent}: {why} ({type(error).__name__}: {error})."
    if checkpoint is not None and checkpoint.is_file():
        try:
            epoch = f" at epoch {torch.load(checkpoint, map_location='cpu', weights_only=False)['epoch']}"
        except Exception:
            epoch = ""
        message += (f" The training is not lost: its checkpoint {checkpoint}{epoch} is kept, and the next run of "
                    f"this configuration resumes from it" + ("; free some space first." if full else "."))
    elif checkpoint is not None:
        message += (" No checkpoint had been written yet (one is written every $LIB_CHECKPOINT_EVERY_S seconds), "
                    "so the next run of this configuration trains it again.")
    stored = RunNotStoredError(message)
    stored.errno = getattr(error, "errno", None)
    return stored


def _save(run: TrainedRun, path: Path, checkpoint: Path | None = None) -> None:
    """Store ``run`` at ``path`` (a temporary folder, manifest last, renamed into place); :class:`RunNotStoredError`
    if it cannot be written, nothing left behind."""
    temporary = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    try:
        temporary.mkdir(parents=True)
    except OSError as error:
        raise _not_stored(path, error, checkpoint) from error
    try:
        _write_file(temporary / "config.json", json.dumps(run.config.to_dict(), indent=1, sort_keys=True).encode())
        _write_file(temporary / "summary.json", json.dumps(run.summary, indent=1, sort_keys=True).encode())
        # JSON through Python's float repr: every value reads back bit for bit (CSV did not with pandas 2's parser)
        _write_file(temporary / "history.json", json.dumps(run.history.to_dict(orient="list")).encode())
        _write_file(temporary / "model.pt", obj=run.state_dict)
        _write_file(temporary / "corrupted.pt", obj=run.corrupted)
        names = RUN_FILES
        if run.snapshots:  # the weights at config.save_epochs (Zhang, Bengio & Singer's checkpoints)
            _write_file(temporary / SNAPSHOTS, obj=run.snapshots)
            names = RUN_FILES + (SNAPSHOTS,)
        files = {name: {"bytes": (temporary / name).stat().st_size, "sha256": _sha256(temporary / name)}
                 for name in names}
        manifest = dict(key=path.name, code_version=code_version(), files=files, host=socket.gethostname(),
                        pid=os.getpid(), written=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        _write_file(temporary / MANIFEST, json.dumps(manifest, indent=1).encode())  # last: the entry is complete
    except (OSError, RuntimeError) as error:  # torch's writer reports a full disk as a RuntimeError
        shutil.rmtree(temporary, ignore_errors=True)
        raise _not_stored(path, error, checkpoint) from error
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    try:
        os.replace(temporary, path)
    except OSError:  # another process finished the same run first: keep theirs
        shutil.rmtree(temporary, ignore_errors=True)
        return
    with open(cache_dir() / ".finished.log", "a") as log:  # audit: one line per stored run
        log.write(f"{path.name} {socket.gethostname()} {os.getpid()} {manifest['written']}\n")


def _quarantine(path: Path, problem: str) -> None:
    """Move a damaged entry out of the way (kept for inspection under ``<cache>/.damaged/``), with a warning."""
    quarantine(path, path.name, f"cached run {path} was damaged ({problem}); not used, moved to {{destination}}, "
               "training it again")


def _quarantine_if_damaged(path: Path, verify: Iterable[str] = ()) -> None:
    if path.is_dir():
        problem = entry_problem(path, verify)
        if problem is not None:
            _quarantine(path, problem)


def run_locks(configs: Sequence[RunConfig]):
    """Hold the lock of every run of ``configs``, ``<cache>/.locks/<key>.lock`` (:func:`lib.cache.held_locks`: in
    key order, so two holders never deadlock; released by the kernel if the process dies)."""
    return held_locks([run_key(c) for c in configs],
                      lambda key: f"run {key} is being trained by another process; waiting for it")


def load(config: RunConfig, with_weights: bool = True) -> TrainedRun:
    """Read a cached run (raises ``KeyError`` if it was never run with the current code, and
    :class:`DamagedRunError`, naming the entry and the command that clears it, if its files do not
    match its manifest: sizes always, SHA-256 of every file read)."""
    path = _run_path(config)
    if not path.is_dir():
        raise KeyError(f"run {run_key(config)} is not in the cache {cache_dir()}: {config}")
    verify = ["summary.json", "history.json"] + (["model.pt", "corrupted.pt"] if with_weights else [])
    if with_weights and config.save_epochs:
        verify.append(SNAPSHOTS)
    problem = entry_problem(path, verify)
    if problem is not None:
        raise DamagedRunError(f"cached run {path} is damaged: {problem}. It was not used. Clear it with "
                              f"`{_clear_command(path)}` (the next run trains it again), or the whole cache with "
                              f"`python -m lib runs clear`.")
    summary = json.loads((path / "summary.json").read_text())
    history = pd.DataFrame(json.loads((path / "history.json").read_text()))
    state = torch.load(path / "model.pt", weights_only=True) if with_weights else {}
    corrupted = torch.load(path / "corrupted.pt", weights_only=True) if with_weights else None
    snapshots = torch.load(path / SNAPSHOTS, weights_only=True) if with_weights and config.save_epochs else {}
    return TrainedRun(config, history, summary, state, corrupted, snapshots)


def checkpoint_interval() -> float:
    """Seconds between checkpoints of a running run: ``$LIB_CHECKPOINT_EVERY_S`` (default 60)."""
    return settings.checkpoint_every_s()


def _train_and_store(config: RunConfig, device: torch.device | None, progress: bool | None) -> TrainedRun:
    """Train ``config`` (resuming its checkpoint if there is one) and store it, then remove the checkpoint; the
    caller holds its lock. Leftovers of an interrupted write of this run are removed first."""
    path = _run_path(config)
    _remove_temporaries([path.name])
    checkpoint = _checkpoint_path(path.name)
    trained = train(config, device=device, checkpoint=checkpoint, checkpoint_every_s=checkpoint_interval(),
                    progress=progress)
    _save(trained, path, checkpoint)
    checkpoint.unlink(missing_ok=True)  # only now: the run is stored
    return trained


def _load_or_none(config: RunConfig, with_weights: bool = True) -> TrainedRun | None:
    """The cached run, or ``None`` if it is missing or damaged (a damaged entry is moved aside with a warning).
    Without weights, a run the cache lacks is read from the results store (:func:`lib.results.load_run`)."""
    from lib import results

    path = _run_path(config)
    if not path.is_dir():
        return None if with_weights else results.load_run(config)
    try:
        return load(config, with_weights=with_weights)
    except DamagedRunError:
        with run_locks([config]):
            _quarantine_if_damaged(path, RUN_FILES)
        return None


def run(config: RunConfig, device: torch.device | None = None, progress: bool | None = None) -> TrainedRun:
    """The run of ``config``: from the cache if it is there (and intact), else trained now and stored.

    Holds the run's lock while training, so a second process asking for it waits and reads this one's result."""
    cached = _load_or_none(config)
    if cached is not None:
        return _used(cached)
    with run_locks([config]):
        _quarantine_if_damaged(_run_path(config))
        if in_cache(config):  # another process trained it while we waited
            return _used(load(config))
        precision.check_recording([config], device)  # a recording never trains bf16 where the probe found it slower
        return _used(_train_and_store(config, device, progress))


def grid(base: RunConfig, **axes: Sequence) -> list[RunConfig]:
    """All combinations of ``axes`` (field name → values) applied to ``base``, in a stable order."""
    names = list(axes)
    return [replace(base, **dict(zip(names, values))) for values in itertools.product(*(axes[n] for n in names))]


def batching_enabled() -> bool:
    """Batched training is on unless ``$LIB_BATCHED`` is an off word (:func:`lib.settings.batched`)."""
    return settings.batched()


def plan_chunks(configs: Sequence[RunConfig], device: torch.device, batched: bool | None = None,
                max_batch: int | None = None) -> list[list[RunConfig]]:
    """The training tasks of ``configs`` on a ``device`` of this kind: each chunk is one run, or several runs
    trained together as one stacked model (:func:`lib.batched.train_batched`). The one planner of every grid,
    here or on a cluster.

    Runs with equal :func:`lib.batched.batch_key` are stacked, up to ``max_batch`` per chunk (default 32 on a
    GPU, a whole paper grid of small models, and 8 elsewhere), when ``batched`` is True and the architecture
    can be stacked, or, by default (``None``), when stacking is faster on ``device``
    (:func:`lib.batched.prefers_batched`) and ``$LIB_BATCHED`` is on. Runs with ``save_epochs`` are never
    stacked (the stacked trainer keeps no snapshots); every other run is a chunk of its own. Chunks follow
    the order of ``configs`` (group by group). Reads no cache: the caller passes the runs it wants trained."""
    from lib.batched import architecture, batch_key, prefers_batched

    max_batch = max_batch or (32 if device.type == "cuda" else 8)
    groups: dict[tuple, list[RunConfig]] = {}
    for config in configs:
        groups.setdefault(batch_key(config), []).append(config)
    chunks: list[list[RunConfig]] = []
    for group in groups.values():
        arch = architecture(group[0])
        if batched is None:
            stack = batching_enabled() and prefers_batched(arch, device)
        else:
            stack = batched and arch[0] != "unbatchable"
        stack = stack and len(group) > 1 and not any(c.save_epochs for c in group)
        chunks += [group[i:i + max_batch] for i in range(0, len(group), max_batch)] if stack else [[c] for c in group]
    return chunks


def train_chunk(chunk: Sequence[RunConfig], device: torch.device | None = None) -> str:
    """Train and store the runs of one chunk of :func:`plan_chunks` that are not cached yet: one run alone,
    several as one stacked model; each is stored as soon as the chunk finishes.

    Holds the chunk's run locks, so a run another process trained meanwhile is read, not trained again.
    Returns :func:`code_version`, so that an executor whose workers run it elsewhere can check that they
    run this code. A module-level function, so it pickles for a Dask worker."""
    from lib.batched import train_batched

    device = device or default_device()
    chunk = list(chunk)
    with run_locks(chunk):  # another process may have trained some of them meanwhile
        for config in chunk:
            _quarantine_if_damaged(_run_path(config))
        todo = [c for c in chunk if not in_cache(c)]
        if len(todo) == 1:
            _train_and_store(todo[0], device, None)
        elif todo:
            keys = hashlib.sha256("".join(run_key(c) for c in todo).encode()).hexdigest()[:20]
            _remove_temporaries([run_key(c) for c in todo] + [f"batch-{keys}"])
            checkpoint = _checkpoint_path(f"batch-{keys}")
            for trained in train_batched(todo, device=device, checkpoint=checkpoint,
                                         checkpoint_every_s=checkpoint_interval()):
                _save(trained, _run_path(trained.config), checkpoint)
            checkpoint.unlink(missing_ok=True)  # only now: every run of the chunk is stored
    return code_version()


class Executor(Protocol):
    """Where :func:`train_missing` trains its chunks.

    ``device``: the kind of device the chunks will train on, which :func:`plan_chunks` plans for (stacking pays
    on a GPU). Called with the planned chunks and ``train_chunk`` (:func:`train_chunk`, picklable), it trains
    every chunk, ``train_chunk(chunk, device)``, and returns when all are stored (raising the first error).
    Implementations: :class:`LocalExecutor` and :class:`lib.cluster.DaskExecutor`."""

    device: torch.device

    def __call__(self, chunks: Sequence[Sequence[RunConfig]], train_chunk: cluster.ChunkTrainer) -> None: ...


class LocalExecutor:
    """Trains the chunks one after the other in this process on ``device`` (default: a GPU if there is one);
    a bar counts finished runs."""

    def __init__(self, device: torch.device | None = None):
        self.device = device or default_device()

    def __call__(self, chunks: Sequence[Sequence[RunConfig]], train_chunk: cluster.ChunkTrainer) -> None:
        total = sum(len(chunk) for chunk in chunks)
        bar = tqdm(total=total, disable=not progress_enabled() or not total, desc="runs")
        try:
            for chunk in chunks:
                train_chunk(chunk, self.device)
                bar.update(len(chunk))
        finally:
            bar.close()


def executor_for(scheduler: str | None = None, device: torch.device | None = None) -> Executor:
    """The executor :func:`train_missing` uses by default: a :class:`lib.cluster.DaskExecutor` on the cluster
    ``scheduler`` names (default ``$LIB_DASK_SCHEDULER``: an address, ``local:N`` or a scheduler file), into
    this process's cache folder; or, when it names none (unset, ``""``, ``none``, any off word), a
    :class:`LocalExecutor` on ``device``."""
    spec = settings.dask_scheduler() if scheduler is None else settings.scheduler_spec(scheduler)
    if spec is None:
        return LocalExecutor(device)
    return cluster.DaskExecutor(spec, cache_dir=cache_dir().resolve(), code_version=code_version())


def train_missing(configs: Sequence[RunConfig], device: torch.device | None = None, batched: bool | None = None,
                  max_batch: int | None = None, scheduler: str | None = None,
                  executor: Executor | None = None) -> None:
    """Train and store every configuration that is not cached yet.

    The missing runs are planned into chunks (:func:`plan_chunks`: runs that can share a batch are trained
    together as one stacked model, up to ``max_batch`` at a time, when ``batched`` is True, or, by default,
    when that is faster on the executor's device and ``$LIB_BATCHED`` is on; the rest one by one) and
    trained by ``executor`` (:class:`Executor`), each run stored as soon as its chunk finishes.

    ``executor`` defaults to :func:`executor_for` ``(scheduler, device)``: this process on ``device``
    (:class:`LocalExecutor`), or, when ``scheduler`` (default ``$LIB_DASK_SCHEDULER``) names a Dask cluster
    (``tcp://host:8786``, ``local:N`` or a scheduler file), the cluster's workers, into the same cache
    (:class:`lib.cluster.DaskExecutor`; ``device`` is then the workers' own). ``""`` or ``"none"``: here.
    """
    missing = list(dict.fromkeys(c for c in configs if not is_cached(c)))
    if not missing:
        return
    if executor is None:
        executor = executor_for(scheduler, device)
    precision.check_recording(missing, executor.device)  # a recording never trains bf16 where the probe found it slower
    executor(plan_chunks(missing, executor.device, batched, max_batch), train_chunk)


def _load_repairing(config: RunConfig, device: torch.device | None, with_weights: bool = False) -> TrainedRun:
    """Load a run that :func:`train_missing` just made sure of; a damaged entry is moved aside and retrained."""
    found = _load_or_none(config, with_weights=with_weights)
    if found is None:
        train_missing([config], device=device, scheduler="")
        found = load(config, with_weights=with_weights)
    return _used(found)


def run_grid(configs: Iterable[RunConfig], device: torch.device | None = None, batched: bool | None = None,
             scheduler: str | None = None, executor: Executor | None = None) -> pd.DataFrame:
    """Run (or fetch) every configuration; one row per run with its config fields and summary.

    Cached runs are read; the rest are trained (:func:`train_missing`: batched where that pays, here or
    on a Dask cluster, see ``scheduler`` and ``executor`` there), each stored as soon as it finishes, so an
    interrupted grid resumes where it stopped.
    """
    configs = list(configs)
    was_cached = [is_cached(c) for c in configs]
    train_missing(configs, device=device, batched=batched, scheduler=scheduler, executor=executor)
    rows = []
    for config, cached in zip(configs, was_cached):
        result = _load_repairing(config, device)
        rows.append({**config.to_dict(), **result.summary, "key": run_key(config), "cached": cached})
    frame = pd.DataFrame(rows)
    for column in ("converged_epoch", "converged_step"):  # None (never converged) becomes NaN
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def grid_history(configs: Iterable[RunConfig], device: torch.device | None = None,
                 scheduler: str | None = None, executor: Executor | None = None) -> pd.DataFrame:
    """Per-epoch histories of every configuration in long format, with the config fields as columns."""
    configs = list(configs)
    train_missing(configs, device=device, scheduler=scheduler, executor=executor)
    frames = []
    for config in configs:
        history = _load_repairing(config, device).history
        # a tuple field (save_epochs) is one value per row, not a column of values
        frames.append(history.assign(**{k: [v] * len(history) if isinstance(v, (tuple, list)) else v
                                        for k, v in config.to_dict().items()}))
    return pd.concat(frames, ignore_index=True)


def cached_runs() -> pd.DataFrame:
    """Every run in the cache (current code or not), one row each."""
    rows = []
    for path in sorted(cache_dir().glob("*/summary.json")):
        try:
            config = json.loads((path.parent / "config.json").read_text())
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            config, summary = {}, {}
        rows.append({"key": path.parent.name, **config, **summary, "intact": entry_problem(path.parent) is None})
    return pd.DataFrame(rows)


def run_best_of(configs: Iterable[RunConfig], seeds: Sequence[int], score: str = "final_train_acc",
                enough: float | None = None, device: torch.device | None = None) -> pd.DataFrame:
    """Train every configuration from each initialization ``seed`` and mark the best fit of each.

    Theunissen et al. (Appendix A) train at least two random initializations per setting and
    analyse "the model that best fits the training data". Seeds are tried in order; with
    ``enough`` set, a setting stops at the first seed whose ``score`` reaches it (a budget option:
    a later seed could only tie). Returns :func:`run_grid`'s frame, one row per run, plus
    ``setting`` (the index of the configuration), ``config`` (the :class:`~lib.train.RunConfig`
    of the row) and ``best`` (True for the row with the highest ``score`` of its setting; ties go
    to the earlier seed).
    """
    if not seeds:
        raise ValueError("run_best_of needs at least one seed")
    configs = list(configs)
    pending = list(range(len(configs)))
    frames = []
    for seed in seeds:  # one grid per seed, so that the settings train together where batching pays
        if not pending:
            break
        seeded = [replace(configs[setting], seed=seed) for setting in pending]
        frame = run_grid(seeded, device=device)
        frame["setting"] = pending
        frame["config"] = seeded
        frames.append(frame)
        if enough is not None:
            pending = [setting for setting, value in zip(pending, frame[score]) if value < enough]
    frame = pd.concat(frames, ignore_index=True).sort_values(["setting", "seed"], kind="stable").reset_index(drop=True)
    best = frame.groupby("setting")[score].idxmax()
    frame["best"] = frame.index.isin(best.values)
    return frame
