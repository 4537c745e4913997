"""The cross-paper chapter end to end at `smoke` scale, executed by papermill as the README says."""

from __future__ import annotations

import json

from conftest import execute_chapter_outputs
from lib.book.claims import VERDICTS

CHARTS = 6  # Figures S1, S2 (MNIST and Fashion-MNIST), S3, S4, S5


def test_chapter_executes_at_smoke_scale_with_both_cross_paper_analyses(tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LIB_CLAIMS_DIR", str(tmp_path / "claims"))
    out = tmp_path / "synthesis.ipynb"
    _, charts, text = execute_chapter_outputs("synthesis", out, "-p scale smoke")
    assert len(charts) == CHARTS
    for line in ("label noise, 0 < P < 1: MASC in a hidden layer beats the network in",
                 "Gaussian input noise, 0 < P < 1", "structured input noise, 0 < P < 1",
                 "Polarization above chance in", "(network, layer) points from", "Strongest within-network predictor"):
        assert line in text, line
    # the networks are the two chapters' own: Theunissen's 10x512 on its split and the MASC paper's MLP
    configs = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/config.json")]
    assert {c["model"] for c in configs} == {"mlp10x512-firstbias", "mlp-128-512-2048-2048"}
    assert all(c["split"] == "theunissen" for c in configs if c["model"] == "mlp10x512-firstbias")
    assert any((tmp_path / "runs" / "decode").glob("*/accuracy.csv"))  # MASC decodings cached for reuse
    claims = json.loads((tmp_path / "claims" / "smoke" / "synthesis.json").read_text())
    assert {c["paper"] for c in claims} == {"MASC paper", "Theunissen et al. 2019"}
    assert len(claims) == 6 and {c["verdict"] for c in claims} <= set(VERDICTS)
    assert all(c["chapter"] == "synthesis" and c["section"] for c in claims)
