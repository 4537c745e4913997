"""Representations for the kernel rows of Zhang et al.'s Table 3: Gabor wavelets and random convolutional features.

Zhang et al. (2017, Section 5) report 0.6% MNIST test error for the minimum-norm kernel interpolant "with Gabor
wavelet transform" preprocessing and 17% CIFAR-10 error with 32,000 random convolutional filters, without saying
how either was built. Here:

- :func:`gabor_features`: a torch Gabor filter bank (complex Gabor filters at ``scales`` × ``orientations``), the
  modulus of each response average-pooled on a ``pool`` × ``pool`` grid, beside the pooled image itself (the
  low-pass part), a scattering-like first-order representation;
- :func:`random_conv_features`: the keystone pipeline of Coates & Ng / the same lab's random-feature CIFAR models
  (protocol notes): ``patch`` × ``patch`` ZCA-whitened training patches as filters, a symmetric rectifier
  ``max(0, ±w·x − α)``, 2 × 2 sum pooling (8 features per filter), standardized with training statistics;
- :func:`matched_gamma`: the Gaussian bandwidth for a new representation, chosen so γ × median‖x − y‖² equals that
  of the reference setting (γ = 0.02 on MNIST pixels in [0, 1]).

And the chapter's fits and tables (``book/zhang-kernels.md``), from the results of
:func:`lib.studies.zhang2017.kernels.cached_fit`: which solves to run and with what settings (:func:`curve_jobs`,
:func:`choose_solver`, :func:`solver_settings`), the random labels (:func:`random_labels`), test errors
(:func:`classification_errors`), the rows of the MNIST curve, the wavelet and the random-filter tables, the agreement of the
exact and iterative solves (:func:`solver_agreement`) and the filter-count trend (:func:`filter_trend`). They live
here, not in ``kernels.py``, whose source is part of every stored solve's key.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def pixels(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) → float32 in [0, 1]."""
    return x.float() / 255


def median_sq_distance(x: torch.Tensor, n: int = 1000, seed: int = 0) -> float:
    """Median squared distance between ``n`` random points (flattened)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(x), generator=g)[:n]
    z = x[idx].reshape(len(idx), -1).double()
    d = torch.cdist(z, z).pow(2)
    return float(d[torch.triu_indices(len(z), len(z), 1).unbind()].median())


def matched_gamma(x: torch.Tensor, reference_gamma: float, reference_median: float) -> float:
    """γ for ``x`` with γ · median‖x_i − x_j‖² equal to the reference's."""
    return reference_gamma * reference_median / median_sq_distance(x)


