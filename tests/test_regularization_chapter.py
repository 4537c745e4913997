"""The regularization chapter (book/zhang-regularization.md): it shares its unregularized runs with the randomization
chapter, and executes at `smoke` scale in an empty run cache."""

from __future__ import annotations

from pathlib import Path

import jupytext
import pytest

from conftest import execute_in_isolation

from lib import runs
from lib.book.claims import VERDICTS, Claim
from lib.book.prose import stale_sentences
from lib.params import load_params
from lib.studies.protocols import zhang_config, zhang_row_config
from lib.studies.zhang2017.regularization import MODEL_NAMES

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("scale", ["cpu", "paper"])
def test_the_shared_runs_are_the_randomization_chapters_runs(scale):
    """Table 1's unregularized and random-label rows of every model both chapters train are the same run (key)."""
    mine, theirs = load_params("zhang-regularization", scale), load_params("zhang-randomization", scale)
    shared = [m for m in theirs.models if m in mine.models]
    assert shared, "the chapters share no model"
    for model in shared:
        for row, corruption in (("none", 0.0), ("random_labels", 1.0)):
            assert (runs.run_key(zhang_row_config(mine, model, row))
                    == runs.run_key(zhang_config(theirs, model, corruption=corruption))), (model, row)


@pytest.mark.parametrize("scale", ["smoke", "cpu", "paper"])
def test_a_model_entry_can_set_its_initialization(scale):
    """Inception w/o BatchNorm trains from He initialization (PyTorch's default does not train it); others keep theirs."""
    P = load_params("zhang-regularization", scale)
    assert zhang_row_config(P, "inception_nobn", "none").init == "he_normal"
    assert zhang_row_config(P, "inception_nobn", "random_labels", "table1").init == "he_normal"
    assert {zhang_row_config(P, m, "none").init for m in P.models if m != "inception_nobn"} == {"default"}
    with pytest.raises(ValueError, match="init"):  # a bad name fails when the parameters are read
        load_params("zhang-regularization", scale, {"models": {**P.models, "alexnet": {**P.models["alexnet"],
                                                                                        "init": "orthogonal"}}})


def test_both_chapters_build_their_configs_through_the_protocol():
    code = "\n".join(c.source for c in jupytext.read(REPO / "book" / "zhang-randomization.md").cells
                     if c.cell_type == "code")
    assert "randomization.figure1_runs(P, curve_model)" in code and "zhang_config(P, curve_model" in code
    code = "\n".join(c.source for c in jupytext.read(REPO / "book" / "zhang-regularization.md").cells
                     if c.cell_type == "code")
    assert "regularization.row_configs(P, table1_rows, table4_rows)" in code and "ch.close(summary)" in code


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    root = tmp_path_factory.mktemp("regularization")
    return execute_in_isolation("zhang-regularization", root), root


def test_chapter_executes_at_smoke_scale(executed):
    nb, root = executed
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert html.count("vega-embed") >= 2  # the Table 1 chart and Figure 2b
    tables = "\n".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    for row in ("Inception w/o BatchNorm", "MLP 1x512", "random cropping", "augmentation (flips, rotations)"):
        assert row in tables, row
    import json
    claims = json.loads((root / "claims" / "smoke" / "zhang-regularization.json").read_text())
    assert len(claims) >= 25
    assert {c["verdict"] for c in claims} <= set(VERDICTS)
    configs = [json.loads(p.read_text()) for p in (root / "runs").glob("*/config.json")]
    assert {c["augment"] for c in configs} == {"none", "crop", "flip_rotate"}
    assert {c["weight_decay"] for c in configs} == {0.0, 5e-4, 1e-4}


def claims_of(root) -> list[Claim]:
    import json
    return [Claim(**c) for c in json.loads((root / "claims" / "smoke" / "zhang-regularization.json").read_text())]


def test_no_claim_passes_on_the_untrained_smoke_runs(executed):
    """At `smoke` nothing trains: every substantive claim of the paper is *not tested* or *differs*, and the verdicts
    follow from the stored criteria and preconditions alone."""
    nb, root = executed
    claims = claims_of(root)
    assert all(c.recompute() == c.verdict for c in claims)
    substantive = [c for c in claims if c.source == "paper" and c.substantive]
    assert substantive
    assert not [(c.figure, c.claim, c.verdict) for c in substantive if c.verdict in ("same trend", "reproduced")]
    assert sum(c.verdict == "not tested" for c in substantive) >= len(substantive) / 2


