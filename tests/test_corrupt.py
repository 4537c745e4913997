"""Randomizations of Zhang et al. and Theunissen et al.: statistics, determinism and masks."""

from __future__ import annotations

import pytest
import torch

from lib import corrupt
from lib.data import Dataset

K = 10


def labels(n: int = 20000) -> torch.Tensor:
    return torch.arange(n) % K


def test_uniform_corruption_changes_about_p_times_one_minus_one_over_k():
    y = labels()
    for p in (0.2, 0.6, 1.0):
        new, changed = corrupt.corrupt_labels_uniform(y, p, K, seed=3)
        assert abs(changed.float().mean().item() - p * (1 - 1 / K)) < 0.015
        assert torch.equal(changed, new != y)


def test_random_labels_are_uniform_and_independent_of_truth():
    y = labels()
    new, _ = corrupt.random_labels(y, K, seed=0)
    counts = torch.bincount(new, minlength=K).float()
    assert (counts / len(y) - 1 / K).abs().max() < 0.01
    assert abs((new == y).float().mean().item() - 1 / K) < 0.01


def test_label_corruption_is_deterministic_per_seed():
    y = labels(1000)
    a = corrupt.corrupt_labels_uniform(y, 0.5, K, seed=7)[0]
    assert torch.equal(a, corrupt.corrupt_labels_uniform(y, 0.5, K, seed=7)[0])
    assert not torch.equal(a, corrupt.corrupt_labels_uniform(y, 0.5, K, seed=8)[0])
    assert torch.equal(corrupt.corrupt_labels_uniform(y, 0.0, K, seed=1)[0], y)


def test_theunissen_algorithm1_never_keeps_the_class():
    y = labels()
    new, selected = corrupt.corrupt_labels_different(y, 0.5, K, seed=1)
    assert (new[selected] != y[selected]).all()
    assert torch.equal(new[~selected], y[~selected])
    assert abs(selected.float().mean().item() - 0.5) < 0.015
    # the alternatives are uniform over the other nine classes
    offsets = ((new[selected] - y[selected]) % K).bincount(minlength=K).float()
    assert offsets[0] == 0 and (offsets[1:] / offsets[1:].sum() - 1 / 9).abs().max() < 0.02
    everything, _ = corrupt.corrupt_labels_different(y, 1.0, K, seed=1)
    assert (everything != y).all()


def test_probability_outside_unit_interval_is_rejected():
    with pytest.raises(ValueError):
        corrupt.corrupt_labels_uniform(labels(10), 1.5, K, seed=0)


def images(n: int = 6, c: int = 3, size: int = 8) -> torch.Tensor:
    return torch.randint(0, 256, (n, c, size, size), generator=torch.Generator().manual_seed(5), dtype=torch.uint8)


def test_shuffled_pixels_use_one_permutation_for_train_and_test():
    x = images()
    train, test = corrupt.shuffle_pixels(x, x[:2].clone(), seed=0)
    assert torch.equal(train[:2], test)  # same images → same result, so same permutation
    assert not torch.equal(train, x)
    # a permutation of positions: each image keeps its multiset of pixel values, channels move together
    assert torch.equal(train.flatten(2).sort(-1).values, x.flatten(2).sort(-1).values)
    position = (x[0, 0].flatten() == train[0, 0].flatten()[0]).nonzero()
    assert len(position) > 0


def test_random_pixels_permute_each_image_differently():
    x = images(2).expand(2, 3, 8, 8).clone()
    x[1] = x[0]
    out = corrupt.random_pixels(x, seed=0)
    assert not torch.equal(out[0], out[1])  # identical inputs, different permutations
    assert torch.equal(out.flatten(2).sort(-1).values, x.flatten(2).sort(-1).values)
    # channels of a pixel move together
    a, b = x[0].flatten(1).T.tolist(), out[0].flatten(1).T.tolist()
    assert sorted(a) == sorted(b)
    assert torch.equal(out, corrupt.random_pixels(x, seed=0))


