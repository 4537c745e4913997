"""A linear probe on the same layers MASC decodes: the second baseline beside MASC on the input.

MASC (:mod:`lib.studies.masc.classifier`) is a quadratic classifier: it compares a point with each class's subspace.
Its authors' follow-up (Ketha & Ramaswamy, *On the Dynamics & Transferability of Latent Generalization during
Memorization*, TMLR 2026) compares it with a linear probe on the same layers; neither is better everywhere. Here the
probe is plain multinomial logistic regression:

- features standardized with the training set's mean and standard deviation (a constant feature is left at 0);
- weights and biases from zero, fitted by full-batch L-BFGS (strong-Wolfe line search) on the softmax cross-entropy
  of the given training labels plus ``weight_decay``·‖W‖²/2, for at most ``max_iter`` iterations;
- scored like :func:`lib.studies.masc.decoding.decode_run`: the training images against the labels it was fitted on
  (``corrupted train``), against their true labels (``original train``), and the test images (``test``).

Fitting from zero with a deterministic full-batch optimizer makes the probe a function of its inputs: the same
features and labels give the same accuracies. Results are kept in the result store (:mod:`lib.cache`, ``probe``)
under the run's key, the probe's settings and this module's source.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from lib.cache import Store
from lib.runs import run, run_key
from lib.studies.masc.decoding import display_names, layer_features, probed_layers, subspace_labels
from lib.train import RunConfig, prepare_data

STORE = Store("probe", sources=("studies/masc/probe.py",))


def fit_linear_probe(x: np.ndarray, y: np.ndarray, n_classes: int, weight_decay: float = 1e-4,
                     max_iter: int = 200) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fit the probe on features ``x`` (n, d) and labels ``y``; returns ``(mean, scale, weight, bias)``."""
    features = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    labels = torch.as_tensor(np.asarray(y), dtype=torch.long)
    mean = features.mean(0)
    std = features.std(0)
    scale = torch.where(std > 1e-6, 1.0 / std.clamp_min(1e-6), torch.zeros_like(std))
    z = (features - mean) * scale
    weight = torch.zeros(z.shape[1], n_classes, requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ weight + bias, labels) + 0.5 * weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return mean, scale, weight.detach(), bias.detach()


def predict_linear_probe(probe, x: np.ndarray) -> np.ndarray:
    mean, scale, weight, bias = probe
    z = (torch.as_tensor(np.asarray(x), dtype=torch.float32) - mean) * scale
    return (z @ weight + bias).argmax(1).numpy()


def probe_features(train: dict[str, np.ndarray], test: dict[str, np.ndarray], fit_labels: np.ndarray,
                   targets: dict[str, tuple[str, np.ndarray]], n_classes: int,
                   names: dict[str, str] | None = None) -> pd.DataFrame:
    """The probe per layer of ``train``/``test`` (features by layer), fitted on ``fit_labels`` and scored on every
    target (``name -> ("train" | "test", labels)``): one row per layer and set, the columns of
    :func:`lib.studies.masc.decoding.decode_features`' accuracy frame."""
    names = names or {layer: layer for layer in train}
    rows = []
    for index, layer in enumerate(train):
        probe = fit_linear_probe(train[layer], fit_labels, n_classes)
        predicted = {"train": predict_linear_probe(probe, train[layer]), "test": predict_linear_probe(probe, test[layer])}
        for name, (split, labels) in targets.items():
            rows.append(dict(layer=layer, layer_name=names[layer], layer_index=index, set=name,
                             accuracy=float(np.mean(predicted[split] == np.asarray(labels)))))
    return pd.DataFrame(rows)


def probe_run(config: RunConfig, subspaces: Sequence[str] = ("corrupted",)) -> pd.DataFrame:
    """The linear probe on every layer MASC probes in the trained network of ``config`` (:func:`lib.runs.run`),
    fitted on each label set of ``subspaces`` (``"corrupted"``, ``"true"``; as MASC's): the accuracy frame with a
    ``subspace`` column, from the result store when it holds it."""
    settings = dict(run=run_key(config), subspaces=list(subspaces), probe="logistic-lbfgs")
    result, _ = STORE.fetch(settings, lambda: {"accuracy": _probe(config, subspaces)})
    return result["accuracy"]


def _probe(config: RunConfig, subspaces: Sequence[str]) -> pd.DataFrame:
    data = prepare_data(config)
    model = run(config).model()
    shape = tuple(data.x_train.shape[1:])
    layers = probed_layers(config.model, model)
    names = display_names(model, shape, layers)
    train = layer_features(model, data.x_train, layers)
    test = layer_features(model, data.x_test, layers)
    targets = {"corrupted train": ("train", data.y_train.numpy()),
               "original train": ("train", data.y_train_original.numpy()), "test": ("test", data.y_test.numpy())}
    frames = [probe_features(train, test, subspace_labels(config, s).numpy(), targets, data.num_classes, names)
              .assign(subspace=s) for s in subspaces]
    return pd.concat(frames, ignore_index=True)