def test_claims_that_passed_whatever_happened_now_need_their_preconditions(executed):
    nb, root = executed
    claims = {c.claim: c for c in claims_of(root)}
    # early stopping: tested more than once, not stopped by a cap (while still improving or not), above chance
    for name in ("Inception", "Inception w/o BatchNorm"):
        c = claims[f"{name}: early stopping gains little on CIFAR-10"]
        assert len(c.requires) == 3 and c.verdict == "not tested"  # smoke tests Inception at its single epoch
        assert any("more than one epoch" in r["what"] and not r["holds"] for r in c.requires)
        assert any(r["expr"] == "converged == 1 or epochs >= needed" and not r["holds"] for r in c.requires)
    # a regularizer's gain is a difference of two test accuracies, ours and the paper's: it reproduces within two
    # standard errors of the difference of the two gains, and is tested only where our test images resolve the
    # paper's gain (smoke's 64-100 test images do not), on runs that converged or trained the paper's epochs
    from lib.papers import paper
    from lib.verdicts import NOISE
    zhang = paper("zhang2017")
    P = load_params("zhang-regularization", "smoke")
    gains = [c for name, c in claims.items() if ": gain of the regularizers" in name]
    assert len(gains) == 5
    for c in gains:
        model = next(m for m, name in MODEL_NAMES.items() if c.claim.startswith(f"{name}: "))
        row = c.claim.split("(")[1].split(" vs")[0]
        on, off = zhang[f"table1.{model}.{row}.test"] / 100, zhang[f"table1.{model}.none.test"] / 100
        paper_se = 100 * ((on * (1 - on) + off * (1 - off)) / 10_000) ** 0.5
        n_test = zhang_config(P, model).n_test
        assert c.criterion == NOISE
        assert 2 * paper_se < c.values["two_se"] <= 2 * (paper_se ** 2 + 100 ** 2 * 0.5 / n_test) ** 0.5, c.claim
        resolve = next(r for r in c.requires if f"our {n_test:,} test images resolve the paper's gain" in r["what"])
        assert not resolve["holds"], c.claim
        assert c.verdict == "not tested" and any("converged" in r["what"] for r in c.requires)
    crops = [c for name, c in claims.items() if name.endswith("random crop improves test accuracy")]
    assert len(crops) == 2 and all(c.criterion == "gain > two_se" for c in crops)
    # every claim states its protocol; a claim that runs fit their labels is a confirmation only where the stopping
    # rule could have ended them (smoke's capped runs), and its evidence is recomputed from the stored numbers
    for c in claims.values():
        assert c.departures and "protocol not stated" not in c.departures, c.claim
        assert c.could_have_failed() == (c.evidence == "test"), c.claim
    fits = [c for name, c in claims.items() if name.endswith("train accuracy") or " fits random labels with " in name]
    assert all(c.fit == (c.values["paper"] / 100 >= P.stop_train_acc) for c in fits if c.criterion == NOISE)
    table4 = [c for name, c in claims.items() if " fits random labels with " in name]
    assert table4 and all(c.criterion == "fit >= paper - tolerance" and c.fit for c in table4)
    # capped runs are not tested, never "by construction": only chance on random labels holds by construction
    construction = {c.claim: c.construction for c in claims.values() if not c.substantive}
    assert construction and set(construction.values()) == {"chance"}
    assert all("random labels: test accuracy" in name for name in construction)
    from lib.book.chapter import code_cells
    headings = {heading for _, heading in code_cells((REPO / "book" / "zhang-regularization.md").read_text())}
    assert {c.section for c in claims.values()} <= headings  # every claim links to a heading of the chapter
    alexnet = claims["AlexNet with weight decay fails to converge on random labels"]
    assert alexnet.substantive and alexnet.verdict == "not tested"
    assert any(r["expr"] == "converged == 1 or epochs >= needed" and not r["holds"] for r in alexnet.requires)
    for name, c in claims.items():
        if name.startswith("Inception fits random labels with"):
            assert c.substantive and c.verdict == "not tested", name
    # data strings from lib.data, never typed
    from lib.data import SIZES
    assert all(c.n_paper == SIZES["cifar10"][0] and c.n_ours < c.n_paper for c in claims.values())


def test_the_closing_is_written_from_the_verdicts(executed):
    nb, root = executed
    markdown = "\n".join(o.get("data", {}).get("text/markdown", "") for c in nb.cells if c.cell_type == "code"
                         for o in c.get("outputs", []))
    assert "**Not tested (a precondition failed at this scale)**" in markdown
    assert "Where ours departs from the paper by choice" in markdown
    text = (REPO / "book" / "zhang-regularization.md").read_text()
    assert "**Agrees:**" not in text and "N_PAPER" not in text and "50_000" not in text


def test_the_prose_states_no_result_typed_by_hand():
    text = (REPO / "book" / "zhang-regularization.md").read_text()
    assert stale_sentences(text, "zhang-regularization") == []
