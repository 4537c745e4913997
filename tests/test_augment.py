"""Zhang et al.'s explicit regularizers as options of the one training loop: weight decay and augmentation
(lib.augment), on small slices of real CIFAR-10."""

from __future__ import annotations

import colorsys
import math
from dataclasses import replace

import pytest
import torch

import lib.augment as A
import lib.train as train_module
from lib import runs
from lib.data import center_crop, per_image_standardize, scale_pixels
from lib.models import build_model
from lib.params import load_params
from lib.studies.protocols import ZHANG_TABLE1_ROWS, ZHANG_TABLE4_SETTINGS, zhang_config, zhang_row_config
from lib.train import RunConfig, _optimizer, evaluate, prepare_data, train

TINY = RunConfig(dataset="cifar10", n_train=96, n_test=64, model="mlp1x512", lr=0.01, lr_decay=1.0, max_epochs=2,
                 stop_train_acc=None, batch_size=32, randomization="partial_labels", corruption=1.0)


def raw_images(n: int = 8) -> torch.Tensor:
    """Real CIFAR-10 training images, pixels / 255, 32x32."""
    return prepare_data(replace(TINY, n_train=n, augment="crop")).x_train_raw


# --- weight decay -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model, stated", [("inception", 5e-4), ("inception_nobn", 5e-4), ("alexnet", 5e-4),
                                           ("mlp3x512", 1e-4), ("mlp1x512", 1e-4)])
@pytest.mark.slow
def test_weight_decay_reaches_the_optimizer_with_the_stated_value(model, stated):
    P = load_params("zhang-regularization", "cpu")
    for row, (_, decay, _) in ZHANG_TABLE1_ROWS.items():
        assert model in P.models
        config = zhang_row_config(P, model, row)
        optimizer = _optimizer(config, build_model(model, (3, 28, 28), 10, seed=0))
        assert optimizer.param_groups[0]["weight_decay"] == (stated if decay else 0.0), row
    config = zhang_row_config(P, model, "wd", table="table4")
    assert config.weight_decay == stated and config.corruption == 1.0


def test_weight_decay_is_an_l2_term_in_the_sgd_step():
    """One SGD step with decay λ moves every weight by an extra −lr·λ·w (momentum's first buffer is grad + λw)."""
    x = torch.randn(16, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(16) % 10
    moved = {}
    for decay in (0.0, 0.1):
        config = replace(TINY, weight_decay=decay, lr=0.5)
        model = build_model("mlp1x512", (3, 28, 28), 10, seed=3)
        start = {k: v.clone() for k, v in model.state_dict().items()}
        optimizer = _optimizer(config, model)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        moved[decay] = {k: model.state_dict()[k] - start[k] for k in start}
    for name, w0 in start.items():
        torch.testing.assert_close(moved[0.1][name] - moved[0.0][name], -0.5 * 0.1 * w0, rtol=1e-4, atol=1e-6)


# --- random crop ------------------------------------------------------------------------------------------------


def test_a_crop_is_a_window_of_each_image_and_the_same_seed_gives_the_same_crops():
    x = raw_images()
    a = A.random_crop(x, 28, A.epoch_generator(0, 3))
    b = A.random_crop(x, 28, A.epoch_generator(0, 3))
    c = A.random_crop(x, 28, A.epoch_generator(0, 4))
    assert a.shape == (8, 3, 28, 28) and torch.equal(a, b) and not torch.equal(a, c)
    for image, crop in zip(x, a):  # every crop is one of the 25 windows of its own image
        windows = [(t, l) for t in range(5) for l in range(5) if torch.equal(image[:, t:t + 28, l:l + 28], crop)]
        assert len(windows) >= 1
    offsets = {(t, l) for image, crop in zip(x, a) for t in range(5) for l in range(5)
               if torch.equal(image[:, t:t + 28, l:l + 28], crop)}
    assert len(offsets) > 1  # not one offset for the whole batch


def test_colour_perturbations_stay_in_range_and_change_inputs():
    x = raw_images()
    jittered = A.augment(x, "crop", A.epoch_generator(1, 0))
    assert jittered.shape == (8, 3, 28, 28)
    assert 0.0 <= float(jittered.min()) and float(jittered.max()) <= 1.0
    assert not torch.allclose(jittered, center_crop(x, 28), atol=1e-2)
    # hue turned by a full turn and saturation ×1 give the image back
    same = A.adjust_saturation_hue(x, torch.ones(8), torch.ones(8))
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)


def test_hsv_conversion_matches_colorsys():
    x = raw_images(2)
    hsv = A.rgb_to_hsv(x)
    for i, row, col in ((0, 3, 5), (1, 17, 30), (0, 31, 0)):
        expected = colorsys.rgb_to_hsv(*x[i, :, row, col].tolist())
        assert hsv[i, :, row, col].tolist() == pytest.approx(expected, abs=1e-5)
    torch.testing.assert_close(A.hsv_to_rgb(hsv), x, atol=1e-5, rtol=0)


def test_contrast_follows_tensorflow():
    x = raw_images(2)
    out = A.adjust_contrast(x, torch.tensor([0.5, 2.0]))
    mean = x[1, 2].mean()
    torch.testing.assert_close(out[1, 2], (x[1, 2] - mean) * 2.0 + mean)


