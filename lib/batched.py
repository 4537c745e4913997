"""Train K same-shaped networks in lockstep as one stacked model.

Nearly every figure is a grid: one architecture at several corruption levels, noise types and
seeds. Here the K networks of such a grid become one model whose layers are stacked weight
tensors ``[K, in, out]``, applied with batched matrix products (``torch.baddbmm``). Every
network keeps its own training labels and inputs, initialization (built exactly as
:func:`lib.models.build_model` builds it from its seed), batch order (the same seeded
permutation per epoch as :func:`lib.train.train`), learning rate, decay and optimizer state,
so each result matches sequential training up to floating-point rounding, and lands in the run
cache exactly as a sequential run would. Convolutional networks (without BatchNorm, whose
running statistics cannot be stacked) are stacked with ``torch.func.stack_module_state`` and
``torch.vmap``, which turns the K convolutions into one grouped convolution. A network that
converges or diverges leaves the stack at the end of that epoch (its weights are saved then),
without disturbing the others, which train on without computing for it.

Only what can change a run's numbers must agree within a batch (:func:`batch_key`); the rest
(corruption, seeds, learning rate, decay, weight decay, stopping threshold) may differ.
Whether batching pays depends on the device: on a GPU small models leave it idle and stacking
multiplies throughput; on this project's 2-core CPU the products are already large enough that
stacking gains nothing (:func:`prefers_batched`; ``make bench`` measures it).
"""

from __future__ import annotations

import copy
import math
import os
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from lib.models import MLP, build_model, initialize
from tqdm import tqdm

from lib.train import RunConfig, TrainedRun, _reached, default_device, prepare_data, progress_enabled, summarize

# StackedMLP's gradients are strided views into one flat buffer on purpose; PyTorch warns that such
# gradients "may impair performance" (they do not: one buffer makes each optimizer step a few operations).
# The warning is silenced while train_batched runs, not for the whole process.
_LAYOUT_WARNING = "grad and param do not obey the gradient layout contract"

PER_MODEL_FIELDS = ("randomization", "corruption", "data_seed", "seed", "lr", "lr_decay", "weight_decay",
                    "stop_train_acc")


def batch_key(config: RunConfig) -> tuple:
    """Configurations with equal keys can be trained together."""
    return tuple((k, v) for k, v in sorted(config.to_dict().items()) if k not in PER_MODEL_FIELDS)


def architecture(config: RunConfig) -> tuple[str, list[int] | None]:
    """``("mlp", widths)``, ``("conv", None)``, or ``("unbatchable", None)`` (BatchNorm, unknown models, and
    augmented runs, whose fresh per-batch draws the stacked loop does not make)."""
    if config.augmented:
        return "unbatchable", None
    try:
        model = build_model(config.model, (3, 32, 32) if config.dataset.startswith("cifar") else (1, 28, 28),
                            100 if config.dataset == "cifar100" else 10, seed=0)
    except ValueError:
        return "unbatchable", None
    if isinstance(model, MLP) and getattr(model, "dropout", 0.0):
        return "unbatchable", None  # the stacked MLP has no dropout
    if isinstance(model, MLP):
        return "mlp", model.widths
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return "unbatchable", None
    return "conv", None


def prefers_batched(arch: tuple[str, list[int] | None] | list[int] | None, device: torch.device) -> bool:
    """Whether stacked training is faster than one-by-one for this architecture on ``device``.

    ``arch`` is :func:`architecture`'s answer (or an MLP's widths). On this project's 2-core CPU
    (``make bench``), stacking six 10x512 MLPs ran at 0.99-1.08x of one-by-one training, six MASC
    MLPs at 0.88x, and a pure forward/backward probe of stacked 512x512 products at 1.04x: the
    products are already large enough for the CPU, so nothing is gained and the runner trains one
    by one there. On a GPU small models leave the device idle and stacking pays.
    """
    kind = arch[0] if isinstance(arch, tuple) else ("mlp" if arch is not None else "unbatchable")
    return device.type == "cuda" and kind != "unbatchable"


