"""The key migration (lib.migrate, `python -m lib runs migrate`): a run cache, a result store and a committed results
store written under the earlier keys are re-keyed without retraining; an interrupted run resumes under its new key;
dropout runs and stale entries are reported and left; a second migration changes nothing."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import lib.runs as runs
import lib.train as train_module
from lib import migrate, results
from lib.book import cli
from lib.cache import MANIFEST, Store
from lib.train import RunConfig, train

CONFIG = RunConfig(dataset="mnist", n_train=128, n_test=64, preprocessing="scale", model="mlp1x64",
                   lr=0.05, max_epochs=2, stop_train_acc=None, batch_size=64)
INTERRUPTED = replace(CONFIG, seed=1, max_epochs=4)
DROPOUT = replace(CONFIG, model="mlp1x64-dropout0.5")
DECODE_SOURCES = ("studies/masc/decoding.py", "studies/masc/classifier.py")
SENTINEL = 12345.0  # the elapsed time written into the interrupted run's checkpoint: a resumed run keeps it


def as_earlier_run(cache: Path, config: RunConfig) -> str:
    """Turn the run of ``config`` stored by this code into what the earlier code stored: the same files (this code
    trains a run without dropout to the same bits) under the earlier key, the manifest naming the earlier version."""
    config_values = json.loads((cache / runs.run_key(config) / "config.json").read_text())
    old = migrate.old_run_key(config_values)
    manifest = json.loads((cache / runs.run_key(config) / MANIFEST).read_text())
    (cache / runs.run_key(config) / MANIFEST).write_text(json.dumps(dict(
        manifest, key=old, code_version=migrate.OLD_CODE_VERSION)))
    os.replace(cache / runs.run_key(config), cache / old)
    return old


def earlier_store_entry(root: Path, kind: str, sources: tuple[str, ...], settings: dict) -> str:
    """A result-store entry as the earlier code wrote it: its key and code digest from the sources' bytes."""
    store = Store(kind, sources, root=root)
    path = store.save(settings, {"values": [1.0, 2.0]})
    code = migrate.old_source_digest(sources)
    old = migrate.old_store_key(json.loads(json.dumps(settings)), code)
    manifest = json.loads((path / MANIFEST).read_text())
    (path / MANIFEST).write_text(json.dumps(dict(manifest, key=old, code=code)))
    os.replace(path, path.parent / old)
    return old


def earlier_run_record(store: Path, trained) -> str:
    """A committed run record as the earlier code wrote it (its SHA-256 without the provenance)."""
    config = json.loads(json.dumps(trained.config.to_dict()))
    old = migrate.old_run_key(config)
    content = dict(key=old, code_version=migrate.OLD_CODE_VERSION, config=config, summary=trained.summary,
                   history=trained.history.to_dict(orient="split", index=False))
    path = store / "full" / results.RUNS / f"{old}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(content, provenance=dict(trained="2026-01-01T00:00:00Z", machine={"cores": 2}),
                                    sha256=results._digest(content))))
    return old


def earlier_chapter_record(store: Path, chapter: str, run_keys: list[str]) -> Path:
    content = dict(chapter=chapter, scale="full", claims=[], frames={}, runs=sorted(run_keys), overrides={})
    path = store / "full" / results.CHAPTERS / f"{chapter}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(content, provenance=dict(recorded="2026-01-01T00:00:00Z", seconds=1.0,
                                                             machine={"cores": 2}), sha256=results._digest(content))))
    return path


@pytest.fixture
def earlier(tmp_path, monkeypatch):
    """A run cache and a committed store written under the earlier keys: two finished runs (one with dropout), one
    stale run, an interrupted run's checkpoint that names no configuration, a MASC-decoding entry of the first run,
    another result-store entry; in the store the first run's record, a decoding of it and a chapter record."""
    cache, store = tmp_path / "cache", tmp_path / "results"
    monkeypatch.setenv("LIB_CACHE_DIR", str(cache))
    monkeypatch.setenv("LIB_RESULTS_DIR", str(store))
    monkeypatch.delenv("LIB_DATA_DIR", raising=False)
    finished = runs.run(CONFIG, progress=False)
    runs.run(DROPOUT, progress=False)
    runs.run(replace(CONFIG, seed=2), progress=False)
    keys = {"finished": as_earlier_run(cache, CONFIG), "dropout": as_earlier_run(cache, DROPOUT)}
    stale = cache / runs.run_key(replace(CONFIG, seed=2))
    manifest = json.loads((stale / MANIFEST).read_text())
    (stale / MANIFEST).write_text(json.dumps(dict(manifest, code_version="0123456789abcdef")))  # another version
    keys["stale"] = stale.name

    real_save = train_module._save_checkpoint

    def save_then_stop(path, *args, **kwargs):
        real_save(path, *args, **kwargs)
        if torch.load(path, weights_only=False)["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_save_checkpoint", save_then_stop)
    checkpoint = cache / ".checkpoints" / f"{runs.run_key(INTERRUPTED)}.pt"
    with pytest.raises(KeyboardInterrupt):
        train(INTERRUPTED, checkpoint=checkpoint, checkpoint_every_s=0, progress=False)
    monkeypatch.setattr(train_module, "_save_checkpoint", real_save)
    state = torch.load(checkpoint, weights_only=False)
    del state["config"]  # the earlier code's checkpoints do not name their run
    for row in state["rows"]:
        row["seconds"] = SENTINEL
    keys["checkpoint"] = migrate.old_run_key(json.loads(json.dumps(INTERRUPTED.to_dict())))
    torch.save(state, checkpoint.with_name(f"{keys['checkpoint']}.pt"))
    checkpoint.unlink()

    decode_settings = dict(run=keys["finished"], subspaces=["corrupted", "true"], variances=[0.99], random_init=False)
    keys["decode"] = earlier_store_entry(cache, "decode", DECODE_SOURCES, decode_settings)
    keys["demo"] = earlier_store_entry(cache, "demo", ("cache.py",), {"n": 5})
    keys["recorded-decode"] = earlier_store_entry(store / "full", "decode", DECODE_SOURCES, decode_settings)
    keys["record"] = earlier_run_record(store, finished)
    keys["chapter"] = earlier_chapter_record(store, "demo-chapter", [keys["record"]])
    return cache, store, keys, finished


