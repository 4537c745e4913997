"""The rules that turn a measurement into a verdict: tolerances from noise, tests against confirmations, protocol
distance and extensions apart (lib.verdicts), and the import layers that keep this science out of the book."""

from __future__ import annotations

import ast
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from lib.verdicts import (ClaimBook, Protocol, Tolerance, accuracy_tolerance, compare_runs, converged_or_reached,
                          could_fail, decimals_of, difference_se, kind_of, reached, rule)

LIB = Path(__file__).resolve().parents[1] / "lib"


def book(**kwargs) -> ClaimBook:
    return ClaimBook("ch", "full", data=(60_000, 60_000), paper="P", **kwargs)


def test_an_accuracy_tolerance_is_two_standard_errors_of_the_difference_or_the_papers_rounding():
    # 10,000 test images on each side: the band is about 0.5 points, so 93% does not reproduce 97.87%
    wide = accuracy_tolerance(93.0, 97.87, 10_000, 10_000)
    assert wide.two_se == pytest.approx(200 * math.sqrt(0.93 * 0.07 / 1e4 + 0.9787 * 0.0213 / 1e4))
    assert wide.value < 1.0 and wide.rounding == pytest.approx(0.005)
    b = book()
    assert b.value(figure="T3", claim="clean", paper_value=97.87, ours=93.0, tolerance=wide, unit="%").verdict == "differs"
    # 500 test images: 2 SE is about 4 points, so 28.5% reproduces 31.85% and 27.5% (4.35 off) does not
    small = accuracy_tolerance(28.5, 31.85, 500)
    assert 4.0 < small.value < 4.1
    assert b.value(figure="T3", claim="p=0.8", paper_value=31.85, ours=28.5, tolerance=small, unit="%").verdict \
        == "reproduced"
    assert b.value(figure="T3", claim="p=0.8 (Adam)", paper_value=31.85, ours=27.5, unit="%",
                   tolerance=accuracy_tolerance(27.5, 31.85, 500)).verdict == "differs"
    # several seeds: their spread widens the band when it is the largest part
    seeds = accuracy_tolerance(50.0, 50.51, 10_000, seeds=[47.0, 52.0, 50.0])
    assert seeds.value == 5.0 and seeds.seed_spread == 5.0
    # an accuracy of 100% has no binomial spread: the paper's rounding is the band
    assert accuracy_tolerance(100.0, 100, 50_000).value == 0.5
    assert accuracy_tolerance(99.9, 100.0, 50_000).value == 0.05  # printed "100.0": 2 SE (0.028) is smaller


def test_the_criterion_shows_every_part_and_is_recomputed_from_them():
    claim = book().value(figure="T", claim="c", paper_value=52.39, ours=54.3,
                         tolerance=accuracy_tolerance(54.3, 52.39, 10_000), unit="%")
    assert "2 standard errors" in claim.rule and "the paper's rounding" in claim.rule
    assert set(claim.values) == {"ours", "paper", "two_se", "seed_spread", "rounding", "resolution"}
    assert claim.verdict == claim.recompute() == "differs"  # 1.9 points off, 2 SE about 1.4


def test_a_tolerance_needs_a_noise_part_and_finite_parts():
    with pytest.raises(ValueError, match="at least one noise part"):
        Tolerance()
    with pytest.raises(ValueError, match="finite"):
        Tolerance(two_se=math.inf)
    assert decimals_of(97.87) == 2 and decimals_of(100) == 0 and decimals_of(100.0) == 1 and decimals_of(0.5) == 1


def test_difference_standard_error_adds_both_variances():
    assert difference_se(0.5, 100, 0.5, 100) == pytest.approx(math.sqrt(2 * 0.25 / 100))
    assert difference_se(0.5, None, 0.5, 100) == pytest.approx(0.05)


def test_could_fail_finds_an_outcome_that_makes_the_criterion_false():
    assert could_fail("rho >= 0.7", {"rho": 1.0})
    assert could_fail("n_fitted == n_settings and lowest >= threshold",
                      {"n_fitted": 3, "n_settings": 3, "lowest": 0.9995, "threshold": 0.999})
    assert not could_fail("a >= 0 or a < 0", {"a": 3.0})  # true whatever a is
    assert not could_fail("abs(x) >= 0", {"x": -2.0})
    assert not could_fail("threshold >= 0.5", {"threshold": 0.9})  # only fixed numbers: fixed outcome
    assert could_fail("a + b + c + d > 0", {"a": 1, "b": 1, "c": 1, "d": 1})  # more than three measured numbers


