"""The subspace trainer of Li et al. (2018), Eq. 2: θ = θ₀ + P θ_d, on real MNIST slices and small synthetic cases."""

from __future__ import annotations

import math
from collections import OrderedDict

import pytest
import torch
from torch import nn

from lib.studies.weng2019 import intrinsic_dimension as subspace
from lib.models import ProbedSequential
from lib.train import RunConfig, train

KINDS = ("dense", "sparse", "fastfood")


def tiny_run(**changes) -> RunConfig:
    values = dict(dataset="mnist", n_train=256, n_test=64, preprocessing="scale", model="mlp-16", seed=3,
                  optimizer="adam", lr=1e-2, lr_decay=1.0, batch_size=64, max_epochs=1, stop_train_acc=None)
    return RunConfig(**{**values, **changes})


@pytest.mark.parametrize("kind", KINDS)
def test_theta_moves_only_along_the_columns_of_P(kind, isolated_cache):
    result = subspace.train_subspace(subspace.SubspaceConfig(tiny_run(), d=24, projection=kind), progress=False,
                                     keep_model=True)
    model = result["model"]
    with torch.no_grad():
        moved = model.theta() - model.theta0
        P = model.projection.matrix()
        coefficients = torch.linalg.lstsq(P.double(), moved.double().unsqueeze(1)).solution
        residual = (P.double() @ coefficients).squeeze(1) - moved.double()
        # the control: a random direction of the same length is nowhere near P's 24-dimensional span
        other = torch.randn(model.D, generator=torch.Generator().manual_seed(0)).double() * moved.norm()
        other_residual = P.double() @ torch.linalg.lstsq(P.double(), other.unsqueeze(1)).solution - other.unsqueeze(1)
    assert float(moved.norm()) > 1e-2  # training really moved θ
    assert float(residual.norm() / moved.norm()) < 1e-5
    assert float(other_residual.norm() / other.norm()) > 0.99
    assert torch.allclose(coefficients.squeeze(1).float(), model.theta_d.detach(), atol=1e-4)


def test_identity_subspace_is_ordinary_training(isolated_cache):
    """d = D and P = I: subspace training with plain SGD is the project's training loop, step for step."""
    config = tiny_run(optimizer="sgd", lr=0.1, momentum=0.0)
    ordinary = train(config, progress=False)
    net = ordinary.model()
    D = sum(p.numel() for p in net.parameters())
    result = subspace.train_subspace(subspace.SubspaceConfig(config, d=D, projection="identity"), progress=False,
                                     keep_model=True)
    ours = result["model"].frozen().state_dict()
    for name, value in ordinary.state_dict.items():
        assert torch.allclose(ours[name], value, atol=1e-5, rtol=1e-5), name
    changed = sum(float((ours[n] - v).abs().max()) for n, v in net.state_dict().items())
    assert changed < 1e-4
    assert abs(result["summary"]["final_test_acc"] - ordinary.summary["final_test_acc"]) < 1e-9


@pytest.mark.parametrize("kind", KINDS)
def test_columns_are_near_unit_norm_and_near_orthogonal(kind):
    D, d = 20_000, 200
    P = subspace.build_projection(kind, D, d, seed=1).matrix()
    assert P.shape == (D, d)
    norms = P.norm(dim=0)
    assert float((norms - 1).abs().max()) < (1e-5 if kind in ("dense", "sparse") else 0.05)
    gram = P.T @ P
    off = gram - torch.diag(torch.diag(gram))
    # independent random unit vectors in 20,000 dimensions have cosines of about 1/√D = 0.007
    assert float(off.abs().max()) < 0.06
    assert abs(float(off.pow(2).mean()) ** 0.5 - 1 / math.sqrt(D)) < 0.5 / math.sqrt(D)


def test_sparse_density_is_one_over_root_D():
    D, d = 199_210, 50
    P = subspace.build_projection("sparse", D, d, seed=0)
    per_column = P.nnz / d
    assert abs(per_column - math.sqrt(D)) < 3  # ~446 rows per column (a row drawn twice counts once)


def small_net() -> ProbedSequential:
    torch.manual_seed(0)
    return ProbedSequential(OrderedDict(hidden=nn.Sequential(nn.Linear(20, 4), nn.ReLU()), output=nn.Linear(4, 10)))


@pytest.mark.parametrize("kind", KINDS)
def test_tensors_smaller_than_d_are_not_truncated(kind):
    """One transform over all D = 134 parameters: a 10-element bias (and a 4-element one) with d = 100."""
    model = subspace.SubspaceModel(small_net(), d=100, projection=kind, seed=2)
    assert model.D == 134
    P = model.projection.matrix()
    assert int(torch.linalg.matrix_rank(P)) == 100  # no coordinate of θ_d is lost
    offsets = dict(zip(model.names, torch.cumsum(torch.tensor([0] + model.sizes), 0).tolist()))
    for name, size in zip(model.names, model.sizes):
        rows = P[offsets[name]:offsets[name] + size]
        if name.endswith("bias"):
            assert int(torch.linalg.matrix_rank(rows)) == size, name  # every element moves on its own
        assert int((rows.abs() > 0).any(dim=1).sum()) == size, name  # no element of any tensor is left fixed
    x = torch.randn(32, 20, generator=torch.Generator().manual_seed(1))
    loss = model(x).logsumexp(1).sum()
    loss.backward()
    assert int((model.theta_d.grad != 0).sum()) == 100


def test_fastfood_matches_its_explicit_matrix():
    D, d = 300, 40
    projection = subspace.FastfoodProjection(D, d, seed=4)
    L = projection.L
    H = torch.tensor([[(-1) ** bin(i & j).count("1") for j in range(L)] for i in range(L)], dtype=torch.float32)
    explicit = (H @ torch.diag(projection.G) @ torch.eye(L)[projection.Pi] @ H @ torch.diag(projection.B))[:D, :d]
    assert torch.allclose(projection.matrix(), explicit * projection.scale, atol=1e-4)


def test_crossing_interpolates_in_log_d():
    assert subspace.crossing([100, 1000], [0.8, 1.0], 0.9) == pytest.approx(math.sqrt(100 * 1000))
    assert subspace.crossing([1000, 100, 300], [0.95, 0.5, 0.85], 0.9) == pytest.approx(
        math.exp(math.log(300) + 0.5 * math.log(1000 / 300)))
    assert math.isnan(subspace.crossing([100, 200], [0.5, 0.6], 0.9))
    assert subspace.crossing([100, 200], [0.95, 0.99], 0.9) == 100


def test_runs_are_cached(isolated_cache):
    config = subspace.SubspaceConfig(tiny_run(), d=16, projection="sparse")
    first, cached_first = subspace.run_subspace(config, progress=False)
    second, cached_second = subspace.run_subspace(config, progress=False)
    assert (cached_first, cached_second) == (False, True)
    assert second["summary"] == first["summary"]
    assert len([p for p in (isolated_cache / "subspace").iterdir() if (p / "manifest.json").is_file()]) == 1


@pytest.mark.parametrize("name, shape, expected", [("mlp-200-200", (1, 28, 28), "mnist.fc.D"),
                                                   ("lenet", (1, 28, 28), "mnist.lenet.D"),
                                                   ("lenet", (3, 32, 32), "cifar10.lenet.D")])
def test_networks_have_the_papers_parameter_counts(name, shape, expected):
    from lib.models import build_model, count_parameters
    from lib.papers import paper

    assert count_parameters(build_model(name, shape, 10, seed=0)) == paper("li2018")[expected]
