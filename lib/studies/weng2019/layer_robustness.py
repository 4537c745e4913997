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

The chapter's runs and tables (``book/weng-layer-robustness.md``): :func:`networks` and :func:`run_config` build
its training runs from its parameters (:class:`~lib.studies.weng2019.protocol.WengLayerRobustness`);
:func:`run_robustness` scores one trained run; :func:`base_error`, :func:`cell`, :func:`layer_names`,
:func:`columns`, :func:`rerandomized`, :func:`reinit_costs` and :func:`worst_reset` read the summarized table
(:func:`summarize_robustness`), :func:`accuracy_table` and :func:`weng_comparison` lay it out.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from lib.models import initialize
from lib.train import RunConfig

LAYER_TYPES = (nn.Linear, nn.Conv2d)
RERANDOMIZE = "re-randomize"
RERANDOMIZE_SEED = 10_000  # re-randomization draws use seeds 10,000 + k, never the run's own seed (that would redraw θ⁰)
WENG_LAYERS = ("layer0", "layer1", "layer2", "output")  # Weng's names for the 3x256 net's layers (layer 0: the first)


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


# --- the chapter's runs ------------------------------------------------------------------------------------------

def networks(params) -> dict:
    """The chapter's nets by name, in its order: the fully connected nets on MNIST (``params.fc``; the first is the
    claims' net), Weng's dropout-trained variant (``"weng"``) and the VGG-style nets (``params.conv``), each a
    :class:`~lib.studies.weng2019.protocol.LayerRobustnessNet`."""
    return {**dict(params.fc), "weng": params.weng, **dict(params.conv)}


def run_config(net, seed: int, data_seed: int) -> RunConfig:
    """One net of the paper's protocol as a training run: SGD with momentum for all ``max_epochs`` (no early stop),
    tested every epoch, its weights kept at the ``checkpoints`` (the epochs τ re-initialization goes back to).
    ``net`` is a :class:`~lib.studies.weng2019.protocol.LayerRobustnessNet`."""
    return RunConfig(dataset=net.dataset, n_train=net.n_train, n_test=net.n_test, preprocessing=net.preprocessing,
                     data_seed=data_seed, model=net.model, seed=seed, init=net.init, optimizer="sgd", lr=net.lr,
                     momentum=net.momentum, lr_decay=net.lr_decay, batch_size=net.batch_size,
                     max_epochs=net.max_epochs, stop_train_acc=None, test_every=1, save_epochs=tuple(net.checkpoints))


def protocol_table(nets: Mapping, configs: Mapping[str, RunConfig], sizes: Mapping[str, tuple[int, int]]) -> pd.DataFrame:
    """What each net used, one row per net (its ``label``): model, data, ``sizes`` (training and test images used,
    from the prepared data), initializer, SGD, epochs, checkpoints and re-randomization draws."""
    rows = []
    for name, net in nets.items():
        c = configs[name]
        n_train, n_test = sizes[name]
        rows.append({"net": net.label, "model": c.model, "data": c.dataset,
                     "train / test images": f"{n_train:,} / {n_test:,}",
                     "init": c.init, "SGD": f"lr {c.lr:g}, momentum {c.momentum:g}, ×{c.lr_decay:g}/epoch",
                     "epochs": c.max_epochs, "checkpoints τ": ", ".join(map(str, c.save_epochs)),
                     "re-randomization draws": net.draws})
    return pd.DataFrame(rows).set_index("net")


def run_robustness(run, x: torch.Tensor, y: torch.Tensor, draws: int, checkpoints: Sequence[int] | None = None,
                   uniform: bool = False, dropout: bool = False, seed: int = RERANDOMIZE_SEED) -> pd.DataFrame:
    """The summarized robustness table (:func:`summarize_robustness` of :func:`robustness`) of one trained run (a
    :class:`lib.runs.TrainedRun` with snapshots) on ``(x, y)``: re-randomization from the run's own initializer
    (``run.config.init``; Uniform[0, 1) with ``uniform``), re-initialization to each of its ``checkpoints`` (default:
    every snapshot it kept), re-randomization seeds from ``seed`` (:data:`RERANDOMIZE_SEED`)."""
    snapshots = run.snapshots if checkpoints is None else {e: run.snapshots[e] for e in checkpoints}
    table = robustness(run.model(), snapshots, x, y, init=run.config.init, draws=draws, seed=seed, uniform=uniform,
                       dropout=dropout)
    return summarize_robustness(table)


# --- reading a summarized table (one row per layer and column; the ``trained`` row has layer ``none``) ------------

def base_error(frame: pd.DataFrame) -> float:
    """The test error of the unmodified (trained) network."""
    return float(frame.loc[frame.column == "trained", "error"].iloc[0])


