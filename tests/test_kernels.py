"""lib.studies.zhang2017.kernels (Zhang et al. 2017, Section 5): the blocked Gaussian kernel, the exact and iterative minimum-norm
interpolants on real MNIST pixels against an independent float64 solve, the memory check, and the disk cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.studies.zhang2017 import kernel_features as kf
from lib.studies.zhang2017 import kernels
from lib.data import load_dataset


@pytest.fixture(scope="module")
def mnist_slice():
    data = load_dataset("mnist")
    x = data.x_train[:1500].reshape(1500, -1).float() / 255
    xt = data.x_test[:500].reshape(500, -1).float() / 255
    return x, data.y_train[:1500].long(), xt, data.y_test[:500].long()


def direct_kernel(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """exp(−γ‖a_i − b_j‖²) from SciPy's pairwise distances in float64 (independent of the ‖x‖² + ‖y‖² − 2xy route)."""
    from scipy.spatial.distance import cdist

    return np.exp(-gamma * cdist(a, b, "sqeuclidean"))


def test_blocked_kernel_equals_direct_computation(mnist_slice):
    x, _, xt, _ = mnist_slice
    a, b = x[:60].double().numpy(), xt[:45].double().numpy()
    K = kernels.gaussian_kernel(x[:60], block=7)  # blocks that do not divide n
    assert np.abs(K.double().numpy() - direct_kernel(a, a, 0.02)).max() < 1e-5
    assert torch.all(K.diagonal() == 1)
    cross = kernels.gaussian_kernel(x[:60], xt[:45], gamma=0.05, block=16)
    assert np.abs(cross.double().numpy() - direct_kernel(a, b, 0.05)).max() < 1e-5


def test_product_of_stored_float32_kernel_with_float64_vectors(mnist_slice):
    x = mnist_slice[0][:1000]
    K = kernels.gaussian_kernel(x)
    v = torch.randn(1000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact = K.double() @ v
    got = kernels.symmetric_matvec(K, v, block=300)
    assert (got - exact).norm() / exact.norm() < 1e-5  # float32 accumulation over 1,000 terms


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["cholesky", "pcg", "eigenpro"])
def test_solvers_match_an_independent_float64_solve(mnist_slice, solver):
    x, y, xt, yt = mnist_slice
    a = x.double().numpy()
    K = direct_kernel(a, a, 0.02)
    Y = np.eye(10)[y.numpy()]
    alpha = np.linalg.solve(K, Y)
    norm = np.sqrt(np.trace(alpha.T @ K @ alpha))
    pred = (direct_kernel(xt.double().numpy(), a, 0.02) @ alpha).argmax(1)
    q = 100 if solver == "eigenpro" else 300  # EigenPro wants q well below m (Ma & Belkin: 160 of 4,800)
    model = kernels.KernelInterpolant(gamma=0.02, solver=solver, max_iter=40, m=600, q=q).fit(x, y, 10)
    ours = model.predict(xt).numpy()
    assert model.solver_ == solver
    # EigenPro's gradient iteration converges more slowly than CG for the same preconditioner and products
    assert (ours == pred).mean() >= (0.99 if solver == "eigenpro" else 0.998)
    assert abs(model.norm_ - norm) / norm < (0.05 if solver == "eigenpro" else 0.01)
    assert model.train_error_ == 0
    assert model.residual_ < (1e-8 if solver == "cholesky" else 0.05)
    if solver != "cholesky":
        assert model.norm_ <= norm * (1 + 1e-6)  # an unconverged solve from zero underestimates the norm
        assert model.info_.residuals[-1] < model.info_.residuals[0]


