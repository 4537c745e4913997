"""Training in a random subspace: the intrinsic dimension of the objective landscape.

Li, Farkhoor, Liu & Yosinski, "Measuring the intrinsic dimension of objective landscapes"
(ICLR 2018), Section 2, Eq. (2): only a d-dimensional vector θ_d is trained and the network's D
parameters are

    θ = θ₀ + P θ_d,        θ_d(0) = 0,

with θ₀ the network's ordinary random initialization and P a fixed random D×d matrix with
(near-)unit-norm, (near-)orthogonal columns. The intrinsic dimension d_int90 is the smallest d
whose subspace solution reaches 90% of a baseline accuracy (see :func:`crossing`).

Projections (:func:`build_projection`), each ONE transform over all D parameters flattened in
``model.parameters()`` order, so every coordinate of θ_d reaches every tensor, however small
(a per-tensor transform that truncates θ_d to a tensor's size would not):

- ``dense``: i.i.d. N(0, 1) entries, each column divided by its norm (the paper's dense P);
- ``sparse``: each column has about √D nonzeros (density 1/√D, Li et al. §2 after Li, Hastie &
  Church 2006) at random rows, each ±1/√(nonzeros of its column), so every column has norm
  exactly 1; held as CSR (and its transpose for the backward pass);
- ``fastfood``: the Fastfood transform (Le, Sarlós & Smola 2013) as in the authors' code:
  θ_d zero-padded to L = 2^⌈log₂ D⌉, then S·H G Π H B, the first D entries kept, with H the
  (unnormalized) Walsh-Hadamard matrix, B random signs, Π a random permutation, G Gaussian, and
  the constant S = 1/√(D ‖G‖²) that makes columns unit-norm in expectation (exactly, up to the
  truncation to D rows);
- ``identity``: P = I (d = D), ordinary training written as subspace training (tests);
- ``auto``: ``dense`` while D·d ≤ :data:`DENSE_LIMIT` entries, else ``sparse`` (the cheapest on a CPU).

The trainer (:func:`train_subspace`) reuses the project's data (:func:`lib.train.prepare_data`)
and models (:func:`lib.models.build_model`) unchanged and evaluates the model at θ with
:func:`torch.func.functional_call`; batch order is the one of :func:`lib.train.train`
(a permutation seeded by ``(seed, epoch)``). Results are kept in the result store
(:mod:`lib.cache`, ``<cache>/subspace/<key>/``), keyed by the configuration and the source of
this module and of the training modules.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterable

import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call
from tqdm import tqdm

from lib.models import build_model, initialize
from lib.cache import Store
from lib.runs import code_version
from lib.train import RunConfig, prepare_data, progress_enabled

PROJECTIONS = ("auto", "dense", "sparse", "fastfood", "identity")
DENSE_LIMIT = 2 ** 23  # entries of a dense P (32 MiB in float32)


# --- projections ----------------------------------------------------------------------------------


class Projection(nn.Module):
    """θ_d ↦ P θ_d for a fixed random D×d matrix P (no trainable parameters)."""

    kind = ""

    def __init__(self, D: int, d: int):
        super().__init__()
        self.D, self.d = int(D), int(d)

    def matrix(self) -> torch.Tensor:
        """P as a dense D×d tensor (for checks on small sizes): the images of the unit vectors."""
        return torch.stack([self(e) for e in torch.eye(self.d)], dim=1)


class DenseProjection(Projection):
    kind = "dense"

    def __init__(self, D: int, d: int, seed: int):
        super().__init__(D, d)
        P = torch.randn(D, d, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("P", P / P.norm(dim=0, keepdim=True))

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        return self.P @ theta_d

    def matrix(self) -> torch.Tensor:
        return self.P.clone()


class _SparseProduct(torch.autograd.Function):
    """P x with P in CSR and its gradient Pᵀ g from a stored CSR transpose (both sparse, no densifying)."""

    @staticmethod
    def forward(ctx, x, P, PT):
        ctx.PT = PT
        return torch.mv(P, x)

    @staticmethod
    def backward(ctx, grad):
        return torch.mv(ctx.PT, grad.contiguous()), None, None


class SparseProjection(Projection):
    kind = "sparse"

    def __init__(self, D: int, d: int, seed: int, density: float | None = None):
        super().__init__(D, d)
        generator = torch.Generator().manual_seed(seed)
        per_column = max(1, round(D * (density if density is not None else 1 / math.sqrt(D))))
        rows = torch.randint(D, (d, per_column), generator=generator)
        columns = torch.arange(d).unsqueeze(1).expand(d, per_column)
        # distinct (column, row) pairs: a row drawn twice in a column counts once
        pairs = torch.unique(columns.reshape(-1) * D + rows.reshape(-1))
        col, row = pairs // D, pairs % D
        counts = torch.bincount(col, minlength=d).float()
        signs = torch.randint(2, (len(pairs),), generator=generator).float() * 2 - 1
        values = signs / counts[col].sqrt()
        coo = torch.sparse_coo_tensor(torch.stack([row, col]), values, (D, d), check_invariants=False).coalesce()
        with warnings.catch_warnings():  # "sparse CSR support is in beta": mv and its transpose are all we use
            warnings.simplefilter("ignore", UserWarning)
            self.P = coo.to_sparse_csr()
            self.PT = coo.t().coalesce().to_sparse_csr()
        self.nnz = int(len(pairs))

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        return _SparseProduct.apply(theta_d, self.P, self.PT)

    def matrix(self) -> torch.Tensor:
        return self.P.to_dense()


def fwht(x: torch.Tensor) -> torch.Tensor:
    """Unnormalized fast Walsh-Hadamard transform along the last axis, whose length is a power of two (H x, H = Hᵀ)."""
    shape, n = x.shape, x.shape[-1]
    if n & (n - 1):
        raise ValueError(f"the Walsh-Hadamard transform needs a power-of-two length, got {n}")
    h = 1
    while h < n:
        y = x.reshape(-1, n // (2 * h), 2, h)
        x = torch.stack((y[:, :, 0] + y[:, :, 1], y[:, :, 0] - y[:, :, 1]), dim=2)
        h *= 2
    return x.reshape(shape)


class FastfoodProjection(Projection):
    kind = "fastfood"

    def __init__(self, D: int, d: int, seed: int):
        super().__init__(D, d)
        L = 1 << max(0, math.ceil(math.log2(max(D, d))))
        generator = torch.Generator().manual_seed(seed)
        self.L = L
        self.register_buffer("B", torch.randint(2, (L,), generator=generator).float() * 2 - 1)
        self.register_buffer("Pi", torch.randperm(L, generator=generator))
        self.register_buffer("G", torch.randn(L, generator=generator))
        # ‖H G Π H B e_j‖² = L ‖G‖² for every column j; keeping D of L rows leaves D/L of it on average
        self.scale = 1.0 / math.sqrt(D * float((self.G ** 2).sum()))

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(theta_d, (0, self.L - self.d))
        x = fwht(self.B * x)[..., self.Pi] * self.G
        return fwht(x)[..., :self.D] * self.scale

    def matrix(self) -> torch.Tensor:
        return self(torch.eye(self.d)).T.contiguous()


class IdentityProjection(Projection):
    kind = "identity"

    def __init__(self, D: int, d: int):
        if d != D:
            raise ValueError(f"the identity projection needs d = D, got d = {d}, D = {D}")
        super().__init__(D, d)

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        return theta_d


def resolve_kind(kind: str, D: int, d: int) -> str:
    if kind not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}, got {kind!r}")
    if kind == "auto":
        return "dense" if D * d <= DENSE_LIMIT else "sparse"
    return kind


def build_projection(kind: str, D: int, d: int, seed: int) -> Projection:
    """The D×d projection ``kind`` (see the module docstring), drawn from ``seed``."""
    kind = resolve_kind(kind, D, d)
    if kind == "dense":
        return DenseProjection(D, d, seed)
    if kind == "sparse":
        return SparseProjection(D, d, seed)
    if kind == "fastfood":
        return FastfoodProjection(D, d, seed)
    return IdentityProjection(D, d)


# --- the subspace model ---------------------------------------------------------------------------


class SubspaceModel(nn.Module):
    """A network whose parameters are θ₀ + P θ_d (Li et al. Eq. 2); only ``theta_d`` is trainable."""

    def __init__(self, model: nn.Module, d: int, projection: str = "auto", seed: int = 0):
        super().__init__()
        self.net = model
        named = [(n, p) for n, p in model.named_parameters()]
        self.names = [n for n, _ in named]
        self.shapes = [tuple(p.shape) for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        for p in model.parameters():
            p.requires_grad_(False)
        self.register_buffer("theta0", torch.cat([p.detach().reshape(-1) for _, p in named]).clone())
        self.D = int(self.theta0.numel())
        self.projection = build_projection(projection, self.D, d, seed)
        self.theta_d = nn.Parameter(torch.zeros(d))

    @property
    def d(self) -> int:
        return self.projection.d

    def theta(self) -> torch.Tensor:
        return self.theta0 + self.projection(self.theta_d)

    def parameters_at(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: t.view(s) for n, t, s in zip(self.names, torch.split(theta, self.sizes), self.shapes)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.net, self.parameters_at(self.theta()), (x,))

    @torch.no_grad()
    def frozen(self) -> nn.Module:
        """The network with its parameters set to the current θ (for evaluation without the projection)."""
        for p, value in zip(self.net.parameters(), torch.split(self.theta(), self.sizes)):
            p.copy_(value.view(p.shape))
        return self.net


# --- training ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubspaceConfig:
    """One subspace run: the data, model, optimizer, batch size, epochs and seed of ``run`` (a
    :class:`~lib.train.RunConfig`; its ``max_epochs`` epochs are all trained, its stopping
    threshold is ignored), the subspace dimension ``d`` and the ``projection``, drawn from
    ``seed + 7_919`` where ``seed`` is the run's (θ₀ is the run's own initialization).
    ``eval_train``: how many training images (the first ones) are evaluated after every epoch."""

    run: RunConfig
    d: int
    projection: str = "auto"
    eval_train: int = 10_000

    def to_dict(self) -> dict:
        return dict(run=self.run.to_dict(), d=self.d, projection=self.projection, eval_train=self.eval_train)


STORE = Store("subspace", sources=("studies/weng2019/intrinsic_dimension.py",))


def _settings(config: SubspaceConfig) -> dict:
    """The store's settings of ``config``: its fields and the training code's version (models, data, init)."""
    return dict(config.to_dict(), code=code_version())


def _key(config: SubspaceConfig) -> str:
    return STORE.key(_settings(config))


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2048) -> tuple[float, float]:
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch):
        logits = model(x[i:i + batch])
        loss += float(nn.functional.cross_entropy(logits, y[i:i + batch], reduction="sum"))
        correct += int((logits.argmax(1) == y[i:i + batch]).sum())
    return loss / max(len(y), 1), correct / max(len(y), 1)


def train_subspace(config: SubspaceConfig, progress: bool | None = None, keep_model: bool = False) -> dict:
    """Train θ_d of ``config`` for all its epochs; returns ``{"history": [...], "summary": {...}}``.

    The loss is the run's cross-entropy; the optimizer is the run's (Adam or SGD with momentum,
    learning rate × ``lr_decay`` per epoch, weight decay on θ_d). After every epoch the accuracy
    on the first ``eval_train`` training images and on the test set is recorded; the summary
    holds the *last* epoch's (no epoch is selected on the test set). ``keep_model`` adds the
    trained :class:`SubspaceModel` under ``"model"`` (not cached).
    """
    run = config.run
    if run.loss != "cross_entropy":
        raise ValueError("the subspace trainer uses the cross-entropy loss")
    data = prepare_data(run)
    net = initialize(build_model(run.model, tuple(data.x_train.shape[1:]), data.num_classes, run.seed), run.init, run.seed)
    model = SubspaceModel(net, config.d, config.projection, seed=run.seed + 7_919)
    if run.optimizer == "adam":
        optimizer = torch.optim.Adam([model.theta_d], lr=run.lr, weight_decay=run.weight_decay)
    else:
        optimizer = torch.optim.SGD([model.theta_d], lr=run.lr, momentum=run.momentum, weight_decay=run.weight_decay)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=run.lr_decay)
    x, y = data.x_train, data.y_train
    x_eval, y_eval = x[:config.eval_train], y[:config.eval_train]
    n, rows, elapsed = len(y), [], 0.0
    show = progress_enabled() if progress is None else progress
    bar = tqdm(total=run.max_epochs, disable=not show, leave=False, desc=f"{run.model} d={config.d}")
    for epoch in range(1, run.max_epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(run.seed * 100_003 + epoch - 1))
        loss_sum = 0.0
        for i in range(0, n, run.batch_size):
            index = order[i:i + run.batch_size]
            loss = nn.functional.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(index)
        schedule.step()
        net = model.frozen().eval()
        train_loss, train_acc = _accuracy(net, x_eval, y_eval)
        test_loss, test_acc = _accuracy(net, data.x_test, data.y_test)
        elapsed += time.perf_counter() - started
        rows.append(dict(epoch=epoch, train_loss=loss_sum / n, train_loss_eval=train_loss, train_acc=train_acc,
                         test_loss=test_loss, test_acc=test_acc, seconds=elapsed))
        bar.update(1)
        bar.set_postfix(train_acc=f"{train_acc:.3f}")
    bar.close()
    last = rows[-1]
    summary = dict(D=model.D, d=config.d, projection=model.projection.kind, epochs=run.max_epochs, n_train=n,
                   final_train_acc=last["train_acc"], final_test_acc=last["test_acc"], train_seconds=elapsed,
                   theta_d_norm=float(model.theta_d.detach().norm()),
                   nnz=getattr(model.projection, "nnz", None))
    result = dict(history=rows, summary=summary)
    if keep_model:
        result["model"] = model
    return result


def run_subspace(config: SubspaceConfig, progress: bool | None = None) -> tuple[dict, bool]:
    """The result of ``config``, from the cache or trained now and stored; returns (result, was_cached)."""
    return STORE.fetch(_settings(config), lambda: dict(config=config.to_dict(), **train_subspace(config, progress=progress)))


def subspace_grid(configs: Iterable[SubspaceConfig], progress: bool | None = None) -> pd.DataFrame:
    """Run (or fetch) every configuration: one row per run with the run's main fields and its summary."""
    rows = []
    for config in configs:
        result, cached = run_subspace(config, progress=progress)
        r = config.run
        rows.append(dict(model=r.model, seed=r.seed, n_train_cfg=r.n_train, randomization=r.randomization,
                         corruption=r.corruption, lr=r.lr, **result["summary"], key=_key(config), cached=cached))
    return pd.DataFrame(rows)


