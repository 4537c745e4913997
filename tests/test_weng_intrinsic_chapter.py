"""The intrinsic-dimension chapter executed by papermill at `smoke` scale, in an empty run cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import execute_in_isolation
from lib.book.claims import Claim

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "weng-intrinsic-dimension"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    root = tmp_path_factory.mktemp("intrinsic")
    return execute_in_isolation(CHAPTER, root), root


def test_chapter_runs_every_section(executed):
    nb, root = executed
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    headings = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for section in ("Accuracy against d", "What the epoch cut costs", "Weng's two small nets", "Shuffled labels",
                    "LeNet", "Paper against ours"):
        assert section in headings, section
    charts = [o for o in outputs if "vega-embed" in o.get("data", {}).get("text/html", "")]
    assert len(charts) >= 4  # accuracy vs d, epochs, Weng's nets, shuffled labels
    stored = [p for p in (root / "runs" / "subspace").iterdir() if (p / "manifest.json").is_file()]
    assert len(stored) >= 10  # subspace runs were cached
    claims = [Claim(**c) for c in json.loads((root / "claims" / "smoke" / f"{CHAPTER}.json").read_text())]
    assert any("global bar" in c.claim for c in claims) and any("local" in c.claim for c in claims)
    assert [c.recompute() for c in claims] == [c.verdict for c in claims]
    assert all(c.criterion and c.requires for c in claims)
    # one epoch on a thousand images: nothing is trained enough to test anything, so nothing passes
    assert all(c.verdict == "not tested" for c in claims), [(c.claim, c.verdict) for c in claims]
    by_claim = {c.claim: c for c in claims}
    never = by_claim["mlp-64-64 never reaches 90% test accuracy at any d tried"]
    assert never.source == "reproduction" and never.paper.startswith("Weng's code")
    assert "reached ≥ 92% test accuracy" in never.untested  # an untrained 64-64 net cannot pass "never 90%"
    local = by_claim["the local definition gives a smaller d_int90 than the global one"]
    assert not local.substantive and local.construction == "definition"
    assert by_claim["MLP 784-200-200-10, MNIST: directly trained test accuracy"].source == "reproduction"
    glob = next(c for c in claims if "global bar (90.0%" in c.claim)
    assert glob.source == "paper" and "plateau" in glob.untested and glob.data == "1,000 of 60,000 training images"
    # a d_int90 is judged within the largest of 2 standard errors of the paper's (its 3-seed bootstrap), our seeds'
    # spread, its rounding and our grid's resolution; Weng's d at 80% is known to one step of her grid
    from lib.papers import paper

    li, weng = paper("li2018"), paper("weng2019")
    assert glob.criterion == "abs(ours - paper) <= max(two_se, seed_spread, rounding, resolution)"
    assert glob.values["two_se"] == 2 * li["mnist.fc.d_int90_bootstrap"][1] and glob.values["paper"] == 750
    essay = [c for c in claims if c.claim.endswith("d at 80% test accuracy")]
    assert len(essay) == 2 and all(c.values["resolution"] >= weng["intrinsic_dimension.experiment.d_step"] for c in essay)
    # a reported range (525-575, 97.6-98.5%) is widened by the same noise parts, not by a factor of 1.5
    local_d = by_claim["MLP 784-200-200-10, MNIST: d_int90 with each run's own direct accuracy as baseline"]
    assert (local_d.values["lo"], local_d.values["hi"]) == (525, 575) and set(local_d.fixed) == {"lo", "hi"}
    # every claim says how its runs depart from the paper's: 1 epoch per d at smoke against 100, and Weng's nets
    # without her dropout at evaluation and her unnormalized Gaussian P
    assert all(c.departures and c.departures != ["protocol not stated"] and not c.at_protocol for c in claims)
    assert any(d.startswith("epochs: no stopping rule or 1 epochs") and "100 epochs" in d for d in glob.departures)
    assert all("dropout at evaluation: no (paper: yes)" in c.departures for c in essay)
    # a rise of d over 3 subset sizes is an ordering that chance gives 1 time in 6: it needs at least 4 sizes
    shuffled = by_claim["memorizing more shuffled labels needs a larger subspace"]
    assert "at least 4 subset sizes" in shuffled.untested
    markdown = "".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert f"**Not tested (a precondition failed at this scale)**, {len(claims)} of {len(claims)}" in markdown


def test_override_typo_fails():
    from lib.params import load_params

    with pytest.raises(KeyError):
        load_params(CHAPTER, "smoke", {"mnsit": {}})
