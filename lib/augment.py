"""Data augmentation of Zhang et al. (ICLR 2017), on whole batches of image tensors on the device.

Zhang et al.'s Table 1 toggles a regularizer they call "random crop": random 28x28 crops of the 32x32
CIFAR-10 image together with random perturbations of brightness, saturation, hue and contrast (Section 3, "data
augmentation"). Their appendix Table 4 adds "augmentation": random left-right flips and random rotations of up to
25 degrees (footnote 6). A fresh random image is drawn for every sample in every epoch while the (possibly
random) labels stay fixed (footnote 5). The paper gives no ranges for the colour perturbations; we take the
TensorFlow ones that its code base used:

- brightness: add δ ~ U(−63/255, 63/255) (the TensorFlow CIFAR-10 tutorial's ``max_delta=63`` on 0-255 pixels);
- contrast: (x − channel mean) · c + channel mean with c ~ U(0.2, 1.8) (the same tutorial);
- saturation: HSV saturation times s ~ U(0.5, 1.5), and hue shifted by η ~ U(−0.2, 0.2) of a full turn
  (``distort_color`` of TensorFlow's Inception preprocessing, the code the paper's ImageNet runs reused);

applied in that order (brightness, saturation, hue, contrast: ``distort_color``'s first ordering), with pixels
clipped to [0, 1] after brightness (so that the HSV conversion sees valid colours) and at the end (as
``distort_color`` does). Per-image standardization follows, in the training loop
(:func:`lib.data.per_image_standardize`), exactly as for un-augmented images; note that it removes most of a pure
brightness shift, as it did in the TensorFlow tutorial (only the clipping survives it).

"flip_rotate" mirrors each image left-right with probability 1/2 and rotates it by an angle ~ U(−25°, 25°)
(bilinear, zero fill, on the 32x32 image), then takes the 28x28 centre crop that every un-augmented image gets.

Every function takes a batch ``[B, C, H, W]`` of pixels in [0, 1] and a ``torch.Generator`` on the batch's device;
every random draw is one tensor for the whole batch (no per-sample Python). :func:`epoch_generator` seeds the
generator from the run's seed and the epoch alone, so a resumed run draws the same images as an uninterrupted one.
Test images are never augmented: they keep the centre crop (the training loop only calls :func:`augment` on
training batches).
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch.nn import functional as F

AUGMENTATIONS = ("none", "crop", "flip_rotate")
CROP_SIZE = 28
BRIGHTNESS_DELTA = 63 / 255
CONTRAST_RANGE = (0.2, 1.8)
SATURATION_RANGE = (0.5, 1.5)
HUE_DELTA = 0.2
MAX_ROTATION_DEGREES = 25.0


def epoch_generator(seed: int, epoch: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The augmentation generator of epoch ``epoch`` of a run with initialization seed ``seed``.

    The seed is a hash of ``("augment", seed, epoch)``, so it never coincides with the batch-order seed of
    :func:`lib.train.train` (``seed * 100003 + epoch``)."""
    digest = hashlib.sha256(f"augment:{seed}:{epoch}".encode()).digest()
    return torch.Generator(device=device).manual_seed(int.from_bytes(digest[:8], "big") >> 1)


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def random_crop(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """An independent uniformly placed ``size`` x ``size`` window of every image (one gather for the batch)."""
    b, c, h, w = x.shape
    top = torch.randint(0, h - size + 1, (b,), generator=generator, device=x.device)
    left = torch.randint(0, w - size + 1, (b,), generator=generator, device=x.device)
    offsets = torch.arange(size, device=x.device)
    rows = (top[:, None] + offsets)[:, None, :, None]  # [B, 1, size, 1]
    cols = (left[:, None] + offsets)[:, None, None, :]  # [B, 1, 1, size]
    return x[torch.arange(b, device=x.device)[:, None, None, None], torch.arange(c, device=x.device)[None, :, None, None],
             rows, cols]


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] → HSV in [0, 1] (hue as a fraction of a turn), channel dimension 1, as :mod:`colorsys`."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    safe = delta.clamp_min(1e-12)
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(r == maxc, bc - gc, torch.where(g == maxc, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """HSV in [0, 1] → RGB in [0, 1], the inverse of :func:`rgb_to_hsv` (as :func:`colorsys.hsv_to_rgb`)."""
    h, s, v = x.unbind(1)
    sector = torch.floor(h * 6.0)
    f = h * 6.0 - sector
    sector = sector.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    # rows: sectors 0..5; columns: (r, g, b) as colorsys picks them
    table = torch.stack([torch.stack(c, 0) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], 0)
    index = sector[None, None].expand(1, 3, *sector.shape)
    return table.gather(0, index)[0].movedim(0, 1)  # [6, 3, B, H, W] → [B, 3, H, W]


def adjust_saturation_hue(x: torch.Tensor, saturation: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """Multiply every image's HSV saturation by ``saturation[i]`` (clipped to [0, 1]) and turn its hue by ``hue[i]``."""
    hsv = rgb_to_hsv(x)
    h = (hsv[:, 0] + hue[:, None, None]) % 1.0
    s = (hsv[:, 1] * saturation[:, None, None]).clamp(0.0, 1.0)
    return hsv_to_rgb(torch.stack([h, s, hsv[:, 2]], 1))


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """TensorFlow's ``adjust_contrast``: (x − mean) · factor + mean, with the mean of each channel of each image."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * factor[:, None, None, None] + mean


def color_jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random brightness, saturation, hue and contrast per image (ranges in the module docstring), clipped to [0, 1]."""
    b, device = x.shape[0], x.device
    brightness = _uniform(b, -BRIGHTNESS_DELTA, BRIGHTNESS_DELTA, generator, device)
    saturation = _uniform(b, *SATURATION_RANGE, generator, device)
    hue = _uniform(b, -HUE_DELTA, HUE_DELTA, generator, device)
    contrast = _uniform(b, *CONTRAST_RANGE, generator, device)
    x = (x + brightness[:, None, None, None]).clamp(0.0, 1.0)
    x = adjust_saturation_hue(x, saturation, hue)
    return adjust_contrast(x, contrast).clamp(0.0, 1.0)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image about its centre by ``degrees[i]`` (bilinear, zeros outside the image)."""
    angle = degrees * (math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_rotate(x: torch.Tensor, max_degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate each image by an angle drawn uniformly from [−max_degrees, max_degrees]."""
    return rotate(x, _uniform(x.shape[0], -max_degrees, max_degrees, generator, x.device))


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def augment(x: torch.Tensor, how: str, generator: torch.Generator, size: int = CROP_SIZE) -> torch.Tensor:
    """One augmented draw of the batch ``x`` (``[B, 3, 32, 32]`` pixels in [0, 1]) → ``[B, 3, size, size]`` in [0, 1].

    ``how``: ``crop`` (Table 1's "random crop": random crop + colour perturbations), ``flip_rotate`` (Table 4's
    "augmentation": flips and rotations, then the centre crop) or ``none`` (the centre crop alone)."""
    if how == "crop":
        return color_jitter(random_crop(x, size, generator), generator)
    if how == "flip_rotate":
        return center_crop(random_rotate(random_flip(x, generator), MAX_ROTATION_DEGREES, generator), size)
    if how == "none":
        return center_crop(x, size)
    raise ValueError(f"unknown augmentation {how!r}; choose one of {AUGMENTATIONS}")
