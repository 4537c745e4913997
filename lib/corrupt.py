"""Randomizations of labels and inputs, as pure functions of the data and a seed.

Zhang et al. (ICLR 2017; CACM 2021, Section 2.1 "Fitting random labels and pixels"):

- :func:`corrupt_labels_uniform` — "partially corrupted labels": with probability p a label is
  replaced by one drawn uniformly over *all* K classes, so only about p·(1 − 1/K) change;
- :func:`random_labels` — every label drawn uniformly (p = 1);
- :func:`shuffle_pixels` — one random permutation of the pixels, the same for train and test;
- :func:`random_pixels` — a different random permutation for every image;
- :func:`gaussian_images` — every image replaced by Gaussian noise with the data set's mean and
  variance (per channel).

Theunissen, Davel & Barnard (Appendix B, Algorithms 1-3), each applied to a training sample
with probability P:

- :func:`corrupt_labels_different` — Algorithm 1: the new label is drawn uniformly among the
  *other* classes, so every selected label changes;
- :func:`gaussian_input_noise` — Algorithm 2: Gaussian noise with the sample's own mean and
  standard deviation;
- :func:`structured_input_noise` — Algorithm 3: rotate 90° counter-clockwise, then invert
  (the sample's maximum minus each value).

Every function takes an explicit ``seed`` (no global random state), returns new tensors and
a boolean mask of the samples it changed (for a label corruption: where the label differs).
:func:`randomize` applies one of them, by name, to a :class:`~lib.data.Dataset`.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from lib.data import Dataset


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _selected(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"corruption probability must be in [0, 1], got {p}")
    return torch.rand(n, generator=generator) < p


# --- labels ----------------------------------------------------------------------------------


def corrupt_labels_uniform(labels: torch.Tensor, p: float, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zhang et al.'s partially corrupted labels: with probability ``p`` redraw uniformly over all classes.

    Returns ``(new_labels, changed)``; ``changed`` marks labels that actually differ (about p·(1 − 1/K)).
    The MASC paper (section 3.1) uses the same scheme.
    """
    generator = _generator(seed)
    selected = _selected(len(labels), p, generator)
    drawn = torch.randint(num_classes, (len(labels),), generator=generator)
    new = torch.where(selected, drawn, labels)
    return new, new != labels


