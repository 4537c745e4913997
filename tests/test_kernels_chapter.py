"""The kernel-interpolation chapter (Zhang et al., Section 5 / Table 3) end to end at `smoke` scale."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import execute_chapter_outputs
from lib.book.claims import Claim

REPO = Path(__file__).resolve().parents[1]


def test_chapter_executes_at_smoke_scale(tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LIB_CLAIMS_DIR", str(tmp_path / "claims"))
    outputs, charts, text = execute_chapter_outputs("zhang-kernels", tmp_path / "k.ipynb", "-p scale smoke")
    assert len(charts) == 4
    for line in ("memory available now:", "random labels: norm", "γ for the wavelet features", "extrapolated to 32,000"):
        assert line in text, line
    assert len(list((tmp_path / "runs" / "kernels").glob("*/summary.json"))) >= 6  # every fit cached
    claims = [Claim(**c) for c in json.loads((tmp_path / "claims" / "smoke" / "zhang-kernels.json").read_text())]
    assert len(claims) == 11 and [c.recompute() for c in claims] == [c.verdict for c in claims]
    by_claim = {c.claim: c for c in claims}
    # an interpolating solve fits its labels by its mathematics, once it has converged
    fits = [c for c in claims if "interpolant fits every training label" in c.claim or "interpolated too" in c.claim]
    assert len(fits) == 2 and all(not c.substantive and c.construction == "solver" and c.requires for c in fits)
    # our exact solver against our iterative one is a check of ours, not a claim of the paper
    check = next(c for c in claims if c.source == "check")
    assert check.claim == "exact and iterative solves agree on a 1,000-image subset" and check.paper == "ours"
    assert check.data == "1,000 of 60,000 training images"
    # data strings computed from what was used, denominators from lib.data
    assert by_claim["MNIST raw pixels: test error of the interpolant"].data == "1,000 of 60,000 training images"
    assert by_claim["CIFAR-10 raw pixels: test error"].data == "300 of 50,000 training images"
    # two filter counts cannot show a trend: not tested at smoke
    filters = by_claim["more random filters, lower error"]
    assert filters.verdict == "not tested" and "3 filter counts" in filters.untested
    # numeric claims far below the paper's sizes cannot reproduce the paper's numbers
    assert not [c.claim for c in claims if c.verdict == "reproduced"]
    # a test error reproduces within 2 standard errors of ours minus the paper's (our test images and its 10,000) or its
    # rounding; the full-size solve's error needs the iterative solve to have converged, like its siblings
    for name, n_test, n_paper in (("MNIST raw pixels: test error of the interpolant", 500, 10_000),
                                  ("CIFAR-10 raw pixels: test error", 300, 10_000)):
        c = by_claim[name]
        ours, paper = c.values["ours"] / 100, c.values["paper"] / 100
        assert c.values["two_se"] == pytest.approx(200 * math.sqrt(ours * (1 - ours) / n_test
                                                                    + paper * (1 - paper) / n_paper), rel=1e-3)
    raw = by_claim["MNIST raw pixels: test error of the interpolant"]
    assert any(r["what"].startswith("the iterative solve on 1,000 images converged") for r in raw.requires)
    # the norm depends on a bandwidth the paper does not give: our extension, within the paper's rounding to the tens
    norm = next(c for c in claims if c.claim.startswith("MNIST raw pixels: norm"))
    assert (norm.source, norm.paper) == ("ours", "ours") and norm.values["rounding"] == 5.0
    # the paper's comparisons of norms and errors stay its claims; the gap of two test errors needs a test set that
    # resolves the paper's 0.6 points, which 500 images do not
    wavelets = by_claim["wavelets give a lower error than raw pixels and a larger norm"]
    assert wavelets.source == "paper" and wavelets.verdict == "not tested" and "resolve the paper's gap" in wavelets.untested
    # every claim states its protocol, and the unstated bandwidth is always a departure
    for c in claims:
        assert c.departures and "protocol not stated" not in c.departures, c.claim
        if c.source != "check":
            assert any(d.startswith("model: Gaussian kernel") and "bandwidth not stated" in d for d in c.departures)
    assert all(c.could_have_failed() == (c.evidence == "test") for c in claims)
    assert {c.one_sided for c in fits} == {"solver"}
    # every substantive claim of the paper that passes stated the preconditions it passed
    assert all(c.requires for c in claims if c.source == "paper" and c.verdict == "same trend")
    shown = "".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert all(c.claim in shown for c in claims)  # the closing is written from the verdicts


def test_prose_states_no_result_it_did_not_compute():
    from lib.book import prose

    assert not prose.stale_sentences((REPO / "book" / "zhang-kernels.md").read_text(), "zhang-kernels")
