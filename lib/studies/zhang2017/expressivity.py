"""Finite-sample expressivity made executable: Theorem 1, Lemma 1 and Corollary 1 of Zhang et al. (ICLR 2017).

**Theorem 1** (Section 4, proof in appendix C): a depth-2 ReLU network with ``2n + d`` weights represents any
function on ``n`` distinct points in ``d`` dimensions. The proof's network is

.. math:: c(z) = \\sum_{j=1}^n w_j \\max(\\langle a, z\\rangle - b_j, 0)

with a projection ``a`` (d weights) that maps the points to distinct reals ``x_i = <a, z_i>``, sorted, biases ``b``
(n) interleaving them, ``b_1 < x_1 < b_2 < x_2 < ... < b_n < x_n``, and output weights ``w`` (n) solving ``A w = y``
with ``A_ij = max(x_i - b_j, 0)``. **Lemma 1**: ``A`` is lower triangular with diagonal ``x_i - b_i > 0``, so it is
invertible and its smallest *eigenvalue* is ``min_i (x_i - b_i)``; ``w`` comes from forward substitution.

Here: :func:`fit_depth2` builds that network as a :class:`Depth2ReLU` ``nn.Module`` whose parameters are exactly
``a``, ``b`` and ``w`` (so ``count_parameters`` gives ``2n + d``), solving the triangular system in float64 by blocked
forward substitution (:func:`solve_lower`, ``torch.linalg.solve_triangular`` on diagonal blocks; ``A`` is never
stored whole). The biases sit at ``b_i = x_{i-1} + θ (x_i - x_{i-1})`` (``bias_position`` θ, 0.5 = midpoints).
Duplicate points are refused (:class:`DuplicatePointsError`); a projection under which two distinct points collide is
redrawn, then refused (:class:`ProjectionCollisionError`).

**Corollary 1** (appendix C): depth ``k``, width ``O(n/k)``, ``O(n + d)`` weights. :func:`fit_depth_k` builds the
appendix's construction as an ordinary :class:`lib.models.MLP` (dense float64 ``nn.Linear`` layers, mostly zeros):
the sorted projections are split into ``g`` consecutive groups, layer ``t`` holds group ``t``'s Theorem-1 units, a
trapezoid (approximate) indicator ``f_t`` of the group's interval made of four ReLUs, and identity-passing units
``x = relu(x) - relu(-x)`` that carry the projection and the running output forward; the multiplexer
``Σ_t f_t(x) o_t(x)`` is built from ReLUs as ``f·o = relu(o - M(1-f)) - relu(-o - M(1-f))`` (exact when
``f ∈ {0, 1}`` and ``|o| ≤ M``, which holds at every sample point). See :func:`depth_k_widths` and
:func:`depth_k_weight_count` for the exact widths and nonzero-weight counts implemented.

**The chapter's measurements** (``book/zhang-expressivity.md``): :func:`theorem1_table` (Theorem 1 at growing ``n``:
labels recovered, Lemma 1's diagonal, singular values, bounds on ``‖w‖``), :func:`compare_variants` (other
projections, bias positions, refinement, float32), :func:`exact_weight_error` (float64 against the exact rational
solve), :func:`depth_k_table` (Corollary 1), and the SGD comparison (:func:`matched_hidden_width`,
:func:`sgd_configs`, :func:`sgd_versus_construction`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from fractions import Fraction

import pandas as pd
import torch
from torch import nn

from lib.models import MLP, build_model, count_parameters
from lib.train import RunConfig

DTYPES = {"float64": torch.float64, "float32": torch.float32}
PROJECTIONS = ("random", "best_of", "pc1", "integer")


class DuplicatePointsError(ValueError):
    """Two of the n points are identical: no function of the points can give them different targets."""


class ProjectionCollisionError(ValueError):
    """The points are distinct but the projection maps two of them to the same real number."""


# --- the points and their projection ---------------------------------------------------------------


def flatten_points(z: torch.Tensor) -> torch.Tensor:
    return z.reshape(len(z), -1)


def check_distinct(z: torch.Tensor) -> None:
    """Raise :class:`DuplicatePointsError` naming two identical points, if there are any (Theorem 1 needs n distinct)."""
    flat = flatten_points(z)
    unique, inverse, counts = torch.unique(flat, dim=0, return_inverse=True, return_counts=True)
    if len(unique) == len(flat):
        return
    group = int(torch.nonzero(counts > 1)[0])
    first, second = torch.nonzero(inverse == group).flatten()[:2].tolist()
    raise DuplicatePointsError(
        f"points {first} and {second} are identical ({len(flat) - len(unique)} duplicate(s) among {len(flat)} points): "
        "Theorem 1 needs n distinct points; drop the duplicates (or give them the same target) first")


def min_gap(x: torch.Tensor) -> float:
    """Smallest spacing between consecutive sorted projections (0 when two collide)."""
    if len(x) < 2:
        return math.inf
    return float(torch.diff(torch.sort(x).values).min())


def projection(z: torch.Tensor, method: str = "random", seed: int = 0, draws: int = 8) -> torch.Tensor:
    """A direction ``a`` (float64, ``d`` entries) for ``x_i = <a, z_i>``.

    - ``random``: Gaussian entries / √d (distinct points collide with probability 0);
    - ``best_of``: of ``draws`` random directions, the one with the largest smallest spacing relative to the range;
    - ``pc1``: the first principal component of the points;
    - ``integer``: random integers in [-2^20, 2^20]; on integer inputs (MNIST's 8-bit pixels 0..255) every
      projection is then an exact integer in float64 (|x| < 784·255·2^20 < 2^53), so distinct projections differ by
      at least 1 and no rounding enters ``x``.
    """
    flat = flatten_points(z).double()
    d = flat.shape[1]
    generator = torch.Generator().manual_seed(seed)
    if method == "random":
        return torch.randn(d, generator=generator, dtype=torch.float64) / math.sqrt(d)
    if method == "best_of":
        best, best_score = None, -1.0
        for _ in range(draws):
            a = torch.randn(d, generator=generator, dtype=torch.float64) / math.sqrt(d)
            x = flat @ a
            score = min_gap(x) / max(float(x.max() - x.min()), 1e-300)
            if score > best_score:
                best, best_score = a, score
        return best
    if method == "pc1":
        centred = flat - flat.mean(0)
        _, vectors = torch.linalg.eigh(centred.T @ centred)
        a = vectors[:, -1]
        return a * torch.sign(a.sum()) if float(a.sum()) != 0 else a
    if method == "integer":
        return torch.randint(-2 ** 20, 2 ** 20 + 1, (d,), generator=generator).double()
    raise ValueError(f"unknown projection {method!r}; choose one of {PROJECTIONS}")


def sorted_projection(z: torch.Tensor, projection_method: str = "random", seed: int = 0, draws: int = 8,
                      dtype: str = "float64", max_redraws: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``(a, order, xs, redraws)``: the projection, the points' order along it and the sorted projections in ``dtype``.

    Refuses duplicate points (:class:`DuplicatePointsError`); if two distinct points collide *in ``dtype``*, redraws
    a random projection (seed + 1, ...) up to ``max_redraws`` times, then raises :class:`ProjectionCollisionError`.
    """
    check_distinct(z)
    torch_dtype = DTYPES[dtype]
    flat = flatten_points(z).double()
    for redraw in range(max_redraws + 1):
        a = projection(flat, projection_method, seed + redraw, draws)
        x = (flat @ a) if torch_dtype == torch.float64 else flat.to(torch_dtype) @ a.to(torch_dtype)
        order = torch.argsort(x, stable=True)
        xs = x[order]
        if min_gap(xs) > 0:
            return a.to(torch_dtype), order, xs, redraw
        if projection_method == "pc1" or redraw == max_redraws:
            i = int(torch.argmin(torch.diff(xs)))
            raise ProjectionCollisionError(
                f"the {projection_method} projection (seed {seed + redraw}) maps distinct points {int(order[i])} and "
                f"{int(order[i + 1])} to the same value {float(xs[i]):.17g} in {dtype}: redraw the projection "
                "(another seed or method) or solve in higher precision")
    raise AssertionError("unreachable")


def interleaved_biases(xs: torch.Tensor, bias_position: float = 0.5) -> torch.Tensor:
    """Biases with ``b_1 < x_1 < b_2 < ... < b_n < x_n`` for sorted distinct ``xs`` (Lemma 1's interleaving).

    ``b_i = x_{i-1} + θ (x_i - x_{i-1})`` for i > 1 (θ = ``bias_position`` in (0, 1); 0.5 = midpoints) and
    ``b_1 = x_1 - (1-θ)·h̄`` with ``h̄`` the mean spacing, so ``x_i - b_i = (1-θ)(x_i - x_{i-1})``.
    """
    if not 0 < bias_position < 1:
        raise ValueError(f"bias_position must be in (0, 1), got {bias_position}")
    n = len(xs)
    mean_spacing = float(xs[-1] - xs[0]) / (n - 1) if n > 1 and float(xs[-1] - xs[0]) > 0 else 1.0
    b = torch.empty_like(xs)
    b[0] = xs[0] - (1 - bias_position) * mean_spacing
    if n > 1:
        b[1:] = xs[:-1] + bias_position * (xs[1:] - xs[:-1])
    return b


def relu_matrix(x_rows: torch.Tensor, b_cols: torch.Tensor) -> torch.Tensor:
    """``[max(x_i - b_j, 0)]_ij``: Lemma 1's matrix (or a block of it)."""
    return (x_rows[:, None] - b_cols[None, :]).clamp_min(0)


# --- the triangular system -------------------------------------------------------------------------------


def solve_lower(xs: torch.Tensor, b: torch.Tensor, y: torch.Tensor, block: int = 1024) -> torch.Tensor:
    """Solve ``A w = y`` (Lemma 1's lower-triangular ``A``) by blocked forward substitution in ``xs``'s dtype.

    Row block ``I``: ``A_II w_I = y_I - A_{I,<I} w_{<I}``, solved with ``torch.linalg.solve_triangular``; blocks of
    ``A`` are formed on the fly, so memory is ``block × n``, never ``n²``. ``y`` may be ``(n,)`` or ``(n, K)``.
    """
    vector = y.dim() == 1
    rhs_all = (y[:, None] if vector else y).to(xs.dtype)
    w = torch.zeros_like(rhs_all)
    for start in range(0, len(xs), block):
        stop = min(start + block, len(xs))
        rhs = rhs_all[start:stop]
        if start > 0:
            rhs = rhs - relu_matrix(xs[start:stop], b[:start]) @ w[:start]
        w[start:stop] = torch.linalg.solve_triangular(relu_matrix(xs[start:stop], b[start:stop]), rhs, upper=False)
    return w[:, 0] if vector else w


def apply_matrix(xs: torch.Tensor, b: torch.Tensor, w: torch.Tensor, block: int = 1024) -> torch.Tensor:
    """``A w`` computed block by block (the network's outputs at the sorted points, in ``xs``'s dtype)."""
    vector = w.dim() == 1
    w2 = w[:, None] if vector else w
    out = torch.cat([relu_matrix(xs[s:s + block], b) @ w2 for s in range(0, len(xs), block)])
    return out[:, 0] if vector else out


def _solve_lower_recurrence(x: list[float], b: list[float], v: list[float]) -> list[float]:
    """``A⁻¹ v`` in O(n): between x_{i-1} and x_i the network has one kink (b_i), so with the slope ``S`` left of
    it, ``v_i = v_{i-1} + S (x_i - x_{i-1}) + w_i (x_i - b_i)`` (forward substitution, rearranged)."""
    w, slope = [], 0.0
    for i, (xi, bi, vi) in enumerate(zip(x, b, v)):
        wi = vi / (xi - bi) if i == 0 else (vi - v[i - 1] - slope * (xi - x[i - 1])) / (xi - bi)
        w.append(wi)
        slope += wi
    return w


def _solve_upper_transposed_recurrence(x: list[float], b: list[float], v: list[float]) -> list[float]:
    """``A⁻ᵀ v`` in O(n): with ``G_j = Σ_{i>j} u_i (x_i - b_j)`` and ``Q_j = Σ_{i>j} u_i``,
    ``u_j = (v_j - G_j)/(x_j - b_j)`` and ``G_{j-1} = v_j + (b_j - b_{j-1})(Q_j + u_j)``."""
    n = len(x)
    u = [0.0] * n
    g = q = 0.0
    for j in range(n - 1, -1, -1):
        u[j] = (v[j] - g) / (x[j] - b[j])
        if j > 0:
            g = v[j] + (b[j] - b[j - 1]) * (q + u[j])
        q += u[j]
    return u


def singular_value_extremes(xs: torch.Tensor, b: torch.Tensor, iterations: int = 30, seed: int = 0) -> tuple[float, float]:
    """Estimates of ``σ_max(A)`` (power iteration on ``AᵀA``, products through cumulative sums) and ``σ_min(A)``
    (power iteration on ``A⁻ᵀA⁻¹`` with the O(n) substitutions above), ``iterations`` steps each, float64.
    Both converge from the inside (σ_max from below, σ_min from above); exact values: ``torch.linalg.svdvals``.

    ``σ_min`` is what bounds ``‖w‖ ≤ ‖y‖/σ_min``; Lemma 1's smallest *eigenvalue* ``min(x_i - b_i)`` does not,
    because ``A`` is far from normal.
    """
    x64, b64 = xs.double(), b.double()
    generator = torch.Generator().manual_seed(seed)

    def times_a(v: torch.Tensor) -> torch.Tensor:       # (Av)_i = x_i Σ_{j≤i} v_j - Σ_{j≤i} v_j b_j
        return x64 * torch.cumsum(v, 0) - torch.cumsum(v * b64, 0)

    def times_at(u: torch.Tensor) -> torch.Tensor:      # (Aᵀu)_j = Σ_{i≥j} u_i x_i - b_j Σ_{i≥j} u_i
        flip = lambda t: torch.flip(t, (0,))  # noqa: E731
        return flip(torch.cumsum(flip(u * x64), 0)) - b64 * flip(torch.cumsum(flip(u), 0))

    v = torch.randn(len(xs), generator=generator, dtype=torch.float64)
    sigma_max = 0.0
    for _ in range(iterations):
        v = v / v.norm()
        v = times_at(times_a(v))
        sigma_max = math.sqrt(float(v.norm()))
    x, bl = x64.tolist(), b64.tolist()
    v = torch.randn(len(xs), generator=generator, dtype=torch.float64)
    inverse = 0.0
    for _ in range(iterations):
        v = v / v.norm()
        v = torch.tensor(_solve_upper_transposed_recurrence(x, bl, _solve_lower_recurrence(x, bl, v.tolist())),
                         dtype=torch.float64)
        inverse = math.sqrt(float(v.norm()))
    return sigma_max, 1.0 / inverse


def solve_exact(xs: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> list[Fraction]:
    """Exact rational solution of ``A w = y`` for the float64 values of ``xs``, ``b`` (as exact binary fractions).

    Forward substitution in O(n) through the running sums ``S = Σ_{j<i} w_j``, ``T = Σ_{j<i} w_j b_j``:
    row i reads ``y_i = S x_i - T + w_i (x_i - b_i)``. For the precision comparison on small n.
    """
    X = [Fraction(float(v)) for v in xs]
    B = [Fraction(float(v)) for v in b]
    Y = [Fraction(float(v)) for v in y]
    S = T = Fraction(0)
    w = []
    for xi, bi, yi in zip(X, B, Y):
        wi = (yi - S * xi + T) / (xi - bi)
        w.append(wi)
        S += wi
        T += wi * bi
    return w


# --- Theorem 1's network ------------------------------------------------------------------------------------


class Depth2ReLU(nn.Module):
    """Zhang et al.'s Theorem 1 network ``c(z) = Σ_j w_j relu(<a, z> - b_j)``: parameters ``a`` (d), ``b`` (n) and
    ``w`` (n, or n × K for K outputs sharing ``a`` and ``b``), so it has ``2n + d`` (or ``(K+1)n + d``) weights."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, w: torch.Tensor):
        super().__init__()
        self.a = nn.Parameter(a.clone())
        self.b = nn.Parameter(b.clone())
        self.w = nn.Parameter(w.clone())

    def project(self, z: torch.Tensor) -> torch.Tensor:
        return flatten_points(z).to(self.a.dtype) @ self.a

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return relu_matrix(self.project(z), self.b) @ self.w

    @torch.no_grad()
    def predict(self, z: torch.Tensor, batch: int = 1024) -> torch.Tensor:
        """Outputs for many points, ``batch`` at a time (the hidden layer has n units)."""
        return torch.cat([self(z[s:s + batch]) for s in range(0, len(z), batch)])


@dataclass
class Depth2Fit:
    """A fitted Theorem 1 network and the numbers of its solve."""

    model: Depth2ReLU
    order: torch.Tensor          # the points' indices sorted by projection
    xs: torch.Tensor             # sorted projections (dtype of the solve)
    b: torch.Tensor
    w: torch.Tensor
    projection: str
    seed: int
    dtype: str
    min_spacing: float           # min (x_i - x_{i-1})
    min_diagonal: float          # min (x_i - b_i): Lemma 1's smallest eigenvalue
    max_weight: float
    relative_residual: float     # ‖A w - y‖ / ‖y‖ in the solve's dtype
    solve_seconds: float
    redraws: int = 0
    stats: dict = field(default_factory=dict)

    @property
    def weights(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def fit_depth2(z: torch.Tensor, y: torch.Tensor, projection_method: str = "random", seed: int = 0, draws: int = 8,
               bias_position: float = 0.5, dtype: str = "float64", block: int = 1024, max_redraws: int = 3,
               refine: int = 0) -> Depth2Fit:
    """Theorem 1's construction on points ``z`` (n × ...) and real targets ``y`` ((n,) or (n, K)).

    Refuses duplicate points (:class:`DuplicatePointsError`). If the projection maps two distinct points to the same
    value *in the solve's dtype*, redraws it (seed + 1, ...) up to ``max_redraws`` times, then raises
    :class:`ProjectionCollisionError`. ``refine``: steps of iterative refinement (residual in the same dtype).
    """
    if len(z) != len(y):
        raise ValueError(f"{len(z)} points but {len(y)} targets")
    torch_dtype = DTYPES[dtype]
    a, order, xs, redraw = sorted_projection(z, projection_method, seed, draws, dtype, max_redraws)
    spacing = min_gap(xs)
    started = time.perf_counter()
    b = interleaved_biases(xs, bias_position)
    targets = y.to(torch_dtype)[order]
    w = solve_lower(xs, b, targets, block)
    for _ in range(refine):
        w = w + solve_lower(xs, b, targets - apply_matrix(xs, b, w, block), block)
    seconds = time.perf_counter() - started
    residual = float((apply_matrix(xs, b, w, block) - targets).norm() / targets.norm().clamp_min(1e-300))
    model = Depth2ReLU(a, b, w)
    return Depth2Fit(model, order, xs, b, w, projection_method, seed + redraw, dtype, spacing,
                     float((xs - b).min()), float(w.abs().max()), residual, seconds, redraw)


def read_labels(outputs: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Labels from the network's outputs: integer targets read by rounding (clamped to the classes), one-hot by argmax."""
    if outputs.dim() == 2:
        return outputs.argmax(1)
    return outputs.round().clamp(0, num_classes - 1).long()


# --- Corollary 1's depth-k network ------------------------------------------------------------------------------


def group_sizes(n: int, groups: int) -> list[int]:
    """Sizes of ``groups`` consecutive groups of the sorted points, as equal as possible (the first ones larger)."""
    if not 1 <= groups <= n:
        raise ValueError(f"need 1 <= groups <= n, got groups={groups}, n={n}")
    base, extra = divmod(n, groups)
    return [base + (1 if t < extra else 0) for t in range(groups)]


def depth_k_widths(sizes: list[int]) -> list[int]:
    """Hidden widths of :func:`fit_depth_k`'s network for groups of ``sizes`` (g groups, g + 2 hidden layers).

    Layer 0: 2 (x⁺, x⁻ = relu(±<a, z>)). Layer t = 1..g: m_t + 1 group units (Theorem 1's m_t kinks and one that
    zeroes the slope after the group), 4 indicator units, 2 carrying x (t < g), 2 gating group t-1 (t ≥ 2), 2
    carrying the running output (t ≥ 3). Layer g+1: 2 gating group g, 2 carrying the output (g ≥ 2).
    So the width is ``max_t m_t + 11 = ⌈n/g⌉ + 11`` when g ≥ 4 divides n (at most that for any g), and the depth (linear layers) is ``k = g + 3``.
    """
    g = len(sizes)
    widths = [2]
    for t in range(1, g + 1):
        widths.append(sizes[t - 1] + 1 + 4 + 2 * (t < g) + 2 * (t >= 2) + 2 * (t >= 3))
    widths.append(2 + 2 * (g >= 2))
    return widths


def depth_k_weight_count(n: int, d: int, sizes: list[int]) -> int:
    """Nonzero weights and biases of :func:`fit_depth_k`'s network (the paper's O(n + d) count).

    Per unit: x⁺/x⁻ of layer 0: d each; a group or indicator unit: 2 weights + 1 bias; an x carry: 2; a gate of
    group t: m_t + 1 + 4 weights + 1 bias; an output carry at layer t: 2 (t = 3) or 4 (t ≥ 4); the output: 2 or 4.
    For g ≥ 3 this is ``2d + 5n + 39g - 12``.
    """
    g = len(sizes)
    total = 2 * d
    for t in range(1, g + 1):
        total += 3 * (sizes[t - 1] + 1) + 12 + 4 * (t < g)
        if t >= 2:
            total += 2 * (sizes[t - 2] + 6)
        if t >= 3:
            total += 2 * (2 + 2 * (t >= 4))
    total += 2 * (sizes[g - 1] + 6)                # gates of the last group (layer g + 1)
    if g >= 2:
        total += 2 * (2 + 2 * (g + 1 >= 4))        # output carry at layer g + 1
    total += 2 + 2 * (g >= 2)                      # the output unit
    return total


@dataclass
class DepthKFit:
    model: MLP
    groups: int
    sizes: list[int]
    widths: list[int]
    nonzero_weights: int          # counted from the structural masks
    dense_parameters: int         # every entry of every dense weight matrix and bias
    depth: int                    # number of linear layers
    order: torch.Tensor
    max_weight: float
    big_m: float


def fit_depth_k(z: torch.Tensor, y: torch.Tensor, groups: int, projection_method: str = "random", seed: int = 0,
                bias_position: float = 0.5, block: int = 1024) -> DepthKFit:
    """Corollary 1's construction (appendix C) for scalar targets ``y``, as a float64 :class:`lib.models.MLP`.

    Sorted projections split into ``groups`` consecutive groups; group t's Theorem-1 fit (its own triangular solve
    on its points, biases interleaved as in :func:`fit_depth2`) sits in hidden layer t, followed by a unit that
    zeroes its slope after the group's last point, so the group's output ``o_t`` is 0 left of the group and the
    last target right of it (bounded: ``|o_t| ≤ M``). The indicator ``f_t`` is the trapezoid
    ``(relu(x-l+δ) - relu(x-l) - relu(x-r) + relu(x-r-δ))/δ``, 1 on the group's interval ``[l, r]`` and 0 beyond
    ``δ`` (half the distance to the neighbouring groups); the gate ``relu(±o_t - M(1 - f_t))`` in layer t + 1
    passes ``o_t`` where ``f_t = 1`` and 0 where ``f_t = 0``; identity pairs carry ``x`` and the running sum.
    """
    check_distinct(z)
    y = y.double()
    a, order, xs, _ = sorted_projection(z, projection_method, seed)
    b = interleaved_biases(xs, bias_position)
    n, d = len(xs), a.numel()
    targets = y[order]
    sizes = group_sizes(n, groups)
    bounds = [0]
    for m in sizes:
        bounds.append(bounds[-1] + m)
    g = groups
    big_m = 2 * float(targets.abs().max()) + 1
    # per group: local weights, slope after the group, interval and indicator width
    local = []
    for t in range(g):
        s, e = bounds[t], bounds[t + 1]
        w = solve_lower(xs[s:e], b[s:e], targets[s:e], block)
        left = float(xs[s] - xs[s - 1]) if t > 0 else math.inf
        right = float(xs[e] - xs[e - 1]) if t < g - 1 else math.inf
        delta = 0.5 * min(left, right) if min(left, right) < math.inf else 1.0
        local.append(dict(w=w, slope=float(w.sum()), l=float(xs[s]), r=float(xs[e - 1]), delta=delta,
                          kinks=b[s:e]))
    widths = depth_k_widths(sizes)
    # unit slots of each hidden layer
    layouts = []
    layouts.append({"xp": 0, "xm": 1})
    for t in range(1, g + 2):
        names = []
        if t <= g:
            names += [f"u{i}" for i in range(sizes[t - 1])] + ["kill", "T1", "T2", "T3", "T4"]
            if t < g:
                names += ["xp", "xm"]
        if t >= 2:
            names += ["gp", "gm"]
        if t >= 3:
            names += ["sp", "sm"]
        layouts.append({name: i for i, name in enumerate(names)})
    assert [len(layout) for layout in layouts] == widths
    layers, masks = [], []
    # layer 0 from the input
    W = torch.zeros(2, d, dtype=torch.float64)
    W[0], W[1] = a, -a
    layers.append((W, torch.zeros(2, dtype=torch.float64)))
    masks.append((torch.ones(2, d, dtype=torch.bool), torch.zeros(2, dtype=torch.bool)))
    for t in range(1, g + 2):
        prev, here = layouts[t - 1], layouts[t]
        W = torch.zeros(len(here), len(prev), dtype=torch.float64)
        bias = torch.zeros(len(here), dtype=torch.float64)
        Wm = torch.zeros_like(W, dtype=torch.bool)
        bm = torch.zeros_like(bias, dtype=torch.bool)

        def relu_of_x_minus(unit: int, c: float, sign: float = 1.0, with_bias: bool = True) -> None:
            W[unit, prev["xp"]], W[unit, prev["xm"]] = sign, -sign
            Wm[unit, prev["xp"]] = Wm[unit, prev["xm"]] = True
            if with_bias:
                bias[unit], bm[unit] = -c, True

        if t <= g:
            group = local[t - 1]
            for i in range(sizes[t - 1]):
                relu_of_x_minus(here[f"u{i}"], float(group["kinks"][i]))
            relu_of_x_minus(here["kill"], group["r"])
            l, r, delta = group["l"], group["r"], group["delta"]
            for name, c in (("T1", l - delta), ("T2", l), ("T3", r), ("T4", r + delta)):
                relu_of_x_minus(here[name], c)
            if t < g:
                relu_of_x_minus(here["xp"], 0.0, 1.0, with_bias=False)
                relu_of_x_minus(here["xm"], 0.0, -1.0, with_bias=False)
        if t >= 2:
            group = local[t - 2]
            coefficients = {**{f"u{i}": float(group["w"][i]) for i in range(sizes[t - 2])}, "kill": -group["slope"]}
            indicator = {"T1": 1.0, "T2": -1.0, "T3": -1.0, "T4": 1.0}
            for unit, sign in (("gp", 1.0), ("gm", -1.0)):
                row = here[unit]
                for name, coefficient in coefficients.items():
                    W[row, prev[name]], Wm[row, prev[name]] = sign * coefficient, True
                for name, coefficient in indicator.items():
                    W[row, prev[name]], Wm[row, prev[name]] = big_m * coefficient / group["delta"], True
                bias[row], bm[row] = -big_m, True
        if t >= 3:
            sources = {"gp": 1.0, "gm": -1.0, **({"sp": 1.0, "sm": -1.0} if "sp" in prev else {})}
            for unit, sign in (("sp", 1.0), ("sm", -1.0)):
                for name, coefficient in sources.items():
                    W[here[unit], prev[name]], Wm[here[unit], prev[name]] = sign * coefficient, True
        layers.append((W, bias))
        masks.append((Wm, bm))
    last = layouts[-1]
    W = torch.zeros(1, len(last), dtype=torch.float64)
    Wm = torch.zeros_like(W, dtype=torch.bool)
    for name, coefficient in {"gp": 1.0, "gm": -1.0, **({"sp": 1.0, "sm": -1.0} if "sp" in last else {})}.items():
        W[0, last[name]], Wm[0, last[name]] = coefficient, True
    layers.append((W, torch.zeros(1, dtype=torch.float64)))
    masks.append((Wm, torch.zeros(1, dtype=torch.bool)))

    model = MLP(d, widths, 1).double()
    linears = [model.hidden_linear(f"fc{i + 1}") for i in range(len(widths))] + [model.blocks.output]
    with torch.no_grad():
        for linear, (W, bias) in zip(linears, layers):
            linear.weight.copy_(W)
            linear.bias.copy_(bias)
    nonzero = int(sum(int(Wm.sum()) + int(bm.sum()) for Wm, bm in masks))
    dense = sum(p.numel() for p in model.parameters())
    max_weight = max(float(W.abs().max()) for W, _ in layers)
    return DepthKFit(model.eval(), g, sizes, widths, nonzero, dense, len(linears), order, max_weight, big_m)


@torch.no_grad()
def predict(model: nn.Module, z: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """Outputs of any of these networks (or a trained one) on ``z``, in float64, ``batch`` points at a time."""
    dtype = next(model.parameters()).dtype
    outputs = [model(z[s:s + batch].to(dtype)) for s in range(0, len(z), batch)]
    out = torch.cat(outputs)
    return out[:, 0] if out.dim() == 2 and out.shape[1] == 1 else out


# --- the chapter's measurements (book/zhang-expressivity.md) ----------------------------------------------------


def recovered(outputs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Fraction of ``labels`` read back from a network's ``outputs`` (:func:`read_labels`): Theorem 1 promises 1."""
    return float((read_labels(outputs, num_classes) == labels.long()).double().mean())


def theorem1_row(fit: Depth2Fit, points: torch.Tensor, labels: torch.Tensor, num_classes: int, sv_iterations: int,
                 svd_max_n: int = 0) -> dict:
    """What Theorem 1's network fitted to ``points`` and integer ``labels`` does, and Lemma 1's matrix behind it.

    The network's weights against ``2n + d``; the labels recovered and the largest error of its own forward pass on
    the points; the spacing of the projections and the diagonal ``min (x_i − b_i)`` (Lemma 1's smallest eigenvalue);
    ``σ_max``, ``σ_min`` of ``A`` (:func:`singular_value_extremes`, ``sv_iterations`` steps) and the condition number;
    ``‖w‖`` against the bounds ``‖y‖/λ_min`` and ``‖y‖/σ_min``; the solve's relative residual and times. Where
    ``n ≤ svd_max_n`` the exact extreme singular values of a full SVD are added (``sigma_min_svd``, ``sigma_max_svd``)."""
    n, d = len(points), points[0].numel()
    y = labels[:n]
    started = time.perf_counter()
    outputs = predict(fit.model, points)
    forward_s = time.perf_counter() - started
    sigma_max, sigma_min = singular_value_extremes(fit.xs, fit.b, sv_iterations)
    row = dict(n=n, d=d, weights=count_parameters(fit.model), two_n_plus_d=2 * n + d,
               recovered=recovered(outputs, y, num_classes), max_abs_error=float((outputs - y).abs().max()),
               min_spacing=fit.min_spacing, min_x_minus_b=fit.min_diagonal, sigma_min=sigma_min, sigma_max=sigma_max,
               condition=sigma_max / sigma_min, max_weight=fit.max_weight, w_norm=float(fit.w.norm()),
               eigen_bound=float(y.double().norm()) / fit.min_diagonal, sigma_bound=float(y.double().norm()) / sigma_min,
               relative_residual=fit.relative_residual, range=float(fit.xs[-1] - fit.xs[0]),
               solve_s=fit.solve_seconds, forward_s=forward_s)
    if n <= svd_max_n:
        exact = torch.linalg.svdvals(relu_matrix(fit.xs, fit.b))
        row.update(sigma_min_svd=float(exact.min()), sigma_max_svd=float(exact.max()))
    return row


def theorem1_table(points: torch.Tensor, labels: torch.Tensor, sizes: list[int], num_classes: int, seed: int,
                   sv_iterations: int, svd_max_n: int = 0) -> pd.DataFrame:
    """Theorem 1 on the first ``n`` of ``points`` for each ``n`` of ``sizes`` (random projection, midpoint biases,
    float64): one :func:`theorem1_row` per ``n``."""
    rows = []
    for n in sizes:
        fit = fit_depth2(points[:n], labels[:n].double(), "random", seed=seed)
        rows.append(theorem1_row(fit, points[:n], labels, num_classes, sv_iterations, svd_max_n))
    return pd.DataFrame(rows)


def variant_row(name: str, fit: Depth2Fit, points: torch.Tensor, targets: torch.Tensor, num_classes: int,
                note: str = "") -> dict:
    """One variant of Theorem 1's construction: labels recovered, the largest error at the sample, and the spacing,
    weights and residual relative to the spread of the projections (rescaling ``a`` rescales both)."""
    outputs = predict(fit.model, points).double()
    spread = float(fit.xs[-1] - fit.xs[0])
    return dict(variant=name, recovered=recovered(outputs, targets, num_classes),
                max_abs_error=float((outputs - targets).abs().max()), relative_spacing=fit.min_spacing / spread,
                weight_range=fit.max_weight * spread, relative_residual=fit.relative_residual, note=note)


def construction_variants(points: torch.Tensor, raw_points: torch.Tensor, best_of_draws: int,
                          bias_positions: list[float]) -> list[tuple[str, dict, torch.Tensor]]:
    """``(name, options of fit_depth2, points)`` of each variant compared with the baseline (a random direction,
    θ = 0.5): the best of ``best_of_draws`` random directions, the first principal component, random integer weights
    on ``raw_points`` (MNIST's 8-bit pixels, so every projection is an exact integer), each θ of ``bias_positions``
    but 0.5, and one step of iterative refinement."""
    variants = [("random direction, θ = 0.5 (baseline)", dict(), points)]
    variants += [(f"best of {best_of_draws} random directions", dict(projection_method="best_of", draws=best_of_draws),
                  points),
                 ("first principal component", dict(projection_method="pc1"), points),
                 ("random integer weights on 8-bit pixels", dict(projection_method="integer"), raw_points)]
    variants += [(f"random direction, θ = {theta}", dict(bias_position=theta), points)
                 for theta in bias_positions if theta != 0.5]
    variants += [("random direction, 1 step of iterative refinement", dict(refine=1), points)]
    return variants


def compare_variants(points: torch.Tensor, raw_points: torch.Tensor, targets: torch.Tensor, num_classes: int,
                     seed: int, best_of_draws: int, bias_positions: list[float],
                     float32_redraws: int = 3) -> tuple[pd.DataFrame, bool]:
    """Every variant of :func:`construction_variants` and a float32 solve, one :func:`variant_row` each.

    Returns the table and whether float32 failed: when every projection drawn (the first and ``float32_redraws``
    more) maps two distinct points to the same float32 value (:class:`ProjectionCollisionError`), Theorem 1's first
    step fails and the float32 row holds the error instead of numbers."""
    rows = [variant_row(name, fit_depth2(z, targets, seed=seed, **options), z, targets, num_classes)
            for name, options, z in construction_variants(points, raw_points, best_of_draws, bias_positions)]
    try:
        fit32 = fit_depth2(points, targets, seed=seed, dtype="float32", max_redraws=float32_redraws)
        rows.append(variant_row("float32 solve", fit32, points.float(), targets, num_classes,
                                note=f"{fit32.redraws} redraw(s)"))
        failed = False
    except ProjectionCollisionError as error:
        rows.append(dict(variant="float32 solve", recovered=math.nan, max_abs_error=math.nan, relative_spacing=0.0,
                         weight_range=math.nan, relative_residual=math.nan, note=str(error)[:120] + "…"))
        failed = True
    return pd.DataFrame(rows), failed


def exact_weight_error(fit: Depth2Fit, targets: torch.Tensor) -> float:
    """``‖w − w*‖/‖w*‖``: the fitted weights against the exact rational solution ``w*`` (:func:`solve_exact`) of the
    same system (the same float64 ``x`` and ``b``), for targets in the points' original order."""
    exact = torch.tensor([float(v) for v in solve_exact(fit.xs, fit.b, targets.double()[fit.order])],
                         dtype=torch.float64)
    return float((fit.w.double() - exact).norm() / exact.norm())


def depth_k_table(points: torch.Tensor, targets: torch.Tensor, groups: list[int], num_classes: int,
                  seed: int) -> pd.DataFrame:
    """Corollary 1's network (:func:`fit_depth_k`) for each number of ``groups``: depth, width against
    ``⌈n/g⌉ + 11``, nonzero weights against :func:`depth_k_weight_count`, dense parameters, labels recovered by its
    forward pass, the largest error and weight, and times."""
    n, d = len(points), points[0].numel()
    rows = []
    for g in groups:
        started = time.perf_counter()
        fit = fit_depth_k(points, targets, g, seed=seed)
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        outputs = predict(fit.model, points, batch=4096)
        rows.append(dict(
            groups=g, depth=fit.depth, width=max(fit.widths), width_formula=math.ceil(n / g) + 11,
            nonzero=fit.nonzero_weights, nonzero_formula=depth_k_weight_count(n, d, fit.sizes),
            dense=fit.dense_parameters, recovered=recovered(outputs, targets, num_classes),
            max_abs_error=float((outputs - targets).abs().max()), max_weight=fit.max_weight, build_s=build_s,
            forward_s=time.perf_counter() - started))
        del fit
    return pd.DataFrame(rows)


# --- SGD beside the construction ---------------------------------------------------------------------------------


def matched_hidden_width(n: int, d: int, num_classes: int) -> int:
    """The fewest hidden units ``H`` of a d-H-``num_classes`` MLP with at least Theorem 1's ``2n + d`` weights:
    it has ``(d + 1)H + (H + 1)·num_classes`` weights and biases."""
    return math.ceil((2 * n + d - num_classes) / (d + 1 + num_classes))


def sgd_configs(sgd, dataset: str, data_seed: int, models: list[str]):
    """The runs of the chapter's SGD comparison: each of ``models`` on ``sgd.n_train`` random labels (all of them
    redrawn, as in Figure 1a's random-label runs), pixels scaled, trained until 100% training accuracy or
    ``sgd.max_epochs``, tested once at the end. ``sgd``: the chapter's ``sgd`` parameters (``ExpressivitySGD``)."""
    return [RunConfig(dataset=dataset, n_train=sgd.n_train, n_test=1000, randomization="random_labels", corruption=1.0,
                      preprocessing="scale", data_seed=data_seed, model=model, lr=sgd.lr, lr_decay=sgd.lr_decay,
                      batch_size=sgd.batch_size, max_epochs=sgd.max_epochs, stop_train_acc=1.0,
                      test_every=sgd.max_epochs)
            for model in models]


def sgd_versus_construction(construction: Depth2Fit, points: torch.Tensor, labels: torch.Tensor,
                            summary: pd.DataFrame, models: list[str], matched_model: str, lr: float,
                            num_classes: int) -> pd.DataFrame:
    """Theorem 1's network beside the MLPs SGD trained on the same ``points`` and random ``labels``: weights, how
    it was obtained, epochs, seconds and training accuracy. ``summary``: :func:`lib.runs.run_grid`'s table of the
    runs of ``models`` (in that order); ``matched_model`` is the one sized like the construction."""
    n, d = len(points), points[0].numel()
    rows = [dict(network=f"Theorem 1 construction (2n + d = {2 * n + d:,})", weights=count_parameters(construction.model),
                 how="one triangular solve", epochs="—", seconds=construction.solve_seconds,
                 train_accuracy=recovered(predict(construction.model, points), labels, num_classes))]
    for model, (_, run) in zip(models, summary.iterrows()):
        weights = count_parameters(build_model(model, tuple(points.shape[1:]), num_classes, 0))
        rows.append(dict(network=f"MLP {d}-{model.split('x')[1]}-{num_classes}"
                         + (" (matched size)" if model == matched_model else ""),
                         weights=weights, how=f"SGD, lr {lr}", epochs=int(run.epochs), seconds=run.train_seconds,
                         train_accuracy=run.final_train_acc))
    return pd.DataFrame(rows)
