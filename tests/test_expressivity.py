"""Theorem 1 / Lemma 1 / Corollary 1 of Zhang et al. (2017) as code: lib.studies.zhang2017.expressivity, checked independently."""

from __future__ import annotations

import math

import pytest
import torch

from lib.studies.zhang2017 import expressivity as E
from lib.models import count_parameters


def _points(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _targets(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64) * 5


def test_fits_arbitrary_real_targets_with_2n_plus_d_weights():
    z, y = _points(400, 30, 0), _targets(400, 0)
    fit = E.fit_depth2(z, y)
    assert count_parameters(fit.model) == 2 * 400 + 30
    outputs = E.predict(fit.model, z)  # the module's own forward pass on the points, in their original order
    assert torch.allclose(outputs, y, atol=1e-6, rtol=0)
    # the network is what the proof says: c(z) = Σ w_j relu(<a, z> - b_j), checked by a plain loop on a few points
    a, b, w = fit.model.a.detach(), fit.model.b.detach(), fit.model.w.detach()
    for i in (0, 17, 399):
        x = float(z[i] @ a)
        assert sum(float(w[j]) * max(x - float(b[j]), 0.0) for j in range(400)) == pytest.approx(float(y[i]), abs=1e-6)


def test_interleaving_and_lemma1_triangular_structure():
    z, y = _points(200, 10, 1), _targets(200, 1)
    fit = E.fit_depth2(z, y, bias_position=0.3)
    xs, b = fit.xs, fit.b
    assert bool((b < xs).all()) and bool((xs[:-1] < b[1:]).all())  # b_1 < x_1 < b_2 < ... < b_n < x_n
    A = E.relu_matrix(xs, b)
    assert torch.equal(A, torch.tril(A))  # lower triangular
    eigenvalues = torch.linalg.eigvals(A).real
    assert float(eigenvalues.min()) == pytest.approx(float((xs - b).min()), rel=1e-6)  # Lemma 1
    assert torch.allclose(torch.linalg.solve(A, y[fit.order]), fit.w, rtol=1e-6, atol=1e-6 * float(fit.w.abs().max()))


def test_degenerate_but_distinct_inputs():
    base = _points(1, 20, 2).repeat(150, 1)
    tiny = base.clone()
    tiny[:, 7] += torch.arange(150, dtype=torch.float64) * 1e-6          # differ in one coordinate by tiny amounts
    direction = _points(1, 20, 3)[0]
    line = torch.linspace(-1, 1, 150, dtype=torch.float64)[:, None] * direction  # collinear points
    scrambled = line[torch.randperm(150, generator=torch.Generator().manual_seed(4))]
    for z in (tiny, scrambled):
        y = torch.randint(0, 10, (150,), generator=torch.Generator().manual_seed(5)).double()
        fit = E.fit_depth2(z, y)
        outputs = E.predict(fit.model, z)
        assert torch.equal(E.read_labels(outputs, 10), y.long())
        assert float((outputs - y).abs().max()) < 1e-3


def test_rejects_duplicate_points_with_a_clear_error():
    z = _points(50, 8, 6)
    z[31] = z[12]
    with pytest.raises(E.DuplicatePointsError, match=r"points 12 and 31 are identical"):
        E.fit_depth2(z, _targets(50, 6))
    with pytest.raises(E.DuplicatePointsError):
        E.fit_depth_k(z, _targets(50, 6), groups=3)


def test_projection_collision_redraws_then_refuses():
    # distinct points that differ only along coordinate 0: the pc1 direction of the others (coordinate 1) collides
    z = torch.zeros(40, 3, dtype=torch.float64)
    z[:, 1] = torch.arange(40, dtype=torch.float64)
    z[5, 1] = z[6, 1]                        # points 5 and 6 now differ only in coordinate 0, symmetrically,
    z[5, 0], z[6, 0] = 1.0, -1.0             # so the covariance stays diagonal and its top direction is exactly e_1
    assert E.min_gap(z @ E.projection(z, "pc1")) < 1e-9
    with pytest.raises(E.ProjectionCollisionError, match="distinct points"):
        E.fit_depth2(z, _targets(40, 7), projection_method="pc1")
    fit = E.fit_depth2(z, _targets(40, 7), projection_method="random")  # a random direction separates them
    assert torch.allclose(E.predict(fit.model, z), _targets(40, 7), atol=1e-6)


def test_multi_output_one_hot_shares_a_and_b():
    z = _points(120, 16, 8)
    labels = torch.randint(0, 10, (120,), generator=torch.Generator().manual_seed(9))
    onehot = torch.nn.functional.one_hot(labels, 10).double()
    fit = E.fit_depth2(z, onehot)
    assert count_parameters(fit.model) == 11 * 120 + 16
    assert torch.equal(E.read_labels(E.predict(fit.model, z), 10), labels)


def test_singular_value_estimates_match_svd():
    z, y = _points(300, 12, 10), _targets(300, 10)
    fit = E.fit_depth2(z, y)
    exact = torch.linalg.svdvals(E.relu_matrix(fit.xs, fit.b))
    sigma_max, sigma_min = E.singular_value_extremes(fit.xs, fit.b, iterations=60)
    assert sigma_max == pytest.approx(float(exact.max()), rel=1e-3)
    assert sigma_min == pytest.approx(float(exact.min()), rel=2e-2)


def test_exact_rational_solve_satisfies_the_system():
    z, y = _points(40, 5, 11), torch.randint(0, 10, (40,), generator=torch.Generator().manual_seed(12)).double()
    fit = E.fit_depth2(z, y)
    from fractions import Fraction
    w = E.solve_exact(fit.xs, fit.b, y[fit.order])
    X = [Fraction(float(v)) for v in fit.xs]
    B = [Fraction(float(v)) for v in fit.b]
    for i in range(40):  # A w = y holds exactly, row by row
        assert sum(w[j] * max(X[i] - B[j], Fraction(0)) for j in range(40)) == Fraction(float(y[fit.order][i]))
    assert max(abs(float(a) - float(b)) / max(abs(float(a)), 1e-300) for a, b in zip(w, fit.w)) < 1e-6


def test_float32_solve_collides_where_float64_separates():
    # 2,000 points on a line at spacing 1e-9 apart from an offset of 1: distinct in float64, not in float32
    z = (1.0 + 1e-9 * torch.arange(2000, dtype=torch.float64))[:, None]
    assert E.fit_depth2(z, _targets(2000, 13)).min_spacing > 0
    with pytest.raises(E.ProjectionCollisionError, match="float32"):
        E.fit_depth2(z, _targets(2000, 13), dtype="float32", max_redraws=1)


@pytest.mark.parametrize("groups", [1, 2, 3, 7, 8, 20])
def test_depth_k_network_has_the_stated_width_weights_and_fits(groups):
    n, d = 240, 12
    z = _points(n, d, 14)
    y = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(15)).double()
    fit = E.fit_depth_k(z, y, groups)
    sizes = E.group_sizes(n, groups)
    hidden = [fit.model.hidden_linear(f"fc{i + 1}").out_features for i in range(len(fit.widths))]
    assert hidden == fit.widths == E.depth_k_widths(sizes)
    assert fit.depth == groups + 3 == len(hidden) + 1
    assert max(hidden) <= math.ceil(n / groups) + 11
    if groups >= 4 and n % groups == 0:
        assert max(hidden) == math.ceil(n / groups) + 11
    # nonzero entries of the actual weight matrices and biases (a label-0 target can zero an output weight, so <=)
    counted = sum(int((p != 0).sum()) for p in fit.model.parameters())
    assert counted <= fit.nonzero_weights == E.depth_k_weight_count(n, d, sizes)
    assert counted >= fit.nonzero_weights - n // 5
    if groups >= 3:
        assert fit.nonzero_weights == 2 * d + 5 * n + 39 * groups - 12
    assert fit.dense_parameters == count_parameters(fit.model)
    outputs = E.predict(fit.model, z)
    assert torch.equal(E.read_labels(outputs, 10), y.long())
    assert float((outputs - y).abs().max()) < 1e-4


