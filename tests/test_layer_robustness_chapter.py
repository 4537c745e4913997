"""The layer-robustness chapter (Zhang, Bengio & Singer 2019 via Weng 2019) end to end at `smoke` scale."""

from __future__ import annotations

import json

from conftest import execute_chapter_outputs
from lib.book.claims import VERDICTS


def test_chapter_executes_at_smoke_scale(tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LIB_CLAIMS_DIR", str(tmp_path / "claims"))
    out = tmp_path / "weng-layer-robustness.ipynb"
    _, charts, text = execute_chapter_outputs("weng-layer-robustness", out, "-p scale smoke")
    assert len(charts) == 3  # FC heatmaps, conv heatmap, Weng's variants
    assert "re-randomized accuracy per layer" in text and "first layer reset to τ = 0" in text
    # every run kept its checkpoints in the cache
    runs = [p.parent for p in (tmp_path / "runs").glob("*/config.json")]
    assert len(runs) == 4 and all((r / "snapshots.pt").is_file() for r in runs)
    claims = json.loads((tmp_path / "claims" / "smoke" / "weng-layer-robustness.json").read_text())
    assert {c["paper"] for c in claims} == {"zhang2019layers", "weng2019"}
    assert {c["verdict"] for c in claims} <= set(VERDICTS)