def test_a_fit_that_the_stopping_rule_ended_is_a_confirmation_and_one_trained_the_papers_epochs_is_a_test():
    b = book()
    fit = rule("train_acc >= threshold", "the run fitted", train_acc=0.9992, threshold=0.999)
    early = b.trend(figure="T1", claim="fits", paper_value="100%", ours="99.92%", criterion=fit, fit=True,
                    requires=[converged_or_reached(True, 40, 200)])
    assert (early.verdict, early.evidence, early.one_sided) == ("same trend", "confirmation", "stopping rule")
    long = b.trend(figure="T1", claim="fits random labels", paper_value="100%", ours="99.19%", fit=True,
                   criterion=rule("train_acc >= threshold", train_acc=0.9919, threshold=0.999),
                   requires=[converged_or_reached(False, 200, 200)])
    assert (long.verdict, long.evidence) == ("differs", "test")
    capped = b.trend(figure="T1", claim="fits at cpu", paper_value="100%", ours="80%", fit=True,
                     criterion=rule("train_acc >= threshold", train_acc=0.8, threshold=0.999),
                     requires=[converged_or_reached(False, 60, 200)])
    assert capped.verdict == "not tested"
    assert capped.evidence == "test"  # a capped, unfitted run is not a stopping-rule confirmation: it is untested
    with pytest.raises(ValueError, match="how long its runs trained"):
        b.trend(figure="T1", claim="no length", paper_value="x", ours="x", criterion=fit, fit=True)
    chance = b.value(figure="T1", claim="random labels test", paper_value=10.0, ours=10.3, unit="%",
                     tolerance=accuracy_tolerance(10.3, 10.0, 10_000), by_construction="chance")
    tautology = b.trend(figure="F", claim="t", paper_value="x", ours="x", criterion=rule("a >= 0 or a < 0", a=1.0))
    assert (chance.evidence, tautology.evidence, tautology.one_sided) == ("confirmation", "confirmation", "criterion")
    assert all(c.could_have_failed() == (c.evidence == "test") for c in b.claims)
    both = b.trend(figure="T1", claim="one long run among early ones", paper_value="100%", ours="x", fit=True,
                   criterion=rule("lowest >= threshold", lowest=0.9991, threshold=0.999),
                   requires=[converged_or_reached(True, 30, 200), reached(200, 200)])
    assert both.evidence == "test"  # the long run could have ended unfitted


def test_protocol_distance_lists_departures_and_documented_equivalences():
    paper = SimpleNamespace(n_train=None, n_test=None, stop_train_acc=0.999, max_epochs=500, optimizer="sgd", lr=0.001,
                            lr_decay=1.0, momentum=0.9, batch_size=32, model="mlp")
    ours = SimpleNamespace(**{**vars(paper), "max_epochs": 20, "lr": 0.01})
    distance = compare_runs(ours, paper, 1, 3, train_total=60_000, test_total=10_000, converged=True,
                            equivalent={"seeds": "the authors' three runs shared one seed"})
    assert distance.departures() == ["optimizer: sgd lr 0.01 momentum 0.9 batch 32 (paper: sgd lr 0.001 momentum 0.9 "
                                     "batch 32)"]
    assert distance.equivalences()[0].startswith("seeds: 1 (paper: 3;")
    same = compare_runs(SimpleNamespace(**{**vars(paper), "max_epochs": 20}), paper, 3, 3, converged=True)
    assert same.at_protocol  # converged at the paper's rule: its own epoch cap did not bind
    capped = compare_runs(SimpleNamespace(**{**vars(paper), "max_epochs": 20}), paper, 3, 3, converged=False)
    assert capped.departures() == ["epochs: to 99.9% training accuracy or 20 epochs (paper: to 99.9% training "
                                   "accuracy or 500 epochs)"]
    b = book()
    at = b.trend(figure="F", claim="a", paper_value="x", ours="x", criterion=rule("a > 0", a=1.0), protocol=same)
    unknown = b.trend(figure="F", claim="b", paper_value="x", ours="x", criterion=rule("a > 0", a=1.0))
    assert at.at_protocol and not unknown.at_protocol and unknown.departures == ["protocol not stated"]
    assert not Protocol({"model": "a"}, {"model": "b"}).at_protocol


def test_extensions_are_ours_and_never_the_papers():
    b = book()
    e = b.extension(figure="Synthesis", claim="label noise double descent", expected="a peak",
                    ours="a peak", criterion=rule("peak > 0", peak=1.0))
    assert (e.source, e.paper, kind_of(e)) == ("ours", "ours", "our extension")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_imports_only_go_down_the_layers_engine_studies_book():
    """lib/*.py (the engine, lib.papers included) imports neither lib.studies nor lib.book; lib/studies imports no
    lib.book. (The command line lib/__main__.py is the book's entry point and may.)"""
    wrong = []
    for path in sorted(LIB.rglob("*.py")):
        part = path.relative_to(LIB).parts
        layer = "book" if part[0] == "book" else "studies" if part[0] == "studies" else "engine"
        if path.name == "__main__.py" and len(part) == 1:
            continue
        for name in _imports(path):
            if not name.startswith("lib."):
                continue
            target = name.split(".")[1]
            if (layer == "engine" and target in ("studies", "book")) or (layer == "studies" and target == "book"):
                wrong.append(f"{path.relative_to(LIB.parent)} imports {name}")
    assert not wrong, "\n".join(wrong)
