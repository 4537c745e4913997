"""Minimum-norm kernel interpolation (Zhang et al. 2017, Section 5 and Table 3).

Zhang et al. fit a Gaussian kernel machine with *no* regularization: the minimum-norm interpolant of the one-hot
targets, ``K α = Y`` (their Eq. (3), the solution SGD started at zero finds for a linear model on the kernel's
features), whose RKHS norm is ``‖f‖ = √tr(αᵀ K α)`` (Section 5: about 220 on raw MNIST pixels).

This module holds

- :func:`gaussian_kernel`: ``exp(−γ ‖x − y‖²)`` in blocks, in torch float32, through ``‖x‖² + ‖y‖² − 2 x·y``;
- the memory check (:func:`check_fits`, :func:`largest_n`): a float32 K of n² entries must fit in the memory the
  machine has *now* (``MemAvailable``), with a margin, or :class:`KernelTooLarge` is raised *before* anything is
  allocated;
- :class:`KernelInterpolant`, a scikit-learn-style estimator with three solvers of the same system:

  * ``cholesky``: K built in float64, ``torch.linalg.cholesky`` and two triangular solves: exact (for small n);
  * ``eigenpro``: Ma & Belkin's EigenPro preconditioned iteration (*Diving into the shallows*, 2017, Eq. (4)–(6)):
    the gradient step ``α ← α + η P (Y − K α)`` where ``P = I − Σ_{i≤q} (1 − λ_{q+1}/λ_i) e_i e_iᵀ`` flattens the
    q largest eigen-directions of K, so the step ``η = 1/λ_{q+1}`` is ``λ_1/λ_{q+1}`` times larger than plain
    gradient descent allows. Ma & Belkin take mini-batch steps with the eigenvectors of a subsample extended by
    Nyström; with K stored in memory we take full-batch steps, with the top-q eigenvectors of a column-sampled
    Nyström approximation ``K ≈ C W⁻¹ Cᵀ`` (C = K[:, S] for a random subsample S of m points, W = K[S, S]);
  * ``pcg``: conjugate gradients preconditioned with the same eigen-directions (the Nyström preconditioner of
    Frangella, Tropp & Udell 2023, ``P⁻¹ = λ_{q+1} U Λ⁻¹ Uᵀ + (I − U Uᵀ)`` with ``λ_{q+1}`` in place of their
    ``λ_q + μ``), which needs no step size and converges with the square root of the preconditioned condition
    number.

  The iterative solvers store K once in float32 (60,000² entries = 14.4 GB) and keep the iterates and residuals in
  float64; each product ``K v`` splits ``v`` into a float32 high part and a float32 remainder (so v loses no
  precision) and adds the two float32 products in float64; the float32 accumulation inside each product leaves a
  relative error near 1e-6, far below the residuals a 30-product solve reaches.

An iterative solve started at zero increases ``√tr(αᵀKα)`` monotonically (along CG's path and along gradient
descent's in K's eigenbasis), so an unconverged solve *underestimates* the norm: the estimator always reports the
relative residual ``‖Y − Kα‖_F / ‖Y‖_F`` with it.

Expensive fits are kept by :func:`cached_fit` in the result store (:mod:`lib.cache`, ``<cache>/kernels/<key>/``), keyed by
the data, the kernel, the solver and its settings, and the source of this module (editing the solver recomputes).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lib.cache import Store
from lib.train import progress_enabled

GB = 1e9
MEMORY_MARGIN = 0.9  # use at most this fraction of MemAvailable for K and the solver's work arrays


class KernelTooLarge(MemoryError):
    """The requested kernel matrix does not fit in the memory available now; raised before allocating it."""


# ----------------------------------------------------------------------------------------------------- memory

def available_bytes() -> int:
    """``MemAvailable`` from /proc/meminfo (what can be allocated without swapping), or total RAM elsewhere."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def solver_bytes(n: int, d: int, solver: str, n_targets: int = 10, m: int = 2000, q: int = 500) -> int:
    """Peak bytes a fit of n points in d dimensions needs: K (float32, or float64 and its factor for Cholesky), the
    data, the float64 vectors and the Nyström work arrays."""
    vectors = 8 * n * n_targets * 8  # α, r, p, z, Kp, Y and two spares, float64
    data = 4 * n * d * 2
    if solver == "cholesky":
        return 2 * 8 * n * n + data + vectors  # K in float64 and its Cholesky factor
    return 4 * n * n + data + vectors + 4 * n * m * 2 + 8 * n * q  # + Nyström's C and B (float32) and U (float64)


