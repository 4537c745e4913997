"""Double descent (Belkin et al. 2019): weight reuse, the joint sweep trainer and the minimum-norm random-feature
solve, checked on real MNIST slices and against independent computations."""

from __future__ import annotations

import json

import pytest
import torch

from lib.studies.weng2019 import double_descent as dd


@pytest.fixture(autouse=True)
def one_thread():
    """Small products on a shared 2-core machine run many times faster on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mnist_slice():
    split = dd.mnist_split(120, 100, seed=3)
    return split.x_train, split.y_train


def test_parameter_count_and_threshold_follow_the_papers_formula():
    assert dd.n_params(50) == 785 * 50 + 51 * 10
    w = dd.threshold_width(4000)
    assert dd.n_params(int(w)) < 40_000 <= dd.n_params(int(w) + 1)


def test_weight_reuse_copies_the_smaller_net_exactly_and_draws_only_the_new_units():
    small = dd.glorot(20, seed=1)
    small = {k: v + 0.5 for k, v in small.items()}  # as if trained: biases no longer zero
    big = dd.grow(small, 300, seed=4)
    assert torch.equal(big["w1"][:, :20], small["w1"]) and torch.equal(big["w2"][:20], small["w2"])
    assert torch.equal(big["b1"][:20], small["b1"]) and torch.equal(big["b2"], small["b2"])
    assert big["w1"].shape == (784, 300) and big["w2"].shape == (300, 10)
    new = torch.cat([big["w1"][:, 20:].flatten(), big["w2"][20:].flatten()])
    assert abs(new.var().item() - 0.01) < 0.0005 and abs(new.mean().item()) < 0.002  # N(0, 0.01)
    assert torch.all(big["b1"][20:] == 0)
    other = dd.grow(small, 300, seed=5)  # another seed changes only the new units
    assert torch.equal(other["w1"][:, :20], big["w1"][:, :20])
    assert not torch.allclose(other["w1"][:, 20:], big["w1"][:, 20:])


@pytest.mark.parametrize("spec", [
    dd.TrainSpec(epochs=3, lr=0.05, momentum=0.9, batch_size=64, seed=2),
    dd.TrainSpec(epochs=4, lr=0.1, momentum=0.95, batch_size=None, lr_decay=0.9, lr_decay_every=2),
    dd.TrainSpec(epochs=3, lr=1e-3, optimizer="adam", batch_size=50, loss_on="softmax", seed=1),
], ids=["sgd-minibatch", "full-batch-decay", "adam-softmax"])
def test_joint_sweep_gives_each_width_the_result_of_training_it_alone(mnist_slice, spec):
    x, y = mnist_slice
    widths = [3, 11, 40]
    decays = [True, False, True]
    joint, _ = dd.train_sweep([dd.glorot(w, 0) for w in widths], x, y, spec, decays=decays)
    for j, w in enumerate(widths):
        (alone,), _ = dd.train_sweep([dd.glorot(w, 0)], x, y, spec, decays=[decays[j]])
        start = dd.glorot(w, 0)
        assert not torch.allclose(alone["w1"], start["w1"])  # it did train
        for name in ("w1", "b1", "w2", "b2"):  # float32 sums in a different order: agree to 1e-5
            torch.testing.assert_close(joint[j][name], alone[name], rtol=1e-4, atol=1e-5)


def test_a_width_stops_at_zero_training_error_and_then_does_not_move(mnist_slice):
    x, y = mnist_slice[0][:20], mnist_slice[1][:20]
    spec = dd.TrainSpec(epochs=400, lr=0.05, momentum=0.9, stop_at_zero_error=True)
    nets, epochs = dd.train_sweep([dd.glorot(w, 0) for w in (1, 64)], x, y, spec)
    assert epochs[1] < 400 and epochs[0] == 400  # one unit cannot fit 20 images of up to 10 classes
    again, _ = dd.train_sweep([dd.glorot(64, 0)], x, y, dd.TrainSpec(**{**spec.__dict__, "epochs": epochs[1]}))
    torch.testing.assert_close(nets[1]["w1"], again[0]["w1"], rtol=1e-4, atol=1e-5)
    assert dd.evaluate(nets[1:], x, y)["error"] == [0.0]


def test_the_sweeps_adam_is_torchs_adam(mnist_slice):
    x, y = mnist_slice
    spec = dd.TrainSpec(epochs=5, lr=3e-3, optimizer="adam")  # full batch: 5 steps
    (ours,), _ = dd.train_sweep([dd.glorot(16, 2)], x, y, spec)
    start = dd.glorot(16, 2)
    params = [start[k].clone().requires_grad_(True) for k in ("w1", "b1", "w2", "b2")]
    optimizer = torch.optim.Adam(params, lr=3e-3)
    for _ in range(5):
        optimizer.zero_grad()
        out = torch.relu(x @ params[0] + params[1]) @ params[2] + params[3]
        ((out - torch.nn.functional.one_hot(y, 10)) ** 2).sum(1).mean().backward()
        optimizer.step()
    for name, p in zip(("w1", "b1", "w2", "b2"), params):
        torch.testing.assert_close(ours[name], p.detach(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n, features", [(40, 15), (40, 40), (40, 120)])
def test_random_feature_solution_is_least_squares_below_and_min_norm_interpolant_above(n, features):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 784, generator=g, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.randint(0, 10, (n,), generator=g), 10).double()
    v, b = dd.fourier_frequencies(features, sigma=5.0, seed=1)
    z = dd.fourier_features(x, v, b)
    assert z.shape == (n, features)  # N features, not 2N
    w = dd.min_norm_lstsq(z, y)
    torch.testing.assert_close(w, torch.linalg.pinv(z) @ y, rtol=1e-6, atol=1e-6)  # independent: SVD pinv
    if features < n:  # the normal equations of least squares hold
        torch.testing.assert_close(z.T @ (z @ w - y), torch.zeros(features, 10, dtype=torch.float64),
                                   rtol=0, atol=1e-8)
    else:  # interpolates, and the solution lies in the row space of z (so it is the minimum-norm one)
        torch.testing.assert_close(z @ w, y, rtol=0, atol=1e-6)
        other = w + (torch.eye(features, dtype=torch.float64) - torch.linalg.pinv(z) @ z) @ torch.randn(
            features, 10, generator=g, dtype=torch.float64)
        torch.testing.assert_close(z @ other, y, rtol=0, atol=1e-6)
        if features > n:
            assert w.norm() < other.norm()


def test_fourier_features_approximate_the_gaussian_kernel():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(5, 784, generator=g, dtype=torch.float64) * 0.3
    v, b = dd.fourier_frequencies(40_000, sigma=5.0, seed=3)
    z = dd.fourier_features(x, v, b)
    kernel = torch.exp(-torch.cdist(x, x) ** 2 / (2 * 25.0))
    assert (z @ z.T - kernel).abs().max() < 0.03  # Monte Carlo error about 1 / sqrt(N) = 0.005


def test_curves_are_cached_on_disk_and_reused(isolated_cache, monkeypatch):
    first = dd.rff_curve(100, [20, 100, 300], sigma=5.0, seed=0, n_test=200)
    assert not first["cached"] and first["train_loss"][2] < 1e-6  # N > n interpolates
    entries = [p for p in (isolated_cache / "double-descent").iterdir() if (p / "manifest.json").is_file()]
    assert len(entries) == 1 and json.loads((entries[0] / "result.json").read_text())["features"] == [20, 100, 300]
    monkeypatch.setattr(dd, "min_norm_lstsq", lambda *a, **k: pytest.fail("recomputed instead of cached"))
    again = dd.rff_curve(100, [20, 100, 300], sigma=5.0, seed=0, n_test=200)
    assert again["cached"] and again["test_loss"] == first["test_loss"]
