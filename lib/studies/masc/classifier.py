"""Minimum Angle Subspace Classifier (MASC).

From "Decoding Generalization from Memorization in Deep Neural Networks",
Appendix A.7, Algorithms 1-3 (Algorithm 3 builds the per-class subspaces,
Algorithm 1 classifies by minimum angle).

Per class k, the class's samples are stacked with their negatives, [X_k; -X_k],
so that the empirical mean is exactly zero and PCA yields a linear subspace
through the origin rather than an affine one. PCA is done by eigendecomposition
of the covariance, and the smallest number of leading components whose
cumulative explained-variance ratio reaches `explained_variance` (0.99 in the
paper) spans S_k. A sample x is projected onto each S_k as P_k P_k^T x, the angle
is arccos of the cosine between x and its projection, and the smallest angle
wins.

The stacking needs no explicit copy: the covariance of [X_k; -X_k] is
2 X_k^T X_k / (2 n_k) = X_k^T X_k / n_k, the uncentred second-moment matrix.

Relation to the authors' released code (see shared/notes/protocol-notes.md):
the code's subspace construction and classification rule are the ones above
(stacking with negatives, covariance eigendecomposition, 0.99 cumulative
threshold, L2-normalized basis vectors, P P^T x, arccos of the cosine), so this
module follows both. Where the code departs from the paper is upstream of MASC,
in how the probed networks are trained: its stopping criteria (100% / 99.9% /
99.1% training accuracy or 500 epochs), one seed shared by all three "runs",
mean 0.5 / std 0.5 input normalization instead of the paper's /255 (MLP) or
per-channel standardization (CNN), and an inverted CNN dropout flag. One detail
the paper does not fix is ties at the threshold: we keep the smallest k with
ratio >= threshold, while sklearn's PCA(n_components=float) keeps the smallest k
with ratio > threshold; the two differ only on exact equality.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def validate_data(estimator: BaseEstimator, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


_FLOATS = (np.float64, np.float32)
_CHUNK_ELEMENTS = 1 << 23  # ~32 MB of float32 per chunk buffer


def _to_numpy(a: Any) -> Any:
    """Torch tensors become numpy arrays (zero-copy on CPU); anything else passes through."""
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a


def _as_tensor(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """Wrap a validated numpy array as a tensor without copying when possible."""
    if not a.flags.writeable:  # torch.from_numpy warns on read-only (memmapped) arrays
        a = a.copy()
    return torch.from_numpy(np.ascontiguousarray(a)).to(device)


def _n_keep(eigvals: torch.Tensor, threshold: float) -> int:
    """Smallest k whose cumulative explained-variance ratio reaches `threshold` (0 if no variance)."""
    cum = torch.cumsum(eigvals, 0)
    if cum[-1] <= 0:
        return 0
    ratio = cum / cum[-1]  # reaches exactly 1.0 at the last nonzero eigenvalue
    k = int(torch.searchsorted(ratio, torch.tensor([threshold], dtype=ratio.dtype, device=ratio.device)))
    return min(k + 1, eigvals.numel())


def _eigh(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.eigh``, on one thread for small matrices.

    LAPACK's multithreaded tridiagonalization gains nothing below ~1,000 rows and, on a busy
    machine, loses badly to thread contention (measured: 400x400 in 0.03 s on one thread, 2-4 s on
    two threads of a loaded 2-core machine).
    """
    if a.shape[0] > 1024 or a.device.type != "cpu":
        return torch.linalg.eigh(a)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.linalg.eigh(a)
    finally:
        torch.set_num_threads(threads)


