"""The library glue of the Theunissen chapter: per-layer metrics of a trained MLP, PCA projections,
the 55k/5k/10k split, the random-vector task and best-of-initializations, on hand-made cases."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

import lib.runs as runs
from lib.data import load_dataset, random_vectors, resplit
from lib.models import MLP
from lib.studies.theunissen2019.probes import (between_class_variance_share, layer_metrics, layer_projections, mean_cosine_similarity,
                        mean_polarization, pca, shuffle_within_class)
from lib.train import RunConfig, prepare_data

R2 = 1 / math.sqrt(2)


def identity_mlp() -> MLP:
    """2 inputs → fc1 (2 nodes) → fc2 (2 nodes) → 2 outputs, no biases, every weight matrix the identity."""
    model = MLP(2, [2, 2], 2, bias="none")
    with torch.no_grad():
        for name in ("fc1", "fc2"):
            model.hidden_linear(name).weight.copy_(torch.eye(2))
        model.blocks.output.weight.copy_(torch.eye(2))
    return model


X = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0], [-1.0, 1.0]])
LABELS = torch.tensor([0, 0, 1, 1])
CORRUPTED = torch.tensor([False, True, False, True])


def test_layer_metrics_by_hand():
    # With identity weights and non-negative outputs, fc1 and fc2 both output relu(x):
    #   rows (2,0), (1,1), (0,3), (0,1).
    # fc1, node 0 (w = e1): active on x0 (cos 1) and x1 (cos 1/√2) → (1 + 1/√2)/2;
    #      node 1 (w = e2): active on x1 (1/√2), x2 (1), x3 = (-1,1) (a = 1, ||x|| = √2 → 1/√2) → (1 + 2/√2)/3.
    # fc2 sees relu(x): x3 becomes (0,1), so node 1's cosines are 1/√2, 1, 1 → (2 + 1/√2)/3.
    # Polarization (true classes): node 0, class 0 = {x0 clean, x1 corrupted} → 0; class 1: none active → omitted.
    #   node 1, class 0 = {x1 corrupted} → 1; class 1 = {x2 clean, x3 corrupted} → 0.  Mean (0 + 1 + 0)/3.
    frame = layer_metrics(identity_mlp(), X, LABELS, CORRUPTED, num_classes=2, chunk_size=3)
    assert list(frame.layer) == ["fc1", "fc2"] and list(frame.depth) == [1, 2]
    fc1 = ((1 + R2) / 2 + (1 + 2 * R2) / 3) / 2
    fc2 = ((1 + R2) / 2 + (2 + R2) / 3) / 2
    assert frame.mean_cosine.tolist() == pytest.approx([fc1, fc2])
    assert frame.mean_polarization.tolist() == pytest.approx([1 / 3, 1 / 3])
    assert frame.dead_nodes.tolist() == [0, 0]


def test_layer_metrics_agree_with_the_probes_on_a_random_network():
    torch.manual_seed(0)
    model = MLP(6, [5, 4, 3], 3, bias="first")
    x = torch.randn(50, 6)
    labels = torch.randint(0, 3, (50,))
    corrupted = torch.rand(50) < 0.4
    frame = layer_metrics(model, x, labels, corrupted, 3, chunk_size=7).set_index("layer")
    outputs = model.layer_outputs(x)
    for previous, name in (("flatten", "fc1"), ("fc1", "fc2"), ("fc2", "fc3")):
        weight = model.hidden_linear(name).weight.detach()
        assert frame.loc[name, "mean_cosine"] == pytest.approx(
            mean_cosine_similarity(weight, outputs[previous].detach(), outputs[name].detach()), nan_ok=True)
        assert frame.loc[name, "mean_polarization"] == pytest.approx(
            mean_polarization(outputs[name].detach(), labels, corrupted, 3), nan_ok=True)
    pd.testing.assert_frame_equal(frame, layer_metrics(model, x, labels, corrupted, 3, chunk_size=1000).set_index("layer"))


def test_chance_polarization_without_corruption_is_one_and_the_shuffle_keeps_class_counts():
    frame = layer_metrics(identity_mlp(), X, LABELS, torch.zeros(4, dtype=torch.bool), 2)
    assert frame.mean_polarization.tolist() == [1.0, 1.0] and frame.chance_polarization.tolist() == [1.0, 1.0]
    labels = torch.arange(1000) % 3
    corrupted = torch.rand(1000, generator=torch.Generator().manual_seed(1)) < 0.3
    shuffled = shuffle_within_class(corrupted, labels, seed=0)
    assert not torch.equal(shuffled, corrupted)
    for c in range(3):
        assert int(shuffled[labels == c].sum()) == int(corrupted[labels == c].sum())
    assert torch.equal(shuffled, shuffle_within_class(corrupted, labels, seed=0))


def test_layer_metrics_reject_mismatched_inputs():
    with pytest.raises(ValueError):
        layer_metrics(identity_mlp(), X, LABELS[:3], CORRUPTED, 2)
    with pytest.raises(ValueError):
        layer_metrics(identity_mlp(), X, torch.tensor([0, 1, 2, 0]), CORRUPTED, 2)


def test_between_class_variance_share_by_hand():
    features = torch.tensor([[0.0], [0.0], [2.0], [2.0]])
    assert between_class_variance_share(features, [0, 0, 1, 1]) == pytest.approx(1.0)
    assert between_class_variance_share(features, [0, 1, 0, 1]) == pytest.approx(0.0)
    # values 0, 1 | 1, 2: class means 0.5 and 1.5 around 1 → between 4 · 0.25 = 1; total 1 + 0 + 0 + 1 = 2
    assert between_class_variance_share(torch.tensor([[0.0], [1.0], [1.0], [2.0]]), [0, 0, 1, 1]) == pytest.approx(0.5)
    assert math.isnan(between_class_variance_share(torch.ones(3, 2), [0, 1, 1]))


def test_pca_by_hand():
    # Points on the line through (1, 1): one component explains everything, scores ±√2 and 0.
    features = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    scores, ratios = pca(features, 2)
    assert ratios.tolist() == pytest.approx([1.0, 0.0], abs=1e-12)
    assert scores[:, 0].tolist() == pytest.approx([-math.sqrt(2), 0.0, math.sqrt(2)])
    assert scores[:, 1].abs().max() < 1e-12


def test_layer_projections_cover_every_feature_space():
    model = identity_mlp()
    frame = layer_projections(model, X, LABELS)
    assert list(frame.layer.unique()) == ["input", "fc1", "fc2", "output"]
    assert list(frame.position.unique()) == [0, 1, 2, 3] and len(frame) == 4 * len(X)
    assert frame.explained.between(0.999, 1.0 + 1e-9).all()  # 2-D spaces, 2 components
    assert set(frame.columns) >= {"sample", "label", "pc1", "pc2", "class_separation"}


def test_random_vectors_are_balanced_and_deterministic():
    data = load_dataset("random-vectors")
    assert data.x_train.shape == (100, 50) and data.num_classes == 5
    assert torch.bincount(data.y_train).tolist() == [20] * 5
    assert torch.equal(data.x_train, random_vectors().x_train)
    assert not torch.equal(random_vectors(seed=1).x_train, data.x_train)
    assert prepare_data(RunConfig(dataset="random-vectors", preprocessing="none")).x_train.shape == (100, 50)


def test_theunissen_split_is_the_55k_5k_10k_resplit():
    config = RunConfig(dataset="mnist", split="theunissen", preprocessing="none", data_seed=3)
    data = prepare_data(config)
    evaluation, _ = resplit(load_dataset("mnist"), 55_000, 5_000, 10_000, seed=3)
    assert data.x_train.shape[0] == 55_000 and data.x_test.shape[0] == 10_000
    assert torch.equal(data.y_test, evaluation.y_test) and torch.equal(data.x_train, evaluation.x_train.float())
    small = prepare_data(RunConfig(dataset="mnist", split="theunissen", n_train=100, n_test=50, preprocessing="none",
                                   data_seed=3))
    assert len(small.y_train) == 100 and len(small.y_test) == 50
    with pytest.raises(ValueError):
        RunConfig(split="random")


def test_run_best_of_keeps_the_best_fit_of_each_setting(monkeypatch):
    seen = []

    def fake_grid(configs, device=None):
        configs = list(configs)
        seen.extend(configs)
        acc = {(0.0, 0): 1.0, (0.0, 1): 1.0, (0.5, 0): 0.97, (0.5, 1): 0.999}
        return pd.DataFrame([{**c.to_dict(), "final_train_acc": acc[(c.corruption, c.seed)]} for c in configs])

    monkeypatch.setattr(runs, "run_grid", fake_grid)
    base = RunConfig(dataset="mnist")
    frame = runs.run_best_of([base, RunConfig(dataset="mnist", corruption=0.5)], seeds=[0, 1])
    # one grid per seed (so the settings of a seed can train together, batched)
    assert [(c.corruption, c.seed) for c in seen] == [(0.0, 0), (0.5, 0), (0.0, 1), (0.5, 1)]
    best = frame[frame.best]
    assert list(zip(best.corruption, best.seed)) == [(0.0, 0), (0.5, 1)]  # a tie goes to the first seed
    assert all(isinstance(c, RunConfig) for c in frame.config) and list(frame.setting) == [0, 0, 1, 1]


def test_run_best_of_can_stop_at_the_first_fitted_seed(monkeypatch):
    seen = []

    def fake_grid(configs, device=None):
        configs = list(configs)
        seen.extend(configs)
        return pd.DataFrame([{**c.to_dict(), "final_train_acc": 0.98 if c.corruption and c.seed == 0 else 1.0}
                             for c in configs])

    monkeypatch.setattr(runs, "run_grid", fake_grid)
    frame = runs.run_best_of([RunConfig(), RunConfig(corruption=0.5)], seeds=[0, 1, 2], enough=0.999)
    assert [(c.corruption, c.seed) for c in seen] == [(0.0, 0), (0.5, 0), (0.5, 1)]
    assert list(zip(frame[frame.best].corruption, frame[frame.best].seed)) == [(0.0, 0), (0.5, 1)]
