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
"""

from __future__ import annotations

import math

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
