"""The Theunissen chapter end to end at `smoke` scale, executed by papermill as the book does."""

from __future__ import annotations

from conftest import execute_chapter_outputs

FIGURES = 7  # Figures 1-7, one chart each


def test_chapter_executes_at_smoke_scale_with_all_seven_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "runs"))
    out = tmp_path / "theunissen.ipynb"
    _, charts, text = execute_chapter_outputs("theunissen-noise", out, "-p scale smoke")
    assert len(charts) == FIGURES
    for verdict in ("training accuracy", "Between-class share", "label corruption: gap", "Onset layer",
                    "First-layer sample sets", "Polarization above chance"):
        assert verdict in text, verdict
    # the runs were trained with the chapter's own settings: the 55k/5k/10k split and Glorot initialization
    configs = [p.read_text() for p in (tmp_path / "runs").glob("*/config.json")]
    assert any('"split": "theunissen"' in c and '"init": "glorot_uniform"' in c for c in configs)