def gabor_bank(scales: int = 2, orientations: int = 8, size: int = 15) -> torch.Tensor:
    """Complex Gabor filters as real/imaginary pairs, shape (2·scales·orientations, 1, size, size), zero mean.

    Scale j: envelope σ = 1.5·2^j pixels, wavelength 4·2^j pixels (about one octave apart, like Morlet wavelets)."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    filters = []
    for j in range(scales):
        sigma, wavelength = 1.5 * 2 ** j, 4.0 * 2 ** j
        envelope = torch.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
        for k in range(orientations):
            theta = math.pi * k / orientations
            u = xx * math.cos(theta) + yy * math.sin(theta)
            wave = torch.exp(1j * 2 * math.pi * u / wavelength)
            psi = envelope * wave
            psi = psi - envelope * (psi.sum() / envelope.sum())  # zero mean: no response to constant images
            psi = psi / psi.abs().sum()
            filters += [psi.real, psi.imag]
    return torch.stack(filters)[:, None].float()


def gabor_features(x: torch.Tensor, scales: int = 2, orientations: int = 8, pool: int = 7, size: int = 15,
                   batch: int = 2000) -> torch.Tensor:
    """|x ⋆ ψ_{j,θ}| average-pooled to ``pool`` × ``pool``, and the image pooled the same way; x: (N, 1, H, W) in [0, 1]."""
    bank = gabor_bank(scales, orientations, size)
    out = []
    for start in range(0, len(x), batch):
        xb = x[start:start + batch].float()
        resp = F.conv2d(F.pad(xb, [size // 2] * 4, mode="reflect"), bank)  # reflected borders: no edge there
        modulus = (resp[:, 0::2] ** 2 + resp[:, 1::2] ** 2).sqrt()
        pooled = F.adaptive_avg_pool2d(torch.cat([xb, modulus], 1), pool)
        out.append(pooled.reshape(len(xb), -1))
    return torch.cat(out)


def zca_filters(x_train: torch.Tensor, n_filters: int, patch: int = 6, n_patches: int = 100_000, eps: float = 0.1,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ZCA-whitened ``patch`` × ``patch`` training patches as filters, folded into one convolution.

    A response is ``f · Z(p − μ)`` with ``f = Z(p_f − μ)/‖·‖`` a whitened random patch (Z the ZCA matrix with
    regularizer ``eps`` on the patch covariance); since Z is symmetric that is ``(Z f)·p − (Z f)·μ``: returned as
    conv weights (n_filters, C, patch, patch) and biases."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = x_train.shape
    total = n_patches + n_filters
    i = torch.randint(0, n, (total,), generator=g)
    r = torch.randint(0, h - patch + 1, (total,), generator=g)
    s = torch.randint(0, w - patch + 1, (total,), generator=g)
    offs = torch.arange(patch)
    rows = (r[:, None] + offs)[:, :, None].expand(total, patch, patch)
    cols = (s[:, None] + offs)[:, None, :].expand(total, patch, patch)
    patches = x_train[i[:, None, None, None], torch.arange(c)[None, :, None, None], rows[:, None], cols[:, None]]
    patches = patches.reshape(total, -1).double()
    mu = patches[:n_patches].mean(0)
    cov = torch.cov((patches[:n_patches] - mu).T)
    evals, evecs = torch.linalg.eigh(cov)
    Z = evecs @ torch.diag(1 / torch.sqrt(evals + eps)) @ evecs.T
    f = (patches[n_patches:] - mu) @ Z
    f = f / f.norm(dim=1, keepdim=True)
    weights = f @ Z
    return weights.reshape(n_filters, c, patch, patch).float(), (weights @ mu).float()


def random_conv_features(x: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor, alpha: float = 0.25,
                         batch: int = 500) -> torch.Tensor:
    """Symmetric rectifier of the filter responses, 2 × 2 sum pooling: 8 features per filter; x in [0, 1]."""
    out = []
    for start in range(0, len(x), batch):
        resp = F.conv2d(x[start:start + batch].float(), weights) - bias[None, :, None, None]
        both = torch.cat([F.relu(resp - alpha), F.relu(-resp - alpha)], 1)
        pooled = F.adaptive_avg_pool2d(both, 2) * (both.shape[-1] * both.shape[-2] / 4)  # sums over quadrants
        out.append(pooled.reshape(len(pooled), -1))
    return torch.cat(out)


def standardize(train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Zero mean, unit variance per feature with the training statistics."""
    mu, sd = train.mean(0), train.std(0).clamp(min=1e-6)
    return tuple((t - mu) / sd for t in (train, *others))


