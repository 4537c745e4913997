"""The expressivity chapter (Zhang et al., Theorem 1 and Corollary 1) executed by papermill at `smoke` scale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import execute_in_isolation
from lib.book.claims import Claim

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    root = tmp_path_factory.mktemp("expressivity")
    return execute_in_isolation("zhang-expressivity", root), root


def _texts(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = o.get("data", {})
            out.append(o.get("text", "") if o.output_type == "stream" else data.get("text/markdown", data.get("text/plain", "")))
    return "\n".join(out)


def test_chapter_runs_and_recovers_every_label(executed):
    nb, root = executed
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    text = _texts(nb)
    assert "100.00% of the random labels recovered" in text
    assert "weights = 2·200 + 784" in text
    claims = [Claim(**c) for c in json.loads((root / "claims" / "smoke" / "zhang-expressivity.json").read_text())]
    assert [c.recompute() for c in claims] == [c.verdict for c in claims]
    theorem = [c for c in claims if c.figure == "Theorem 1" and "recovered" in c.claim]
    # the construction is exact at smoke's sizes too: substantive (floating point could fail), with its hypotheses
    assert len(theorem) == 2 and all(c.verdict == "same trend" and c.substantive and c.requires for c in theorem)
    assert {c.data for c in theorem} == {"50 of 60,000 MNIST training images as points (random labels)",
                                         "200 of 60,000 MNIST training images as points (random labels)"}
    counts = [c for c in claims if "weights of the depth-2 network" in c.claim]
    assert counts and all(not c.substantive and c.construction == "definition" and c.verdict == "reproduced" for c in counts)
    assert any(c.figure == "Corollary 1" for c in claims)
    # not claims of the paper: the inequality Lemma 1 never states, and our own margin target
    checks = {c.claim: c for c in claims if c.source == "check"}
    assert any("‖w‖ ≤ ‖y‖/λ_min" in k for k in checks) and any("rounding margin" in k for k in checks)
    assert all(c.paper == "ours" for c in checks.values())
    # five SGD steps cannot test "fits random labels": not tested, never same trend
    sgd = next(c for c in claims if c.figure == "Figure 1a")
    assert sgd.substantive and sgd.verdict == "not tested" and "epoch budget" in sgd.untested
    assert sgd.data == "100 of 60,000 training images"
    # the closing is written from the verdicts
    assert "Not tested (a precondition failed at this scale)" in text and "Checks of our own implementation" in text


def test_prose_states_no_result_it_did_not_compute():
    from lib.book import prose

    assert not prose.stale_sentences((REPO / "book" / "zhang-expressivity.md").read_text(), "zhang-expressivity")