def test_depth_k_on_real_mnist_random_labels():
    from lib.train import RunConfig, prepare_data
    data = prepare_data(RunConfig(dataset="mnist", n_train=300, n_test=10, randomization="random_labels",
                                  corruption=1.0, preprocessing="scale"))
    z, y = data.x_train.double(), data.y_train
    for fit in (E.fit_depth2(z, y.double()), E.fit_depth_k(z, y.double(), 4)):
        assert torch.equal(E.read_labels(E.predict(fit.model, z), 10), y)


# --- the chapter's measurements -------------------------------------------------------------------------------


def test_recovered_counts_the_labels_read_back():
    labels = torch.randint(0, 10, (50,), generator=torch.Generator().manual_seed(16))
    outputs = labels.double() + 0.3 * (torch.rand(50, generator=torch.Generator().manual_seed(17)) - 0.5)
    assert E.recovered(outputs, labels, 10) == 1.0
    wrong = outputs.clone()
    wrong[:3] += 0.6 * torch.where(labels[:3] < 5, 1.0, -1.0)  # past half the label spacing: read as a neighbour
    assert E.recovered(wrong, labels, 10) == pytest.approx(47 / 50)
    one_hot = torch.nn.functional.one_hot(labels, 10).double()  # several outputs: read by argmax
    assert E.recovered(one_hot, labels, 10) == 1.0


