"""The committed results store (lib.results): runs, Store entries and chapter records round-trip; what it holds is
never trained again; a damaged, foreign or misplaced entry is refused with a message naming it and the fix."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lib.runs as runs
from lib import results
from lib.book.claims import ClaimBook
from lib.cache import DamagedResultError, Store
from lib.train import RunConfig

CONFIG = RunConfig(dataset="mnist", n_train=128, n_test=64, preprocessing="scale", model="mlp1x64",
                   lr=0.05, max_epochs=2, stop_train_acc=None, batch_size=64)


@pytest.fixture
def store_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "results"
    monkeypatch.setenv("LIB_RESULTS_DIR", str(folder))
    return folder


def must_not_train(*args, **kwargs):
    raise AssertionError("a run the results store holds was trained")


def record_config(monkeypatch, tmp_path) -> tuple[runs.TrainedRun, Path]:
    """Train CONFIG with recording on at scale `full`; returns the run and its store entry."""
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "cache-a"))
    monkeypatch.setenv("LIB_RECORD", "full")
    trained = runs.run(CONFIG, progress=False)
    monkeypatch.delenv("LIB_RECORD")
    return trained, results.run_path("full", runs.run_key(CONFIG))


def test_a_recorded_run_round_trips_without_weights_and_is_not_trained_again(store_dir, tmp_path, monkeypatch):
    trained, entry = record_config(monkeypatch, tmp_path)
    assert entry.is_file() and entry.parent.parent.parent == store_dir
    payload = json.loads(entry.read_text())
    assert payload["config"] == json.loads(json.dumps(CONFIG.to_dict())) and payload["summary"] == trained.summary
    assert payload["code_version"] == runs.code_version() and "state_dict" not in payload
    assert payload["provenance"]["machine"]["cores"] and payload["provenance"]["trained"]  # when and where
    assert entry.stat().st_size < 20_000  # curves and metrics only: small enough to commit

    empty = tmp_path / "cache-b"  # a fresh clone: no run cache at all
    monkeypatch.setenv("LIB_CACHE_DIR", str(empty))
    monkeypatch.setattr(runs, "train", must_not_train)
    assert runs.is_cached(CONFIG) and not runs.in_cache(CONFIG)
    loaded = results.load_run(CONFIG)
    assert loaded.summary == trained.summary and loaded.state_dict == {}
    pd.testing.assert_frame_equal(loaded.history, trained.history, check_dtype=False)
    frame = runs.run_grid([CONFIG])  # the grid reads it: nothing trained, nothing written to the cache
    assert bool(frame.cached.iloc[0]) and frame.final_test_acc.iloc[0] == trained.summary["final_test_acc"]
    assert not (empty / ".finished.log").exists() and not list(empty.glob("*/config.json"))
    assert results.run_provenance(CONFIG)["train_seconds"] == trained.summary.get("train_seconds")


def test_a_damaged_or_foreign_run_record_is_refused_naming_the_file_and_the_fix(store_dir, tmp_path, monkeypatch):
    _, entry = record_config(monkeypatch, tmp_path)
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "empty"))
    original = entry.read_text()

    damaged = json.loads(original)
    damaged["summary"]["final_test_acc"] = 0.99  # edited by hand
    entry.write_text(json.dumps(damaged))
    with pytest.raises(results.RecordError, match="does not match its SHA-256") as refused:
        runs.is_cached(CONFIG)
    assert str(entry) in str(refused.value) and "--record" in str(refused.value)

    foreign = json.loads(original)  # a consistent record written by other training code
    foreign["code_version"] = "some-other-code"
    entry.write_text(json.dumps(results.seal(foreign)))
    with pytest.raises(results.RecordError, match="recorded with other training code"):
        results.load_run(CONFIG)

    provenance = json.loads(original)  # the machine and the hours edited by hand
    provenance["provenance"]["machine"]["gpu"] = "NVIDIA H100"
    provenance["provenance"]["train_seconds"] = 279 * 3600.0
    entry.write_text(json.dumps(provenance))
    with pytest.raises(results.RecordError, match="content or provenance does not match its SHA-256"):
        results.load_run(CONFIG)
    del provenance["provenance"]  # nor can it be dropped
    entry.write_text(json.dumps(results.seal(provenance)))
    with pytest.raises(results.RecordError, match="not a readable run record"):
        results.load_run(CONFIG)

    entry.write_text("{not json")
    with pytest.raises(results.RecordError, match="not a readable run record"):
        results.load_run(CONFIG)
    entry.write_text(original)
    assert results.load_run(CONFIG) is not None  # restored: used again


def test_a_store_entry_is_copied_when_recording_and_read_by_a_fresh_clone(store_dir, tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "solver.py").write_text("VERSION = 1\n")
    store = Store("demo", sources=("solver.py",), package_dir=package)
    settings = {"n": 5, "bandwidth": 2.0}
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "cache-a"))
    monkeypatch.setenv("LIB_RECORD", "full")
    computed, cached = store.fetch(settings, lambda: {"scores": np.arange(5.0), "name": "x"})
    assert not cached
    copied = store_dir / "full" / "demo" / store.key(settings)
    assert (copied / "manifest.json").is_file()

    monkeypatch.delenv("LIB_RECORD")
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "cache-b"))

    def must_not_compute():
        raise AssertionError("a recorded result was computed again")

    result, cached = store.fetch(settings, must_not_compute)
    assert cached and np.array_equal(result["scores"], computed["scores"]) and result["name"] == "x"

    manifest = json.loads((copied / "manifest.json").read_text())
    data = next(copied / name for name in manifest["files"])
    good = data.read_bytes()
    data.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit flipped
    with pytest.raises(DamagedResultError, match="refused") as refused:
        store.fetch(settings, must_not_compute)
    assert str(copied) in str(refused.value) and "--record" in str(refused.value)
    data.write_bytes(good)
    (copied / "manifest.json").write_text(json.dumps({**manifest, "code": "other-code"}))
    with pytest.raises(DamagedResultError, match="written by other code"):
        store.fetch(settings, must_not_compute)


def test_a_chapter_record_round_trips_and_a_misplaced_or_incomplete_one_is_refused(store_dir, tmp_path, monkeypatch):
    _, entry = record_config(monkeypatch, tmp_path)
    book = ClaimBook("demo-chapter", "full", data=(60_000, 60_000), paper="P")
    book.value(figure="T", claim="a", paper_value=10.0, ours=10.4, tolerance=1.0)
    frame = pd.DataFrame({"p": [0.0, 0.5], "gap": [0.1, 0.4]})
    path = results.record_chapter("full", "demo-chapter", claims=[asdict(c) for c in book.claims],
                                  frames={"figure2": results.frame_payload(frame)},
                                  runs=[entry.stem], seconds=125.0)
    record = results.chapter_record("demo-chapter", "full")
    assert [c.verdict for c in record.claims] == ["reproduced"] and record.claims[0].scale == "full"
    pd.testing.assert_frame_equal(record.frame("figure2"), frame)
    assert list(record.runs) == [entry.stem] and record.runs[entry.stem]["trained"]
    assert "recorded" in record.provenance() and "1 training runs" in record.provenance()
    assert results.chapter_record("demo-chapter", "paper") is None  # nothing recorded there: not an error
    with pytest.raises(KeyError, match="figure2"):
        record.frame("figure9")

    edited = json.loads(path.read_text())  # a chapter's provenance edited by hand is refused too
    edited["provenance"]["machine"]["gpu"], edited["provenance"]["seconds"] = "NVIDIA H100", 279 * 3600.0
    results.chapter_path("full", "edited-chapter").write_text(json.dumps({**edited, "chapter": "edited-chapter"}))
    with pytest.raises(results.RecordError, match="content or provenance does not match its SHA-256"):
        results.chapter_record("edited-chapter", "full")

    misplaced = results.chapter_path("full", "other-chapter")
    misplaced.write_text(path.read_text())
    with pytest.raises(results.RecordError, match="records chapter 'demo-chapter'"):
        results.chapter_record("other-chapter", "full")
    entry.unlink()  # a run it used is gone
    with pytest.raises(results.RecordError, match="is not in"):
        results.chapter_record("demo-chapter", "full")


def test_the_committed_store_is_readable_by_this_checkout(monkeypatch):
    """Every committed chapter record (and each run it used) passes its checks with this checkout's code: a change
    of the training code that would make the committed results stale fails here, not on the published page."""
    committed = Path(__file__).resolve().parents[1] / "results"
    monkeypatch.setenv("LIB_RESULTS_DIR", str(committed))
    chapters = sorted(committed.glob("*/chapters/*.json"))
    for path in chapters:
        record = results.chapter_record(path.stem, path.parent.parent.name)
        assert record.claims and record.runs, path
        for key in record.runs:  # each run it used loads as the run of its own configuration
            config = RunConfig(**{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in json.loads(results.run_path(record.scale, key).read_text())["config"].items()})
            assert runs.run_key(config) == key and results.load_run(config) is not None, (path, key)
    # issue 20: the four chapters recorded at the papers' data sizes
    assert {p.stem for p in chapters if p.parent.parent.name == "full"} >= {
        "zhang-randomization", "masc-decoding", "theunissen-noise", "weng-layer-robustness"}


def test_a_chapter_built_from_the_store_trains_nothing_and_shows_the_recorded_scale(tmp_path, monkeypatch):
    """Record zhang-randomization at smoke into a store that also holds the committed `full` record, then build the
    page again from a fresh (empty) run cache: no run is started, and the page shows the `full` results and claims
    from the store beside its own."""
    from conftest import execute_chapter_outputs

    import shutil

    committed = Path(__file__).resolve().parents[1] / "results"
    store = tmp_path / "results"
    store.mkdir()
    shutil.copytree(committed / "full", store / "full")
    monkeypatch.setenv("LIB_RESULTS_DIR", str(store))
    monkeypatch.setenv("LIB_CLAIMS_DIR", str(tmp_path / "claims"))
    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "cache-a"))
    monkeypatch.setenv("LIB_RECORD", "smoke")
    execute_chapter_outputs("zhang-randomization", tmp_path / "first.ipynb", "-p scale smoke")
    recorded = results.chapter_record("zhang-randomization", "smoke")
    assert recorded.runs and {"figure1c", "table1"} <= set(recorded.frames)

    monkeypatch.delenv("LIB_RECORD")
    fresh = tmp_path / "cache-b"
    monkeypatch.setenv("LIB_CACHE_DIR", str(fresh))
    outputs, charts, text = execute_chapter_outputs("zhang-randomization", tmp_path / "second.ipynb", "-p scale smoke")
    assert not list(fresh.glob("*/config.json")) and not (fresh / ".finished.log").exists()  # no run started
    assert not list(fresh.rglob("*.pt"))  # not even a checkpoint of a started run
    claims = json.loads((tmp_path / "claims" / "smoke" / "zhang-randomization.json").read_text())
    assert [c["verdict"] for c in claims if c["scale"] == "smoke"] == [c.verdict for c in recorded.claims]
    markdown = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "were not trained by this build" in markdown and "results/full/chapters/zhang-randomization.json" in markdown
    full = results.chapter_record("zhang-randomization", "full")
    assert [c["verdict"] for c in claims if c["scale"] == "full"] == [c.verdict for c in full.claims]


def test_a_page_adopts_a_recorded_scale_and_says_so_when_the_record_is_refused(store_dir):
    from lib.book import recorded
    from lib.book.chapter import Chapter

    book = ClaimBook("zhang-randomization", "full", data=(50_000, 50_000), paper="P")
    book.value(figure="T", claim="a", paper_value=10.0, ours=10.4, tolerance=1.0)
    path = results.record_chapter("full", "zhang-randomization", claims=[asdict(c) for c in book.claims],
                                  frames={}, runs=[], seconds=3.0)
    page = Chapter("zhang-randomization", "smoke", show_box=False)
    record = page.recorded("full")
    assert record is not None and [c.scale for c in page.claims.claims] == ["full"]  # adopted, at its own scale
    assert "were not trained by this build" in recorded.intro(record, page)

    tampered = json.loads(path.read_text())
    tampered["claims"][0]["verdict"] = "differs"  # edited by hand: the SHA-256 no longer matches
    path.write_text(json.dumps(tampered))
    page = Chapter("zhang-randomization", "smoke", show_box=False)
    with pytest.warns(UserWarning, match="does not match its SHA-256"):
        assert page.recorded("full") is None
    assert not page.claims.claims and "refused" in recorded.intro(None, page) and str(path) in page.refused["full"]
