"""How the Weng chapters' measurements depart from the papers' protocols, and how precisely a d grid knows a
crossing (lib.studies.weng2019: risk_curves' and subspace_runs' protocols, subspace_fits' resolution and spread),
built from the chapters' real parameters."""

from __future__ import annotations

import math

import pytest

from lib.params import load_params
from lib.studies.weng2019 import risk_curves, subspace_fits, subspace_runs


def test_a_crossing_is_known_to_half_the_grid_interval_that_holds_it():
    grid = [900, 400, 600, 1350, 600]  # unsorted, with a repeat: the grid is its distinct values
    assert subspace_fits.crossing_resolution(grid, 750) == 150  # between 600 and 900
    assert subspace_fits.crossing_resolution(grid, 1000) == 225
    assert subspace_fits.crossing_resolution(grid, 400) == 100 and subspace_fits.crossing_resolution(grid, 1350) == 225
    assert math.isnan(subspace_fits.crossing_resolution(grid, 300))  # outside the grid: not a crossing of it
    assert math.isnan(subspace_fits.crossing_resolution(grid, float("nan")))
    assert math.isnan(subspace_fits.crossing_resolution([500], 500))


def test_spread_of_seeds():
    assert subspace_fits.spread([700.0, 820.0, 760.0]) == 120.0
    assert subspace_fits.spread([700.0]) == 0.0
    assert math.isnan(subspace_fits.spread([700.0, float("nan")]))  # a seed that never crossed: unknown


def test_double_descent_protocols_list_what_each_scale_changes():
    cpu, paper = load_params("weng-double-descent", "cpu"), load_params("weng-double-descent", "paper")
    distance = risk_curves.network_protocol(cpu, paper)
    departed = {d.split(":")[0] for d in distance.departures()}
    assert {"epochs", "optimizer", "model", "seeds"} <= departed and "training images" not in departed
    assert distance.ours["optimizer"].startswith("adam lr 0.001") and distance.paper["optimizer"].startswith("sgd")
    assert distance.paper["epochs"].startswith("6,000") and distance.paper["seeds"] == "5"
    assert risk_curves.network_protocol(paper, paper).at_protocol
    weng = risk_curves.weng_protocol(cpu, paper, 4000)
    assert weng.departures()[0] == f"epochs: {cpu.weng.training.epochs} (paper: 500)"
    assert [d.split(":")[0] for d in weng.departures()] == ["epochs", "model"]  # her widths go to H = 1000
    assert "softmax" in weng.ours["optimizer"] and weng.paper["seeds"] == "1"
    rff = risk_curves.rff_protocol(cpu, paper)
    assert rff.ours["epochs"] == rff.paper["epochs"] == "closed form"
    assert rff.departures()[0] == f"training images: {cpu.rff.n_train:,} (paper: 10,000)"


@pytest.mark.parametrize("scale", ["smoke", "cpu"])
def test_intrinsic_dimension_protocol_of_a_network(scale):
    P, paper = load_params("weng-intrinsic-dimension", scale), load_params("weng-intrinsic-dimension", "paper")
    distance = subspace_runs.protocol(P.mnist, paper.mnist, P.mnist.model, data_seed=P.data_seed)
    assert distance.paper["epochs"] == "no stopping rule or 100 epochs" and distance.paper["training images"] == "all 60,000"
    assert any(d.startswith(f"epochs: no stopping rule or {P.mnist.epochs} epochs") for d in distance.departures())
    assert distance.ours["projection"] == P.mnist.projection
    direct = subspace_runs.protocol(P.mnist, paper.mnist, P.mnist.model, data_seed=P.data_seed, direct=True)
    assert direct.ours["epochs"].endswith(f"or {P.mnist.direct_epochs} epochs") and "projection" not in direct.ours
    essay = subspace_runs.protocol(P.essay, paper.essay, "mlp-128", data_seed=P.data_seed,
                                   ours_extra={"dropout at evaluation": "no"},
                                   paper_extra={"dropout at evaluation": "yes"})
    assert "dropout at evaluation: no (paper: yes)" in essay.departures()
    assert subspace_runs.protocol(paper.mnist, paper.mnist, paper.mnist.model, data_seed=0).at_protocol