def test_theorem1_row_measures_the_network_and_lemma1s_matrix():
    z = _points(80, 9, 18)
    labels = torch.randint(0, 10, (80,), generator=torch.Generator().manual_seed(19))
    fit = E.fit_depth2(z, labels.double())
    row = E.theorem1_row(fit, z, labels, 10, sv_iterations=60, svd_max_n=100)
    assert (row["n"], row["d"], row["weights"], row["two_n_plus_d"]) == (80, 9, 2 * 80 + 9, 2 * 80 + 9)
    assert row["recovered"] == 1.0 and row["max_abs_error"] < 1e-6
    A = E.relu_matrix(fit.xs, fit.b)
    exact = torch.linalg.svdvals(A)
    assert row["sigma_min_svd"] == pytest.approx(float(exact.min())) and row["sigma_max_svd"] == pytest.approx(float(exact.max()))
    assert row["sigma_min"] == pytest.approx(float(exact.min()), rel=2e-2)
    assert row["condition"] == pytest.approx(row["sigma_max"] / row["sigma_min"])
    y_norm = float(labels.double().norm())
    assert row["eigen_bound"] == pytest.approx(y_norm / float(torch.diagonal(A).min()))
    assert row["w_norm"] == pytest.approx(float(torch.linalg.solve(A, labels.double()[fit.order]).norm()), rel=1e-6)
    assert row["w_norm"] <= row["sigma_bound"] * (1 + 1e-6)  # ‖w‖ ≤ ‖y‖/σ_min always holds
    assert "sigma_min_svd" not in E.theorem1_row(fit, z, labels, 10, sv_iterations=5)  # no SVD unless asked


def test_theorem1_table_fits_nested_subsets():
    z = _points(120, 6, 20)
    labels = torch.randint(0, 10, (120,), generator=torch.Generator().manual_seed(21))
    table = E.theorem1_table(z, labels, [40, 120], 10, seed=3, sv_iterations=10, svd_max_n=50)
    assert table.n.tolist() == [40, 120] and (table.weights == 2 * table.n + 6).all() and (table.recovered == 1).all()
    first = E.theorem1_row(E.fit_depth2(z[:40], labels[:40].double(), seed=3), z[:40], labels, 10, 10, 50)
    for key in ("max_abs_error", "min_spacing", "sigma_min", "sigma_max_svd", "relative_residual"):
        assert table[key].iloc[0] == first[key]
    assert math.isnan(table.sigma_min_svd.iloc[1])  # n = 120 > svd_max_n


def test_compare_variants_names_every_variant_and_reports_float32():
    z = torch.rand(150, 1, 5, 5, generator=torch.Generator().manual_seed(22)).mul(255).round().div(255).double()
    y = torch.randint(0, 10, (150,), generator=torch.Generator().manual_seed(23)).double()
    table, failed = E.compare_variants(z, (z * 255).round(), y, 10, seed=0, best_of_draws=3, bias_positions=[0.5, 0.2])
    assert table.variant.tolist() == ["random direction, θ = 0.5 (baseline)", "best of 3 random directions",
                                      "first principal component", "random integer weights on 8-bit pixels",
                                      "random direction, θ = 0.2", "random direction, 1 step of iterative refinement",
                                      "float32 solve"]
    assert not failed and (table.recovered == 1).all()
    baseline = E.fit_depth2(z, y)
    spread = float(baseline.xs[-1] - baseline.xs[0])
    assert table.relative_spacing.iloc[0] == pytest.approx(baseline.min_spacing / spread)
    assert table.weight_range.iloc[0] == pytest.approx(baseline.max_weight * spread)
    # 2,000 points 1e-9 apart near 1: distinct in float64, not in float32 whatever the redraw
    line = (1.0 + 1e-9 * torch.arange(2000, dtype=torch.float64))[:, None]
    targets = torch.randint(0, 10, (2000,), generator=torch.Generator().manual_seed(24)).double()
    table, failed = E.compare_variants(line, torch.arange(2000, dtype=torch.float64)[:, None], targets, 10, 0, 2, [0.5],
                                       float32_redraws=1)
    last = table.iloc[-1]
    assert failed and last.variant == "float32 solve" and math.isnan(last.recovered) and "float32" in last.note
    assert (table.recovered.iloc[:-1] == 1).all()


