"""The run cache and grids: a chapter declares configurations and gets back tidy DataFrames.

A finished run is stored under a content key: the SHA-256 of its :class:`~lib.train.RunConfig`
and of the source of the modules that determine its result (:data:`TRAINING_MODULES`). Changing
a parameter or that code therefore never returns a stale result, while editing a chapter, a plot
or a probe reuses every run. Each run directory is written to a temporary name and renamed into
place, so an interrupted build never leaves a half-written run; a run that was interrupted in the
middle resumes from its checkpoint.

Layout: ``<cache>/<key>/{config.json, summary.json, history.json, model.pt, corrupted.pt}`` (and
``snapshots.pt``, the weights at ``config.save_epochs``, for runs that ask for them) with
``<cache>`` = ``$LIB_CACHE_DIR`` or ``<repo>/_runs``.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import shutil
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd
import torch
from tqdm import tqdm

from lib.train import RunConfig, TrainedRun, default_device, progress_enabled, train

PACKAGE_DIR = Path(__file__).resolve().parent
TRAINING_MODULES = ("data.py", "corrupt.py", "models.py", "train.py", "batched.py", "runs.py")


def cache_dir() -> Path:
    return Path(os.environ.get("LIB_CACHE_DIR", PACKAGE_DIR.parent / "_runs")).expanduser()


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the source files that determine a run's result."""
    digest = hashlib.sha256()
    for name in TRAINING_MODULES:
        digest.update(name.encode())
        digest.update((PACKAGE_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def run_key(config: RunConfig) -> str:
    payload = json.dumps(config.to_dict(), sort_keys=True) + code_version()
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _run_path(config: RunConfig) -> Path:
    return cache_dir() / run_key(config)


def is_cached(config: RunConfig) -> bool:
    return (_run_path(config) / "summary.json").is_file()


def _save(run: TrainedRun, path: Path) -> None:
    temporary = path.parent / f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"
    temporary.mkdir(parents=True)
    (temporary / "config.json").write_text(json.dumps(run.config.to_dict(), indent=1, sort_keys=True))
    (temporary / "summary.json").write_text(json.dumps(run.summary, indent=1, sort_keys=True))
    # JSON through Python's float repr: every value reads back bit for bit (CSV did not with pandas 2's parser)
    (temporary / "history.json").write_text(json.dumps(run.history.to_dict(orient="list")))
    torch.save(run.state_dict, temporary / "model.pt")
    torch.save(run.corrupted, temporary / "corrupted.pt")
    if run.snapshots:
        torch.save(run.snapshots, temporary / "snapshots.pt")
    try:
        os.replace(temporary, path)
    except OSError:  # another process finished the same run first: keep theirs
        shutil.rmtree(temporary, ignore_errors=True)


def load(config: RunConfig, with_weights: bool = True) -> TrainedRun:
    """Read a cached run (raises ``KeyError`` if it was never run with the current code)."""
    path = _run_path(config)
    if not (path / "summary.json").is_file():
        raise KeyError(f"run {run_key(config)} is not in the cache {cache_dir()}: {config}")
    summary = json.loads((path / "summary.json").read_text())
    history = pd.DataFrame(json.loads((path / "history.json").read_text()))
    state = torch.load(path / "model.pt", weights_only=True) if with_weights else {}
    corrupted = torch.load(path / "corrupted.pt", weights_only=True) if with_weights else None
    snapshots = (torch.load(path / "snapshots.pt", weights_only=True)
                 if with_weights and (path / "snapshots.pt").is_file() else {})
    return TrainedRun(config, history, summary, state, corrupted, snapshots)


def run(config: RunConfig, device: torch.device | None = None, progress: bool | None = None) -> TrainedRun:
    """The run of ``config``: from the cache if it is there, else trained now and stored."""
    path = _run_path(config)
    if is_cached(config):
        return load(config)
    checkpoint = cache_dir() / ".checkpoints" / f"{path.name}.pt"
    trained = train(config, device=device, checkpoint=checkpoint, progress=progress)
    _save(trained, path)
    return trained


def grid(base: RunConfig, **axes: Sequence) -> list[RunConfig]:
    """All combinations of ``axes`` (field name → values) applied to ``base``, in a stable order."""
    names = list(axes)
    return [replace(base, **dict(zip(names, values))) for values in itertools.product(*(axes[n] for n in names))]


def batching_enabled() -> bool:
    """Batched training is on unless ``LIB_BATCHED=0``."""
    return os.environ.get("LIB_BATCHED", "1") not in ("0", "false", "no")


def train_missing(configs: Sequence[RunConfig], device: torch.device | None = None, batched: bool | None = None,
                  max_batch: int | None = None) -> None:
    """Train and store every configuration that is not cached yet.

    Runs that can share a batch (:func:`lib.batched.batch_key`) are trained together as one stacked
    model, up to ``max_batch`` at a time, when ``batched`` is True, or, by default (``None``), when
    that is faster on this device (:func:`lib.batched.prefers_batched`) and ``LIB_BATCHED`` is not
    0; the rest one by one. Each run is stored as soon as its batch finishes. ``max_batch``
    defaults to 32 on a GPU (a whole paper grid of small models in one stack) and 8 elsewhere.
    """
    from lib.batched import architecture, batch_key, prefers_batched, train_batched

    device = device or default_device()
    max_batch = max_batch or (32 if device.type == "cuda" else 8)
    missing = list(dict.fromkeys(c for c in configs if not is_cached(c)))
    groups: dict[tuple, list[RunConfig]] = {}
    for config in missing:
        groups.setdefault(batch_key(config), []).append(config)
    bar = tqdm(total=len(missing), disable=not progress_enabled() or not missing, desc="runs")
    for group in groups.values():
        arch = architecture(group[0])
        if batched is None:
            stack = batching_enabled() and prefers_batched(arch, device)
        else:
            stack = batched and arch[0] != "unbatchable"
        stack = stack and len(group) > 1 and not group[0].save_epochs  # the stacked trainer keeps no snapshots
        chunks = [group[i:i + max_batch] for i in range(0, len(group), max_batch)] if stack else [[c] for c in group]
        for chunk in chunks:
            if len(chunk) == 1:
                run(chunk[0], device=device)
            else:
                keys = hashlib.sha256("".join(run_key(c) for c in chunk).encode()).hexdigest()[:20]
                checkpoint = cache_dir() / ".checkpoints" / f"batch-{keys}.pt"
                for trained in train_batched(chunk, device=device, checkpoint=checkpoint):
                    _save(trained, _run_path(trained.config))
            bar.update(len(chunk))
    bar.close()


def run_grid(configs: Iterable[RunConfig], device: torch.device | None = None, batched: bool | None = None) -> pd.DataFrame:
    """Run (or fetch) every configuration; one row per run with its config fields and summary.

    Cached runs are read; the rest are trained (:func:`train_missing`: batched where that pays),
    each stored as soon as it finishes, so an interrupted grid resumes where it stopped.
    """
    configs = list(configs)
    was_cached = [is_cached(c) for c in configs]
    train_missing(configs, device=device, batched=batched)
    rows = []
    for config, cached in zip(configs, was_cached):
        result = load(config, with_weights=False)
        rows.append({**config.to_dict(), **result.summary, "key": run_key(config), "cached": cached})
    frame = pd.DataFrame(rows)
    for column in ("converged_epoch", "converged_step"):  # None (never converged) becomes NaN
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def grid_history(configs: Iterable[RunConfig], device: torch.device | None = None) -> pd.DataFrame:
    """Per-epoch histories of every configuration in long format, with the config fields as columns."""
    configs = list(configs)
    train_missing(configs, device=device)
    frames = []
    for config in configs:
        history = load(config, with_weights=False).history
        frames.append(history.assign(**{k: v for k, v in config.to_dict().items()}))
    return pd.concat(frames, ignore_index=True)


def cached_runs() -> pd.DataFrame:
    """Every run in the cache (current code or not), one row each."""
    rows = []
    for path in sorted(cache_dir().glob("*/summary.json")):
        config = json.loads((path.parent / "config.json").read_text())
        rows.append({"key": path.parent.name, **config, **json.loads(path.read_text())})
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
