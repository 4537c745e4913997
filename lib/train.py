"""Training on tensors held in memory, one run described by one typed :class:`RunConfig`.

The loop follows Zhang et al. (appendix A): SGD with momentum 0.9, a per-run learning rate
multiplied by ``lr_decay`` (0.95) after every epoch, no explicit regularization unless asked;
"convergence" is the first epoch at which the *training* accuracy, measured on the whole
training set in evaluation mode after the epoch, reaches ``stop_train_acc`` (1.0 = 100%).
The same loop serves the other papers through its options (Adam, MSE on one-hot targets,
other stopping thresholds).

Data never goes through a per-sample Python loader: the whole (preprocessed) training set is a
float tensor on the device and every epoch draws a seeded permutation of indices.

Explicit regularizers of Zhang et al.'s Table 1 are options of the same loop: ``weight_decay`` (the
optimizer's L2 term) and ``augment`` (:mod:`lib.augment`: Table 1's "random crop" with colour
perturbations, Table 4's flips and rotations). An augmented run keeps its training images at 32x32 in
[0, 1] on the device and draws a fresh augmented, then per-image standardized, version of every batch,
seeded from ``(seed, epoch)``; test images keep the centre crop. Its "training accuracy" that decides
convergence is the online accuracy on the augmented batches of the epoch (Zhang et al., footnote 5 of
Table 4), since its training set changes every epoch.

A run is deterministic for its config on a given device and torch thread count: the data seed fixes subsets and
corruptions, the model seed fixes initialization, batch order and dropout masks (each epoch's masks are drawn from a
generator seeded from ``(seed, epoch)``), and no global random state is changed. Another number of torch threads may
change the last bits of a result (reductions are split differently), not its course, and is not part of the run's
key; a run resumed on another thread count continues from its checkpoint exactly and ends as close to the
uninterrupted run as two thread counts do.
Runs checkpoint themselves (see ``checkpoint``) so that an interrupted long run resumes where it
stopped instead of starting over.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from lib import settings
from lib.augment import AUGMENTATIONS, augment, epoch_generator
from lib.corrupt import randomize
from lib.data import load_dataset, per_image_standardize, preprocess, resplit, scale_pixels, subset
from lib.models import build_model, initialize


SPLITS = ("standard", "theunissen")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run (and therefore its cache key).

    Data: ``dataset``, fixed random subsets ``n_train`` / ``n_test`` (``None`` = all),
    ``randomization`` (a key of :data:`lib.corrupt.RANDOMIZATIONS`) with probability
    ``corruption``, ``corrupt_test``, ``preprocessing`` (see :func:`lib.data.preprocess`),
    ``data_seed``, ``split`` (``standard``: the data set's own train/test split; ``theunissen``:
    all images pooled and split at random into 55,000 train / 5,000 validation / 10,000
    evaluation by :func:`lib.data.resplit` with ``data_seed``, Theunissen et al. Appendix A,
    before ``n_train`` / ``n_test`` subsets; the evaluation part is the test set).
    Model: ``model`` (see :func:`lib.models.build_model`), initialization and batch-order ``seed``,
    ``init`` (``default``: PyTorch's; or a scheme of :func:`lib.models.initialize`).
    Optimization: ``optimizer`` (``sgd`` or ``adam``), ``lr``, ``momentum``, ``lr_decay`` per
    epoch, ``weight_decay``, ``batch_size``, ``loss`` (``cross_entropy`` or ``mse`` on one-hot
    targets), ``max_epochs``, ``stop_train_acc`` (stop at the first epoch whose training
    accuracy reaches it; ``None`` trains all ``max_epochs`` and evaluates the whole training set
    only after the last), ``precision`` (``fp32`` or
    ``bf16`` autocast), ``test_every`` (evaluate the test set every this many epochs, and always
    at the last one; the history holds NaN in between).
    Regularization (Zhang et al., Table 1): ``weight_decay`` above, and ``augment`` (``none``;
    ``crop``: random 28x28 crops with brightness/saturation/hue/contrast perturbations;
    ``flip_rotate``: random left-right flips and rotations up to 25 degrees, then the centre crop;
    see :mod:`lib.augment`), which needs the ``zhang`` preprocessing and makes the stopping
    criterion read the epoch's online accuracy on the augmented batches (footnote 5 of Table 4).
    BatchNorm at evaluation: ``bn_statistics`` ``running`` (PyTorch's exponential running averages, momentum 0.1)
    or ``population`` (before every evaluation, the statistics are recomputed as averages over the training set's
    batches with the current weights, the inference rule of Ioffe & Szegedy 2015, Algorithm 2, lines 8-11; training
    is unchanged). Running averages lag the weights when an epoch has only a few steps (small subsets).
    Outputs: ``save_epochs`` (a tuple; empty by default) keeps a copy of the weights after each of
    these epochs (0 = the initial weights) in :attr:`TrainedRun.snapshots`, which the run cache
    stores with the run (Zhang, Bengio & Singer 2019 re-initialize layers to such checkpoints).
    """

    dataset: str = "cifar10"
    n_train: int | None = None
    n_test: int | None = None
    randomization: str = "none"
    corruption: float = 0.0
    corrupt_test: bool = False
    preprocessing: str = "zhang"
    data_seed: int = 0
    split: str = "standard"
    model: str = "mlp1x512"
    seed: int = 0
    init: str = "default"
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    lr_decay: float = 0.95
    weight_decay: float = 0.0
    batch_size: int = 128
    loss: str = "cross_entropy"
    max_epochs: int = 100
    stop_train_acc: float | None = 1.0
    precision: str = "fp32"
    test_every: int = 1
    augment: str = "none"
    save_epochs: tuple[int, ...] = ()
    bn_statistics: str = "running"

    def __post_init__(self) -> None:
        # every field against lib.schemas' rules (types, ranges, known names, subset sizes), with the messages of
        # the parameter files: raises lib.schemas.ParamsError (a ValueError) naming each bad field
        from lib.schemas import check_run_config

        check_run_config(asdict(self))
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {self.augment!r}")
        if self.augment != "none" and self.preprocessing != "zhang":
            raise ValueError(f"augment={self.augment!r} is Zhang et al.'s augmentation of 32x32 images before their "
                             f"centre crop and per-image standardization: it needs preprocessing='zhang'")

    @property
    def augmented(self) -> bool:
        return self.augment != "none"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise TypeError(f"unknown RunConfig fields {sorted(unknown)}; known: {sorted(known)}")
        if "save_epochs" in values:  # JSON gives a list; the config must stay hashable
            values = {**values, "save_epochs": tuple(values["save_epochs"])}
        return cls(**values)


