"""The Theunissen chapter end to end at `smoke` scale, executed by papermill as the book does."""

from __future__ import annotations

import nbformat

from conftest import papermill_cli

FIGURES = 7  # Figures 1-7, one chart each


def test_chapter_executes_at_smoke_scale_with_all_seven_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "runs"))
    out = tmp_path / "theunissen.ipynb"
    result = papermill_cli("theunissen-noise", out, "-p scale smoke")
    assert result.returncode == 0, result.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    charts = [o for o in outputs if "vega-embed" in o.get("data", {}).get("text/html", "")]
    assert len(charts) == FIGURES
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    for verdict in ("training accuracy", "Between-class share", "label corruption: gap", "Onset layer",
                    "First-layer sample sets", "Polarization above chance"):
        assert verdict in text, verdict
    # the runs were trained with the chapter's own settings: the 55k/5k/10k split and Glorot initialization
    configs = [p.read_text() for p in (tmp_path / "runs").glob("*/config.json")]
    assert any('"split": "theunissen"' in c and '"init": "glorot_uniform"' in c for c in configs)
