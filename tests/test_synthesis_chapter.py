"""The cross-paper chapter end to end at `smoke` scale, executed by papermill as the README says."""

from __future__ import annotations

import json

from conftest import execute_chapter_outputs
from lib.book.claims import Claim
from lib.data import SIZES, SPLIT_SIZES
from lib.params import load_params

CHARTS = 6  # Figures S1, S2 (MNIST and Fashion-MNIST), S3, S4, S5


def test_chapter_executes_at_smoke_scale_with_both_cross_paper_analyses(tmp_path, monkeypatch):
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LIB_CLAIMS_DIR", str(tmp_path / "claims"))
    out = tmp_path / "synthesis.ipynb"
    outputs, charts, text = execute_chapter_outputs("synthesis", out, "-p scale smoke")
    assert len(charts) == CHARTS
    for line in ("label noise, 0 < P < 1: MASC in a hidden layer beats the network in",
                 "Gaussian input noise, 0 < P < 1", "structured input noise, 0 < P < 1",
                 "Polarization above chance in", "(network, layer) points from", "Strongest within-network predictor"):
        assert line in text, line
    # the networks are the two chapters' own: Theunissen's 10x512 on its split and the MASC paper's MLP
    configs = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/config.json")]
    assert {c["model"] for c in configs} == {"mlp10x512-firstbias", "mlp-128-512-2048-2048"}
    assert all(c["split"] == "theunissen" for c in configs if c["model"] == "mlp10x512-firstbias")
    assert any((tmp_path / "runs" / "decode").glob("*/manifest.json"))  # MASC decodings in the result store (lib.cache)
    claims = [Claim(**c) for c in json.loads((tmp_path / "claims" / "smoke" / "synthesis.json").read_text())]
    # neither paper makes these claims: each paper's finding carried to the other's networks is our extension
    assert {(c.source, c.paper) for c in claims} == {("ours", "ours")}
    assert len(claims) == 6 and all(c.recompute() == c.verdict for c in claims)
    assert all(c.chapter == "synthesis" and c.section and c.criterion and c.substantive for c in claims)
    # measured on the data each network used: Theunissen's split, the MASC chapter's MNIST subset
    T, M = load_params("theunissen-noise", "smoke"), load_params("masc-decoding", "smoke")
    on_theunissen = [c for c in claims if "Theunissen et al.'s 10x512" in c.figure]
    on_masc = [c for c in claims if "MASC paper's MLP" in c.figure]
    assert len(on_theunissen) == len(on_masc) == 3
    assert {(c.n_ours, c.n_paper) for c in on_theunissen} == {(T.n_train, SPLIT_SIZES["theunissen"][0])}
    assert {(c.n_ours, c.n_paper) for c in on_masc} == {(M.models["MLP-MNIST"]["n_train"], SIZES["mnist"][0])}
    # each claim's protocol is that of the paper that trained its networks: Appendix A's 400 epochs, the MASC
    # paper's 500-epoch cap on all 60,000 images
    assert all(any("400 epochs" in d for d in c.departures) for c in on_theunissen)
    assert all("training images: 150 (paper: all 60,000)" in c.departures and not c.at_protocol for c in on_masc)
    # MASC beats a network only beyond 2 standard errors; "very small" early cosines are a number, as in Theunissen's
    assert all("2 standard errors" in c.rule for c in on_theunissen)
    (early,) = [c for c in on_masc if c.claim.startswith("early layers")]
    assert early.criterion == "worst <= bound" and early.values["bound"] == 0.25
    # at smoke no network fits its labels: "MASC beats the model" and the rest are not tested, never agree
    assert all(c.verdict == "not tested" and "fitted" in c.untested for c in claims)
    # the conclusions are written from this build's numbers, not typed
    markdown = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    for line in ("**Question 1 — MASC on Theunissen et al.'s networks.** Under label noise",
                 "**Question 3", "did not fit their training sets",
                 "**Our extensions (claims the papers do not make, never counted as theirs)**, 6 of 6",
                 "not tested because not: "):
        assert line in markdown, line
