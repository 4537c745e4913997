"""Layer robustness: re-initialization and re-randomization of one layer (Zhang, Bengio & Singer 2019).

"Are all layers created equal?" (arXiv:1902.01996) scores each layer ``l`` of a trained network
θ^T = (θ_1^T, …, θ_L^T) by the test error of the network with that layer alone replaced:

- **re-initialization** to checkpoint τ: θ_l^T ← θ_l^τ, its value after τ epochs (τ = 0: the initial
  weights), every other layer kept at its trained value (:func:`re_initialize`);
- **re-randomization**: θ_l^T ← θ̃_l, a fresh draw from the *same initialization distribution*
  the run used (:func:`re_randomize`).

A layer is *robust* when the error barely moves, *critical* otherwise. The paper's figures are
heatmaps with layers as rows and checkpoints as columns, re-randomization as the first column
(:func:`robustness`). Weng's essay (2019) re-ran the experiment with two departures, kept here as
variants so a chapter can show what they change: re-randomization from Uniform[0, 1) instead of
the initializer (:func:`re_randomize_uniform`) and dropout left on at evaluation
(:func:`classification_error` with ``dropout=True``).

Every function is pure: it returns a modified copy and leaves the model it was given untouched.
A *layer* is one ``nn.Linear`` or ``nn.Conv2d`` with its weight and bias (the output layer included).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from lib.models import initialize

LAYER_TYPES = (nn.Linear, nn.Conv2d)
RERANDOMIZE = "re-randomize"


@dataclass(frozen=True)
class Layer:
    """One layer of a network: its display ``name`` (the block it belongs to, e.g. ``fc1``, ``output``),
    the ``module`` path inside the model and the ``params`` (state-dict keys) it owns."""

    name: str
    module: str
    params: tuple[str, ...]


def layers(model: nn.Module) -> list[Layer]:
    """Every ``nn.Linear`` / ``nn.Conv2d`` of ``model`` in forward order (the output layer last), with its tensors.

    Display names are the model's block names (``blocks.fc1.0`` → ``fc1``); a block holding several
    such layers numbers them (``block1.0``, ``block1.1``).
    """
    found = [(path, module) for path, module in model.named_modules() if isinstance(module, LAYER_TYPES)]
    blocks = [path.split(".")[1] if path.startswith("blocks.") else path for path, _ in found]
    out = []
    for (path, module), block in zip(found, blocks):
        same = [p for (p, _), b in zip(found, blocks) if b == block]
        name = block if len(same) == 1 else f"{block}.{same.index(path)}"
        params = tuple(f"{path}.{name_}" for name_, _ in module.named_parameters(recurse=False))
        out.append(Layer(name, path, params))
    return out


def layer_named(model: nn.Module, name: str | Layer) -> Layer:
    if isinstance(name, Layer):
        return name
    for layer in layers(model):
        if layer.name == name:
            return layer
    raise KeyError(f"no layer {name!r}; the model's layers: {[l.name for l in layers(model)]}")


def re_initialize(model: nn.Module, layer: str | Layer, snapshot: dict) -> nn.Module:
    """A copy of ``model`` whose layer ``layer`` (weight and bias) is set to its value in ``snapshot``
    (a state dict, e.g. ``run.snapshots[τ]``); every other tensor is the model's own."""
    layer = layer_named(model, layer)
    out = copy.deepcopy(model)
    state = out.state_dict()
    with torch.no_grad():
        for key in layer.params:
            state[key].copy_(snapshot[key])
    return out