def cell(frame: pd.DataFrame, layer: str, column: str) -> float:
    """The (mean) test error with ``layer`` changed as ``column`` says (:data:`RERANDOMIZE` or a checkpoint ``"τ"``)."""
    return float(frame.loc[(frame.layer == layer) & (frame.column == column), "error"].iloc[0])


def accuracy(frame: pd.DataFrame, layer: str, column: str | None = None) -> float:
    """Test accuracy: of the trained network for ``layer="base"``, else 1 − :func:`cell`."""
    if layer == "base":
        return 1 - base_error(frame)
    return 1 - cell(frame, layer, column)


def layer_names(frame: pd.DataFrame) -> list[str]:
    """The layers of the table in forward order (the first layer first, the output layer last)."""
    return list(frame[frame.layer != "none"].sort_values("layer_index").layer.unique())


def columns(frame: pd.DataFrame) -> list[str]:
    """The heatmap's columns in the paper's order: re-randomization, then the checkpoints τ in increasing order."""
    checkpoints = frame[(frame.layer != "none") & (frame.column != RERANDOMIZE)]
    epochs = sorted({int(e) for e in checkpoints.epoch})
    return [RERANDOMIZE] + [str(e) for e in epochs]


def rerandomized(frame: pd.DataFrame) -> pd.DataFrame:
    """The re-randomization column, indexed by layer: mean ``error`` over draws, its ``std``, ``min``, ``max``."""
    return frame[frame.column == RERANDOMIZE].set_index("layer")


def reinit_costs(frame: pd.DataFrame, column: str = "0") -> dict[str, float]:
    """Per layer (in forward order), how much re-initializing it to checkpoint ``column`` raises the test error."""
    return {layer: cell(frame, layer, column) - base_error(frame) for layer in layer_names(frame)}


def worst_reset(frame: pd.DataFrame, layers: Sequence[str], column: str = "0") -> str:
    """The layer of ``layers`` whose re-initialization to checkpoint ``column`` gives the highest test error."""
    return max(layers, key=lambda layer: cell(frame, layer, column))


def accuracy_table(frame: pd.DataFrame, title: str) -> pd.DataFrame:
    """The paper's heatmap as a table of test accuracies, one row per layer: re-randomized (mean ± std over draws)
    and re-initialized to each checkpoint τ; the index is named ``title``."""
    changed = frame[frame.layer != "none"]
    out = {}
    for layer in layer_names(frame):
        rows = changed[changed.layer == layer].set_index("column")
        entry = {RERANDOMIZE: f"{1 - rows.loc[RERANDOMIZE, 'error']:.1%} ± {rows.loc[RERANDOMIZE, 'std']:.1%}"}
        entry.update({f"τ = {c}": f"{1 - rows.loc[c, 'error']:.1%}" for c in columns(frame)[1:]})
        out[layer] = entry
    return pd.DataFrame(out).T.rename_axis(title)


def weng_comparison(weng: Mapping, ours: Mapping[str, pd.DataFrame], layers: Sequence[str],
                    output_shown: str) -> pd.DataFrame:
    """Weng's numbers for her MLP 256x3 ("Layers are not created equal", exp. 1; ``weng``: her paper's numbers,
    ``layers.mlp3x256.*`` and ``layers.rerandomize_uniform.*``) beside ours, one column per table of ``ours``
    (label → summarized table of a 3x256 net with ``layers``, in her order :data:`WENG_LAYERS`): the trained net,
    each layer re-initialized to τ = 0, and the range of re-randomized accuracies over layers (with the output
    layer's for the column ``output_shown``, as she reports it)."""
    rows = []
    for key, layer in zip(["base_acc"] + [f"reinit0.{l}" for l in WENG_LAYERS], ["base", *layers]):
        column = None if layer == "base" else "0"
        rows.append({"": "trained net" if layer == "base" else f"{layer} re-initialized to τ = 0",
                     "Weng (her code)": f"{weng[f'layers.mlp3x256.{key}']:.1f}%",
                     **{label: f"{100 * accuracy(frame, layer, column):.1f}%" for label, frame in ours.items()}})
    ranges = {}
    for label, frame in ours.items():
        errors = rerandomized(frame).error
        ranges[label] = "{:.1f}–{:.1f}%".format(100 * (1 - errors.max()), 100 * (1 - errors.min()))
        if label == output_shown:
            ranges[label] += " (output {:.1f}%)".format(100 * (1 - errors["output"]))
    rows.append({"": "re-randomized, range over layers",
                 "Weng (her code)": "{}–{}% (output {}%)".format(*weng["layers.rerandomize_uniform.acc_range"],
                                                                 weng["layers.rerandomize_uniform.output_acc"]),
                 **ranges})
    return pd.DataFrame(rows).set_index("")