def test_memory_check_refuses_before_allocating(monkeypatch, mnist_slice):
    x, y, _, _ = mnist_slice
    need = kernels.solver_bytes(1500, 784, "pcg")
    monkeypatch.setattr(kernels, "available_bytes", lambda: need // 2)

    def no_allocation(*args, **kwargs):
        raise AssertionError("the kernel was computed before the memory check")

    monkeypatch.setattr(kernels, "gaussian_kernel", no_allocation)
    with pytest.raises(kernels.KernelTooLarge, match="1,500 points"):
        kernels.KernelInterpolant(solver="pcg").fit(x, y, 10)
    with pytest.raises(kernels.KernelTooLarge, match="float64"):
        kernels.check_fits(60_000, 784, "cholesky", available=24 * 2 ** 30)  # float64 K of full MNIST: 28.8 GB


def test_largest_n_is_the_boundary_of_the_memory_check():
    available = 17 * 10 ** 9
    n = kernels.largest_n(784, "pcg", 20, available=available)
    kernels.check_fits(n, 784, "pcg", 20, available=available)
    with pytest.raises(kernels.KernelTooLarge):
        kernels.check_fits(n + 1, 784, "pcg", 20, available=available)
    assert 55_000 < n < 70_000  # a float32 K of n² entries is most of it
    assert kernels.largest_n(784, "pcg", available=10 ** 15, cap=60_000) == 60_000


def test_cached_fit_reuses_its_result(isolated_cache, mnist_slice):
    x, y, xt, _ = mnist_slice
    first = kernels.cached_fit("t", x[:300], y[:300, None], xt[:50], 10, gamma=0.02, solver="cholesky")
    again = kernels.cached_fit("t", x[:300], y[:300, None], xt[:50], 10, gamma=0.02, solver="cholesky")
    other = kernels.cached_fit("t", x[:300], y[:300, None], xt[:50], 10, gamma=0.03, solver="cholesky")
    assert not first["reused"] and again["reused"] and not other["reused"]
    assert np.array_equal(first["test_scores"], again["test_scores"])
    assert not list(isolated_cache.rglob(".tmp-*"))


def test_gabor_features_ignore_constant_images_and_random_features_have_8_per_filter():
    flat = torch.full((2, 1, 28, 28), 0.5)
    feats = kf.gabor_features(flat, scales=2, orientations=4, pool=7)
    assert feats.shape == (2, (1 + 2 * 4) * 49)
    assert torch.allclose(feats[:, :49], torch.full((2, 49), 0.5))  # the pooled image
    assert feats[:, 49:].abs().max() < 1e-5  # zero-mean filters: no response to a constant image
    cifar = load_dataset("cifar10")
    x = kf.pixels(cifar.x_train[:40])
    w, b = kf.zca_filters(x, 5, patch=6, n_patches=2000)
    feats = kf.random_conv_features(x, w, b, alpha=0.25)
    assert feats.shape == (40, 8 * 5) and (feats >= 0).all()


# --- the chapter's fits and tables (kernel_features) --------------------------------------------------------------


def _fake_fit(predicted: np.ndarray, num_classes: int = 10, **summary) -> dict:
    """A cached_fit-like result whose arg-max predictions are ``predicted`` (n × label sets)."""
    n, sets = predicted.shape
    scores = np.random.default_rng(0).uniform(0, 0.5, (n, sets, num_classes)).astype(np.float32)
    scores[np.arange(n)[:, None], np.arange(sets)[None, :], predicted] = 1.0
    return dict(summary, test_scores=scores.reshape(n, sets * num_classes))


def test_random_labels_are_seeded_uniform_draws():
    a, b = kf.random_labels(20_000, 1), kf.random_labels(20_000, 1)
    assert torch.equal(a, b) and not torch.equal(a, kf.random_labels(20_000, 2))
    counts = torch.bincount(a, minlength=10)
    assert len(counts) == 10 and counts.min() > 1800 and counts.max() < 2200  # 2,000 each, give or take 4 σ


def test_classification_errors_per_label_set():
    labels = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(1))
    true_set = labels.numpy().copy()
    true_set[:30] = (true_set[:30] + 1) % 10  # 30 mistakes
    random_set = np.random.default_rng(2).integers(0, 10, 200)
    fit = _fake_fit(np.stack([true_set, random_set], 1))
    errors = kf.classification_errors(fit, labels, 2)
    assert errors[0] == pytest.approx(30 / 200)
    assert errors[1] == pytest.approx(float(np.mean(random_set != labels.numpy())))
    row = kf.filter_row(16, 128, dict(fit, test_scores=fit["test_scores"][:, :10], group_norms=[3.0],
                                      train_errors=[0.0]), labels)
    assert row == {"filters": 16, "features": 128, "test error %": pytest.approx(15.0), "norm": 3.0, "train error %": 0.0}