def random_conv_representation(x_train: torch.Tensor, x_test: torch.Tensor, n_filters: int, patch: int = 6,
                               alpha: float = 0.25, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Table 3's CIFAR-10 random-feature row end to end: ``n_filters`` ZCA-whitened training patches as filters
    (:func:`zca_filters`), :func:`random_conv_features` of the training and the test images, standardized with the
    training statistics (:func:`standardize`)."""
    weights, bias = zca_filters(x_train, n_filters, patch, seed=seed)
    return standardize(random_conv_features(x_train, weights, bias, alpha), random_conv_features(x_test, weights, bias, alpha))


# --- the chapter's fits and tables (book/zhang-kernels.md) --------------------------------------------------------
#
# ``fit`` below is what lib.studies.zhang2017.kernels.cached_fit returns: the interpolant's summary (train errors,
# norms and residuals per label set, iterations, seconds) and its ``test_scores`` (n_test × label sets·classes).


def random_labels(n: int, seed: int, num_classes: int = 10) -> torch.Tensor:
    """``n`` labels drawn uniformly from ``num_classes`` classes (Zhang et al.'s randomization test, Section 3,
    applied to the kernel machine in Section 5), from their own generator seeded with ``seed``."""
    return torch.randint(0, num_classes, (n,), generator=torch.Generator().manual_seed(seed))


def classification_errors(fit: dict, labels: torch.Tensor, label_sets: int) -> list[float]:
    """Test error of each of the ``label_sets`` label sets fitted together (the arg-max of each set's class scores
    against ``labels``): Table 3's test error."""
    predicted = fit["test_scores"].reshape(len(labels), label_sets, -1).argmax(-1)
    return [float((torch.from_numpy(predicted[:, j]) != labels).double().mean()) for j in range(label_sets)]


def choose_solver(n: int, exact_max: int, iterative_solver: str) -> str:
    """The exact float64 Cholesky solve up to ``exact_max`` points, the iterative solver beyond."""
    return "cholesky" if n <= exact_max else iterative_solver


def solver_settings(solver: str, gamma: float, iterative: dict | None = None, seed: int | None = None) -> dict:
    """The settings of one kernel solve (the key of its stored result): ``gamma`` and ``solver="cholesky"``, or
    ``gamma`` and the ``iterative`` solver's settings (``solver``, ``max_iter``, ``tol``, ``m``, ``q``), with the
    Nyström subsample's ``seed`` where one is given."""
    if solver == "cholesky":
        return dict(gamma=gamma, solver="cholesky")
    return dict(gamma=gamma, **iterative, **({} if seed is None else dict(seed=seed)))


def curve_jobs(n_curve: list[int], n_check: int, n_full: int, iterative_solver: str) -> list[tuple[int, str]]:
    """The MNIST raw-pixel solves, ``(n, solver)``, each once: exact solves at each ``n_curve``, the ``n_check``
    subset by the iterative solver too (to compare the two), and the headline ``n_full`` by the iterative solver."""
    jobs = [(n, "cholesky") for n in n_curve] + [(n_check, iterative_solver), (n_full, iterative_solver)]
    return list(dict.fromkeys(jobs))


def curve_row(n: int, fit: dict, test_labels: torch.Tensor) -> dict:
    """One row of the MNIST curve: a solve of the true labels and of random labels on the same ``n`` images (two
    label sets, in that order): test and training error, norm √tr(αᵀKα) and relative residual of each."""
    error, error_random = classification_errors(fit, test_labels, 2)
    return {"n": n, "solver": fit["solver"], "test error %": 100 * error, "train error %": 100 * fit["train_errors"][0],
            "norm": fit["group_norms"][0], "norm, random labels": fit["group_norms"][1],
            "residual": fit["group_residuals"][0], "residual, random labels": fit["group_residuals"][1],
            "random labels: train error %": 100 * fit["train_errors"][1],
            "random labels: test error %": 100 * error_random, "iterations": fit["iterations"],
            "seconds": fit["seconds"], "reused": fit["reused"]}


def solver_agreement(exact: dict, approx: dict, label_sets: int = 2, num_classes: int = 10) -> tuple[float, float]:
    """How far two solves of the same system are apart: the fraction of identical test predictions on the first
    label set, and the relative difference of its norms (against ``exact``'s)."""
    predicted_exact = exact["test_scores"].reshape(-1, label_sets, num_classes).argmax(-1)
    predicted_approx = approx["test_scores"].reshape(-1, label_sets, num_classes).argmax(-1)
    same = float((predicted_exact[:, 0] == predicted_approx[:, 0]).mean())
    norm_gap = abs(approx["group_norms"][0] - exact["group_norms"][0]) / exact["group_norms"][0]
    return same, norm_gap


def wavelet_row(n: int, features: int, fit: dict, test_labels: torch.Tensor, curve) -> dict:
    """One row of the wavelet table: the interpolant on ``features`` Gabor features of ``n`` images, beside the raw
    pixels' solve at the same ``n`` from ``curve`` (the MNIST curve's table; NaN where it has no such ``n``)."""
    raw = curve[curve.n == n]
    return {"n": n, "features": features,
            "test error %, wavelets": 100 * classification_errors(fit, test_labels, 1)[0],
            "test error %, raw pixels": float(raw["test error %"].iloc[0]) if len(raw) else float("nan"),
            "norm, wavelets": fit["group_norms"][0],
            "norm, raw pixels": float(raw["norm"].iloc[0]) if len(raw) else float("nan"),
            "train error %": 100 * fit["train_errors"][0], "residual": fit["residual"], "seconds": fit["seconds"]}


def filter_row(filters: int, features: int, fit: dict, test_labels: torch.Tensor) -> dict:
    """One row of the random-feature table: the interpolant on ``features`` features of ``filters`` random filters."""
    return {"filters": filters, "features": features,
            "test error %": 100 * classification_errors(fit, test_labels, 1)[0],
            "norm": fit["group_norms"][0], "train error %": 100 * fit["train_errors"][0]}


def filter_trend(filters, errors, at: float) -> tuple[float, float, float]:
    """The least-squares line of test error against log2(filters): ``(slope, intercept, its value at at)``, the
    extrapolation of the random-feature row to the paper's 32,000 filters."""
    slope, intercept = np.polyfit(np.log2(np.asarray(filters, dtype=float)), np.asarray(errors, dtype=float), 1)
    return float(slope), float(intercept), float(intercept + slope * np.log2(at))
