"""Chapter openings: the re-run command, the compute time filled in by the executed notebook itself, and the
install cell that leads every executed notebook."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

from lib.book import build as book
from lib.book.opening import duration, open_chapter, rerun_command, training_time

REPO = Path(__file__).resolve().parents[1]


def test_duration_reads_as_a_person_would_write_it():
    assert [duration(s) for s in (4.4, 59.6, 185, 7620)] == ["4 s", "1 min 00 s", "3 min 05 s", "2 h 07 min"]


def test_rerun_command_is_the_readmes_with_the_builds_parameters():
    plain = rerun_command("zhang-randomization", "cpu")
    assert plain == ("jupytext --to ipynb -o - book/zhang-randomization.md \\\n"
                     "  | papermill - zhang-randomization-cpu.ipynb --cwd book -p scale cpu")
    readme_form = rerun_command("zhang-randomization", "smoke").replace("zhang-randomization-smoke", "zhang-smoke")
    assert readme_form in (REPO / "README.md").read_text()
    words = shlex.split(rerun_command("masc-decoding", "smoke", {"max_epochs": 3, "seeds": [0, 1]}).replace("\\\n", ""))
    assert words[words.index("-y") + 1].startswith("overrides:")
    assert yaml.safe_load(words[words.index("-y") + 1]) == {"overrides": {"max_epochs": 3, "seeds": [0, 1]}}


def test_training_time_counts_each_run_once():
    runs = pd.DataFrame({"key": ["a", "b"], "cached": [True, False], "train_seconds": [10.0, 5.0]})
    assert training_time(runs, runs.iloc[:1]) == (2, 1, 15.0)


def test_unknown_scale_is_refused():
    with pytest.raises(ValueError, match="unknown scale"):
        open_chapter("zhang-randomization", "huge")


def test_box_is_completed_in_the_executed_notebook(tmp_path, monkeypatch):
    """The opening cell's output says 'measured when ...' until close(); the saved notebook holds the final box."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from lib.book.opening import open_chapter\n"
                                  "opening = open_chapter('zhang-randomization', 'smoke', {'max_epochs': 2}, "
                                  "reproduces='Figure 1 of {cite}`zhang2017rethinking`')"),
        nbformat.v4.new_code_cell("import pandas as pd\n"
                                  "runs = pd.DataFrame({'key': ['a', 'b'], 'cached': [True, False], 'train_seconds': [70.0, 5.0]})\n"
                                  "opening.close(runs);"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    [box] = [o for o in nb.cells[0].outputs if o.output_type == "display_data"]
    text = box.data["text/markdown"]
    assert "measured when" not in text and "to execute this page on" in text
    assert "2 training runs took 1 min 15 s of training in all (1 trained in this execution, 1 reused" in text
    assert "`smoke`" in text and "`params/zhang-randomization.yaml` with `params/smoke/zhang-randomization.yaml`" in text and "`max_epochs = 2`" in text
    assert "Figure 1 of {cite}`zhang2017rethinking`" in text and text.startswith("````{admonition}")
    assert rerun_command("zhang-randomization", "smoke", {"max_epochs": 2}) in text
    assert not nb.cells[1].outputs  # close() writes into the opening cell, nothing of its own


def run_install_cell(monkeypatch, tmp_path, importable: bool, checkout: bool) -> list:
    """Execute the install cell as IPython would, recording the magics it runs instead of running them."""
    import importlib.util

    magics = []

    class Shell:
        def run_line_magic(self, name, line):
            magics.append((name, line))

    if checkout:
        (tmp_path / "lib" / "book").mkdir(parents=True)
        (tmp_path / "lib" / "book" / "build.py").write_text("")
    (tmp_path / "book").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "book")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if importable else None)
    code = TransformerManager().transform_cell(book.install_cell("https://example.org/owner/repo"))
    exec(code, {"get_ipython": Shell})
    return magics, sys.path


def test_install_cell_does_nothing_where_lib_imports(monkeypatch, tmp_path):
    magics, path = run_install_cell(monkeypatch, tmp_path, importable=True, checkout=False)
    assert magics == [] and str(tmp_path) not in path


def test_install_cell_uses_a_checkout_or_else_installs_from_the_repository(monkeypatch, tmp_path):
    magics, path = run_install_cell(monkeypatch, tmp_path, importable=False, checkout=True)
    assert magics == [] and path[0] == str(tmp_path)
    magics, _ = run_install_cell(monkeypatch, tmp_path / "elsewhere", importable=False, checkout=False)
    assert magics == [("pip", 'install --quiet "lib @ git+https://example.org/owner/repo"')]


def test_install_cell_names_the_configured_repository():
    assert book.repository_url().startswith("https://") and book.repository_url() in book.install_cell()