def test_solver_settings_are_the_keys_of_the_solves():
    iterative = dict(solver="pcg", max_iter=15, tol=1e-6, m=300, q=100)
    assert kf.choose_solver(1000, 1000, "pcg") == "cholesky" and kf.choose_solver(1001, 1000, "pcg") == "pcg"
    assert kf.solver_settings("cholesky", 0.02, iterative, seed=0) == dict(gamma=0.02, solver="cholesky")
    assert kf.solver_settings("pcg", 0.02, iterative, seed=4) == dict(gamma=0.02, seed=4, **iterative)
    assert "seed" not in kf.solver_settings("pcg", 0.02, iterative)
    model = kernels.KernelInterpolant(**kf.solver_settings("pcg", 0.05, iterative, seed=4))
    assert (model.solver, model.gamma, model.max_iter, model.m, model.q, model.seed) == ("pcg", 0.05, 15, 300, 100, 4)


def test_curve_jobs_solve_each_subset_once():
    assert kf.curve_jobs([500, 1000], 1000, 1000, "pcg") == [(500, "cholesky"), (1000, "cholesky"), (1000, "pcg")]
    assert kf.curve_jobs([1000, 2000], 2000, 60_000, "eigenpro") == [(1000, "cholesky"), (2000, "cholesky"),
                                                                      (2000, "eigenpro"), (60_000, "eigenpro")]


def test_curve_row_and_wavelet_row_from_real_solves(mnist_slice):
    import pandas as pd

    x, y, xt, yt = mnist_slice
    labels = torch.stack([y[:400], kf.random_labels(400, 0)], 1)
    model = kernels.KernelInterpolant(gamma=0.02, solver="cholesky").fit(x[:400], labels, 10)
    fit = dict(model.summary(), test_scores=model.decision_function(xt).float().numpy(), reused=False)
    row = kf.curve_row(400, fit, yt)
    predicted = fit["test_scores"].reshape(len(yt), 2, 10).argmax(-1)
    assert row["test error %"] == pytest.approx(100 * float(np.mean(predicted[:, 0] != yt.numpy())))
    assert row["random labels: test error %"] == pytest.approx(100 * float(np.mean(predicted[:, 1] != yt.numpy())))
    assert row["train error %"] == 0 and row["random labels: train error %"] == 0  # an exact interpolant
    assert row["norm, random labels"] > row["norm"] > 0  # random labels need a larger norm (Section 5)
    curve = pd.DataFrame([row])
    one = dict(fit, test_scores=fit["test_scores"][:, :10])  # the true labels' solve alone
    wavelet = kf.wavelet_row(400, 441, one, yt, curve)
    assert wavelet["test error %, raw pixels"] == row["test error %"] and wavelet["norm, raw pixels"] == row["norm"]
    assert wavelet["test error %, wavelets"] == pytest.approx(row["test error %"])
    assert np.isnan(kf.wavelet_row(800, 441, one, yt, curve)["norm, raw pixels"])  # no raw solve at that n


def test_solver_agreement_between_two_solves():
    labels = np.random.default_rng(3).integers(0, 10, (100, 2))
    other = labels.copy()
    other[:7, 0] = (other[:7, 0] + 3) % 10  # 7 predictions of the first label set differ
    other[:, 1] = (other[:, 1] + 1) % 10  # the second set is not compared
    same, gap = kf.solver_agreement(_fake_fit(labels, group_norms=[20.0, 50.0]), _fake_fit(other, group_norms=[19.0, 9.0]))
    assert same == pytest.approx(0.93) and gap == pytest.approx(0.05)


def test_filter_trend_recovers_a_line_in_log_filters():
    filters = [16, 32, 64, 128]
    errors = [60 - 2.5 * np.log2(f) for f in filters]
    slope, intercept, at = kf.filter_trend(filters, errors, 32_000)
    assert slope == pytest.approx(-2.5) and intercept == pytest.approx(60)
    assert at == pytest.approx(60 - 2.5 * np.log2(32_000))


def test_random_conv_representation_is_the_standardized_pipeline():
    cifar = load_dataset("cifar10")
    train, test = kf.pixels(cifar.x_train[:30]), kf.pixels(cifar.x_test[:10])
    features, test_features = kf.random_conv_representation(train, test, 4, patch=6, alpha=0.25, seed=1)
    w, b = kf.zca_filters(train, 4, 6, seed=1)
    raw_train, raw_test = kf.random_conv_features(train, w, b, 0.25), kf.random_conv_features(test, w, b, 0.25)
    assert features.shape == (30, 32) and test_features.shape == (10, 32)
    mu, sd = raw_train.mean(0), raw_train.std(0).clamp(min=1e-6)
    assert torch.allclose(features, (raw_train - mu) / sd) and torch.allclose(test_features, (raw_test - mu) / sd)
    assert torch.allclose(features.mean(0), torch.zeros(32), atol=1e-5)
