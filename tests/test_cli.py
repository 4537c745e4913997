"""`python -m lib`: help for every subcommand, one chapter run with an override, the run cache commands."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lib import settings
from lib.book.cli import main

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, env_cache=None) -> subprocess.CompletedProcess:
    env = None
    if env_cache is not None:
        import os
        env = {**os.environ, "LIB_CACHE_DIR": str(env_cache)}
    return subprocess.run([sys.executable, "-m", "lib", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("command", [[], ["run"], ["book"], ["runs"]])
def test_help_explains_each_subcommand(command):
    result = cli(*command, "--help")
    assert result.returncode == 0 and "usage: python -m lib" in result.stdout
    if command == ["run"]:
        assert "--scale" in result.stdout and "NAME VALUE" in result.stdout and "zhang-randomization" in result.stdout


def test_a_misspelt_parameter_is_a_clean_error(capsys):
    assert main(["run", "zhang-randomization", "--scale", "smoke", "-p", "max_epoch", "3"]) == 2
    assert "max_epoch" in capsys.readouterr().err


def test_run_one_chapter_with_an_override(tmp_path):
    out = tmp_path / "zhang.ipynb"
    result = cli("run", "zhang-randomization", "--scale", "smoke", "-p", "max_epochs", "1", "-o", str(out),
                 env_cache=tmp_path / "runs")
    assert result.returncode == 0, result.stderr[-2000:]
    nb = nbformat.read(out, as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    configs = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/config.json")]
    assert configs and {c["max_epochs"] for c in configs} == {1}
    listed = cli("runs", "list", env_cache=tmp_path / "runs")
    assert listed.returncode == 0 and f"{len(configs)} runs in" in listed.stdout
    cleared = cli("runs", "clear", "--yes", env_cache=tmp_path / "runs")
    assert cleared.returncode == 0 and not (tmp_path / "runs").exists()
    assert "No runs cached" in cli("runs", "list", env_cache=tmp_path / "runs").stdout


# --- `runs clear`: only a cache lib made, only when asked, and it says what it deleted ---------------------------

def _make_cache(folder: Path) -> list[Path]:
    """A real cache at ``folder``: one entry of lib's result store (lib.cache.Store), as lib writes it."""
    import numpy as np

    from lib.cache import Store

    with settings.override(LIB_CACHE_DIR=folder):
        Store("demo", sources=("cache.py",)).fetch({"n": 1}, lambda: {"x": np.arange(3)})
    return sorted(p for p in folder.rglob("*") if p.is_file())


@contextlib.contextmanager
def read_only(folder: Path):
    """Make every folder under ``folder`` refuse deletions for a block: ``chmod 555`` for a user, the immutable
    attribute (``chattr +i``) for root, whom permissions do not stop."""
    folders = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", *map(str, folders)], check=True)
    else:
        for path in folders:
            path.chmod(0o555)
    try:
        yield
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", *map(str, folders)], check=True)
        else:
            for path in folders:
                path.chmod(0o755)


def test_runs_clear_refuses_a_folder_that_is_not_a_cache_lib_made(tmp_path):
    """LIB_CACHE_DIR pointed at a folder of one's own: `runs clear -y` emptied it (a thesis.tex lost)."""
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "thesis.tex").write_text("\\documentclass{article}")
    result = cli("runs", "clear", "-y", env_cache=folder)
    assert result.returncode == 2 and "refusing to delete" in result.stderr and "not a cache lib made" in result.stderr
    assert (folder / "thesis.tex").read_text() == "\\documentclass{article}"


def test_a_cache_lib_creates_is_marked_and_a_folder_it_finds_full_is_not(tmp_path):
    from lib.cache import CACHE_MARKER

    files = _make_cache(tmp_path / "new")
    assert tmp_path / "new" / CACHE_MARKER in files and len(files) > 2
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    _make_cache(tmp_path / "mine")  # lib writes into it, but did not make it
    assert not (tmp_path / "mine" / CACHE_MARKER).exists()
    (tmp_path / "fingerprinted" / ".data-fingerprints").mkdir(parents=True)  # lib.data's record came first
    _make_cache(tmp_path / "fingerprinted")
    assert (tmp_path / "fingerprinted" / CACHE_MARKER).is_file()