def subspace_history(configs: Iterable[SubspaceConfig]) -> pd.DataFrame:
    """Per-epoch histories of (cached or new) runs in long format, with ``model``, ``seed`` and ``d`` columns."""
    frames = []
    for config in configs:
        result, _ = run_subspace(config)
        frames.append(pd.DataFrame(result["history"]).assign(model=config.run.model, seed=config.run.seed, d=config.d))
    return pd.concat(frames, ignore_index=True)


# --- the intrinsic dimension ---------------------------------------------------------------------------


def crossing(d: Iterable[float], accuracy: Iterable[float], threshold: float) -> float:
    """The smallest d at which ``accuracy`` (measured at the values ``d``) reaches ``threshold``.

    Between the last measured d below the threshold and the first at or above it (in increasing
    d), the accuracy is interpolated linearly in log d (the paper's plots use a log d axis).
    Returns NaN when no measured d reaches the threshold, and the smallest d when it already does.
    """
    d = np.asarray(list(d), dtype=float)
    accuracy = np.asarray(list(accuracy), dtype=float)
    order = np.argsort(d)
    d, accuracy = d[order], accuracy[order]
    above = np.nonzero(accuracy >= threshold)[0]
    if len(above) == 0:
        return float("nan")
    i = int(above[0])
    if i == 0:
        return float(d[0])
    a0, a1 = accuracy[i - 1], accuracy[i]
    t = (threshold - a0) / (a1 - a0)
    return float(np.exp(np.log(d[i - 1]) + t * (np.log(d[i]) - np.log(d[i - 1]))))