@dataclass
class TrainedRun:
    """What a finished run leaves: the per-epoch history, a summary and the final weights
    (and, for ``config.save_epochs``, ``snapshots``: epoch → weights after that epoch, 0 = initial)."""

    config: RunConfig
    history: pd.DataFrame
    summary: dict
    state_dict: dict = field(repr=False, default_factory=dict)
    corrupted: torch.Tensor | None = field(repr=False, default=None)
    snapshots: dict[int, dict] = field(repr=False, default_factory=dict)

    def model(self) -> nn.Module:
        """The trained network, rebuilt from its config and loaded with the final weights, on the CPU."""
        data = prepare_data(self.config)
        model = build_model(self.config.model, tuple(data.x_train.shape[1:]), data.num_classes, self.config.seed)
        model.load_state_dict(self.state_dict)
        return model.eval()


@dataclass
class PreparedData:
    """A run's tensors after subset, randomization and preprocessing (float32, NCHW)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    y_train_original: torch.Tensor
    corrupted: torch.Tensor
    num_classes: int
    x_train_raw: torch.Tensor | None = None  # augmented runs: the training images before preprocessing, /255, 32x32


@functools.lru_cache(maxsize=4)
def _split(dataset: str, split: str, data_seed: int, data_dir: str | None):
    """The data set with the train/test split of ``split`` (cached, by every input including
    ``$LIB_DATA_DIR``, because the Theunissen resplit copies 70,000 images)."""
    data = load_dataset(dataset)
    if split == "theunissen":
        data = resplit(data, 55_000, 5_000, 10_000, seed=data_seed)[0]
    return data


def prepare_data(config: RunConfig) -> PreparedData:
    """Load, subset, randomize and preprocess the data of ``config`` (deterministic in ``data_seed``)."""
    data = _split(config.dataset, config.split, config.data_seed, settings.data_dir())
    data = subset(data, config.n_train, config.n_test, seed=config.data_seed)
    original = data.y_train
    data, corrupted = randomize(data, config.randomization, config.corruption, seed=config.data_seed,
                                corrupt_test=config.corrupt_test)
    x_train, x_test = preprocess(data.x_train, data.x_test, config.preprocessing)
    raw = scale_pixels(data.x_train).contiguous() if config.augmented else None
    return PreparedData(x_train.contiguous(), data.y_train, x_test.contiguous(), data.y_test, original, corrupted,
                        data.num_classes, raw)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def progress_enabled() -> bool:
    """Progress bars show on an interactive terminal, never in CI or in executed notebooks."""
    setting = settings.progress()
    if setting is not None:
        return setting
    return not settings.in_ci() and sys.stderr.isatty()


def _loss_fn(config: RunConfig, num_classes: int):
    if config.loss == "cross_entropy":
        return nn.functional.cross_entropy
    return lambda logits, y: nn.functional.mse_loss(logits, nn.functional.one_hot(y, num_classes).to(logits.dtype))


def _optimizer(config: RunConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


@torch.no_grad()
def population_statistics(model: nn.Module, x: torch.Tensor, batch_size: int, precision: str = "fp32") -> None:
    """Set every BatchNorm layer's mean and variance to their averages over the batches of ``x`` under the current
    weights (Ioffe & Szegedy 2015, Algorithm 2: inference uses population statistics, not the training batches')."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    model.train()
    for start in range(0, len(x), batch_size):
        with _autocast(x.device, precision):
            model(x[start:start + batch_size])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, batch_size: int = 2048,
             precision: str = "fp32") -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` (in eval mode) over ``(x, y)``."""
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        with _autocast(x.device, precision):
            logits = model(xb)
        total_loss += float(loss_fn(logits.float(), yb)) * len(yb)
        correct += int((logits.argmax(1) == yb).sum())
    return total_loss / max(len(y), 1), correct / max(len(y), 1)


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def train(config: RunConfig, device: torch.device | None = None, checkpoint: Path | None = None,
          checkpoint_every_s: float = 60.0, progress: bool | None = None) -> TrainedRun:
    """Train one run of ``config`` and return its history, summary and weights.

    If ``checkpoint`` is given, the run's full state (weights, optimizer, history, epoch, and its configuration) is
    saved there every ``checkpoint_every_s`` seconds and the run resumes from it if it exists; an
    interrupted run therefore loses at most that much work. Resumed runs give the same result as
    uninterrupted ones, because every epoch's batch order and dropout masks derive from ``(seed, epoch)`` alone.
    The checkpoint is left in place when the run finishes: the caller removes it once the result is stored
    (:func:`lib.runs.run`), so a failure while storing loses nothing. A checkpoint that cannot be written (a full
    disk) is warned about and training goes on; the previous checkpoint is kept.
    """
    device = device or default_device()
    data = prepare_data(config)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_test, y_test = data.x_test.to(device), data.y_test.to(device)
    x_raw = data.x_train_raw.to(device) if config.augmented else None
    model = build_model(config.model, tuple(x_train.shape[1:]), data.num_classes, config.seed)
    model = initialize(model, config.init, config.seed).to(device)
    convolutional = any(isinstance(m, nn.Conv2d) for m in model.modules())
    dropout = any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())
    if convolutional:
        # channels-last layout: the same arithmetic, faster convolutions on CPUs and tensor cores
        model = model.to(memory_format=torch.channels_last)
        x_train, x_test = (x.contiguous(memory_format=torch.channels_last) for x in (x_train, x_test))
    optimizer = _optimizer(config, model)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    loss_fn = _loss_fn(config, data.num_classes)
    rows: list[dict] = []
    start_epoch, step, elapsed = 0, 0, 0.0
    if any(int(e) != e or e < 0 for e in config.save_epochs):
        raise ValueError(f"save_epochs must be non-negative integers, got {config.save_epochs!r}")
    save_epochs = set(config.save_epochs)
    snapshots: dict[int, dict] = {0: _snapshot(model)} if 0 in save_epochs else {}
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rows, start_epoch, step, elapsed = state["rows"], state["epoch"], state["step"], state["elapsed"]
        snapshots = state.get("snapshots", {})
    n = len(y_train)
    fit_column = "train_acc_online" if config.augmented else "train_acc"  # what decides convergence
    converged_epoch = next((r["epoch"] for r in rows if _reached(r[fit_column], config.stop_train_acc)), None)
    last_save = time.monotonic()
    show = progress_enabled() if progress is None else progress
    bar = tqdm(total=config.max_epochs, initial=start_epoch, disable=not show, leave=False,
               desc=f"{config.model} {config.randomization} p={config.corruption:g}"
               + (f" {config.augment}" if config.augmented else "") + (" wd" if config.weight_decay else ""))
    epoch = start_epoch
    while converged_epoch is None and epoch < config.max_epochs:
        with _dropout_masks(dropout, config.seed, epoch, device):
            started = time.perf_counter()
            model.train()
            order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch)).to(device)
            lr = optimizer.param_groups[0]["lr"]
            loss_sum = torch.zeros((), device=device)
            correct_sum = torch.zeros((), device=device, dtype=torch.long)
            generator = epoch_generator(config.seed, epoch, device) if config.augmented else None
            for i in range(0, n, config.batch_size):
                index = order[i:i + config.batch_size]
                targets = y_train[index]
                if config.augmented:  # a fresh draw of every image of the batch, then the usual standardization
                    inputs = per_image_standardize(augment(x_raw[index], config.augment, generator))
                    if convolutional:
                        inputs = inputs.contiguous(memory_format=torch.channels_last)
                else:
                    inputs = x_train[index]
                with _autocast(device, config.precision):
                    logits = model(inputs).float()
                    loss = loss_fn(logits, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach() * len(index)
                correct_sum += (logits.detach().argmax(1) == targets).sum()
                step += 1
            schedule.step()
            epoch += 1
            online_acc = float(correct_sum) / n
            last = epoch == config.max_epochs
            nan = float("nan")
            # The full-set evaluation that decides convergence runs when the epoch's online accuracy is
            # within 0.1 of the threshold (online accuracy lags the end-of-epoch model, so this never
            # misses a converged epoch in practice) and at the last epoch; with no threshold, only at the last.
            # An augmented run's training set changes every epoch: it converges on the online accuracy itself, and the
            # full-set evaluation (on the un-augmented, centre-cropped training images) runs then and at the last epoch.
            if config.augmented:
                check_train = last or _reached(online_acc, config.stop_train_acc)
            else:
                check_train = last or (config.stop_train_acc is not None and online_acc >= config.stop_train_acc - 0.1)
            will_test = check_train or last or epoch % config.test_every == 0
            if config.bn_statistics == "population" and will_test:
                population_statistics(model, x_train, config.batch_size, config.precision)
            train_loss_eval, train_acc = (evaluate(model, x_train, y_train, loss_fn, precision=config.precision)
                                          if check_train else (nan, nan))
            fit = online_acc if config.augmented else train_acc
            converged = check_train and _reached(fit, config.stop_train_acc)
            test_loss, test_acc = (evaluate(model, x_test, y_test, loss_fn, precision=config.precision)
                                   if converged or last or epoch % config.test_every == 0 else (nan, nan))
            elapsed += time.perf_counter() - started
            rows.append(dict(epoch=epoch, step=step, lr=lr, train_loss=float(loss_sum) / n, train_acc_online=online_acc,
                             train_loss_eval=train_loss_eval, train_acc=train_acc, test_loss=test_loss, test_acc=test_acc,
                             seconds=elapsed))
            if not math.isfinite(rows[-1]["train_loss"]):
                if not check_train:
                    rows[-1]["test_loss"], rows[-1]["test_acc"] = evaluate(model, x_test, y_test, loss_fn, precision=config.precision)
                break  # diverged: the summary says so
        if epoch in save_epochs:
            snapshots[epoch] = _snapshot(model)
        if converged:
            converged_epoch = epoch
        bar.update(1)
        bar.set_postfix(train_acc=f"{online_acc:.3f}", test_acc=f"{test_acc:.3f}")
        if checkpoint is not None and time.monotonic() - last_save > checkpoint_every_s:
            _save_checkpoint(checkpoint, model, optimizer, schedule, rows, epoch, step, elapsed, snapshots, config)
            last_save = time.monotonic()
    bar.close()
    history = pd.DataFrame(rows)
    summary = summarize(history, config, converged_epoch, n)
    summary["device"] = device.type
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return TrainedRun(config, history, summary, state_dict, data.corrupted, snapshots)


def _snapshot(model: nn.Module) -> dict:
    """A copy of the model's weights that later steps do not change (standard memory layout, on the CPU)."""
    return {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}


def _reached(train_acc: float, threshold: float | None) -> bool:
    return threshold is not None and train_acc >= threshold - 1e-12


def _dropout_masks(dropout: bool, seed: int, epoch: int, device: torch.device):
    """The scope of one epoch: for a model with dropout, torch's generator (of ``device``) seeded from
    ``(seed, epoch)`` and restored afterwards, so that the masks are the run's own; nothing for any other model."""
    if not dropout:
        return contextlib.nullcontext()
    devices = [device.index or 0] if device.type == "cuda" else []

    @contextlib.contextmanager
    def seeded():
        with torch.random.fork_rng(devices=devices):
            masks_seed = seed * 100_003 + epoch + 1_000_000_007
            torch.random.default_generator.manual_seed(masks_seed)
            if devices:
                with torch.cuda.device(devices[0]):
                    torch.cuda.manual_seed(masks_seed)
            yield

    return seeded()


def _save_checkpoint(path: Path, model, optimizer, schedule, rows, epoch, step, elapsed, snapshots=None,
                     config: RunConfig | None = None) -> None:
    """Write the checkpoint atomically (a temporary file renamed into place). A write that fails (a full disk) is
    warned about, its temporary file removed, and the previous checkpoint kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    try:
        torch.save(dict(model=model.state_dict(), optimizer=optimizer.state_dict(), schedule=schedule.state_dict(),
                        rows=rows, epoch=epoch, step=step, elapsed=elapsed, snapshots=snapshots or {},
                        config=None if config is None else config.to_dict()), temporary)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:  # torch's writer reports a full disk as a RuntimeError
        temporary.unlink(missing_ok=True)
        kept = "the previous checkpoint is kept" if path.exists() else "there is no earlier checkpoint"
        warnings.warn(f"could not write the checkpoint {path} at epoch {epoch} ({type(error).__name__}: {error}; "
                      f"is the disk full?): training goes on, {kept}", stacklevel=3)


def summarize(history: pd.DataFrame, config: RunConfig, converged_epoch: int | None, n_train: int) -> dict:
    """Final and best numbers of a run, and when it converged (Zhang et al.'s "convergence")."""
    if history.empty:
        return dict(epochs=0, steps=0, converged=False)
    last = history.iloc[-1]
    tested = history.dropna(subset=["test_acc"])
    converged_step = None if converged_epoch is None else int(history.loc[history.epoch == converged_epoch, "step"].iloc[0])
    return dict(
        epochs=int(last.epoch), steps=int(last.step), n_train=n_train,
        converged=converged_epoch is not None, converged_epoch=converged_epoch, converged_step=converged_step,
        diverged=not bool(np.isfinite(last.train_loss)),
        final_train_acc=float(last.train_acc), final_test_acc=float(last.test_acc),
        final_train_acc_online=float(last.train_acc_online),
        final_train_loss=float(last.train_loss_eval),
        best_test_acc=float(tested.test_acc.max()), best_test_epoch=int(tested.loc[tested.test_acc.idxmax(), "epoch"]),
        train_seconds=float(last.seconds),
    )
