"""Architectures: the parameter counts of Zhang et al.'s Table 1, layer probing, seeded initialization."""

from __future__ import annotations

import pytest
import torch

from lib.models import MLP, build_model, count_parameters

TABLE_1 = {"mlp1x512": 1_209_866, "mlp3x512": 1_735_178, "alexnet": 1_387_786,
           "inception": 1_649_402, "inception_nobn": 1_649_402}


@pytest.mark.parametrize("name, expected", sorted(TABLE_1.items()))
def test_parameter_counts_equal_table_1(name, expected):
    assert count_parameters(build_model(name, (3, 28, 28), 10, seed=0)) == expected


def test_inception_variants_differ_only_in_normalization():
    with_bn = build_model("inception", (3, 28, 28), 10, seed=0)
    without = build_model("inception_nobn", (3, 28, 28), 10, seed=0)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in with_bn.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in without.modules())


@pytest.mark.parametrize("name", ["mlp3x512", "alexnet", "inception"])
def test_layer_outputs_are_named_and_consistent_with_forward(name):
    model = build_model(name, (3, 28, 28), 10, seed=0).eval()
    x = torch.randn(3, 3, 28, 28)
    outputs = model.layer_outputs(x)
    assert list(outputs)[0] == "input" and list(outputs)[1:] == model.layer_names
    assert torch.allclose(outputs["output"], model(x))
    assert outputs["output"].shape == (3, 10)
    some = model.layer_outputs(x, names=[model.layer_names[1]])
    assert list(some) == [model.layer_names[1]]


def test_mlp_hidden_layers_are_post_relu_and_expose_weights():
    model = build_model("mlp10x512-firstbias", (1, 28, 28), 10, seed=0)
    assert isinstance(model, MLP) and model.widths == [512] * 10
    outputs = model.layer_outputs(torch.randn(4, 1, 28, 28))
    assert all((outputs[f"fc{i}"] >= 0).all() for i in range(1, 11))
    assert model.hidden_linear("fc1").bias is not None and model.hidden_linear("fc2").bias is None
    assert model.hidden_linear("fc3").weight.shape == (512, 512)


def test_explicit_widths_build_the_masc_mlp():
    model = build_model("mlp-128-512-2048-2048", (1, 28, 28), 10, seed=0)
    assert model.widths == [128, 512, 2048, 2048]
    assert count_parameters(model) == (784 * 128 + 128) + (128 * 512 + 512) + (512 * 2048 + 2048) + (2048 * 2048 + 2048) + (2048 * 10 + 10)


def test_seeded_initialization_without_touching_global_state():
    state = torch.random.get_rng_state()
    a = build_model("alexnet", (3, 28, 28), 10, seed=1)
    b = build_model("alexnet", (3, 28, 28), 10, seed=1)
    c = build_model("alexnet", (3, 28, 28), 10, seed=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet", (3, 28, 28), 10, seed=0)
