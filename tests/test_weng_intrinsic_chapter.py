"""The intrinsic-dimension chapter executed by papermill at `smoke` scale, in an empty run cache."""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

from conftest import execute_in_isolation

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
    assert len(list((root / "runs" / "subspace").glob("*.json"))) >= 10  # subspace runs were cached
    claims = json.loads((root / "claims" / "smoke" / f"{CHAPTER}.json").read_text())
    assert any("global bar" in c["claim"] for c in claims) and any("local" in c["claim"] for c in claims)
    assert all(c["verdict"] in ("reproduced", "same trend", "differs") for c in claims)


def test_override_typo_fails():
    from lib.params import load_params

    with pytest.raises(KeyError):
        load_params(CHAPTER, "smoke", {"mnsit": {}})