def test_the_migration_re_keys_without_retraining_and_resumes_the_interrupted_run(earlier, monkeypatch):
    cache, store, keys, finished = earlier
    assert not runs.is_cached(CONFIG)  # under the earlier keys nothing is found
    before = sorted(str(p.relative_to(cache.parent)) for p in cache.parent.rglob("*"))

    dry = migrate.migrate(store, [cache], configs=[INTERRUPTED], dry_run=True)
    assert sorted(str(p.relative_to(cache.parent)) for p in cache.parent.rglob("*")) == before  # nothing changed
    report = migrate.migrate(store, [cache], configs=[INTERRUPTED])
    assert [m[1] for m in report.moved] == [m[1] for m in dry.moved]
    moved = {old: new for _, old, new in report.moved}
    assert set(moved) >= {keys["finished"], keys["checkpoint"], keys["decode"], keys["demo"], keys["record"],
                          keys["recorded-decode"], "demo-chapter"}
    assert [key for _, key, _ in report.dropout] == [keys["dropout"]]  # its result changes: not migrated
    assert keys["stale"] in [key for _, key, _ in report.left]
    assert (cache / keys["dropout"]).is_dir() and (cache / keys["stale"]).is_dir()  # left where they were

    monkeypatch.setattr(runs, "train", lambda *a, **k: pytest.fail("a migrated run was trained again"))
    assert moved[keys["finished"]] == runs.run_key(CONFIG)
    assert runs.run(CONFIG).summary == finished.summary  # from the cache, under its new key
    monkeypatch.undo()
    monkeypatch.setenv("LIB_CACHE_DIR", str(cache))
    monkeypatch.setenv("LIB_RESULTS_DIR", str(store))
    resumed = runs.run(INTERRUPTED, progress=False)  # resumes from the migrated checkpoint
    assert resumed.history.seconds.iloc[1] == SENTINEL and resumed.history.epoch.tolist() == [1, 2, 3, 4]
    assert not (cache / ".checkpoints" / f"{runs.run_key(INTERRUPTED)}.pt").exists()

    new_decode = dict(run=runs.run_key(CONFIG), subspaces=["corrupted", "true"], variances=[0.99], random_init=False)
    decoding = Store("decode", DECODE_SOURCES)
    assert decoding.contains(new_decode) and decoding.recorded(new_decode) is not None
    assert Store("demo", ("cache.py",)).contains({"n": 5})
    record = results.chapter_record("demo-chapter", "full")
    assert list(record.runs) == [runs.run_key(CONFIG)]
    assert results.load_run(CONFIG).summary == finished.summary

    again = migrate.migrate(store, [cache], configs=[INTERRUPTED])
    assert again.moved == [] and len(again.current) >= 6  # idempotent


def test_a_run_in_training_is_not_moved_under_it(earlier):
    cache, store, keys, _ = earlier
    from lib.cache import held_locks

    with held_locks([keys["finished"]], lambda _: ""):  # as a process training it would (flock: per open file)
        report = migrate.migrate(store, [cache])
    assert keys["finished"] in [key for _, key, _ in report.left] and (cache / keys["finished"]).is_dir()
    assert "holds its lock" in " ".join(report.lines())


def test_the_command_line_says_what_it_would_do(earlier, capsys):
    cache, store, keys, _ = earlier
    assert cli.main(["runs", "migrate", "--dry-run", "--cache", str(cache), "--results", str(store),
                     "--config", json.dumps(INTERRUPTED.to_dict())]) == 0
    out = capsys.readouterr().out
    assert "Dry run" in out and "would re-key checkpoint" in out and keys["checkpoint"] in out
    assert "not migrated (dropout" in out and keys["dropout"] in out
    assert (cache / keys["finished"]).is_dir()  # a dry run
