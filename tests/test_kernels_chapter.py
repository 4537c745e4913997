"""The kernel-interpolation chapter (Zhang et al., Section 5 / Table 3) end to end at `smoke` scale."""

from __future__ import annotations

import json
from pathlib import Path

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
    # every substantive claim of the paper that passes stated the preconditions it passed
    assert all(c.requires for c in claims if c.source == "paper" and c.verdict == "same trend")
    shown = "".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert all(c.claim in shown for c in claims)  # the closing is written from the verdicts


def test_prose_states_no_result_it_did_not_compute():
    from lib.book import prose

    assert not prose.stale_sentences((REPO / "book" / "zhang-kernels.md").read_text(), "zhang-kernels")
