"""Per-layer probes of Theunissen, Davel & Barnard (2019).

Pure functions implementing the node-level metrics of M. W. Theunissen,
M. H. Davel and E. Barnard, "Insights regarding overfitting on noise in deep
learning" (FAIR 2019; extended as "Benign interpolation of noise in deep
learning", SACJ 2020):

* Eq. (4): per-layer mean cosine similarity between a node's weight vector and
  the previous-layer activations of the samples in its *sample set* (the
  samples for which the node is active, Sec. 3.3);
* Eq. (5): polarization of a node's sample set for a class between corrupted
  and uncorrupted samples;
* Eq. (6): per-layer mean polarization;
* the per-(node, class) sample-set composition plotted in Fig. 4.

Conventions: activations are ``[n_samples, n_nodes]`` (post-ReLU), a weight
matrix is ``[n_nodes, n_in]`` (row ``i`` is ``w_i``, as in ``nn.Linear``).
Inputs may be torch tensors or numpy arrays; everything is computed in torch,
in chunks of samples so that a full 55,000 x 512 layer needs little memory.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

ArrayLike = torch.Tensor | np.ndarray

DEFAULT_CHUNK_SIZE = 4096


def _as_tensor(x: ArrayLike, name: str, ndim: int) -> torch.Tensor:
    """Convert ``x`` to a CPU tensor and check its number of dimensions."""
    t = torch.as_tensor(x).detach().cpu()
    if t.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(t.shape)}")
    return t


def active_mask(activations: ArrayLike) -> torch.Tensor:
    """Boolean ``[n_samples, n_nodes]`` mask of strictly positive activations.

    Column ``i`` is the *sample set* of node ``i`` (Theunissen et al. 2019,
    Sec. 3.3): the samples for which the ReLU node is active, i.e. the samples
    whose gradients can update ``w_i``.
    """
    return torch.as_tensor(activations).detach().cpu() > 0


def node_cosine_similarity(
    weight: ArrayLike,
    previous_activations: ArrayLike,
    activations: ArrayLike,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> torch.Tensor:
    """Per-node term of Eq. (4) of Theunissen et al. (2019).

    For node ``i`` this is ``(1/|A_i|) sum_{a in A_i} a_il / (||w_i|| ||a_{l-1}||)``
    where ``A_i`` are the samples with ``a_il > 0``. Without a bias,
    ``a_il = ||w_i|| ||a_{l-1}|| cos(theta)`` (Eq. 3), so this is the mean
    cosine similarity between ``w_i`` and the previous-layer activations of
    the node's sample set. ``activations`` are used as given (as in Eq. 4), so
    with a bias the value is the bias-shifted analogue.

    Args:
        weight: ``W_l`` as ``[n_nodes, n_in]``.
        previous_activations: ``a_{l-1}`` as ``[n_samples, n_in]``.
        activations: post-ReLU ``a_l`` as ``[n_samples, n_nodes]``.
        chunk_size: number of samples processed at a time.

    Returns:
        float64 tensor ``[n_nodes]``. NaN for dead nodes (active for no
        sample) and for nodes with ``||w_i|| = 0`` (cosine undefined).
        Samples with ``||a_{l-1}|| = 0`` are left out of ``A_i`` for the same
        reason (they can only be active through a bias).
    """
    w = _as_tensor(weight, "weight", 2).to(torch.float64)
    prev = _as_tensor(previous_activations, "previous_activations", 2)
    act = _as_tensor(activations, "activations", 2)
    n_nodes, n_in = w.shape
    if prev.shape[1] != n_in or act.shape[1] != n_nodes or prev.shape[0] != act.shape[0]:
        raise ValueError(
            f"incompatible shapes: weight {tuple(w.shape)}, previous_activations "
            f"{tuple(prev.shape)}, activations {tuple(act.shape)}"
        )
    if chunk_size < 1:
        raise ValueError("chunk_size must be positive")

    ratio_sum = torch.zeros(n_nodes, dtype=torch.float64)
    count = torch.zeros(n_nodes, dtype=torch.int64)
    for start in range(0, act.shape[0], chunk_size):
        r, c = _cosine_sums(prev[start : start + chunk_size], act[start : start + chunk_size])
        ratio_sum += r
        count += c
    return _cosine_from_sums(w, ratio_sum, count)


def _cosine_sums(previous_activations: torch.Tensor, activations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Additive parts of Eq. (4) over some samples: per node, the sum of ``a_il / ||a_{l-1}||`` over
    its active samples (with ``||a_{l-1}|| > 0``) and their count."""
    a = activations.to(torch.float64)
    prev_norm = torch.linalg.vector_norm(previous_activations.to(torch.float64), dim=1)
    valid = (a > 0) & (prev_norm > 0).unsqueeze(1)
    ratio = torch.where(valid, a / prev_norm.clamp_min(1e-300).unsqueeze(1), 0.0)
    return ratio.sum(dim=0), valid.sum(dim=0)


