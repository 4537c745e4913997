"""Decoding trained networks layer by layer with the Minimum Angle Subspace Classifier (MASC).

"Decoding generalization from memorization in deep neural networks", sections 3-6 and
appendix A.6: for every probed layer of a trained network, class subspaces are fitted
(:class:`lib.studies.masc.classifier.MASC`) on the layer's outputs for the training images under one label set, and
the classifier is scored on

- ``corrupted train``: the training images against the labels the network was trained on;
- ``original train``: the training images against their true labels;
- ``test``: the test images against their true labels.

Label sets ("subspaces"): ``"corrupted"`` (the run's own training labels, section 4), ``"true"``
(the true training labels, section 5) and ``"corrupted:p"`` (the labels a run of the same data
seed corrupted with probability ``p`` would get, used on a clean model in section 6).

Probed layers follow the paper (section 3.1): MLPs — the input and every hidden layer; the CNN —
the input, the flatten layer and each fully connected layer; AlexNet — the flatten layer and
each fully connected layer. :func:`display_names` gives the paper's names ("FC (128)",
"Flat (576)").

Results are kept in the result store (:mod:`lib.cache`, ``<cache>/decode/<key>/``) under a hash of
the run's key (which hashes the training modules), the decoding arguments and the source of this module and
:mod:`lib.studies.masc.classifier`, so a rebuilt chapter re-decodes nothing that did not change.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from lib.studies.masc.classifier import MASC
from lib.models import build_model
from lib.cache import Store
from lib.runs import run, run_key
from lib.train import RunConfig, default_device, prepare_data

SETS = ("corrupted train", "original train", "test")


def probed_layers(model_name: str, model: nn.Module) -> list[str]:
    """Block names the paper probes for ``model_name`` ("input" is the preprocessed input)."""
    fc = [n for n in model.layer_names if n.startswith("fc")]
    if model_name.startswith("mlp"):
        return ["input", *fc]
    if model_name == "masc-cnn":
        return ["input", "flatten", *fc]
    if model_name == "masc-alexnet":
        return ["flatten", *fc]
    raise ValueError(f"no probing plan for model {model_name!r}")


def display_names(model: nn.Module, input_shape: Sequence[int], layers: Sequence[str]) -> dict[str, str]:
    """The paper's names of ``layers``: "Input", "Flat (576)", "FC (2048)" (width from a forward pass).

    A name that repeats (the MLP's two FC (2048) layers, the CNN's three FC (250)) gets " #2",
    " #3" on its later occurrences so that every layer has a distinct label.
    """
    with torch.no_grad():
        outputs = model.eval().layer_outputs(torch.zeros(1, *input_shape))
    names, seen = {}, Counter()
    for layer in layers:
        width = int(np.prod(outputs[layer].shape[1:]))
        base = "Input" if layer == "input" else f"Flat ({width})" if layer == "flatten" else f"FC ({width})"
        seen[base] += 1
        names[layer] = base if seen[base] == 1 else f"{base} #{seen[base]}"
    return names


@torch.no_grad()
def layer_features(model: nn.Module, x: torch.Tensor, layers: Sequence[str], batch_size: int = 1000,
                   device: torch.device | None = None) -> dict[str, np.ndarray]:
    """Outputs of ``layers`` for ``x``, flattened to ``(n, features)`` float32 arrays (eval mode, in chunks,
    on ``device``: the GPU when there is one)."""
    device = device or default_device()
    model.eval().to(device)
    parts: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    for start in range(0, len(x), batch_size):
        outputs = model.layer_outputs(x[start:start + batch_size].to(device))
        for layer in layers:
            parts[layer].append(outputs[layer].flatten(1).float().cpu().numpy())
    return {layer: np.concatenate(chunks) for layer, chunks in parts.items()}


def decode_features(train: dict[str, np.ndarray], test: dict[str, np.ndarray], fit_labels: np.ndarray,
                    targets: dict[str, tuple[str, np.ndarray]], explained_variance: float = 0.99,
                    names: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit MASC per layer on ``train[layer]`` with ``fit_labels``; score it on every target.

    ``targets`` maps a set name to ``("train" | "test", labels)``. Returns the accuracies (one row
    per layer and set: ``layer``, ``layer_name``, ``layer_index``, ``set``, ``accuracy``) and the
    subspace sizes (one row per layer and class: ``n_components``).
    """
    names = names or {layer: layer for layer in train}
    accuracy, components = [], []
    for index, layer in enumerate(train):
        masc = MASC(explained_variance=explained_variance, device=default_device()).fit(train[layer], fit_labels)
        predicted = {"train": masc.predict(train[layer]), "test": masc.predict(test[layer])}
        for name, (split, labels) in targets.items():
            accuracy.append(dict(layer=layer, layer_name=names[layer], layer_index=index, set=name,
                                 accuracy=float(np.mean(predicted[split] == np.asarray(labels)))))
        for label, n in zip(masc.classes_, masc.n_components_):
            components.append(dict(layer=layer, layer_name=names[layer], layer_index=index, label=int(label),
                                   n_components=int(n)))
    return pd.DataFrame(accuracy), pd.DataFrame(components)


