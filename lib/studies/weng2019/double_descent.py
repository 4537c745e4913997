"""Double descent (Belkin, Hsu, Ma & Mandal 2019, "Reconciling modern machine learning practice and the
bias-variance trade-off"), as toured by Weng (2019): a specialized sweep trainer and the random-feature solve.

Neural networks (Belkin et al.'s Figure 4): one hidden layer of ``H`` ReLU units, 784-H-10, so
``N(H) = (784 + 1) H + (H + 1) 10`` parameters; squared loss ``(1/n) sum_i ||f(x_i) - e_{y_i}||^2`` on the linear
outputs against one-hot targets, no regularization, a fixed MNIST training subset (4,000 images, sampled once)
and the full test set. The interpolation threshold is ``n K`` = 40,000 parameters (H of about 50).

**Fast by design.** Widths of a sweep that do not depend on each other are trained *jointly* as one
block-structured model (:class:`Sweep`): the first layers of all widths are concatenated into one wide
``[784, sum H]`` product, the output layer is block diagonal (each width's hidden units feed only its own 10
outputs; computed as one product per block of the already computed hidden activations, about 1% of the flops of
the first layer), and the per-width losses are *summed*. The gradient of that sum with respect to width j's
parameters is width j's own gradient, and the optimizers used here (momentum SGD, Adam) act elementwise, so every
width follows exactly the trajectory it would follow alone (:func:`train_sweep`; tests/test_double_descent.py
checks it). A whole sweep then costs about one product of the summed width, at the rate of a large matrix.

**Weight reuse** (Belkin et al., Section 3.1): below the threshold the first network starts from Glorot-uniform
initialization and each larger one from the next-smaller *trained* one, its new units drawn from a normal
distribution of mean 0 and variance 0.01 (:func:`grow`); these widths are sequential by nature. Above the
threshold each network starts fresh from Glorot initialization, which is exactly the sweep without reuse, so the
curve with reuse takes its over-parameterized half from the joint fresh sweep (same seeds, same networks).

**Random Fourier features** (Belkin et al.'s Figure 2): ``phi(x) = sqrt(2/N) cos(<v_k, x> + b_k)``, k = 1..N,
``v_k ~ N(0, sigma^-2 I)``, ``b_k ~ U[0, 2 pi)``: N real features approximating the Gaussian kernel
``exp(-||x - y||^2 / (2 sigma^2))``; the predictor is the minimum-norm least-squares solution (:func:`min_norm_lstsq`),
which interpolates once N >= n; the test risk peaks at N = n (:func:`rff_curve`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from lib import data as data_lib
from lib.cache import Store

INPUT_DIM, NUM_CLASSES = 784, 10


def n_params(width: int, d: int = INPUT_DIM, k: int = NUM_CLASSES) -> int:
    """Parameters of a d-H-K network with biases: (d + 1) H + (H + 1) K (Belkin et al., Section 3.1)."""
    return (d + 1) * width + (width + 1) * k


def threshold_width(n: int, d: int = INPUT_DIM, k: int = NUM_CLASSES) -> float:
    """The width at which the parameter count reaches n K (the interpolation threshold), as a real number."""
    return (n * k - k) / (d + 1 + k)


# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class Split:
    x_train: torch.Tensor  # [n, 784] float32, pixels / 255
    y_train: torch.Tensor  # int64 (possibly with redrawn labels)
    x_test: torch.Tensor
    y_test: torch.Tensor
    y_train_clean: torch.Tensor


def redraw_labels(y: torch.Tensor, fraction: float, seed: int, k: int = NUM_CLASSES) -> torch.Tensor:
    """Label noise: each label, with probability ``fraction``, is redrawn uniformly from the K classes."""
    g = torch.Generator().manual_seed(seed)
    flip = torch.rand(len(y), generator=g) < fraction
    new = torch.randint(0, k, (len(y),), generator=g)
    return torch.where(flip, new, y)


def mnist_split(n_train: int, n_test: int | None = None, seed: int = 0, label_noise: float = 0.0,
                noise_seed: int = 0) -> Split:
    """A fixed MNIST training subset of ``n_train`` images (sampled once with ``seed``), the test set (all of it
    when ``n_test`` is None), pixels scaled to [0, 1] and flattened (via :mod:`lib.data`)."""
    part = data_lib.subset(data_lib.load_dataset("mnist"), n_train, n_test, seed=seed)
    flat = lambda x: data_lib.scale_pixels(x).reshape(len(x), -1).float().contiguous()  # noqa: E731
    y = part.y_train.clone()
    noisy = redraw_labels(y, label_noise, noise_seed) if label_noise > 0 else y
    return Split(flat(part.x_train), noisy, flat(part.x_test), part.y_test.clone(), y)


# ---------------------------------------------------------------------------------------------
# Networks: one width as a dict of tensors, a sweep as a block-structured model


def glorot(width: int, seed: int, d: int = INPUT_DIM, k: int = NUM_CLASSES) -> dict:
    """Glorot-uniform weights (limits sqrt(6 / (fan_in + fan_out))), zero biases; seeded by (seed, width)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + width)
    a1, a2 = math.sqrt(6 / (d + width)), math.sqrt(6 / (width + k))
    return {"w1": (torch.rand(d, width, generator=g) * 2 - 1) * a1, "b1": torch.zeros(width),
            "w2": (torch.rand(width, k, generator=g) * 2 - 1) * a2, "b2": torch.zeros(k)}