def _cosine_from_sums(weight: torch.Tensor, ratio_sum: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Per-node Eq. (4) from the sums of :func:`_cosine_sums`; NaN for dead nodes and zero weight vectors."""
    w_norm = torch.linalg.vector_norm(weight.to(torch.float64), dim=1)
    defined = (count > 0) & (w_norm > 0)
    out = torch.full((len(w_norm),), math.nan, dtype=torch.float64)
    out[defined] = ratio_sum[defined] / (count[defined] * w_norm[defined])
    return out


def mean_cosine_similarity(
    weight: ArrayLike,
    previous_activations: ArrayLike,
    activations: ArrayLike,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> float:
    """Per-layer mean cosine similarity ``mu_cosine(l)``, Eq. (4) of Theunissen et al. (2019).

    Mean over nodes of :func:`node_cosine_similarity`. Dead nodes (and nodes
    with a zero weight vector) are omitted from the mean over nodes, as the
    paper does for Eq. (6). Returns NaN if no node qualifies.
    """
    per_node = node_cosine_similarity(weight, previous_activations, activations, chunk_size)
    return float(per_node.nanmean()) if not per_node.isnan().all() else math.nan


def _class_node_counts(
    activations: ArrayLike,
    labels: ArrayLike,
    corrupted: ArrayLike,
    num_classes: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(|A_i^c|, |Ã_i^c|)`` as int64 tensors ``[num_classes, n_nodes]``."""
    act = _as_tensor(activations, "activations", 2)
    y = _as_tensor(labels, "labels", 1).to(torch.int64)
    corr = _as_tensor(corrupted, "corrupted", 1).to(torch.bool)
    if not (act.shape[0] == y.shape[0] == corr.shape[0]):
        raise ValueError(
            f"activations, labels and corrupted disagree on n_samples: "
            f"{act.shape[0]}, {y.shape[0]}, {corr.shape[0]}"
        )
    if y.numel() and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")

    n_active = torch.zeros(num_classes, act.shape[1], dtype=torch.int64)
    n_corrupted = torch.zeros_like(n_active)
    for start in range(0, act.shape[0], chunk_size):
        _add_class_counts(n_active, n_corrupted, act[start : start + chunk_size], y[start : start + chunk_size],
                          corr[start : start + chunk_size])
    return n_active, n_corrupted


def _add_class_counts(n_active: torch.Tensor, n_corrupted: torch.Tensor, activations: torch.Tensor,
                      labels: torch.Tensor, corrupted: torch.Tensor) -> None:
    """Add some samples' ``|A_i^c|`` and ``|Ã_i^c|`` to the ``[num_classes, n_nodes]`` counters in place."""
    on = (activations > 0).to(torch.int64)
    n_active.index_add_(0, labels, on)
    n_corrupted.index_add_(0, labels, on * corrupted.unsqueeze(1))


def _polarization_from_counts(n_active: torch.Tensor, n_corrupted: torch.Tensor) -> torch.Tensor:
    """Eq. (5) from class/node counts; NaN where ``|A_i^c| = 0``."""
    frac = n_corrupted.to(torch.float64) / n_active.to(torch.float64)  # 0/0 -> NaN
    return 2.0 * (0.5 - frac).abs()


def node_polarization(
    activations: ArrayLike,
    labels: ArrayLike,
    corrupted: ArrayLike,
    num_classes: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> torch.Tensor:
    """``polarization(c, i)``, Eq. (5) of Theunissen et al. (2019).

    ``polarization(c, i) = 2 | 1/2 - |Ã_i^c| / |A_i^c| |`` where ``A_i^c`` are
    the samples of class ``c`` active at node ``i`` and ``Ã_i^c`` the
    corrupted ones among them: 1 when the node's class-``c`` sample set is
    all-clean or all-corrupted, 0 when it is half and half.

    Which labels define class ``c``: pass the **true (original) labels** ``y``,
    not the corrupted training labels ``ŷ`` of Alg. 1. The paper speaks of
    "samples from class c" whose sample set favours "the corrupted or
    uncorrupted samples of a class"; Alg. 1 keeps ``Y`` as the data and only
    swaps the label used for training. Section 4.3 also explains the *lower*
    early-layer polarization under label corruption by "strong coherence based
    on correlations in class-related input structures": that only follows if
    a class groups corrupted and clean samples with the same input structure,
    i.e. the same true class (grouping by training label would put clean
    ``c``-images and corrupted images of other digits in one class, which
    input-driven early nodes separate easily, predicting *high* early
    polarization). For the Gaussian and structured input corruptions
    (Algs. 2-3) labels are unchanged and both choices coincide.

    Args:
        activations: post-ReLU ``[n_samples, n_nodes]``.
        labels: class of each sample, ints in ``[0, num_classes)`` (see above).
        corrupted: bool ``[n_samples]``, True for corrupted samples.
        num_classes: ``|K|``.
        chunk_size: number of samples processed at a time.

    Returns:
        float64 tensor ``[num_classes, n_nodes]``; NaN where ``|A_i^c| = 0``.
    """
    n_active, n_corrupted = _class_node_counts(activations, labels, corrupted, num_classes, chunk_size)
    return _polarization_from_counts(n_active, n_corrupted)


def mean_polarization(
    activations: ArrayLike,
    labels: ArrayLike,
    corrupted: ArrayLike,
    num_classes: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> float:
    """Per-layer mean polarization ``mu_polarization(l)``, Eq. (6) of Theunissen et al. (2019).

    Mean of :func:`node_polarization` over classes and nodes. As in the paper,
    dead nodes are omitted. In addition, every ``(c, i)`` pair with
    ``|A_i^c| = 0`` (node ``i`` active for no sample of class ``c``) is
    omitted: Eq. (5) is 0/0 there, and counting it as either 0 or 1 would
    bias the mean. Dead nodes are the special case where all pairs of a node
    are empty. Pass the true labels (see :func:`node_polarization`).
    Returns NaN if no pair qualifies.
    """
    pol = node_polarization(activations, labels, corrupted, num_classes, chunk_size)
    return float(pol.nanmean()) if not pol.isnan().all() else math.nan


def sample_set_composition(
    activations: ArrayLike,
    labels: ArrayLike,
    corrupted: ArrayLike,
    num_classes: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> pd.DataFrame:
    """Per-(node, class) sample-set composition, as in Fig. 4 of Theunissen et al. (2019).

    Tidy table, one row per (node, class), ready for stacked bars (x: ``rank``,
    y: ``n_true`` / ``n_corrupted``, facet or colour: ``class``). Columns:

    * ``node``: node index in the layer;
    * ``class``: class ``c`` (defined by ``labels``; pass the true labels, see
      :func:`node_polarization`);
    * ``n_true``: ``|A_i^c| - |Ã_i^c|``, active uncorrupted samples of class c;
    * ``n_corrupted``: ``|Ã_i^c|``, active corrupted samples of class c;
    * ``sample_set_size``: ``|A_i|``, active samples of the node over all classes;
    * ``rank``: 1 for the node with the largest sample set, nodes ordered by
      descending ``sample_set_size`` (ties by node index); dead nodes are kept,
      with size 0, at the end.

    Rows are sorted by ``rank`` then ``class``; all columns are int64.
    """
    n_active, n_corrupted = _class_node_counts(activations, labels, corrupted, num_classes, chunk_size)
    n_nodes = n_active.shape[1]
    size = n_active.sum(dim=0)
    order = torch.sort(-size, stable=True).indices  # node indices, largest sample set first
    rank = torch.empty(n_nodes, dtype=torch.int64)
    rank[order] = torch.arange(1, n_nodes + 1)

    node = torch.arange(n_nodes).repeat(num_classes)  # row r <-> (class r // n_nodes, node r % n_nodes)
    cls = torch.arange(num_classes).repeat_interleave(n_nodes)
    df = pd.DataFrame(
        {
            "node": node.numpy(),
            "class": cls.numpy(),
            "n_true": (n_active - n_corrupted).flatten().numpy(),
            "n_corrupted": n_corrupted.flatten().numpy(),
            "sample_set_size": size[node].numpy(),
            "rank": rank[node].numpy(),
        }
    ).astype("int64")
    return df.sort_values(["rank", "class"], ignore_index=True)


# ---------------------------------------------------------------- a trained MLP, layer by layer


def _nanmean(values: torch.Tensor) -> float:
    return float(values.nanmean()) if not values.isnan().all() else math.nan


def shuffle_within_class(corrupted: ArrayLike, labels: ArrayLike, seed: int = 0) -> torch.Tensor:
    """The ``corrupted`` mask permuted at random among the samples of each class (seeded).

    Each class keeps its number of corrupted samples, but which samples they are no longer has
    anything to do with the network: polarization computed with this mask is the *chance level*
    of Eq. (5) for the same sample-set sizes (small sample sets are polarized by chance alone).
    """
    corr = _as_tensor(corrupted, "corrupted", 1).to(torch.bool)
    y = _as_tensor(labels, "labels", 1).to(torch.int64)
    generator = torch.Generator().manual_seed(int(seed))
    out = corr.clone()
    for c in torch.unique(y):
        index = torch.nonzero(y == c).flatten()
        out[index] = corr[index[torch.randperm(len(index), generator=generator)]]
    return out


def hidden_layers(model: torch.nn.Module) -> list[str]:
    """Names of the hidden blocks of a :class:`lib.models.MLP` (``fc1`` … ``fcN``), in order."""
    return [name for name in model.layer_names if name.startswith("fc")]


@torch.no_grad()
def layer_metrics(
    model: torch.nn.Module,
    x: ArrayLike,
    labels: ArrayLike,
    corrupted: ArrayLike,
    num_classes: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    shuffle_seed: int = 0,
) -> pd.DataFrame:
    """Theunissen et al.'s per-layer metrics of a trained MLP over its training set (Figs. 3, 5-7).

    ``model`` is a :class:`lib.models.MLP` (``model.layer_outputs`` gives every block's output,
    ``model.hidden_linear(name).weight`` its weights); ``x`` are the training inputs the model was
    trained on (after corruption and preprocessing), ``labels`` the **true** labels and
    ``corrupted`` the mask of corrupted samples (``lib.train.prepare_data(config)`` gives
    ``x_train``, ``y_train_original`` and ``corrupted``). Samples go through the network in chunks
    of ``chunk_size``; only per-node sums are kept, so memory does not grow with the data.

    Returns one row per hidden layer with columns ``layer`` (``fc1`` …), ``depth`` (1 …),
    ``mean_cosine`` (Eq. 4; for ``fc1`` the previous layer is the flattened input and the
    first-layer bias is included in the activations, as Eq. 4 reads them), ``mean_polarization``
    (Eq. 6, classes by true label), ``chance_polarization`` (Eq. 6 with the corrupted mask shuffled
    within each class, see :func:`shuffle_within_class`) and ``dead_nodes`` (active for no sample).
    """
    model = model.eval()
    x = torch.as_tensor(x).detach().cpu().float()
    y = _as_tensor(labels, "labels", 1).to(torch.int64)
    corr = _as_tensor(corrupted, "corrupted", 1).to(torch.bool)
    if not len(x) == len(y) == len(corr):
        raise ValueError(f"x, labels and corrupted disagree on n_samples: {len(x)}, {len(y)}, {len(corr)}")
    if y.numel() and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    chance = shuffle_within_class(corr, y, shuffle_seed)
    names = model.layer_names
    hidden = hidden_layers(model)
    previous = {name: names[names.index(name) - 1] for name in hidden}
    sums: dict[str, dict[str, torch.Tensor]] = {}
    for start in range(0, len(y), chunk_size):
        outputs = model.layer_outputs(x[start : start + chunk_size])
        yc, cc, sc = y[start : start + chunk_size], corr[start : start + chunk_size], chance[start : start + chunk_size]
        for name in hidden:
            act, prev = outputs[name], outputs[previous[name]].flatten(1)
            if name not in sums:
                zeros = torch.zeros(num_classes, act.shape[1], dtype=torch.int64)
                sums[name] = dict(ratio=torch.zeros(act.shape[1], dtype=torch.float64),
                                  count=torch.zeros(act.shape[1], dtype=torch.int64),
                                  active=zeros.clone(), corrupted=zeros.clone(),
                                  chance_active=zeros.clone(), chance_corrupted=zeros.clone())
            s = sums[name]
            ratio, count = _cosine_sums(prev, act)
            s["ratio"] += ratio
            s["count"] += count
            _add_class_counts(s["active"], s["corrupted"], act, yc, cc)
            _add_class_counts(s["chance_active"], s["chance_corrupted"], act, yc, sc)
    rows = []
    for depth, name in enumerate(hidden, start=1):
        s = sums[name]
        rows.append(dict(
            layer=name, depth=depth,
            mean_cosine=_nanmean(_cosine_from_sums(model.hidden_linear(name).weight.detach().cpu(), s["ratio"], s["count"])),
            mean_polarization=_nanmean(_polarization_from_counts(s["active"], s["corrupted"])),
            chance_polarization=_nanmean(_polarization_from_counts(s["chance_active"], s["chance_corrupted"])),
            dead_nodes=int((s["active"].sum(dim=0) == 0).sum()),
        ))
    return pd.DataFrame(rows)


def between_class_variance_share(features: ArrayLike, labels: ArrayLike) -> float:
    """Share of the total variance of ``features`` ``[n, d]`` that lies between class means (η² in [0, 1]).

    ``trace(S_between) / trace(S_total)``: 1 when every class collapses onto its mean, near 0
    when class means coincide. NaN when the features have no variance at all.
    """
    f = _as_tensor(features, "features", 2).to(torch.float64)
    y = _as_tensor(labels, "labels", 1).to(torch.int64)
    centred = f - f.mean(dim=0)
    total = float((centred**2).sum())
    if total == 0:
        return math.nan
    between = 0.0
    for c in torch.unique(y):
        members = centred[y == c]
        between += len(members) * float((members.mean(dim=0) ** 2).sum())
    return between / total


def pca(features: ArrayLike, n_components: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Principal-component scores ``[n, n_components]`` and explained-variance ratios of ``features``.

    Signs are fixed so that each component's largest-magnitude loading is positive (the same
    input always gives the same picture). Components beyond the rank are zero.
    """
    f = _as_tensor(features, "features", 2).to(torch.float64)
    centred = f - f.mean(dim=0)
    _, singular, vh = torch.linalg.svd(centred, full_matrices=False)
    k = min(n_components, vh.shape[0])
    loadings = vh[:k]
    signs = torch.sign(loadings.gather(1, loadings.abs().argmax(dim=1, keepdim=True))).flatten()
    loadings = loadings * torch.where(signs == 0, 1.0, signs).unsqueeze(1)
    scores = torch.zeros(len(f), n_components, dtype=torch.float64)
    scores[:, :k] = centred @ loadings.T
    variance = singular**2
    ratios = torch.zeros(n_components, dtype=torch.float64)
    if variance.sum() > 0:
        ratios[:k] = variance[:k] / variance.sum()
    return scores, ratios


@torch.no_grad()
def layer_projections(model: torch.nn.Module, x: ArrayLike, labels: ArrayLike, n_components: int = 2) -> pd.DataFrame:
    """Every feature space of an MLP (input, each hidden layer, output) projected by PCA (Fig. 1).

    Long table, one row per (layer, sample): ``layer``, ``position`` (0 for the input),
    ``sample``, ``label``, ``pc1`` … ``pc{n_components}``, ``explained`` (variance share of the
    shown components) and ``class_separation`` (:func:`between_class_variance_share` of the
    layer's full feature space, not only the projection).
    """
    model = model.eval()
    y = _as_tensor(labels, "labels", 1).to(torch.int64)
    outputs = model.layer_outputs(torch.as_tensor(x).detach().cpu().float())
    names = ["input"] + hidden_layers(model) + ["output"]
    frames = []
    for position, name in enumerate(names):
        features = outputs[name].flatten(1)
        scores, ratios = pca(features, n_components)
        frame = pd.DataFrame(scores.numpy(), columns=[f"pc{k + 1}" for k in range(n_components)])
        frames.append(frame.assign(layer=name, position=position, sample=np.arange(len(y)), label=y.numpy(),
                                   explained=float(ratios.sum()),
                                   class_separation=between_class_variance_share(features, y)))
    columns = ["layer", "position", "sample", "label"] + [f"pc{k + 1}" for k in range(n_components)]
    return pd.concat(frames, ignore_index=True)[columns + ["explained", "class_separation"]]


def probe_run(config) -> tuple[torch.nn.Module, "object"]:
    """The trained network of a cached (or newly trained) run and the exact tensors it was trained on.

    Returns ``(model, data)``: ``model`` in eval mode on the CPU, ``data`` the run's
    :class:`lib.train.PreparedData` (``x_train``, ``y_train_original`` = true labels, ``corrupted``).
    """
    from lib.models import build_model
    from lib.runs import run
    from lib.train import prepare_data

    trained = run(config)
    data = prepare_data(config)
    model = build_model(config.model, tuple(data.x_train.shape[1:]), data.num_classes, config.seed)
    model.load_state_dict(trained.state_dict)
    return model.eval(), data


def run_layer_metrics(config, chunk_size: int = DEFAULT_CHUNK_SIZE) -> pd.DataFrame:
    """:func:`layer_metrics` of the trained run of ``config`` over its training set (true labels)."""
    model, data = probe_run(config)
    return layer_metrics(model, data.x_train, data.y_train_original, data.corrupted, data.num_classes, chunk_size)
