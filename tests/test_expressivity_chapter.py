"""The expressivity chapter (Zhang et al., Theorem 1 and Corollary 1) executed by papermill at `smoke` scale."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

from conftest import execute_in_isolation

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    root = tmp_path_factory.mktemp("expressivity")
    return execute_in_isolation("zhang-expressivity", root), root


def _texts(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            out.append(o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", ""))
    return "\n".join(out)


def test_chapter_runs_and_recovers_every_label(executed):
    nb, root = executed
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    text = _texts(nb)
    assert "100.00% of the random labels recovered" in text
    assert "weights = 2·200 + 784" in text
    import json
    claims = json.loads((root / "claims" / "smoke" / "zhang-expressivity.json").read_text())
    theorem = [c for c in claims if c["figure"] == "Theorem 1" and "recovered" in c["claim"]]
    assert theorem and all(c["verdict"] == "same trend" and c["substantive"] for c in theorem)
    assert any(c["figure"] == "Corollary 1" for c in claims)