def _gram_eigh(xk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenpairs of X_k^T X_k / n_k (descending) from the n_k x n_k Gram matrix, for n_k < d.

    X_k X_k^T and X_k^T X_k share their nonzero eigenvalues, and an eigenvector u of the former
    gives X_k^T u / ||X_k^T u|| of the latter; eigendecomposing the small matrix is exact
    arithmetic-wise and far cheaper (a 2,048-wide layer with 400 samples per class: a 400x400
    problem instead of 2,048x2,048). Directions past the n_k-th are zero-variance, so padding
    with zero eigenvalues leaves the threshold rule unchanged.
    """
    x = xk.double()
    gram = x @ x.T / x.shape[0]
    eigvals, u = _eigh(gram)
    eigvals, u = eigvals.flip(0).clamp_min(0.0), u.flip(1)
    vecs = x.T @ u
    vecs = vecs / vecs.norm(dim=0, keepdim=True).clamp_min(1e-300)
    return eigvals, vecs


class MinimumAngleSubspaceClassifier(ClassifierMixin, BaseEstimator):
    """Minimum Angle Subspace Classifier (MASC), scikit-learn compatible.

    Implements "Decoding Generalization from Memorization in Deep Neural
    Networks", Appendix A.7: Algorithm 3 (PCA-based subspace estimation, with
    each class's samples stacked with their negatives so that the subspace
    passes through the origin) in `fit`, Algorithm 1 (minimum angle between x
    and its projection P_k P_k^T x) in `predict`. The stacking [X_k; -X_k] is
    done implicitly: its covariance is X_k^T X_k / n_k. The authors' released
    code builds the subspaces the same way; its departures from the paper
    concern network training, not MASC (see the module docstring).

    Linear algebra runs in torch: X_k^T X_k is accumulated in chunks in the
    input precision (float32 or float64) into a float64 d x d matrix, which is
    eigendecomposed in float64; a class with fewer samples than features
    (n_k < d) is eigendecomposed through its n_k x n_k Gram matrix instead (same
    nonzero spectrum, much cheaper on wide layers), and prediction runs in chunks. Projections use the input precision, so float32 inputs
    give angles near 0 only to ~1e-3 rad (arccos amplifies rounding there);
    pass float64 if such small angles matter.

    The mixin order is (ClassifierMixin, BaseEstimator), as scikit-learn
    requires (`check_mixin_order`); the reverse order would drop the classifier
    tags.

    Parameters
    ----------
    explained_variance : float, default=0.99
        Cumulative explained-variance ratio in (0, 1] that each class subspace
        must reach; 0.99 is the paper's value.
    device : str or torch.device, optional
        Torch device for the linear algebra (default: CPU). Fitted attributes
        are numpy arrays either way.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_components_ : ndarray of int of shape (n_classes,)
        Subspace dimension kept per class, aligned with `classes_`. A class
        whose samples are all zero gets 0 components (every angle to it is pi/2).
    components_ : list of ndarray of shape (n_features, n_components_[k])
        Orthonormal basis P_k of each class subspace, as columns, float64.
    n_features_in_ : int

    Notes
    -----
    A zero vector x has no direction: its angle to every subspace is defined
    as pi/2, so it is predicted as ``classes_[0]``. Ties go to the first class
    in `classes_`. A class with a single sample x gets the line through x.

    scikit-learn's ``check_estimator`` passes except ``check_classifiers_train``:
    that check requires > 83% training accuracy on 2-D Gaussian blobs, but MASC
    sees only directions, and at 99% explained variance each class subspace of
    such blobs is (nearly) the whole plane, so all angles are ~0 (see
    tests/test_masc.py).
    """

    def __init__(self, explained_variance: float = 0.99, device: str | torch.device | None = None) -> None:
        self.explained_variance = explained_variance
        self.device = device

    def _device(self) -> torch.device:
        return torch.device(self.device if self.device is not None else "cpu")

    def fit(self, X: Any, y: Any) -> "MinimumAngleSubspaceClassifier":
        """Estimate one subspace per class (Algorithm 3). X: (n_samples, n_features), y: labels."""
        if not 0.0 < self.explained_variance <= 1.0:
            raise ValueError(f"explained_variance must be in (0, 1], got {self.explained_variance!r}")
        X, y = validate_data(self, _to_numpy(X), _to_numpy(y), dtype=_FLOATS)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        device, d = self._device(), X.shape[1]
        Xt = _as_tensor(X, torch.device("cpu"))
        rows = max(1, _CHUNK_ELEMENTS // d)
        self.components_, n_comp = [], []
        for k in range(len(self.classes_)):
            idx = torch.from_numpy(np.flatnonzero(y_idx == k))
            if len(idx) < d:  # fewer samples than features: the n_k x n_k Gram matrix has the same spectrum
                eigvals, eigvecs = _gram_eigh(Xt[idx].to(device))
            else:
                cov = torch.zeros(d, d, dtype=torch.float64, device=device)
                for s in range(0, len(idx), rows):  # covariance of [X_k; -X_k] = X_k^T X_k / n_k
                    xc = Xt[idx[s : s + rows]].to(device)
                    cov += (xc.T @ xc).double()
                cov /= len(idx)
                eigvals, eigvecs = _eigh(cov)  # ascending
                eigvals, eigvecs = eigvals.flip(0), eigvecs.flip(1)
            eigvals = torch.where(eigvals > eigvals[0] * d * torch.finfo(torch.float64).eps, eigvals, 0.0)
            n = _n_keep(eigvals, self.explained_variance)
            P = eigvecs[:, :n]
            P = P / P.norm(dim=0, keepdim=True)  # L2-normalized basis vectors
            P = P * torch.sign(P[P.abs().argmax(0), torch.arange(n, device=device)])  # deterministic signs
            self.components_.append(P.cpu().numpy())
            n_comp.append(n)
        self.n_components_ = np.asarray(n_comp, dtype=np.int64)
        return self

    def angles(self, X: Any) -> np.ndarray:
        """Angle in radians between each x and its projection onto each class subspace, (n_samples, n_classes)."""
        check_is_fitted(self)
        X = validate_data(self, _to_numpy(X), reset=False, dtype=_FLOATS)
        device = self._device()
        dtype = torch.float32 if X.dtype == np.float32 else torch.float64
        B = torch.from_numpy(np.concatenate(self.components_, axis=1)).to(device, dtype)  # (d, sum k)
        owner = np.repeat(np.arange(len(self.classes_)), self.n_components_)
        M = torch.from_numpy(np.eye(len(self.classes_))[owner]).to(device, dtype)  # (sum k, n_classes)
        Xt = _as_tensor(X, torch.device("cpu"))
        rows = max(1, _CHUNK_ELEMENTS // max(X.shape[1], B.shape[1], 1))
        out = np.empty((X.shape[0], len(self.classes_)))
        # A cosine within a few rounding errors of 1 is an angle of 0: arccos(1 - δ) ≈ √(2δ) turns one unit of
        # rounding into an angle of 1.5e-8 (float64), so x inside several subspaces (a subspace spanning the whole
        # space, say) would go to whichever class the rounding of this batch's products favoured; at 0 the tie goes
        # to the first class, the same on any batch.
        resolution = 4 * torch.finfo(dtype).eps
        for s in range(0, X.shape[0], rows):
            xc = Xt[s : s + rows].to(device=device, dtype=dtype)
            proj_sq = ((xc @ B).square() @ M).double()  # ||P_k^T x||^2 = ||P_k P_k^T x||^2
            norm_sq = xc.square().sum(1, keepdim=True).double()
            cos = torch.where(norm_sq > 0, (proj_sq / norm_sq.clamp_min(1e-300)).sqrt(), 0.0)
            cos = torch.where(cos >= 1 - resolution, 1.0, cos)  # inside the subspace, to the products' precision
            out[s : s + rows] = torch.arccos(cos.clamp(0.0, 1.0)).cpu().numpy()
        return out

    def decision_function(self, X: Any) -> np.ndarray:
        """Negative angles, (n_samples, n_classes); for two classes, angle_0 - angle_1 (> 0 means classes_[1])."""
        a = self.angles(X)
        return a[:, 0] - a[:, 1] if a.shape[1] == 2 else -a

    def predict(self, X: Any) -> np.ndarray:
        """Label of the class subspace at minimum angle (Algorithm 1); ties go to the first class."""
        a = self.angles(X)  # checks fitted before classes_ is touched
        return self.classes_[np.argmin(a, axis=1)]


MASC = MinimumAngleSubspaceClassifier

__all__ = ["MASC", "MinimumAngleSubspaceClassifier"]
