"""`python -m lib`: help for every subcommand, one chapter run with an override, the run cache commands."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from lib.book.cli import main


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
