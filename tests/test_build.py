"""The book build publishes a chapter only after it executed completely, and two builds in one checkout do not collide.

The chapter here is a tiny notebook of four cells (written by the test, executed by the build's own
:func:`lib.book.build.execute_chapter`, with papermill and a real kernel): each execution appends ``start`` and, if it
gets through, ``end`` to a log named by ``$TINY_LOG``; ``$TINY_SLEEP`` holds its third cell, ``$TINY_FAIL`` makes that
cell raise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from lib.book.build import execute_chapter

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # every test starts notebook kernels

TINY = '''---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A tiny chapter

```{code-cell} ipython3
:tags: [parameters]

scale = "smoke"
overrides = {}
```

```{code-cell} ipython3
import os, pathlib, time

log = pathlib.Path(os.environ["TINY_LOG"])
with log.open("a") as f:
    f.write(f"start {os.getpid()}\\n")
```

```{code-cell} ipython3
time.sleep(float(os.environ.get("TINY_SLEEP", "0")))
if os.environ.get("TINY_FAIL"):
    raise RuntimeError("the tiny chapter fails on purpose")
```

```{code-cell} ipython3
with log.open("a") as f:
    f.write("end\\n")
```
'''


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """The tiny chapter's folder, its log, and where the build publishes it."""
    book = tmp_path / "book"
    book.mkdir()
    (book / "tiny.md").write_text(TINY)
    log = tmp_path / "log.txt"
    monkeypatch.setenv("TINY_LOG", str(log))
    monkeypatch.delenv("TINY_FAIL", raising=False)
    monkeypatch.delenv("TINY_SLEEP", raising=False)
    return book, log, tmp_path / "site" / "book" / "tiny.ipynb"


def lines(log: Path) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines()] if log.is_file() else []


def complete(notebook: Path) -> bool:
    """Every code cell of the executed notebook ran, and none raised."""
    cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    return all(c.execution_count for c in cells) and not any(
        o.output_type == "error" for c in cells for o in c.get("outputs", []))


def in_subprocess(book: Path, output: Path, reuse: bool, **env) -> subprocess.Popen:
    """A separate process that executes the tiny chapter as a build does (its own process group, as a terminal's)."""
    code = ("import sys; from pathlib import Path; from lib.book.build import execute_chapter; "
            f"s = execute_chapter('tiny', 'smoke', Path({str(output)!r}), book_dir=Path({str(book)!r}), "
            f"reuse={reuse}); print('seconds', s)")
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, **env, "PYTHONPATH": str(REPO)})


def test_a_chapter_interrupted_mid_execution_is_executed_again(tiny):
    """Ctrl-C while a `--rerun` executed a chapter left the old stamp beside a notebook with 4 of 29 cells executed,
    and the next build published it."""
    book, log, output = tiny
    assert execute_chapter("tiny", "smoke", output, book_dir=book) > 0
    assert lines(log) == ["start", "end"] and complete(output) and output.with_suffix(".stamp").is_file()
    assert execute_chapter("tiny", "smoke", output, book_dir=book) == 0  # up to date: reused

    rerun = in_subprocess(book, output, reuse=False, TINY_SLEEP="60")
    deadline = time.monotonic() + 60
    while lines(log).count("start") < 2:  # the rerun's kernel is in the chapter's sleeping cell
        assert rerun.poll() is None and time.monotonic() < deadline, rerun.communicate()
        time.sleep(0.2)
    time.sleep(1)
    os.killpg(rerun.pid, signal.SIGINT)  # Ctrl-C at a terminal: to the process group
    _, stderr = rerun.communicate(timeout=60)
    assert rerun.returncode != 0, stderr
    assert lines(log) == ["start", "end", "start"]  # interrupted in the middle
    assert not output.with_suffix(".stamp").exists()  # so not a finished execution
    assert complete(output)  # the published notebook is still the last complete one

    assert execute_chapter("tiny", "smoke", output, book_dir=book) > 0  # executed again, not reused
    assert lines(log) == ["start", "end", "start", "start", "end"] and complete(output)
    assert not [p.name for p in output.parent.iterdir() if ".source." in p.name or ".executing." in p.name]


def test_a_chapter_that_fails_is_not_published_and_is_executed_again(tiny, monkeypatch):
    book, log, output = tiny
    execute_chapter("tiny", "smoke", output, book_dir=book)
    published = output.read_bytes()
    monkeypatch.setenv("TINY_FAIL", "1")
    with pytest.raises(Exception, match="fails on purpose"):
        execute_chapter("tiny", "smoke", output, book_dir=book, reuse=False, failed=output.parent / "failed.ipynb")
    assert output.read_bytes() == published and not output.with_suffix(".stamp").exists()
    failed = nbformat.read(output.parent / "failed.ipynb", as_version=4)  # the failed execution, for its error
    assert any(o.output_type == "error" for c in failed.cells for o in c.get("outputs", []))
    monkeypatch.delenv("TINY_FAIL")
    assert execute_chapter("tiny", "smoke", output, book_dir=book) > 0 and complete(output)
    assert lines(log) == ["start", "end", "start", "start", "end"]


def test_two_builds_at_once_execute_a_chapter_once_and_do_not_collide(tiny):
    """Two `python -m lib book` in one checkout shared `.<chapter>.source.ipynb`: one died, and it overwrote the
    other's stamped notebook. Now the second waits for the first's execution and reuses it."""
    book, log, output = tiny
    builds = [in_subprocess(book, output, reuse=True, TINY_SLEEP="3") for _ in range(2)]
    results = [build.communicate(timeout=120) for build in builds]
    assert [build.returncode for build in builds] == [0, 0], [stderr[-2000:] for _, stderr in results]
    assert lines(log) == ["start", "end"]  # executed once
    seconds = sorted(float(stdout.split()[-1]) for stdout, _ in results)
    assert seconds[0] == 0 and seconds[1] > 0  # the other reused it
    assert complete(output)
    assert execute_chapter("tiny", "smoke", output, book_dir=book) == 0  # the stamp matches the notebook
    leftovers = sorted(p.name for p in output.parent.iterdir())
    assert leftovers == [".tiny.ipynb.lock", "tiny.ipynb", "tiny.stamp"], leftovers


def test_two_reruns_at_once_both_finish(tiny):
    """With `--rerun` both builds execute the chapter, one after the other, each in files of its own."""
    book, log, output = tiny
    builds = [in_subprocess(book, output, reuse=False, TINY_SLEEP="2") for _ in range(2)]
    results = [build.communicate(timeout=120) for build in builds]
    assert [build.returncode for build in builds] == [0, 0], [stderr[-2000:] for _, stderr in results]
    assert lines(log) == ["start", "end", "start", "end"] and complete(output)
    assert json.loads(output.read_text())["cells"]  # a whole notebook