def test_gaussian_images_match_dataset_moments_per_channel():
    x = torch.stack([torch.full((500, 16, 16), v) for v in (50.0, 120.0, 200.0)], 1)
    x = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(0)) * torch.tensor([5.0, 20.0, 40.0]).view(1, 3, 1, 1)
    g = corrupt.gaussian_images(x, seed=1)
    assert g.dtype == torch.float32 and g.shape == x.shape
    mean, std = g.transpose(0, 1).flatten(1).mean(1), g.transpose(0, 1).flatten(1).std(1)
    assert torch.allclose(mean, torch.tensor([50.0, 120.0, 200.0]), atol=0.5)
    assert torch.allclose(std, torch.tensor([5.0, 20.0, 40.0]), rtol=0.02)


def test_theunissen_algorithm2_matches_each_samples_moments():
    x = torch.rand(200, 1, 28, 28) * torch.linspace(10, 250, 200).view(-1, 1, 1, 1)
    out, selected = corrupt.gaussian_input_noise(x, 0.5, seed=0)
    assert torch.equal(out[~selected], x[~selected])
    changed = out[selected].flatten(1)
    original = x[selected].flatten(1)
    assert torch.allclose(changed.mean(1), original.mean(1), atol=0.15 * original.std(1).max().item())
    assert torch.allclose(changed.std(1), original.std(1), rtol=0.15)
    assert not torch.allclose(changed, original)


def test_theunissen_algorithm3_rotates_and_inverts():
    x = torch.zeros(1, 1, 3, 3, dtype=torch.uint8)
    x[0, 0, 0, 2] = 9  # top-right corner
    x[0, 0, 1, 1] = 4
    out = corrupt.rotate_and_invert(x)
    expected = torch.full((3, 3), 9, dtype=torch.uint8)
    expected[0, 0] = 0  # top-right rotated counter-clockwise lands top-left, then 9 - 9 = 0
    expected[1, 1] = 5
    assert torch.equal(out[0, 0], expected)


def test_algorithm3_rotation_has_order_four():
    x = images(4, 1, 6)
    rotated = x
    for _ in range(4):
        rotated = torch.rot90(rotated, 1, dims=(-2, -1))
    assert torch.equal(rotated, x)
    once = torch.rot90(x, 1, dims=(-2, -1))
    assert not torch.equal(once, x)
    twice_inverted = corrupt.rotate_and_invert(corrupt.rotate_and_invert(x))  # invert twice = identity up to max shift
    assert torch.equal(twice_inverted, torch.rot90(x - x.flatten(1).amin(1).view(-1, 1, 1, 1), 2, dims=(-2, -1)))


def test_structured_noise_mask_and_rate():
    x = images(2000, 1, 4)
    out, selected = corrupt.structured_input_noise(x, 0.3, seed=2)
    assert abs(selected.float().mean().item() - 0.3) < 0.04
    assert torch.equal(out[~selected], x[~selected])
    assert torch.equal(out[selected], corrupt.rotate_and_invert(x[selected]))


def small_dataset() -> Dataset:
    x = images(40, 3, 8)
    y = torch.arange(40) % K
    return Dataset("toy", x, y, x[:10].clone(), y[:10].clone(), K, tuple(map(str, range(K))))


@pytest.mark.parametrize("kind", sorted(corrupt.RANDOMIZATIONS))
def test_randomize_is_deterministic_and_reports_a_mask(kind):
    ds = small_dataset()
    a, mask_a = corrupt.randomize(ds, kind, 0.5, seed=4)
    b, mask_b = corrupt.randomize(ds, kind, 0.5, seed=4)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train) and torch.equal(mask_a, mask_b)
    assert mask_a.dtype == torch.bool and len(mask_a) == 40
    assert torch.equal(a.y_test, ds.y_test)  # test labels stay clean by default


def test_randomize_can_corrupt_test_labels():
    ds = small_dataset()
    a, _ = corrupt.randomize(ds, "random_labels", seed=0, corrupt_test=True)
    assert not torch.equal(a.y_test, ds.y_test)


def test_randomize_unknown_kind():
    with pytest.raises(ValueError, match="unknown randomization"):
        corrupt.randomize(small_dataset(), "flip")