class StackedMLP(nn.Module):
    """K copies of one MLP architecture with independent weights, as ``[K, in, out]`` tensors.

    Every weight and bias is a view into one flat ``[K, P]`` parameter buffer, and every gradient a
    view into one flat ``[K, P]`` gradient buffer, so an optimizer step is a handful of whole-buffer
    operations instead of several per layer (on a GPU, where each operation costs a kernel launch,
    that is most of a small model's step).
    """

    def __init__(self, models: list[MLP], device: torch.device | None = None):
        super().__init__()
        self.k = len(models)
        self.names = [n for n in models[0].layer_names if n.startswith("fc")] + ["output"]
        self.has_bias, tensors = [], []
        for name in self.names:
            layers = [m.hidden_linear(name) if name != "output" else m.blocks.output for m in models]
            tensors.append(torch.stack([l.weight.detach().T for l in layers]))
            self.has_bias.append(layers[0].bias is not None)
            if self.has_bias[-1]:
                tensors.append(torch.stack([l.bias.detach() for l in layers])[:, None, :])
        self._pack([t.to(device) for t in tensors])

    def _pack(self, tensors: list[torch.Tensor]) -> None:
        """Copy ``tensors`` (weights and biases in layer order) into fresh flat buffers and view them."""
        device = tensors[0].device
        self.flat = torch.cat([t.reshape(self.k, -1) for t in tensors], 1).contiguous()
        self.flat_grad = torch.zeros_like(self.flat)
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        offset, queue = 0, iter(tensors)
        for has_bias in self.has_bias:
            for target, present in ((self.weights, True), (self.biases, has_bias)):
                if not present:
                    target.append(nn.Parameter(torch.zeros(self.k, 1, 0, device=device), requires_grad=False))
                    continue
                shape = next(queue).shape
                size = math.prod(shape[1:])
                parameter = nn.Parameter(self.flat[:, offset:offset + size].view(shape))  # shares the buffer
                parameter.grad = self.flat_grad[:, offset:offset + size].view(shape)  # backward adds into it
                target.append(parameter)
                offset += size

    def optimizer_slots(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(parameter, gradient)`` pairs, stacked on dimension 0, for :class:`StackedOptimizer`."""
        return [(self.flat, self.flat_grad)]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the gradient buffer in place (never ``None``: backward adds into its views)."""
        self.flat_grad.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[K, B, ...]`` (flattened here) → logits ``[K, B, classes]``."""
        x = x.flatten(2)
        last = len(self.names) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(bias, x, weight) if self.has_bias[i] else torch.bmm(x, weight)
            if i < last:
                x = torch.relu(x)
        return x

    def state_of(self, k: int, model: MLP) -> dict:
        """The state dict of stacked network ``k``, in the layout of the sequential ``model``."""
        for i, name in enumerate(self.names):
            layer = model.hidden_linear(name) if name != "output" else model.blocks.output
            layer.weight.data.copy_(self.weights[i][k].detach().T)
            if self.has_bias[i]:
                layer.bias.data.copy_(self.biases[i][k, 0].detach())
        return {n: t.detach().cpu().clone() for n, t in model.state_dict().items()}

    def keep(self, positions: list[int]) -> None:
        """Drop every stacked network but those at ``positions``."""
        tensors = [t.detach()[positions] for pair in zip(self.weights, self.biases) for t in pair if t.requires_grad]
        self.k = len(positions)
        self._pack(tensors)


class VmappedModel(nn.Module):
    """K copies of any network without BatchNorm: stacked parameters, applied with ``torch.vmap``."""

    def __init__(self, models: list[nn.Module], device: torch.device | None = None):
        super().__init__()
        from torch.func import stack_module_state

        self.k = len(models)
        params, buffers = stack_module_state(models)
        self.names = list(params)
        self.stacked = nn.ParameterList([nn.Parameter(params[n].detach().clone().to(device)) for n in self.names])
        self.buffers_ = {n: b.to(device) for n, b in buffers.items()}
        self.base = [copy.deepcopy(models[0]).to("meta")]  # a list, so it is not registered as a submodule

    def optimizer_slots(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(parameter, gradient)`` pairs, stacked on dimension 0, for :class:`StackedOptimizer`."""
        return [(p.data, p.grad) for p in self.stacked]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call

        def one(params: tuple, buffers: dict, xb: torch.Tensor) -> torch.Tensor:
            return functional_call(self.base[0], (dict(zip(self.names, params)), buffers), (xb,))

        return torch.vmap(one)(tuple(self.stacked), self.buffers_, x)

    def state_of(self, k: int, model: nn.Module) -> dict:
        """The state dict of stacked network ``k``, in the layout of the sequential ``model``."""
        state = {n: p[k].detach().cpu().clone() for n, p in zip(self.names, self.stacked)}
        state.update({n: b[k].detach().cpu().clone() for n, b in self.buffers_.items()})
        model.load_state_dict(state)
        return {n: t.detach().cpu().clone() for n, t in model.state_dict().items()}

    def keep(self, positions: list[int]) -> None:
        """Drop every stacked network but those at ``positions``."""
        for i, p in enumerate(self.stacked):
            self.stacked[i] = nn.Parameter(p.detach()[positions].clone())
        self.buffers_ = {n: b[positions] for n, b in self.buffers_.items()}
        self.k = len(positions)


class StackedOptimizer:
    """SGD with momentum or Adam, as PyTorch defines them, with a learning rate per stacked model.

    Works on the model's ``optimizer_slots()``: ``(parameter, gradient)`` tensors whose dimension 0
    is the stack (for :class:`StackedMLP`, one flat pair holding every layer). ``lr`` is a ``[K]``
    tensor. Every stacked network steps (finished ones leave the stack, see :meth:`keep`), so the
    updates are plain in-place tensor operations, element for element those of ``torch.optim``.
    """

    def __init__(self, kind: str, momentum: float, weight_decay: torch.Tensor,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.kind, self.momentum, self.weight_decay, self.betas, self.eps = kind, momentum, weight_decay, betas, eps
        self.state: list[dict] = []
        self.steps = torch.zeros(len(weight_decay), device=weight_decay.device)
        self.decay = bool((weight_decay != 0).any())  # decided once: reading a GPU tensor every step would sync

    SCRATCH = ("decayed", "update")  # per-step working buffers, not state

    def saved_state(self) -> list[dict]:
        """The optimizer state worth a checkpoint (momentum or Adam moments, without the scratch buffers)."""
        return [{name: t for name, t in state.items() if name not in self.SCRATCH} for state in self.state]

    def keep(self, positions: list[int]) -> None:
        """Follow the model's ``keep``: the optimizer state of the networks at ``positions``."""
        self.state = [{name: t[positions] for name, t in state.items()} for state in self.state]
        self.steps, self.weight_decay = self.steps[positions], self.weight_decay[positions]
        self.decay = bool((self.weight_decay != 0).any())

    @torch.no_grad()
    def step(self, slots: list[tuple[torch.Tensor, torch.Tensor]], lr: torch.Tensor) -> None:
        """One update of every stacked network, each with its own learning rate (in place, like PyTorch's)."""
        self.steps += 1
        while len(self.state) < len(slots):
            self.state.append({})
        for (p, grad), state in zip(slots, self.state):
            shape = (-1,) + (1,) * (p.dim() - 1)
            if self.decay:  # into a kept buffer: a fresh stack-sized tensor every step costs page faults on a CPU
                grad = torch.addcmul(grad, self.weight_decay.view(shape), p, out=state.setdefault("decayed", torch.empty_like(p)))
            if self.kind == "sgd":
                if "buf" not in state:
                    state["buf"] = grad.clone()
                else:
                    state["buf"].mul_(self.momentum).add_(grad)
                p.addcmul_(lr.view(shape), state["buf"], value=-1.0)
            else:
                b1, b2 = self.betas
                m = state.setdefault("m", torch.zeros_like(p))
                v = state.setdefault("v", torch.zeros_like(p))
                m.mul_(b1).add_(grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
                correction1 = (1 - b1 ** self.steps).view(shape)
                correction2 = (1 - b2 ** self.steps).sqrt().view(shape)
                update = torch.sqrt(v, out=state.setdefault("update", torch.empty_like(p)))  # in place from here on
                update.div_(correction2).add_(self.eps)  # the denominator, as torch.optim.Adam computes it
                torch.div(m, update, out=update).mul_(lr.view(shape) / correction1)
                p.sub_(update)


def _gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index[k]`` of ``x[k]`` for every k: ``[K, N, D]``, ``[K, B]`` → ``[K, B, D]``."""
    return x[torch.arange(x.shape[0], device=x.device)[:, None], index]


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Stack per-model tensors; identical ones share memory through ``expand``."""
    if all(t is tensors[0] or torch.equal(t, tensors[0]) for t in tensors[1:]):
        return tensors[0].unsqueeze(0).expand(len(tensors), *tensors[0].shape)
    return torch.stack(tensors)


@torch.no_grad()
def _evaluate(model: StackedMLP, x: torch.Tensor, y: torch.Tensor, loss_kind: str, num_classes: int,
              precision: str, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    losses = torch.zeros(model.k, device=x.device)
    correct = torch.zeros(model.k, device=x.device)
    for start in range(0, x.shape[1], chunk):
        xb, yb = x[:, start:start + chunk], y[:, start:start + chunk]
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(xb)
        losses += _per_model_loss(logits.float(), yb, loss_kind, num_classes) * yb.shape[1]
        correct += (logits.argmax(-1) == yb).sum(1)
    n = max(y.shape[1], 1)
    return losses / n, correct / n


def _per_model_loss(logits: torch.Tensor, y: torch.Tensor, kind: str, num_classes: int) -> torch.Tensor:
    k, b, c = logits.shape
    if kind == "cross_entropy":
        return nn.functional.cross_entropy(logits.reshape(k * b, c), y.reshape(k * b), reduction="none").view(k, b).mean(1)
    target = nn.functional.one_hot(y, num_classes).to(logits.dtype)
    return ((logits - target) ** 2).mean(dim=(1, 2))


def _select(t: torch.Tensor, keep: list[int]) -> torch.Tensor:
    """Rows ``keep`` of a stacked tensor; a shared (expanded) one stays shared."""
    if t.dim() > 0 and t.stride(0) == 0:
        return t[:1].expand(len(keep), *t.shape[1:])
    return t[keep]


def _save_stack(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def train_batched(configs: list[RunConfig], device: torch.device | None = None, progress: bool | None = None,
                  checkpoint: Path | None = None, checkpoint_every_s: float = 60.0) -> list[TrainedRun]:
    """Train ``configs`` (equal :func:`batch_key`; no BatchNorm) together; one TrainedRun each, in order.

    A network that converges or diverges is taken out of the stack at the end of that epoch (its
    weights saved), so the others train on without computing for it. ``progress`` shows a bar over
    epochs (default: on an interactive terminal, see :func:`lib.train.progress_enabled`). With a
    ``checkpoint`` path the whole stack's state is saved there every ``checkpoint_every_s`` seconds
    and training resumes from it, to the same result (batch orders derive from seed and epoch alone); it is left in
    place at the end, for the caller to remove once the runs are stored (:func:`lib.runs.train_chunk`).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_LAYOUT_WARNING)
        return _train_batched(configs, device, progress, checkpoint, checkpoint_every_s)


def _train_batched(configs: list[RunConfig], device: torch.device | None, progress: bool | None,
                   checkpoint: Path | None, checkpoint_every_s: float) -> list[TrainedRun]:
    if any(c.augmented for c in configs):
        raise ValueError("augmented runs (augment != 'none') train one by one with lib.train.train")
    if len({batch_key(c) for c in configs}) != 1:
        raise ValueError("configs differ in fields that must be shared to train together: " + str(batch_key(configs[0])))
    device = device or default_device()
    base = configs[0]
    data = [prepare_data(c) for c in configs]
    shape, num_classes = tuple(data[0].x_train.shape[1:]), data[0].num_classes
    models = [initialize(build_model(c.model, shape, num_classes, c.seed), c.init, c.seed) for c in configs]
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in models[0].modules()):
        raise ValueError(f"{base.model!r} has BatchNorm, whose running statistics cannot be stacked; train it alone")
    k = len(configs)
    x_train = _stack([d.x_train for d in data]).to(device)
    y_train = _stack([d.y_train for d in data]).to(device)
    x_test = _stack([d.x_test for d in data]).to(device)
    y_test = _stack([d.y_test for d in data]).to(device)
    stacked = (StackedMLP if all(isinstance(m, MLP) for m in models) else VmappedModel)(models, device)
    per_model = lambda name: torch.tensor([float(getattr(c, name)) for c in configs], device=device)
    lr0, decay = per_model("lr"), per_model("lr_decay")
    optimizer = StackedOptimizer(base.optimizer, base.momentum, per_model("weight_decay"))
    alive = list(range(k))  # stack position -> index into configs
    rows: list[list[dict]] = [[] for _ in configs]
    converged: list[int | None] = [None] * k
    states: list[dict | None] = [None] * k
    n, step, elapsed = x_train.shape[1], 0, 0.0
    nan = float("nan")
    show = progress_enabled() if progress is None else progress
    start_epoch, last_save = 1, time.monotonic()
    if checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=False)
        alive, rows, converged = saved["alive"], saved["rows"], saved["converged"]
        # finished networks' weights were saved from the CPU; map_location moved them to the device
        states = [None if state is None else {n: t.cpu() for n, t in state.items()} for state in saved["states"]]
        step, elapsed, start_epoch = saved["step"], saved["elapsed"], saved["epoch"] + 1
        stacked.keep(alive)
        stacked.load_state_dict(saved["model"])
        if isinstance(stacked, VmappedModel):
            stacked.buffers_ = saved["buffers"]
        optimizer.keep(alive)
        optimizer.state, optimizer.steps = saved["optimizer"], saved["optimizer_steps"]
        lr0, decay = lr0[alive], decay[alive]
        x_train, y_train, x_test, y_test = (_select(t, alive) for t in (x_train, y_train, x_test, y_test))
    bar = tqdm(total=base.max_epochs, initial=start_epoch - 1, disable=not show, leave=False, desc=f"{base.model} x{k}")
    for epoch in range(start_epoch, base.max_epochs + 1):
        if not alive:
            break
        started = time.perf_counter()
        live = [configs[c] for c in alive]
        order = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(c.seed * 100_003 + epoch - 1))
                             for c in live]).to(device)
        lr = lr0 * decay ** (epoch - 1)
        loss_sum = torch.zeros(len(alive), device=device)
        correct_sum = torch.zeros(len(alive), device=device)
        for i in range(0, n, base.batch_size):
            index = order[:, i:i + base.batch_size]
            targets = _gather(y_train.unsqueeze(-1), index).squeeze(-1)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=base.precision == "bf16"):
                logits = stacked(_gather(x_train, index)).float()
            losses = _per_model_loss(logits, targets, base.loss, num_classes)
            stacked.zero_grad()
            losses.sum().backward()
            optimizer.step(stacked.optimizer_slots(), lr)
            loss_sum += losses.detach() * index.shape[1]
            correct_sum += (logits.detach().argmax(-1) == targets).sum(1)
            step += 1
        online = (correct_sum / n).tolist()
        last = epoch == base.max_epochs
        thresholds = [c.stop_train_acc for c in live]
        check = [last or (t is not None and online[j] >= t - 0.1) for j, t in enumerate(thresholds)]
        train_eval = _evaluate(stacked, x_train, y_train, base.loss, num_classes, base.precision) if any(check) else None
        done = [check[j] and _reached(float(train_eval[1][j]), thresholds[j]) for j in range(len(alive))]
        train_loss = (loss_sum / n).tolist()
        diverged = [not math.isfinite(v) for v in train_loss]
        test_due = [done[j] or diverged[j] or last or epoch % base.test_every == 0 for j in range(len(alive))]
        test_eval = _evaluate(stacked, x_test, y_test, base.loss, num_classes, base.precision) if any(test_due) else None
        elapsed += time.perf_counter() - started
        bar.update(1)
        bar.set_postfix(training=len(alive), lowest_train_acc=f"{min(online):.3f}")
        finished = []
        for j, c in enumerate(alive):
            rows[c].append(dict(
                epoch=epoch, step=step, lr=float(lr[j]), train_loss=train_loss[j], train_acc_online=online[j],
                train_loss_eval=float(train_eval[0][j]) if check[j] else nan,
                train_acc=float(train_eval[1][j]) if check[j] else nan,
                test_loss=float(test_eval[0][j]) if test_due[j] else nan,
                test_acc=float(test_eval[1][j]) if test_due[j] else nan, seconds=elapsed))
            if done[j]:
                converged[c] = epoch
            if done[j] or diverged[j] or last:
                finished.append(j)
        if finished:
            for j in finished:
                states[alive[j]] = stacked.state_of(j, models[alive[j]])
            keep = [j for j in range(len(alive)) if j not in finished]
            alive = [alive[j] for j in keep]
            if alive:
                stacked.keep(keep)
                optimizer.keep(keep)
                lr0, decay = lr0[keep], decay[keep]
                x_train, y_train, x_test, y_test = (_select(t, keep) for t in (x_train, y_train, x_test, y_test))
        if checkpoint is not None and alive and time.monotonic() - last_save > checkpoint_every_s:
            _save_stack(checkpoint, dict(
                alive=alive, rows=rows, converged=converged, states=states, step=step, elapsed=elapsed, epoch=epoch,
                model=stacked.state_dict(), buffers=getattr(stacked, "buffers_", None),
                optimizer=optimizer.saved_state(), optimizer_steps=optimizer.steps))
            last_save = time.monotonic()
    bar.close()
    results = []
    for j, config in enumerate(configs):
        history = pd.DataFrame(rows[j])
        summary = summarize(history, config, converged[j], n)
        summary.update(device=device.type, batched_with=k)
        results.append(TrainedRun(config, history, summary, states[j], data[j].corrupted))
    return results
