"""The kernel-interpolation chapter (Zhang et al., Section 5 / Table 3) end to end at `smoke` scale."""

from __future__ import annotations

import json

from conftest import execute_chapter_outputs
from lib.book.claims import VERDICTS


def test_chapter_executes_at_smoke_scale(tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LIB_CLAIMS_DIR", str(tmp_path / "claims"))
    _, charts, text = execute_chapter_outputs("zhang-kernels", tmp_path / "k.ipynb", "-p scale smoke")
    assert len(charts) == 4
    for line in ("memory available now:", "random labels: norm", "γ for the wavelet features", "extrapolated to 32,000"):
        assert line in text, line
    assert len(list((tmp_path / "runs" / "kernels").glob("*/summary.json"))) >= 6  # every fit cached
    claims = json.loads((tmp_path / "claims" / "smoke" / "zhang-kernels.json").read_text())
    assert len(claims) == 10 and {c["verdict"] for c in claims} <= set(VERDICTS)
