"""The MASC chapter executed by papermill at `smoke` scale, in an empty run cache."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    root = tmp_path_factory.mktemp("masc")
    notebook = jupytext.read(REPO / "book" / "masc-decoding.md")
    source = root / "in.ipynb"
    nbformat.write(notebook, source)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIB_CACHE_DIR", str(root / "runs"))
        patch.setenv("PYTHONPATH", str(REPO))  # the kernel imports this checkout's lib, whatever else is installed
        papermill.execute_notebook(str(source), str(root / "out.ipynb"), parameters={"scale": "smoke"},
                                   cwd=str(REPO / "book"), progress_bar=False)
    return nbformat.read(root / "out.ipynb", as_version=4), root


def _texts(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            out.append(o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/html", ""))
    return "\n".join(out)


def test_chapter_runs_every_section(executed):
    nb, root = executed
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    headings = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for section in ("Tables 2 and 3", "Figure 1:", "Figure 2:", "Figure 3:", "Figures 5 and 6", "Figures 9 and 10",
                    "Figures 16–18", "Appendix A.10", "Appendix A.12"):
        assert section in headings, section
    text = _texts(nb)
    assert text.count("vega-embed") >= 8  # Figures 1, 2, 3, 5/6, 9/10, 16-18, 19 (A.10), 37-38 (A.12)
    assert "MASC beats the model's test accuracy in at least one of the network's layers" in text
    assert "MLP-MNIST, p = 0.8: best MASC layer" in text and "CNN-Fashion-MNIST, p = 0.8: best MASC layer" in text
    assert any(p.name == "components.csv" for p in (root / "runs" / "decode").rglob("*"))  # decodings were cached


def test_override_typo_fails():
    notebook = jupytext.read(REPO / "book" / "masc-decoding.md")
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert 'load_params("masc-decoding", scale, overrides)' in code
    from lib.params import load_params
    with pytest.raises(KeyError):
        load_params("masc-decoding", "smoke", {"corruption_level": [0.5]})
