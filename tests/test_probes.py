"""Tests for lib.studies.theunissen2019.probes (Theunissen et al. 2019, Eqs. 4-6 and Fig. 4), with hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lib.studies.theunissen2019.probes import (
    active_mask,
    mean_cosine_similarity,
    mean_polarization,
    node_cosine_similarity,
    node_polarization,
    sample_set_composition,
)

R2 = 1 / math.sqrt(2)


# ---------------------------------------------------------------- Eq. (4)


def _relu_layer(weight: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    return torch.relu(prev @ weight.T)


def test_active_mask() -> None:
    a = torch.tensor([[0.0, 2.0], [-1.0, 1e-9]])
    assert active_mask(a).tolist() == [[False, True], [False, True]]
    assert active_mask(a.numpy()).dtype == torch.bool


def test_cosine_hand_computed() -> None:
    # w_0 = (1,0), w_1 = (0,1); inputs (2,0) and (1,1).
    # node 0: active on both, cosines 1 and 1/sqrt2; node 1: active only on (1,1), cosine 1/sqrt2.
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    prev = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    act = _relu_layer(w, prev)
    per_node = node_cosine_similarity(w, prev, act)
    assert per_node.tolist() == pytest.approx([(1 + R2) / 2, R2])
    assert mean_cosine_similarity(w, prev, act) == pytest.approx(((1 + R2) / 2 + R2) / 2)


def test_cosine_normalises_by_weight_norm() -> None:
    # Scaling w_0 by 3 scales a_0 by 3 but leaves the cosines unchanged.
    w = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    prev = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    per_node = node_cosine_similarity(w, prev, _relu_layer(w, prev))
    assert per_node.tolist() == pytest.approx([(1 + R2) / 2, R2])


def test_cosine_inactive_samples_are_excluded() -> None:
    # Input (-1, 1): node 0 inactive (would be cos -1/sqrt2); node 1 active with cos 1/sqrt2.
    w = torch.eye(2)
    prev = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    per_node = node_cosine_similarity(w, prev, _relu_layer(w, prev))
    assert per_node.tolist() == pytest.approx([1.0, R2])


def test_cosine_dead_node_is_nan_and_omitted() -> None:
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])  # node 2 never fires on positive inputs
    prev = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    act = _relu_layer(w, prev)
    per_node = node_cosine_similarity(w, prev, act)
    assert math.isnan(per_node[2])
    assert mean_cosine_similarity(w, prev, act) == pytest.approx(((1 + R2) / 2 + R2) / 2)


def test_cosine_zero_norm_guards() -> None:
    w = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # node 1: zero weight vector
    prev = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # sample 1: zero input
    act = torch.tensor([[1.0, 0.5], [0.7, 0.5]])  # positive through a bias
    per_node = node_cosine_similarity(w, prev, act)
    assert per_node[0].item() == pytest.approx(1.0)  # zero-input sample left out
    assert math.isnan(per_node[1])
    assert mean_cosine_similarity(w, prev, act) == pytest.approx(1.0)
    assert math.isnan(mean_cosine_similarity(w, prev, torch.zeros(2, 2)))


def test_cosine_matches_torch_cosine_similarity() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 5, generator=g)
    prev = torch.relu(torch.randn(40, 5, generator=g))
    act = _relu_layer(w, prev)
    expected = []
    for i in range(6):
        on = act[:, i] > 0
        cos = torch.nn.functional.cosine_similarity(prev[on], w[i].expand(int(on.sum()), 5), dim=1)
        expected.append(cos.double().mean().item() if on.any() else math.nan)
    got = node_cosine_similarity(w, prev, act).tolist()
    assert got == pytest.approx(expected, nan_ok=True)
    assert mean_cosine_similarity(w, prev, act) == pytest.approx(np.nanmean(expected))


def test_cosine_chunked_equals_unchunked_and_numpy_equals_torch() -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(16, 8, generator=g)
    prev = torch.relu(torch.randn(1000, 8, generator=g))
    act = torch.relu(prev @ w.T + 0.1)
    full = node_cosine_similarity(w, prev, act, chunk_size=10**6)
    assert torch.allclose(node_cosine_similarity(w, prev, act, chunk_size=7), full, equal_nan=True)
    from_numpy = node_cosine_similarity(w.numpy(), prev.numpy(), act.numpy())
    assert torch.allclose(from_numpy, full, equal_nan=True)
    assert mean_cosine_similarity(w.numpy(), prev.numpy(), act.numpy(), chunk_size=3) == pytest.approx(
        mean_cosine_similarity(w, prev, act)
    )


def test_cosine_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        node_cosine_similarity(torch.eye(2), torch.ones(3, 2), torch.ones(3, 3))
    with pytest.raises(ValueError):
        node_cosine_similarity(torch.eye(2), torch.ones(3, 2), torch.ones(4, 2))


# ---------------------------------------------------------------- Eqs. (5), (6), Fig. 4

# Five samples, two classes, four nodes:
#   node 0: active on samples 0,1,2 (class 0; sample 2 corrupted) -> class 0: 2|1/2-1/3| = 1/3
#           and on sample 3 (class 1, clean)                       -> class 1: 1
#   node 1: active on samples 2 (class 0, corrupted)               -> class 0: 1
#           and 3, 4 (class 1, one clean one corrupted)            -> class 1: 0
#   node 2: dead
#   node 3: active on sample 4 only (class 1, corrupted)           -> class 0: NaN, class 1: 1
LABELS = [0, 0, 0, 1, 1]
CORRUPTED = [False, False, True, False, True]
ACT = torch.tensor(
    [
        [1.0, 0.0, 0.0, 0.0],
        [0.5, 0.0, 0.0, 0.0],
        [2.0, 3.0, 0.0, 0.0],
        [1.0, 1.0, 0.0, 0.0],
        [0.0, 2.0, -1.0, 4.0],
    ]
)
NAN = math.nan
EXPECTED_POL = [[1 / 3, 1.0, NAN, NAN], [1.0, 0.0, NAN, 1.0]]


def test_polarization_hand_computed() -> None:
    pol = node_polarization(ACT, torch.tensor(LABELS), torch.tensor(CORRUPTED), num_classes=2)
    assert pol.shape == (2, 4)
    assert pol.flatten().tolist() == pytest.approx(sum(EXPECTED_POL, []), nan_ok=True)


def test_mean_polarization_omits_dead_nodes_and_empty_pairs() -> None:
    # Non-NaN entries: 1/3, 1, 1, 0, 1.
    got = mean_polarization(ACT, torch.tensor(LABELS), torch.tensor(CORRUPTED), num_classes=2)
    assert got == pytest.approx((1 / 3 + 1 + 1 + 0 + 1) / 5)
    assert math.isnan(mean_polarization(torch.zeros(5, 3), LABELS, CORRUPTED, num_classes=2))


def test_polarization_extremes() -> None:
    act = torch.ones(4, 1)
    assert node_polarization(act, [0] * 4, [True] * 4, 1).item() == pytest.approx(1.0)
    assert node_polarization(act, [0] * 4, [False] * 4, 1).item() == pytest.approx(1.0)
    assert node_polarization(act, [0] * 4, [True, False, True, False], 1).item() == pytest.approx(0.0)


def test_polarization_groups_by_given_labels() -> None:
    # Same activations/corruption, class membership from the labels argument:
    # all four samples in class 0 -> 1 corrupted of 4 -> 2|1/2-1/4| = 1/2.
    act = torch.ones(4, 1)
    corrupted = [True, False, False, False]
    assert node_polarization(act, [0, 0, 0, 0], corrupted, 2)[:, 0].tolist() == pytest.approx([0.5, NAN], nan_ok=True)
    # Corrupted sample moved to class 1 -> both classes fully polarized.
    assert node_polarization(act, [1, 0, 0, 0], corrupted, 2)[:, 0].tolist() == pytest.approx([1.0, 1.0])


def test_polarization_numpy_and_chunks() -> None:
    rng = np.random.default_rng(2)
    act = np.maximum(rng.normal(size=(500, 12)), 0).astype(np.float32)
    labels = rng.integers(0, 10, size=500)
    corrupted = rng.random(500) < 0.3
    ref = node_polarization(torch.from_numpy(act), torch.from_numpy(labels), torch.from_numpy(corrupted), 10)
    assert torch.allclose(node_polarization(act, labels, corrupted, 10, chunk_size=9), ref, equal_nan=True)
    # brute force for one (class, node) pair
    on = (act[:, 5] > 0) & (labels == 3)
    assert ref[3, 5].item() == pytest.approx(2 * abs(0.5 - corrupted[on].sum() / on.sum()))
    assert mean_polarization(act, labels, corrupted, 10, chunk_size=11) == pytest.approx(float(ref.nanmean()))


def test_polarization_bad_labels_raise() -> None:
    with pytest.raises(ValueError):
        node_polarization(ACT, [0, 0, 0, 1, 2], CORRUPTED, num_classes=2)
    with pytest.raises(ValueError):
        node_polarization(ACT, [0, 0, 0, 1], CORRUPTED, num_classes=2)


def test_sample_set_composition_hand_computed() -> None:
    df = sample_set_composition(ACT.numpy(), np.array(LABELS), np.array(CORRUPTED), num_classes=2)
    assert list(df.columns) == ["node", "class", "n_true", "n_corrupted", "sample_set_size", "rank"]
    # sizes: node0 4, node1 3, node2 0, node3 1 -> ranks 1, 2, 4, 3
    expected = pd.DataFrame(
        [
            # node, class, n_true, n_corrupted, size, rank
            [0, 0, 2, 1, 4, 1],
            [0, 1, 1, 0, 4, 1],
            [1, 0, 0, 1, 3, 2],
            [1, 1, 1, 1, 3, 2],
            [3, 0, 0, 0, 1, 3],
            [3, 1, 0, 1, 1, 3],
            [2, 0, 0, 0, 0, 4],
            [2, 1, 0, 0, 0, 4],
        ],
        columns=df.columns,
    ).astype("int64")
    pd.testing.assert_frame_equal(df, expected)


def test_sample_set_composition_consistent_with_polarization() -> None:
    rng = np.random.default_rng(3)
    act = torch.relu(torch.from_numpy(rng.normal(size=(300, 7))))
    labels = torch.from_numpy(rng.integers(0, 4, size=300))
    corrupted = torch.from_numpy(rng.random(300) < 0.5)
    df = sample_set_composition(act, labels, corrupted, 4, chunk_size=13)
    sizes = df.groupby("node")[["n_true", "n_corrupted"]].sum().sum(axis=1)
    assert (sizes == df.groupby("node")["sample_set_size"].first()).all()
    assert (sizes.to_numpy() == (act > 0).sum(0).numpy()).all()
    by_rank = df.groupby("rank")["sample_set_size"].first()
    assert by_rank.is_monotonic_decreasing and list(by_rank.index) == list(range(1, 8))
    pol = node_polarization(act, labels, corrupted, 4)
    frac = df.n_corrupted / (df.n_true + df.n_corrupted)
    from_df = 2 * (0.5 - frac).abs()
    assert np.allclose(from_df.to_numpy(), pol[df["class"], df["node"]].numpy(), equal_nan=True)