def check_fits(n: int, d: int, solver: str = "eigenpro", n_targets: int = 10, available: int | None = None,
               margin: float = MEMORY_MARGIN) -> int:
    """Raise :class:`KernelTooLarge` when fitting n points would not fit in ``margin`` × the available memory.

    Returns the bytes needed. Called by :meth:`KernelInterpolant.fit` before it allocates anything."""
    need = solver_bytes(n, d, solver, n_targets)
    have = available_bytes() if available is None else available
    if need > margin * have:
        raise KernelTooLarge(
            f"a {solver} kernel solve on n = {n:,} points needs about {need / GB:.1f} GB "
            f"(the {n:,}² kernel matrix in {'float64' if solver == 'cholesky' else 'float32'} is "
            f"{(8 if solver == 'cholesky' else 4) * n * n / GB:.1f} GB), but only {have / GB:.1f} GB is available "
            f"(MemAvailable; at most {margin:.0%} of it is used). Use a smaller n "
            f"(largest_n() = {largest_n(d, solver, n_targets, have, margin):,} fits now).")
    return need


def largest_n(d: int, solver: str = "eigenpro", n_targets: int = 10, available: int | None = None,
              margin: float = MEMORY_MARGIN, cap: int | None = None) -> int:
    """The largest n whose solve fits in ``margin`` × the available memory (at most ``cap``)."""
    have = available_bytes() if available is None else available
    lo, hi = 0, 10 ** 7 if cap is None else cap
    if solver_bytes(hi, d, solver, n_targets) <= margin * have:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if solver_bytes(mid, d, solver, n_targets) <= margin * have else (lo, mid)
    return lo


# ----------------------------------------------------------------------------------------------------- kernels

def _bar(total, desc):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not progress_enabled(), leave=False)


def gaussian_kernel(x: torch.Tensor, y: torch.Tensor | None = None, gamma: float = 0.02, block: int = 4096,
                    dtype: torch.dtype = torch.float32, out: torch.Tensor | None = None,
                    desc: str | None = None) -> torch.Tensor:
    """``K[i, j] = exp(−γ ‖x_i − y_j‖²)`` computed ``block`` rows at a time as ``exp(−γ(‖x‖² + ‖y‖² − 2 x·y))``.

    ``y = None`` gives the symmetric K(x, x) with an exact unit diagonal. The products run in ``dtype`` (float32 is
    the fast path); negative squared distances from rounding are clipped to 0."""
    symmetric = y is None
    x = x.reshape(len(x), -1).to(dtype)
    y = x if symmetric else y.reshape(len(y), -1).to(dtype)
    nx, ny = (x * x).sum(1), (y * y).sum(1)
    out = torch.empty(len(x), len(y), dtype=dtype) if out is None else out
    with _bar(len(x), desc or f"kernel {len(x):,}x{len(y):,}") as bar:
        for start in range(0, len(x), block):
            rows = out[start:start + block]
            torch.mm(x[start:start + block], y.T, out=rows)
            rows.mul_(2).sub_(nx[start:start + block, None]).sub_(ny[None, :]).clamp_(max=0).mul_(gamma).exp_()
            bar.update(len(rows))
    if symmetric:
        out.diagonal().fill_(1)
    return out


KERNELS = {"gaussian": gaussian_kernel}


def symmetric_matvec(K: torch.Tensor, v: torch.Tensor, block: int = 4096) -> torch.Tensor:
    """``K v`` in float64 for a stored float32 K and float64 ``v``.

    ``v = hi + lo`` with ``hi = float32(v)`` and ``lo = float32(v − hi)``; each row block ``K[I, :] [hi lo]`` is one
    float32 product whose two halves are summed in float64 (relative error near 1e-6, from float32 accumulation)."""
    if K.dtype == torch.float64:
        return K @ v
    hi = v.to(torch.float32)
    both = torch.cat([hi, (v - hi.double()).to(torch.float32)], dim=1)
    k = v.shape[1]
    total = torch.empty(K.shape[0], k, dtype=torch.float64)
    for start in range(0, K.shape[0], block):
        part = K[start:start + block] @ both
        total[start:start + block] = part[:, :k].double() + part[:, k:].double()
    return total


# ----------------------------------------------------------------------------------------------------- solvers