def random_labels(labels: torch.Tensor, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zhang et al.'s random labels: every label drawn uniformly over the K classes (p = 1)."""
    return corrupt_labels_uniform(labels, 1.0, num_classes, seed)


def corrupt_labels_different(labels: torch.Tensor, p: float, num_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Theunissen et al., Algorithm 1: with probability ``p`` replace the label by a *different* one.

    The alternative is uniform over the K − 1 other classes, so ``changed`` is exactly the selection.
    """
    generator = _generator(seed)
    selected = _selected(len(labels), p, generator)
    offset = torch.randint(1, num_classes, (len(labels),), generator=generator)
    new = torch.where(selected, (labels + offset) % num_classes, labels)
    return new, selected


# --- inputs ----------------------------------------------------------------------------------


def shuffle_pixels(x_train: torch.Tensor, x_test: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zhang et al.'s shuffled pixels: one permutation of pixel positions, applied to every image of both sets.

    Channels of a pixel move together (a pixel is a position in the H x W grid).
    """
    h, w = x_train.shape[-2:]
    permutation = torch.randperm(h * w, generator=_generator(seed))

    def apply(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(-2)[..., permutation].view_as(x)

    return apply(x_train), apply(x_test)


def random_pixels(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Zhang et al.'s random pixels: an independent random permutation of pixel positions per image."""
    n, c, h, w = x.shape
    permutations = torch.rand(n, h * w, generator=_generator(seed)).argsort(dim=1)
    flat = x.reshape(n, c, h * w)
    return torch.gather(flat, 2, permutations[:, None, :].expand(n, c, h * w)).view_as(x)


def gaussian_images(x: torch.Tensor, seed: int, reference: torch.Tensor | None = None) -> torch.Tensor:
    """Zhang et al.'s Gaussian: new images of i.i.d. Gaussian pixels, mean and variance per channel of ``reference``.

    ``reference`` defaults to ``x`` itself (the original training set). Output is float32 in the
    pixel units of the input (not clipped), so it goes through the same preprocessing.
    """
    reference = x if reference is None else reference
    per_channel = reference.float().transpose(0, 1).flatten(1)
    mean, std = per_channel.mean(1), per_channel.std(1)
    noise = torch.randn(x.shape, generator=_generator(seed))
    return noise * std.view(1, -1, 1, 1) + mean.view(1, -1, 1, 1)


def gaussian_input_noise(x: torch.Tensor, p: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Theunissen et al., Algorithm 2: with probability ``p`` replace a sample by Gaussian noise
    with that sample's own mean and standard deviation. Returns float32 ``(x_new, corrupted)``."""
    generator = _generator(seed)
    selected = _selected(len(x), p, generator)
    flat = x.float().flatten(1)
    mean = flat.mean(1, keepdim=True)
    std = flat.std(1, keepdim=True)
    noise = torch.randn(flat.shape, generator=generator) * std + mean
    return torch.where(selected[:, None], noise, flat).view(x.shape), selected


def rotate_and_invert(x: torch.Tensor) -> torch.Tensor:
    """Theunissen et al., Algorithm 3's transform: rotate 90° counter-clockwise, then invert each value
    as (the sample's maximum − value)."""
    rotated = torch.rot90(x, 1, dims=(-2, -1))
    maximum = rotated.flatten(1).amax(1).view(-1, *([1] * (x.dim() - 1)))
    return maximum - rotated


def structured_input_noise(x: torch.Tensor, p: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Theunissen et al., Algorithm 3: with probability ``p`` replace a sample by :func:`rotate_and_invert` of it."""
    selected = _selected(len(x), p, _generator(seed))
    shape = (-1,) + (1,) * (x.dim() - 1)
    return torch.where(selected.view(shape), rotate_and_invert(x), x), selected


# --- by name, on a whole data set ---------------------------------------------------------------

RANDOMIZATIONS = {
    "none": "true labels, true images",
    "partial_labels": "Zhang et al.: labels redrawn uniformly over all classes with probability p",
    "random_labels": "Zhang et al.: all labels drawn uniformly",
    "shuffled_pixels": "Zhang et al.: one pixel permutation for all images (train and test)",
    "random_pixels": "Zhang et al.: a new pixel permutation per image",
    "gaussian": "Zhang et al.: Gaussian images with the data set's per-channel mean and variance",
    "label_noise": "Theunissen et al. Alg. 1: with probability p, a different label",
    "gaussian_input": "Theunissen et al. Alg. 2: with probability p, Gaussian noise with the sample's moments",
    "structured_input": "Theunissen et al. Alg. 3: with probability p, rotate 90° and invert",
}


def randomize(data: Dataset, kind: str, p: float = 1.0, seed: int = 0,
              corrupt_test: bool = False) -> tuple[Dataset, torch.Tensor]:
    """Apply the randomization ``kind`` (a key of :data:`RANDOMIZATIONS`) to ``data``.

    Returns the new data set and the boolean mask of changed *training* samples. Test labels stay
    clean unless ``corrupt_test`` (the authors' PyTorch demo of Zhang et al. corrupted them too).
    Pixel randomizations of Zhang et al. transform the test images as well (shuffled pixels with the
    same permutation; random pixels and Gaussian with fresh draws), since they define a new input
    distribution; Theunissen et al.'s input noise touches the training set only (their Appendix B).
    """
    k = data.num_classes
    test_seed = seed + 1_000_003  # an independent stream for the test set
    none = torch.zeros(len(data.y_train), dtype=torch.bool)
    if kind == "none":
        return data, none
    if kind in ("partial_labels", "random_labels", "label_noise"):
        p = 1.0 if kind == "random_labels" else p
        corrupt = corrupt_labels_different if kind == "label_noise" else corrupt_labels_uniform
        y_train, changed = corrupt(data.y_train, p, k, seed)
        y_test = corrupt(data.y_test, p, k, test_seed)[0] if corrupt_test else data.y_test
        return replace(data, y_train=y_train, y_test=y_test), changed
    every = ~none
    if kind == "shuffled_pixels":
        x_train, x_test = shuffle_pixels(data.x_train, data.x_test, seed)
        return replace(data, x_train=x_train, x_test=x_test), every
    if kind == "random_pixels":
        return replace(data, x_train=random_pixels(data.x_train, seed),
                       x_test=random_pixels(data.x_test, test_seed)), every
    if kind == "gaussian":
        return replace(data, x_train=gaussian_images(data.x_train, seed),
                       x_test=gaussian_images(data.x_test, test_seed, reference=data.x_train)), every
    if kind == "gaussian_input":
        x_train, changed = gaussian_input_noise(data.x_train, p, seed)
        return replace(data, x_train=x_train), changed
    if kind == "structured_input":
        x_train, changed = structured_input_noise(data.x_train, p, seed)
        return replace(data, x_train=x_train), changed
    raise ValueError(f"unknown randomization {kind!r}; choose one of {sorted(RANDOMIZATIONS)}")