def test_runs_clear_with_no_terminal_refuses_without_yes_and_reports_what_it_deleted(tmp_path):
    """With no terminal `runs clear` acted as if -y were given."""
    cache = tmp_path / "runs"
    files = _make_cache(cache)
    refused = subprocess.run([sys.executable, "-m", "lib", "runs", "clear"], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, env={**os.environ, "LIB_CACHE_DIR": str(cache)}, timeout=120)
    assert refused.returncode == 2 and "without -y" in refused.stderr and "not a terminal" in refused.stderr
    assert sorted(p for p in cache.rglob("*") if p.is_file()) == files  # nothing deleted
    cleared = cli("runs", "clear", "-y", env_cache=cache)
    assert cleared.returncode == 0 and f"Deleted {len(files)} files" in cleared.stdout and not cache.exists()


def test_runs_clear_asks_on_a_terminal(tmp_path):
    """On a real terminal (a pseudo-terminal) it asks, and only "y" deletes."""
    import pty

    cache = tmp_path / "runs"
    files = _make_cache(cache)

    def clear(answer: str) -> tuple[int, str]:
        leader, follower = pty.openpty()
        process = subprocess.Popen([sys.executable, "-m", "lib", "runs", "clear"], stdin=follower,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, "LIB_CACHE_DIR": str(cache)})
        os.close(follower)
        os.write(leader, answer.encode() + b"\n")
        output, _ = process.communicate(timeout=120)
        os.close(leader)
        return process.returncode, output

    status, output = clear("n")
    assert status == 1 and f"Delete the cache {cache} ({len(files)} files" in output and "Nothing deleted" in output
    assert sorted(p for p in cache.rglob("*") if p.is_file()) == files
    status, output = clear("y")
    assert status == 0 and f"Deleted {len(files)} files" in output and not cache.exists()


def test_runs_clear_on_a_read_only_cache_says_it_deleted_nothing(tmp_path):
    """On a read-only cache `runs clear` printed "Deleted ..." and exited 0 having deleted nothing."""
    cache = tmp_path / "runs"
    files = _make_cache(cache)
    with read_only(cache):
        result = cli("runs", "clear", "-y", env_cache=cache)
    assert result.returncode == 1 and "Deleted nothing in" in result.stderr and "could not be deleted" in result.stderr
    assert "Deleted nothing" in result.stderr and sorted(p for p in cache.rglob("*") if p.is_file()) == files
    assert cli("runs", "clear", "-y", env_cache=cache).returncode == 0 and not cache.exists()  # the marker stayed


# --- `run -o`: never over a source of the book ----------------------------------------------------------------

@pytest.mark.parametrize("target", ["book/zhang-randomization.md", "lib/params.py", "README.md"])
def test_run_refuses_to_write_its_notebook_over_a_source(target, capsys, monkeypatch):
    """`-o book/zhang-randomization.md` overwrote the chapter's source and exited 0. (Were it let through here, the
    execution is replaced by a failure, so that the test never overwrites the source.)"""
    from lib.book import cli as cli_module

    def execute(*args, **kwargs):
        raise AssertionError(f"executed the chapter into {target}")

    monkeypatch.setattr(cli_module.book, "execute_chapter", execute)
    source = REPO / target
    before = source.read_bytes()
    assert main(["run", "zhang-randomization", "--scale", "smoke", "-o", str(source)]) == 2
    assert f"-o {source}" in capsys.readouterr().err and source.read_bytes() == before


def test_run_refuses_a_tracked_notebook(tmp_path, monkeypatch):
    """A .ipynb that git tracks is a source too (check_output asks git, in a repository of the test's own)."""
    from lib.book import cli as cli_module

    repo = tmp_path / "repo"
    (repo / "book").mkdir(parents=True)
    (repo / "book" / "kept.ipynb").write_text("{}")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "book/kept.ipynb"], check=True)
    monkeypatch.setattr(cli_module.book, "REPO_ROOT", repo)
    with pytest.raises(ValueError, match="git tracks it"):
        cli_module.check_output(repo / "book" / "kept.ipynb")
    cli_module.check_output(repo / "book" / "new.ipynb")  # not tracked: may be written
