"""The regularization chapter (book/zhang-regularization.md): it shares its unregularized runs with the randomization
chapter, and executes at `smoke` scale in an empty run cache."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

from conftest import execute_in_isolation

from lib import runs
from lib.params import load_params
from lib.protocols import zhang_config, zhang_row_config

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


def test_the_randomization_chapter_builds_its_configs_through_the_protocol():
    code = "\n".join(c.source for c in jupytext.read(REPO / "book" / "zhang-randomization.md").cells
                     if c.cell_type == "code")
    assert "return zhang_config(P, model, **changes)" in code


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
    assert {c["verdict"] for c in claims} <= {"reproduced", "same trend", "differs"}
    configs = [json.loads(p.read_text()) for p in (root / "runs").glob("*/config.json")]
    assert {c["augment"] for c in configs} == {"none", "crop", "flip_rotate"}
    assert {c["weight_decay"] for c in configs} == {0.0, 5e-4, 1e-4}
