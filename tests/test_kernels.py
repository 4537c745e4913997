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