def test_exact_weight_error_measures_the_distance_to_the_rational_solution():
    z = _points(60, 4, 25)
    y = torch.randint(0, 10, (60,), generator=torch.Generator().manual_seed(26))
    fit = E.fit_depth2(z, y.double())
    assert E.exact_weight_error(fit, y) < 1e-9
    from dataclasses import replace
    assert E.exact_weight_error(replace(fit, w=fit.w * (1 + 1e-3)), y) == pytest.approx(1e-3, rel=1e-3)


def test_depth_k_table_checks_the_corollarys_counts():
    n, d = 48, 7
    z = _points(n, d, 27)
    y = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(28)).double()
    table = E.depth_k_table(z, y, [2, 4], 10, seed=0)
    assert table.groups.tolist() == [2, 4] and table.depth.tolist() == [5, 7]
    assert (table.width <= table.width_formula).all() and table.width.iloc[1] == n // 4 + 11  # 4 divides 48
    assert table.nonzero.iloc[1] == 2 * d + 5 * n + 39 * 4 - 12 == table.nonzero_formula.iloc[1]
    assert (table.recovered == 1).all() and (table.max_abs_error < 1e-4).all()


def test_matched_hidden_width_is_the_smallest_mlp_with_2n_plus_d_weights():
    from lib.models import build_model

    for n in (100, 1000, 2500):
        hidden = E.matched_hidden_width(n, 784, 10)
        weights = lambda h: count_parameters(build_model(f"mlp1x{h}", (1, 28, 28), 10, 0))
        assert weights(hidden) >= 2 * n + 784 > weights(hidden - 1)


def test_sgd_configs_and_the_comparison_table():
    import pandas as pd

    from lib.studies.zhang2017.protocol import ExpressivitySGD

    sgd = ExpressivitySGD(n_train=100, generous_model="mlp1x64", lr=0.1, lr_decay=1.0, max_epochs=5, batch_size=128)
    configs = E.sgd_configs(sgd, "mnist", 3, ["mlp1x64", "mlp1x2"])
    assert [c.model for c in configs] == ["mlp1x64", "mlp1x2"]
    for c in configs:
        assert (c.dataset, c.n_train, c.data_seed, c.randomization, c.corruption) == ("mnist", 100, 3, "random_labels", 1.0)
        assert (c.lr, c.lr_decay, c.batch_size, c.max_epochs, c.test_every, c.stop_train_acc) == (0.1, 1.0, 128, 5, 5, 1.0)
    z = torch.rand(30, 1, 28, 28, generator=torch.Generator().manual_seed(29)).double()
    labels = torch.randint(0, 10, (30,), generator=torch.Generator().manual_seed(30))
    construction = E.fit_depth2(z, labels.double())
    summary = pd.DataFrame({"epochs": [5, 4], "train_seconds": [1.5, 0.5], "final_train_acc": [0.9, 0.2]})
    table = E.sgd_versus_construction(construction, z, labels, summary, ["mlp1x64", "mlp1x2"], "mlp1x2", 0.1, 10)
    assert table.network.tolist() == ["Theorem 1 construction (2n + d = 844)", "MLP 784-64-10", "MLP 784-2-10 (matched size)"]
    assert table.weights.tolist() == [2 * 30 + 784, 785 * 64 + 65 * 10, 785 * 2 + 3 * 10]
    assert table.train_accuracy.tolist() == [1.0, 0.9, 0.2] and table.epochs.tolist()[1:] == [5, 4]
    assert table.how.tolist()[1:] == ["SGD, lr 0.1"] * 2