def subspace_labels(config: RunConfig, subspace: str) -> torch.Tensor:
    """The training labels a subspace spec names for the run of ``config`` (see the module docstring)."""
    data = prepare_data(config)
    if subspace == "corrupted":
        return data.y_train
    if subspace == "true":
        return data.y_train_original
    if subspace.startswith("corrupted:"):
        return prepare_data(replace(config, corruption=float(subspace.split(":", 1)[1]))).y_train
    raise ValueError(f"unknown subspace labels {subspace!r}: 'corrupted', 'true' or 'corrupted:<p>'")


STORE = Store("decode", sources=("studies/masc/decoding.py", "studies/masc/classifier.py"))  # the run's key already hashes the training code


def _decode_settings(config: RunConfig, subspaces: Sequence[str], variances: Sequence[float], random_init: bool) -> dict:
    return dict(run=run_key(config), subspaces=list(subspaces), variances=[float(v) for v in variances],
                random_init=bool(random_init))


def decode_run(config: RunConfig, subspaces: Sequence[str] = ("corrupted", "true"),
               variances: Sequence[float] = (0.99,), random_init: bool = False,
               use_cache: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """MASC accuracy per probed layer of the run of ``config`` (trained or fetched via :func:`lib.runs.run`).

    ``random_init=True`` decodes the same network before training (appendix A.6's control: the
    architecture built from the run's own initialization seed). Returns ``(accuracy, components)``
    with columns ``subspace``, ``variance``, ``network`` ("trained" or "random init") added to
    :func:`decode_features`' columns.
    """
    if use_cache:
        result, _ = STORE.fetch(_decode_settings(config, subspaces, variances, random_init),
                                lambda: dict(zip(("accuracy", "components"),
                                                 _decode(config, subspaces, variances, random_init))))
        return result["accuracy"], result["components"]
    return _decode(config, subspaces, variances, random_init)


def _decode(config: RunConfig, subspaces: Sequence[str], variances: Sequence[float],
            random_init: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = prepare_data(config)
    shape = tuple(data.x_train.shape[1:])
    if random_init:
        model = build_model(config.model, shape, data.num_classes, config.seed).eval()
    else:
        model = run(config).model()
    layers = probed_layers(config.model, model)
    names = display_names(model, shape, layers)
    train = layer_features(model, data.x_train, layers)
    test = layer_features(model, data.x_test, layers)
    targets = {"corrupted train": ("train", data.y_train.numpy()), "original train": ("train", data.y_train_original.numpy()),
               "test": ("test", data.y_test.numpy())}
    accuracy, components = [], []
    for subspace in subspaces:
        labels = subspace_labels(config, subspace).numpy()
        if subspace.startswith("corrupted:"):  # a clean model probed with labels corrupted afterwards
            targets = {**targets, "corrupted train": ("train", labels)}
        for variance in variances:
            acc, comp = decode_features(train, test, labels, targets, variance, names)
            tags = dict(subspace=subspace, variance=float(variance), network="random init" if random_init else "trained")
            accuracy.append(acc.assign(**tags))
            components.append(comp.assign(**tags))
    return pd.concat(accuracy, ignore_index=True), pd.concat(components, ignore_index=True)


def decode_grid(jobs: Iterable[tuple[dict, RunConfig, dict]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decode many runs: ``jobs`` yields ``(tags, config, decode_run keyword arguments)``.

    The tags (e.g. ``model="MLP-MNIST", corruption=0.4``) become columns of both frames.
    """
    accuracy, components = [], []
    for tags, config, kwargs in jobs:
        acc, comp = decode_run(config, **kwargs)
        accuracy.append(acc.assign(**tags))
        components.append(comp.assign(**tags))
    return pd.concat(accuracy, ignore_index=True), pd.concat(components, ignore_index=True)


def best_layer(accuracy: pd.DataFrame, by: Sequence[str], on: str = "test") -> pd.DataFrame:
    """For each group of ``by``, the layer with the highest MASC accuracy on set ``on``."""
    frame = accuracy[accuracy["set"] == on]
    return frame.loc[frame.groupby(list(by))["accuracy"].idxmax()].reset_index(drop=True)


def input_decoding(config: RunConfig, explained_variance: float = 0.99) -> dict[str, float]:
    """MASC on the preprocessed input alone (no network) for the data of ``config``: class subspaces from its
    (corrupted) training labels, scored like :func:`decode_run`'s ``input`` layer. Cheap (one PCA per class),
    so the chapter can show how the raw-input decoder moves with the number of training images."""
    data = prepare_data(config)
    train, test = data.x_train.flatten(1).numpy(), data.x_test.flatten(1).numpy()
    masc = MASC(explained_variance=explained_variance, device=default_device()).fit(train, data.y_train.numpy())
    predicted = masc.predict(train)
    return {"corrupted train": float(np.mean(predicted == data.y_train.numpy())),
            "original train": float(np.mean(predicted == data.y_train_original.numpy())),
            "test": float(np.mean(masc.predict(test) == data.y_test.numpy()))}