def re_randomize(model: nn.Module, layer: str | Layer, seed: int, init: str = "default") -> nn.Module:
    """A copy of ``model`` whose layer ``layer`` is drawn afresh from the initializer the run used.

    The layer is re-drawn exactly as :func:`lib.models.build_model` and :func:`lib.models.initialize`
    drew it: PyTorch's ``reset_parameters`` (its default scheme: weights U(±√(1/fan_in)) via
    Kaiming-uniform with a = √5, biases U(±1/√fan_in)) under a forked RNG seeded with ``seed``, then
    ``initialize(…, init, seed)`` (``glorot_uniform``: U(±√(6/(fan_in + fan_out))), zero biases).
    """
    layer = layer_named(model, layer)
    out = copy.deepcopy(model)
    module = out.get_submodule(layer.module)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(int(seed))
        module.reset_parameters()
    initialize(module, init, seed)
    return out


def re_randomize_uniform(model: nn.Module, layer: str | Layer, seed: int) -> nn.Module:
    """Weng's re-randomization: weights *and* biases from Uniform[0, 1) (``np.random.random``), whatever
    the initializer was — not the paper's operation, kept to show what it changes."""
    layer = layer_named(model, layer)
    out = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(int(seed))
    state = out.state_dict()
    with torch.no_grad():
        for key in layer.params:
            state[key].copy_(torch.rand(state[key].shape, generator=generator))
    return out


@torch.no_grad()
def classification_error(model: nn.Module, x: torch.Tensor, y: torch.Tensor, dropout: bool = False, seed: int = 0,
               batch_size: int = 4096) -> float:
    """Classification error of ``model`` on ``(x, y)`` in evaluation mode; with ``dropout=True`` the
    dropout layers stay active (Weng's evaluation), their masks drawn from ``seed``."""
    model.eval()
    if dropout:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.train()
    wrong = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for start in range(0, len(y), batch_size):
            wrong += int((model(x[start:start + batch_size]).argmax(1) != y[start:start + batch_size]).sum())
    model.eval()
    return wrong / max(len(y), 1)


def robustness(model: nn.Module, snapshots: dict[int, dict], x: torch.Tensor, y: torch.Tensor, init: str = "default",
               draws: int = 3, seed: int = 0, uniform: bool = False, dropout: bool = False) -> pd.DataFrame:
    """The robustness table of Zhang, Bengio & Singer: one row per (layer, column, draw) with the test ``error``.

    Columns: ``re-randomize`` (``draws`` independent draws of the layer from the run's initializer,
    seeds ``seed`` … ``seed + draws - 1``; from Uniform[0, 1) with ``uniform=True``) and one per
    checkpoint τ in ``snapshots`` (re-initialization to θ_l^τ, deterministic: one draw). Also a
    ``trained`` row (``layer`` = ``none``): the unmodified network. ``dropout=True`` evaluates every
    network with dropout on (one mask draw per evaluation, seeded).
    """
    rows = [dict(layer="none", layer_index=-1, column="trained", epoch=np.nan, draw=0,
                 error=classification_error(model, x, y, dropout, seed))]
    for index, layer in enumerate(layers(model)):
        for draw in range(draws):
            s = seed + draw
            changed = re_randomize_uniform(model, layer, s) if uniform else re_randomize(model, layer, s, init)
            rows.append(dict(layer=layer.name, layer_index=index, column=RERANDOMIZE, epoch=np.nan, draw=draw,
                             error=classification_error(changed, x, y, dropout, s)))
        for epoch in sorted(snapshots):
            changed = re_initialize(model, layer, snapshots[epoch])
            rows.append(dict(layer=layer.name, layer_index=index, column=str(epoch), epoch=epoch, draw=0,
                             error=classification_error(changed, x, y, dropout, seed)))
    return pd.DataFrame(rows)


def summarize_robustness(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation, minimum and maximum of the error over draws, one row per (layer, column)."""
    keys = ["layer", "layer_index", "column", "epoch"]
    out = (table.groupby(keys, dropna=False).error.agg(["mean", "std", "min", "max", "count"])
           .reset_index().rename(columns={"mean": "error"}))
    out["std"] = out["std"].fillna(0.0)
    return out.sort_values(["layer_index", "epoch"], na_position="first").reset_index(drop=True)