def grow(small: dict, width: int, seed: int, variance: float = 0.01) -> dict:
    """Belkin et al.'s weight reuse: the trained ``small`` network copied into the first units of a ``width``-unit
    one; only the new units' incoming and outgoing weights are drawn, from N(0, variance); their biases are 0."""
    h = small["w1"].shape[1]
    if width < h:
        raise ValueError(f"cannot grow a {h}-unit network into {width} units")
    g = torch.Generator().manual_seed(seed * 1_000_003 + width + 7)
    std = math.sqrt(variance)
    d, k = small["w1"].shape[0], small["w2"].shape[1]
    new_w1 = torch.randn(d, width - h, generator=g) * std
    new_w2 = torch.randn(width - h, k, generator=g) * std
    return {"w1": torch.cat([small["w1"], new_w1], 1), "b1": torch.cat([small["b1"], torch.zeros(width - h)]),
            "w2": torch.cat([small["w2"], new_w2], 0), "b2": small["b2"].clone()}


class Sweep:
    """Networks of widths ``H_1..H_m`` held as one model: ``w1 [d, sum H]``, ``b1 [sum H]``, ``w2 [sum H, K]`` (the
    blocks of a block-diagonal output layer) and ``b2 [m, K]``. :meth:`forward` returns ``[m, n, K]``."""

    def __init__(self, nets: list[dict]):
        self.widths = [int(n["w1"].shape[1]) for n in nets]
        self.w1 = torch.cat([n["w1"] for n in nets], 1).contiguous()
        self.b1 = torch.cat([n["b1"] for n in nets])
        self.w2 = torch.cat([n["w2"] for n in nets], 0).contiguous()
        self.b2 = torch.stack([n["b2"] for n in nets])
        edges = [0]
        for h in self.widths:
            edges.append(edges[-1] + h)
        self.edges = edges
        self.unit_owner = torch.repeat_interleave(torch.arange(len(nets)), torch.tensor(self.widths))

    def parameters(self) -> list[torch.Tensor]:
        return [self.w1, self.b1, self.w2, self.b2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(torch.addmm(self.b1, x, self.w1))  # one wide product for every width
        # split (not slicing) so the backward pass concatenates blocks instead of adding m full-size zero tensors
        outs = [h @ w for h, w in zip(hidden.split(self.widths, 1), self.w2.split(self.widths, 0))]
        return torch.stack(outs) + self.b2[:, None, :]

    def net(self, j: int) -> dict:
        a, b = self.edges[j], self.edges[j + 1]
        return {"w1": self.w1[:, a:b].detach().clone(), "b1": self.b1[a:b].detach().clone(),
                "w2": self.w2[a:b].detach().clone(), "b2": self.b2[j].detach().clone()}

    def width_mask(self, per_width: torch.Tensor) -> list[torch.Tensor]:
        """A per-width factor spread onto each parameter tensor's shape (for per-width steps and freezing)."""
        unit = per_width[self.unit_owner]
        return [unit[None, :], unit, unit[:, None], per_width[:, None]]


def squared_loss(outputs: torch.Tensor, y: torch.Tensor, on: str = "linear") -> torch.Tensor:
    """Per-width squared loss, ``[m]``: mean over samples of ||g(f(x)) - e_y||^2 with g the identity
    (``on="linear"``, Belkin et al.) or the softmax (``on="softmax"``, Weng's code)."""
    target = torch.nn.functional.one_hot(y, outputs.shape[-1]).to(outputs.dtype)
    pred = outputs.softmax(-1) if on == "softmax" else outputs
    return ((pred - target) ** 2).sum(-1).mean(-1)


# ---------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class TrainSpec:
    """How one sweep is trained (every width alike, except where a per-width list says otherwise)."""

    epochs: int
    lr: float
    optimizer: str = "sgd"            # "sgd" (with momentum) or "adam"
    momentum: float = 0.95
    batch_size: int | None = None     # None: full batch
    lr_decay: float = 1.0             # multiply the step by this ...
    lr_decay_every: int = 0           # ... every so many epochs (0: never)
    stop_at_zero_error: bool = False  # freeze a width once it classifies every training image correctly
    loss_on: str = "linear"           # "linear" (Belkin) or "softmax" (Weng)
    seed: int = 0                     # minibatch order


def train_sweep(nets: list[dict], x: torch.Tensor, y: torch.Tensor, spec: TrainSpec,
                decays: list[bool] | None = None, stops: list[bool] | None = None,
                progress: bool = False) -> tuple[list[dict], list[int]]:
    """Train the networks ``nets`` jointly (see :class:`Sweep`); returns the trained networks and, per width,
    the number of epochs it trained (fewer than ``spec.epochs`` when it stopped at zero training error).

    ``decays[j]`` says whether width j's step is cut by ``spec.lr_decay`` every ``spec.lr_decay_every`` epochs
    (Belkin et al. cut it below the threshold only) and ``stops[j]`` whether it stops at zero training error when
    ``spec.stop_at_zero_error`` (default: every width). Every update is elementwise, so each width's trajectory is
    the one it has when trained alone with the same minibatch order."""
    from tqdm.auto import tqdm

    model = Sweep(nets)
    params = model.parameters()
    for p in params:
        p.requires_grad_(True)
    m, n = len(nets), len(y)
    decays = torch.tensor([True] * m if decays is None else decays)
    stops = torch.tensor([True] * m if stops is None else stops)
    active = torch.ones(m)
    epochs_trained = [spec.epochs] * m
    if spec.optimizer not in ("sgd", "adam"):
        raise ValueError(f"unknown optimizer {spec.optimizer!r}")
    beta1, beta2, eps, t = 0.9, 0.999, 1e-8, 0  # Adam's defaults (Kingma & Ba; torch.optim.Adam)
    second = [torch.zeros_like(p) for p in params]
    velocity = [torch.zeros_like(p) for p in params]
    batch = n if spec.batch_size is None else min(spec.batch_size, n)
    for epoch in tqdm(range(spec.epochs), disable=not progress, leave=False, desc=f"sweep of {m} widths"):
        cuts = epoch // spec.lr_decay_every if spec.lr_decay_every else 0
        step = spec.lr * torch.where(decays, torch.tensor(spec.lr_decay ** cuts), torch.tensor(1.0)) * active
        masks = model.width_mask(step)  # per-width step size, 0 for a frozen width
        order = (torch.randperm(n, generator=torch.Generator().manual_seed(spec.seed * 100_003 + epoch))
                 if batch < n else None)
        errors = torch.zeros(m)
        for start in range(0, n, batch):
            idx = order[start:start + batch] if order is not None else None
            xb, yb = (x, y) if idx is None else (x[idx], y[idx])
            out = model.forward(xb)
            loss = squared_loss(out, yb, spec.loss_on)
            errors += (out.detach().argmax(-1) != yb).sum(-1).float()
            grads = torch.autograd.grad(loss.sum(), params)
            with torch.no_grad():
                if spec.optimizer == "adam":  # elementwise, as torch.optim.Adam, with a per-width step size
                    t += 1
                    for p, g, m1, m2, mask in zip(params, grads, velocity, second, masks):
                        m1.mul_(beta1).add_(g, alpha=1 - beta1)
                        m2.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                        denom = (m2 / (1 - beta2 ** t)).sqrt_().add_(eps)
                        p.sub_(mask * (m1 / (1 - beta1 ** t)) / denom)
                else:
                    for p, g, v, mask in zip(params, grads, velocity, masks):
                        v.mul_(spec.momentum).add_(g)
                        p.sub_(mask * v)
        if spec.stop_at_zero_error:
            done = (errors == 0) & (active > 0) & stops
            for j in torch.nonzero(done).flatten().tolist():
                epochs_trained[j] = epoch + 1
            active = torch.where(done, torch.zeros(m), active)
            if not bool((active > 0).any()):
                break
    return [model.net(j) for j in range(m)], epochs_trained


@torch.no_grad()
def evaluate(nets: list[dict], x: torch.Tensor, y: torch.Tensor, chunk: int = 5000,
             loss_on: str = "linear") -> dict[str, list[float]]:
    """Per width: the squared loss (on the linear outputs, or on the softmax probabilities for nets trained on
    them, as Weng's code measures it) and the zero-one error, on (x, y)."""
    model = Sweep(nets)
    loss = torch.zeros(len(nets), dtype=torch.float64)
    wrong = torch.zeros(len(nets), dtype=torch.float64)
    for start in range(0, len(y), chunk):
        out = model.forward(x[start:start + chunk])
        yb = y[start:start + chunk]
        loss += squared_loss(out, yb, loss_on).double() * len(yb)
        wrong += (out.argmax(-1) != yb).sum(-1).double()
    return {"loss": (loss / len(y)).tolist(), "error": (wrong / len(y)).tolist()}


# ---------------------------------------------------------------------------------------------
# Curves, cached on disk


STORE = Store("double-descent", sources=("studies/weng2019/double_descent.py", "data.py"))  # the sweep trainer's source is in the key


def cached(kind: str, settings: dict, compute) -> dict:
    """``compute()`` once per (kind, settings, source of this module and of the data loader); the result (a
    JSON-able dict) is kept in the result store (:mod:`lib.cache`) and read back on the next call."""

    def timed() -> dict:
        started = time.perf_counter()
        result = compute()
        result["seconds"] = time.perf_counter() - started
        result["settings"] = settings
        return {"result": result}

    stored, was_cached = STORE.fetch({"kind": kind, **settings}, timed)
    return {**stored["result"], "cached": was_cached}


def nn_curve(split_settings: dict, widths: list[int], spec: dict, reuse: str, seed: int,
             progress: bool = False) -> dict:
    """One curve of one-hidden-layer networks of the given widths, cached on disk.

    ``reuse="chain"``: Belkin et al.'s weight reuse through all ``widths`` in order (the first from Glorot, each
    next one grown from the previous trained one); ``reuse="none"``: every width fresh from Glorot, all trained
    jointly. ``spec``: :class:`TrainSpec` fields; its step-size cuts and its stop at zero training error apply
    to widths below the threshold n K only (Belkin et al.: above it a fixed step and the full epoch budget).
    Belkin et al.'s curve with reuse is the chain below the threshold joined to the fresh sweep above it."""
    settings = {"split": split_settings, "widths": widths, "spec": spec, "reuse": reuse, "seed": seed}

    def compute() -> dict:
        split = mnist_split(**split_settings)
        limit = threshold_width(len(split.y_train))
        train_spec = TrainSpec(**spec)
        below = [w < limit for w in widths]
        if reuse == "chain":
            nets, epochs, previous = [], [], None
            for width, under in zip(widths, below):
                start = glorot(width, seed) if previous is None else grow(previous, width, seed)
                (net,), (e,) = train_sweep([start], split.x_train, split.y_train, train_spec, decays=[under],
                                           stops=[under], progress=progress)
                nets.append(net), epochs.append(e)
                previous = net
        elif reuse == "none":
            nets, epochs = train_sweep([glorot(w, seed) for w in widths], split.x_train, split.y_train, train_spec,
                                       decays=below, stops=below, progress=progress)
        else:
            raise ValueError(f"unknown reuse {reuse!r}: 'chain' or 'none'")
        train = evaluate(nets, split.x_train, split.y_train, loss_on=train_spec.loss_on)
        train_clean = evaluate(nets, split.x_train, split.y_train_clean, loss_on=train_spec.loss_on)
        test = evaluate(nets, split.x_test, split.y_test, loss_on=train_spec.loss_on)
        return {"width": widths, "params": [n_params(w) for w in widths], "epochs": epochs,
                "train_loss": train["loss"], "train_error": train["error"],
                "train_clean_error": train_clean["error"],
                "test_loss": test["loss"], "test_error": test["error"],
                "threshold_params": len(split.y_train) * NUM_CLASSES}

    return cached("nn", settings, compute)


# ---------------------------------------------------------------------------------------------
# Random Fourier features (Belkin et al., Figure 2)


def fourier_frequencies(n_features: int, sigma: float, seed: int, d: int = INPUT_DIM,
                        dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """N frequencies v_k ~ N(0, sigma^-2 I) (a scale, not a shift) and N phases b_k ~ U[0, 2 pi)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(d, n_features, generator=g, dtype=dtype) / sigma
    b = torch.rand(n_features, generator=g, dtype=dtype) * 2 * math.pi
    return v, b


def fourier_features(x: torch.Tensor, v: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sqrt(2 / N) cos(x v + b): N real features whose inner products approximate the Gaussian kernel. Each
    feature is one cosine with a random phase, so N features are N parameters of the predictor (Belkin et al.'s
    count); stacking a cos and a sin per frequency would make 2N."""
    projection = (x.float() @ v.float()).to(v.dtype)  # the product in float32 (fast); phases and cosines in v's dtype
    return math.sqrt(2.0 / v.shape[1]) * torch.cos(projection + b)


def min_norm_lstsq(z: torch.Tensor, y: torch.Tensor, rcond: float | None = None) -> torch.Tensor:
    """The minimum-norm least-squares solution of ``z w = y`` (``z`` [n, N]): the pseudo-inverse solution, by an
    eigendecomposition of the Gram matrix on the smaller side (N x N when N <= n, n x n above), in z's dtype.

    Below N = n it is ordinary least squares ``(Z^T Z)^+ Z^T y``; above it the minimum-norm interpolant
    ``Z^T (Z Z^T)^+ y``. Near N = n the smallest eigenvalues are tiny: that is the peak of the risk curve, not a
    numerical accident, so only eigenvalues below ``rcond`` times the largest (default: the dtype's eps times the
    size) are cut."""
    n, big_n = z.shape
    gram = z.T @ z if big_n <= n else z @ z.T
    vals, vecs = torch.linalg.eigh(gram)
    cutoff = (rcond if rcond is not None else torch.finfo(z.dtype).eps * max(n, big_n)) * vals.max()
    keep = vals > cutoff
    inverse = (vecs[:, keep] / vals[keep]) @ vecs[:, keep].T
    if big_n <= n:
        return inverse @ (z.T @ y)
    return z.T @ (inverse @ y)


def rff_curve(n_train: int, feature_counts: list[int], sigma: float, seed: int, split_seed: int = 0,
              n_test: int | None = None, chunk: int = 2048) -> dict:
    """Belkin et al.'s Figure 2 at n = ``n_train``: for each N in ``feature_counts`` (nested: the first N of one
    draw), the minimum-norm least-squares predictor on N random Fourier features; train and test squared loss
    (sum over the 10 outputs, mean over images), zero-one error and the l2 norm of the coefficients. Cached."""
    settings = {"n_train": n_train, "features": feature_counts, "sigma": sigma, "seed": seed,
                "split_seed": split_seed, "n_test": n_test}

    def compute() -> dict:
        split = mnist_split(n_train, n_test, seed=split_seed)
        v_all, b_all = fourier_frequencies(max(feature_counts), sigma, seed)
        ytr = torch.nn.functional.one_hot(split.y_train, NUM_CLASSES).double()
        yte = torch.nn.functional.one_hot(split.y_test, NUM_CLASSES).double()
        rows = {k: [] for k in ("features", "train_loss", "train_error", "test_loss", "test_error", "norm")}
        for count in feature_counts:
            v, b = v_all[:, :count], b_all[:count]
            z = fourier_features(split.x_train, v, b)
            w = min_norm_lstsq(z, ytr)
            pred_tr = z @ w
            del z
            pred_te = torch.cat([fourier_features(split.x_test[i:i + chunk], v, b) @ w
                                 for i in range(0, len(yte), chunk)])
            rows["features"].append(count)
            rows["train_loss"].append(float(((pred_tr - ytr) ** 2).sum(1).mean()))
            rows["train_error"].append(float((pred_tr.argmax(1) != split.y_train).double().mean()))
            rows["test_loss"].append(float(((pred_te - yte) ** 2).sum(1).mean()))
            rows["test_error"].append(float((pred_te.argmax(1) != split.y_test).double().mean()))
            rows["norm"].append(float(w.norm()))
        return rows

    return cached("rff", settings, compute)
