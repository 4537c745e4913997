"""The double-descent chapter end to end at `smoke` scale, executed by papermill as the README says."""

from __future__ import annotations

import json

from conftest import execute_chapter_outputs
from lib.book.claims import VERDICTS


def test_chapter_executes_at_smoke_scale_and_caches_its_sweeps(tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LIB_CLAIMS_DIR", str(tmp_path / "claims"))
    _, charts, text = execute_chapter_outputs("weng-double-descent", tmp_path / "dd.ipynb", "-p scale smoke")
    assert len(charts) == 2  # Figure 4 (networks) and Figure 2 (random features)
    for line in ("with reuse (Belkin): test loss min under", "without reuse:", "label noise:", "Weng's setting:",
                 "test loss peaks at N ="):
        assert line in text, line
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "runs" / "double-descent").glob("*.json"))
    assert cached == ["nn"] * 4 + ["rff"]  # fresh, chain below the threshold, label noise, Weng; random features
    claims = json.loads((tmp_path / "claims" / "smoke" / "weng-double-descent.json").read_text())
    assert len(claims) == 8 and {c["verdict"] for c in claims} <= set(VERDICTS)
    assert {c["paper"] for c in claims} == {"Belkin et al. 2019", "Weng 2019"}
