"""The result store (lib.cache): atomic entries with a manifest, code in the key, quarantine of damaged entries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.cache import DamagedResultError, Store

REPO = Path(__file__).resolve().parents[1]


def test_round_trip_of_every_kind_of_value(isolated_cache):
    store = Store("demo", sources=("cache.py",))
    frame = pd.DataFrame({"layer": ["a", "b"], "acc": [0.1 + 0.2, 1 / 3]})
    calls = []

    def compute():
        calls.append(1)
        return {"summary": {"n": 3, "x": 0.1 + 0.2}, "scores": np.arange(6, dtype=np.float32).reshape(2, 3),
                "table": frame}

    first, cached_first = store.fetch({"n": 3}, compute)
    second, cached_second = store.fetch({"n": 3}, compute)
    assert (cached_first, cached_second, len(calls)) == (False, True, 1)
    assert second["summary"] == {"n": 3, "x": 0.1 + 0.2}  # floats bit for bit
    assert second["scores"].dtype == np.float32 and np.array_equal(second["scores"], first["scores"])
    pd.testing.assert_frame_equal(second["table"], frame)
    entry = store.path({"n": 3})
    manifest = json.loads((entry / "manifest.json").read_text())
    assert set(manifest["files"]) == {"summary.json", "scores.npy", "table.frame.json"}
    assert not list(entry.parent.glob(".tmp-*"))
    _, cached_other = store.fetch({"n": 4}, compute)
    assert not cached_other and len(calls) == 2


def test_damaged_entry_is_refused_then_quarantined_and_recomputed(isolated_cache):
    store = Store("demo", sources=("cache.py",))
    store.fetch({"n": 1}, lambda: {"scores": np.ones(100)})
    entry = store.path({"n": 1})
    data = (entry / "scores.npy").read_bytes()
    (entry / "scores.npy").write_bytes(data[:-8])  # truncated
    with pytest.raises(DamagedResultError, match="truncated"):
        store.load({"n": 1})
    with pytest.warns(UserWarning, match="damaged"):
        result, cached = store.fetch({"n": 1}, lambda: {"scores": np.zeros(100)})
    assert not cached and result["scores"].sum() == 0
    assert list((isolated_cache / ".damaged").iterdir())


def test_an_unfinished_write_is_not_a_result(isolated_cache):
    store = Store("demo", sources=("cache.py",))
    store.fetch({"n": 2}, lambda: {"summary": {"a": 1}})
    (store.path({"n": 2}) / "manifest.json").unlink()  # what a write killed before its manifest leaves
    assert not store.contains({"n": 2})
    with pytest.warns(UserWarning):
        _, cached = store.fetch({"n": 2}, lambda: {"summary": {"a": 2}})
    assert not cached


SCRIPT = """
import sys, torch
from lib.studies.zhang2017 import kernels
from lib.data import load_dataset
d = load_dataset("mnist")
x = d.x_train[:200].reshape(200, -1).float() / 255
y = d.y_train[:200, None]
xt = d.x_test[:20].reshape(20, -1).float() / 255
fit = kernels.cached_fit("edit-test", x, y, xt, 10, gamma=0.02, solver="cholesky")
print("REUSED" if fit["reused"] else "COMPUTED")
"""
@pytest.mark.slow
def test_editing_the_solver_source_recomputes(tmp_path):
    """A copy of lib whose solver is edited between two calls: a comment keeps the result, a code edit recomputes."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "lib", copy / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(copy), "LIB_CACHE_DIR": str(tmp_path / "cache"),
           "LIB_DATA_DIR": str(REPO.parent / "shared" / "data")}

    def call() -> str:
        out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=copy, env=env, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.strip().splitlines()[-1]

    assert call() == "COMPUTED"
    assert call() == "REUSED"
    source = copy / "lib" / "studies" / "zhang2017" / "kernels.py"
    text = source.read_text()
    marker = "    def fit(self"
    assert marker in text
    source.write_text(text.replace(marker, "    # a comment about the solver: its results stay\n" + marker, 1))
    assert call() == "REUSED"
    marker = "        n, d = X.shape\n"
    assert marker in text
    source.write_text(source.read_text().replace(marker, marker + "        n = int(n)  # an edit of the solver\n", 1))
    assert call() == "COMPUTED"
    assert call() == "REUSED"


def test_moving_a_module_unchanged_keeps_its_results_and_an_ambiguous_name_is_refused(tmp_path):
    from lib.cache import source_digest

    package = tmp_path / "pkg"
    (package / "old").mkdir(parents=True)
    (package / "old" / "solver.py").write_text("def solve(): return 1\n")
    (package / "other").mkdir()
    (package / "other" / "twice.py").write_text("x = 1\n")
    (package / "old" / "twice.py").write_text("x = 2\n")
    before = source_digest(["old/solver.py"], package)
    assert source_digest(["solver.py"], package) == before  # a file name found once in the package
    (package / "new").mkdir()
    (package / "old" / "solver.py").rename(package / "new" / "solver.py")
    assert source_digest(["new/solver.py"], package) == before  # moved, not changed: the same key
    (package / "new" / "solver.py").write_text("def solve(): return 2\n")
    assert source_digest(["new/solver.py"], package) != before  # changed: a new key
    with pytest.raises(FileNotFoundError, match="2 files have that name"):
        source_digest(["twice.py"], package)


def test_a_docstring_or_comment_edit_keeps_the_key_and_a_code_edit_changes_it(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    source = package / "solver.py"
    source.write_text('def solve(x):\n    """Solve."""\n    return x + 1\n')
    store = Store("demo", sources=("solver.py",), package_dir=package)
    settings = {"n": 5}
    before = store.key(settings)
    source.write_text('def solve(x):\n    """Solve it, in other words."""\n\n    # one more\n    return x + 1  # +1\n')
    assert store.key(settings) == before
    source.write_text('def solve(x):\n    """Solve."""\n    return x + 2\n')
    assert store.key(settings) != before