def test_a_crop_never_changes_labels():
    """The labels an augmented run trains on are the run's (here random) labels, batch for batch."""
    plain, cropped = prepare_data(TINY), prepare_data(replace(TINY, augment="crop"))
    assert torch.equal(plain.y_train, cropped.y_train) and torch.equal(plain.x_train, cropped.x_train)
    seen = []
    real = train_module.augment

    def spy(x, how, generator):
        out = real(x, how, generator)
        assert out.shape[0] == x.shape[0]
        return out

    original_loss = train_module._loss_fn

    def recording_loss(config, num_classes):
        inner = original_loss(config, num_classes)

        def loss(logits, y):
            seen.append(y.clone())
            return inner(logits, y)
        return loss

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "augment", spy)
        patch.setattr(train_module, "_loss_fn", recording_loss)
        train(replace(TINY, augment="crop", max_epochs=1), progress=False)
    order = torch.randperm(96, generator=torch.Generator().manual_seed(TINY.seed * 100_003 + 0))
    trained_on = torch.cat(seen[:3])  # the three batches of epoch 1 (evaluations come after)
    assert torch.equal(trained_on, cropped.y_train[order])


# --- flips and rotations ----------------------------------------------------------------------------------------


def test_flips_and_rotations_preserve_shapes_and_value_ranges():
    x = raw_images()
    flipped = A.random_flip(x, A.epoch_generator(0, 0))
    assert flipped.shape == x.shape
    kept = [torch.equal(f, i) for f, i in zip(flipped, x)]
    mirrored = [torch.equal(f, i.flip(-1)) for f, i in zip(flipped, x)]
    assert all(k or m for k, m in zip(kept, mirrored)) and any(kept) and any(mirrored)  # each kept or mirrored
    rotated = A.random_rotate(x, 25.0, A.epoch_generator(0, 0))
    assert rotated.shape == x.shape and 0.0 <= float(rotated.min()) and float(rotated.max()) <= 1.0
    out = A.augment(x, "flip_rotate", A.epoch_generator(0, 0))
    assert out.shape == (8, 3, 28, 28) and 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert not torch.equal(out, center_crop(x, 28))


def test_rotation_by_right_angles_matches_rot90_and_zero_is_identity():
    x = raw_images(3)
    torch.testing.assert_close(A.rotate(x, torch.zeros(3)), x, atol=1e-5, rtol=0)
    quarter = A.rotate(x, torch.full((3,), 90.0))
    expected = torch.rot90(x, k=1, dims=(2, 3))  # counter-clockwise in (row, column) coordinates
    other = torch.rot90(x, k=-1, dims=(2, 3))
    error = min(float((quarter - expected).abs().max()), float((quarter - other).abs().max()))
    assert error < 1e-4


def test_rotations_stay_within_25_degrees():
    """The angles are drawn uniformly in [−25°, 25°], one per image: the same draws from the same generator."""
    x = raw_images(64)
    g = A.epoch_generator(5, 2)
    angles = 25.0 * (2 * torch.rand(64, generator=g) - 1)
    assert float(angles.abs().max()) <= 25.0
    torch.testing.assert_close(A.random_rotate(x, 25.0, A.epoch_generator(5, 2)), A.rotate(x, angles))


# --- the training loop ------------------------------------------------------------------------------------------


def test_the_test_set_is_never_augmented():
    config = replace(TINY, augment="crop", corruption=0.0)
    data, plain = prepare_data(config), prepare_data(replace(config, augment="none"))
    assert torch.equal(data.x_test, plain.x_test)  # centre crop, standardized: the un-augmented test images
    expected = per_image_standardize(center_crop(scale_pixels(prepare_data(replace(config, augment="none", preprocessing="none")).x_test), 28))
    torch.testing.assert_close(data.x_test, expected)
    run = train(config, progress=False)
    _, accuracy = evaluate(run.model(), plain.x_test, plain.y_test, torch.nn.functional.cross_entropy)
    assert run.summary["final_test_acc"] == accuracy


def test_augmented_runs_are_deterministic_and_differ_from_plain_ones():
    a = train(replace(TINY, augment="flip_rotate"), progress=False)
    b = train(replace(TINY, augment="flip_rotate"), progress=False)
    plain = train(TINY, progress=False)
    assert a.history.drop(columns="seconds").equals(b.history.drop(columns="seconds"))
    assert not math.isclose(a.history.train_loss.iloc[0], plain.history.train_loss.iloc[0])


def test_augmented_runs_converge_on_the_online_accuracy():
    config = replace(TINY, augment="crop", corruption=0.0, n_train=64, lr=0.05, stop_train_acc=0.35, max_epochs=40)
    run = train(config, progress=False)
    online = run.history.train_acc_online
    assert run.summary["converged"]
    first = int(run.history.epoch[online >= 0.35 - 1e-12].iloc[0])
    assert run.summary["converged_epoch"] == first == run.summary["epochs"]
    assert run.summary["final_train_acc_online"] == online.iloc[-1]


def test_augmentation_options_are_checked():
    with pytest.raises(ValueError, match="augment"):
        RunConfig(augment="mixup")
    with pytest.raises(ValueError, match="zhang"):
        RunConfig(augment="crop", preprocessing="scale")


def test_regularized_runs_have_their_own_cache_keys():
    P = load_params("zhang-regularization", "cpu")
    keys = {}
    for model in P.models:
        for row in ZHANG_TABLE1_ROWS:
            keys[(model, "table1", row)] = runs.run_key(zhang_row_config(P, model, row))
        for row in ZHANG_TABLE4_SETTINGS:
            keys[(model, "table4", row)] = runs.run_key(zhang_row_config(P, model, row, table="table4"))
    assert len(set(keys.values())) == len(keys)
    assert keys[("alexnet", "table1", "none")] == runs.run_key(zhang_config(P, "alexnet"))
    assert keys[("alexnet", "table1", "random_labels")] == runs.run_key(zhang_config(P, "alexnet", corruption=1.0))