@dataclass
class SolveInfo:
    """What a solve did: iterations, relative residual per iteration, seconds, products with K."""

    solver: str
    iterations: int = 0
    residuals: list[float] = field(default_factory=list)
    seconds: float = 0.0
    kernel_seconds: float = 0.0
    products: int = 0
    preconditioner: dict = field(default_factory=dict)


def nystrom_eigen(K: torch.Tensor, m: int, q: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Top-q eigenpairs (U, Λ) of the column-sampled Nyström approximation ``C W⁻¹ Cᵀ`` of K, and its λ_{q+1}.

    S: m random points; C = K[:, S]; W = K[S, S] = L Lᵀ (with a small jitter); with B = C L⁻ᵀ (float32) and the
    eigendecomposition ``BᵀB = V Λ Vᵀ`` (m × m, float64), ``C W⁻¹ Cᵀ = B Bᵀ = U Λ Uᵀ`` with ``U = B V Λ^{-1/2}``
    (n × q, re-orthonormalized in float64)."""
    n = K.shape[0]
    g = torch.Generator().manual_seed(seed)
    S = torch.randperm(n, generator=g)[:m].sort().values
    C = K[:, S]  # float32, n x m
    W = C[S].double()
    jitter = 1e-6 * float(W.diagonal().mean())
    L = torch.linalg.cholesky(W + jitter * torch.eye(m, dtype=torch.float64))
    B = torch.linalg.solve_triangular(L.float(), C.T, upper=False).T  # C L^{-T}, float32
    del C
    lam, V = torch.linalg.eigh((B.T @ B).double())  # B^T B = V diag(lam) V^T; then B B^T = U diag(lam) U^T
    lam, V = lam.flip(0), V.flip(1)
    U = (B @ (V[:, :q] / lam[:q].sqrt()).float()).double()
    U, _ = torch.linalg.qr(U)  # re-orthonormalize what float32 rounding left
    return U, lam[:q], float(lam[q])


def _precondition(r, U, lam, lam_next):
    """``P r = r − U (1 − λ_{q+1}/Λ) Uᵀ r``: EigenPro's operator (Ma & Belkin, Eq. (5)) on the residual."""
    return r - U @ ((1 - lam_next / lam)[:, None] * (U.T @ r))


def solve_iterative(K: torch.Tensor, Y: torch.Tensor, method: str = "pcg", max_iter: int = 30, tol: float = 1e-6,
                    m: int = 2000, q: int = 160, seed: int = 0, step_safety: float = 1.0,
                    callback=None) -> tuple[torch.Tensor, SolveInfo]:
    """Solve ``K α = Y`` (all columns at once) by preconditioned CG or by EigenPro's preconditioned iteration.

    ``tol``: stop when ‖Y − Kα‖_F/‖Y‖_F < tol. CG runs one recurrence per column (each column has its own step
    lengths); the products with K are shared. ``callback(t, α, rel)`` is called after each iteration."""
    started = time.perf_counter()
    info = SolveInfo(method)
    U, lam, lam_next = nystrom_eigen(K, min(m, K.shape[0] - 1), min(q, min(m, K.shape[0] - 1) - 1), seed)
    info.preconditioner = dict(m=m, q=int(U.shape[1]), lambda_1=float(lam[0]), lambda_q1=lam_next,
                               seconds=time.perf_counter() - started)
    Y = Y.double()
    alpha = torch.zeros_like(Y)
    r = Y.clone()
    y_norm = float(Y.norm())
    eta = step_safety / lam_next
    z = _precondition(r, U, lam, lam_next)
    p, rz = z.clone(), (r * z).sum(0)
    with _bar(max_iter, f"{method} n={K.shape[0]:,}") as bar:
        for t in range(1, max_iter + 1):
            if method == "eigenpro":
                trial = alpha + eta * z
                r_trial = Y - symmetric_matvec(K, trial)  # the exact residual each step: no drift
                if float(r_trial.norm()) > float(r.norm()):
                    # λ_{q+1} of the Nyström approximation underestimates K's: the step was too long; halve it
                    eta /= 2
                    info.preconditioner["step_halvings"] = info.preconditioner.get("step_halvings", 0) + 1
                else:
                    alpha, r = trial, r_trial
                    z = _precondition(r, U, lam, lam_next)
            else:
                Kp = symmetric_matvec(K, p)
                step = rz / (p * Kp).sum(0)
                alpha += step * p
                r -= step * Kp
                z = _precondition(r, U, lam, lam_next)
                rz_new = (r * z).sum(0)
                p = z + (rz_new / rz) * p
                rz = rz_new
            info.products += 1
            rel = float(r.norm()) / y_norm
            info.residuals.append(rel)
            info.iterations = t
            bar.update(1)
            bar.set_postfix(residual=f"{rel:.2e}")
            if callback is not None:
                callback(t, alpha, rel)
            if rel < tol:
                break
    info.seconds = time.perf_counter() - started
    return alpha, info


def solve_cholesky(K64: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, SolveInfo]:
    """Exact solve ``K α = Y`` in float64: K = L Lᵀ, then two triangular solves."""
    started = time.perf_counter()
    L, status = torch.linalg.cholesky_ex(K64)
    if int(status):
        raise np.linalg.LinAlgError(f"the kernel matrix is not positive definite in float64 (pivot {int(status)})")
    alpha = torch.cholesky_solve(Y.double(), L)
    return alpha, SolveInfo("cholesky", seconds=time.perf_counter() - started)


# ----------------------------------------------------------------------------------------------------- estimator

def one_hot(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(y).long(), num_classes).double()


class KernelInterpolant:
    """The minimum-norm interpolant of one-hot targets, ``f(x) = Σ_i α_i k(x, x_i)`` with ``K α = Y``.

    ``KernelInterpolant(kernel="gaussian", bandwidth=5.0)`` is ``exp(−‖x − y‖²/(2·5²))`` (γ = 0.02, Ma & Belkin's
    MNIST setting for pixels in [0, 1]); ``gamma=`` may be given instead. ``solver``: ``"cholesky"`` (exact, float64),
    ``"pcg"``, ``"eigenpro"``, or ``"auto"`` (Cholesky while its float64 K fits in the available memory and
    n ≤ ``exact_max``, else PCG). After :meth:`fit`: ``alpha_``, ``norm_`` = √tr(αᵀKα), ``residual_`` =
    ‖Y − Kα‖_F/‖Y‖_F, ``train_error_`` (fraction of training points whose arg-max differs from their label),
    ``info_`` (a :class:`SolveInfo`)."""

    def __init__(self, kernel: str = "gaussian", bandwidth: float | None = None, gamma: float | None = None,
                 solver: str = "auto", max_iter: int = 30, tol: float = 1e-6, m: int = 2000, q: int = 160,
                 exact_max: int = 20_000, block: int = 4096, seed: int = 0):
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; known: {sorted(KERNELS)}")
        if solver not in ("auto", "cholesky", "pcg", "eigenpro"):
            raise ValueError(f"unknown solver {solver!r}")
        if gamma is None:
            gamma = 0.02 if bandwidth is None else 1 / (2 * bandwidth ** 2)
        self.kernel, self.gamma, self.solver = kernel, float(gamma), solver
        self.max_iter, self.tol, self.m, self.q, self.exact_max = max_iter, tol, m, q, exact_max
        self.block, self.seed = block, seed

    def chosen_solver(self, n: int, d: int) -> str:
        if self.solver != "auto":
            return self.solver
        fits = solver_bytes(n, d, "cholesky") <= MEMORY_MARGIN * available_bytes()
        return "cholesky" if n <= self.exact_max and fits else "pcg"

    def fit(self, X: torch.Tensor, y: torch.Tensor, num_classes: int | None = None, callback=None):
        X = torch.as_tensor(X).reshape(len(X), -1).float()
        y = torch.as_tensor(y).long()
        labels = y if y.ndim == 2 else y[:, None]  # several label sets (columns) are solved together
        c = num_classes or int(y.max()) + 1
        Y = torch.cat([one_hot(labels[:, j], c) for j in range(labels.shape[1])], dim=1)
        self.num_classes_, self.label_sets_ = c, labels.shape[1]
        n, d = X.shape
        solver = self.chosen_solver(n, d)
        check_fits(n, d, solver, Y.shape[1])  # before anything n x n is allocated
        started = time.perf_counter()
        if solver == "cholesky":
            K = gaussian_kernel(X, gamma=self.gamma, block=self.block, dtype=torch.float64)
            kernel_seconds = time.perf_counter() - started
            alpha, info = solve_cholesky(K, Y)
            # residual and norm with the float64 K itself
            K_alpha = K @ alpha
            del K
        else:
            K = gaussian_kernel(X, gamma=self.gamma, block=self.block)
            kernel_seconds = time.perf_counter() - started
            alpha, info = solve_iterative(K, Y, solver, self.max_iter, self.tol, self.m, self.q, self.seed,
                                          callback=callback)
            K_alpha = symmetric_matvec(K, alpha)
            del K
        info.kernel_seconds = kernel_seconds
        self.X_, self.alpha_, self.info_, self.solver_ = X, alpha, info, solver
        self.residuals_ = ((Y - K_alpha).norm(dim=0) / Y.norm(dim=0)).tolist()
        self.residual_ = float((Y - K_alpha).norm() / Y.norm())
        self.norm_ = math.sqrt(max(float((alpha * K_alpha).sum()), 0.0))
        self.norms_ = (alpha * K_alpha).sum(0).clamp(min=0).sqrt().tolist()  # one per class column
        fitted = K_alpha.reshape(n, -1, c).argmax(-1)
        self.train_errors_ = (fitted != labels).double().mean(0).tolist()
        self.train_error_ = self.train_errors_[0]
        groups = (alpha * K_alpha).reshape(n, -1, c).sum((0, 2)).clamp(min=0).sqrt()
        self.group_norms_ = groups.tolist()  # √tr(αᵀKα) of each label set
        gres = (Y - K_alpha).reshape(n, -1, c).pow(2).sum((0, 2)).sqrt() / Y.reshape(n, -1, c).pow(2).sum((0, 2)).sqrt()
        self.group_residuals_ = gres.tolist()
        self.seconds_ = time.perf_counter() - started
        return self

    def decision_function(self, X: torch.Tensor) -> torch.Tensor:
        X = torch.as_tensor(X).reshape(len(X), -1).float()
        out = torch.empty(len(X), self.alpha_.shape[1], dtype=torch.float64)
        block = max(1, min(len(X), 2 * 10 ** 8 // max(len(self.X_), 1)))  # about 800 MB of kernel rows at a time
        for start in range(0, len(X), block):
            k = gaussian_kernel(X[start:start + block], self.X_, self.gamma, desc="predict")
            out[start:start + block] = symmetric_matvec_rect(k, self.alpha_)
        return out

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        """Arg-max class of each point (one column per label set when several were fitted)."""
        scores = self.decision_function(X)
        out = scores.reshape(len(scores), -1, self.num_classes_).argmax(-1)
        return out[:, 0] if self.label_sets_ == 1 else out

    def summary(self) -> dict:
        return dict(solver=self.solver_, n=len(self.X_), gamma=self.gamma, norm=self.norm_, residual=self.residual_,
                    train_error=self.train_error_, iterations=self.info_.iterations, seconds=self.seconds_,
                    kernel_seconds=self.info_.kernel_seconds, residuals=self.info_.residuals,
                    products=self.info_.products, preconditioner=self.info_.preconditioner,
                    norms=self.norms_, class_residuals=self.residuals_, train_errors=self.train_errors_,
                    group_norms=self.group_norms_, group_residuals=self.group_residuals_)


def symmetric_matvec_rect(k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``k v`` in float64 for a float32 block k (rows of a test kernel) with the same hi/lo split."""
    hi = v.to(torch.float32)
    lo = (v - hi.double()).to(torch.float32)
    return (k @ hi).double() + (k @ lo).double()


# ----------------------------------------------------------------------------------------------------- cache

def data_fingerprint(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        a = np.ascontiguousarray(torch.as_tensor(t).cpu().numpy())
        h.update(str(a.shape).encode() + str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


STORE = Store("kernels", sources=("kernels.py",))  # the solver's own source is part of every key


def cached_fit(name: str, X_train, y_train, X_test, num_classes: int = 10, **settings) -> dict:
    """Fit a :class:`KernelInterpolant` with ``settings`` and predict ``X_test``, or load the cached result.

    The key is ``name``, the settings and a fingerprint of the data (so a different subset, label set or
    preprocessing is a different entry). Returns :meth:`KernelInterpolant.summary` plus ``test_scores``
    (float32 array) and ``train_pred``; the reused flag says whether it came from the cache."""
    config = dict(name=name, settings=settings, num_classes=num_classes,
                  data=data_fingerprint(X_train, y_train, X_test))

    def compute() -> dict:
        model = KernelInterpolant(**settings).fit(X_train, y_train, num_classes)
        return {"summary": dict(model.summary(), config=config),
                "test_scores": model.decision_function(X_test).float().numpy()}

    result, reused = STORE.fetch(config, compute)
    return dict(result["summary"], test_scores=result["test_scores"], reused=reused)
