"""Working in Jupyter: ``make lab`` starts JupyterLab with the repository's settings, under which a chapter's ``.md``
is served as a notebook with its cells and opens in jupytext's notebook by default; the chapter's opening box renders
in Jupyter as HTML (no raw MyST) while the book renders its MyST form."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from lib.book.opening import Opening, citations, inline, rerun_command

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "zhang-randomization"
MYST = re.compile(r"\{(cite|doc|ref|numref)[:\w]*\}`|```|:class:")


def lab_command(options: list[str]) -> str:
    """The command ``make lab LAB_ARGS=<options>`` runs (its recipe as ``make -n`` prints it, without the ``env``
    step that creates the environment)."""
    printed = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(REPO), "lab",
                              "LAB_ARGS=" + " ".join(options)], capture_output=True, text=True, check=True).stdout
    [command] = [line for line in printed.splitlines() if "jupyter lab" in line]
    return command


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab started as ``make lab`` starts it, on a free loopback port with a token; its base URL and token."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = secrets.token_hex(16)
    options = ["--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={REPO}"]
    if os.geteuid() == 0:
        options.append("--allow-root")
    command = lab_command(options)
    log = tmp_path_factory.mktemp("lab") / "lab.log"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(log.parent / "runtime")}
    with open(log, "w") as out:
        server = subprocess.Popen(command, shell=True, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                get(f"{base}/api/status?token={token}")
                break
            except OSError:
                assert server.poll() is None, f"JupyterLab exited: {log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"JupyterLab did not answer in 90 s: {log.read_text()[-3000:]}"
                time.sleep(0.5)
        yield base, token
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=20)


@pytest.mark.slow
def test_lab_serves_a_chapter_as_a_notebook_with_its_cells(lab):
    base, token = lab
    model = get(f"{base}/api/contents/book/{CHAPTER}.md?type=notebook&content=1&token={token}")
    assert model["type"] == "notebook" and model["format"] == "json"
    served = nbformat.from_dict(model["content"])
    source = jupytext.read(REPO / "book" / f"{CHAPTER}.md")
    assert [(c.cell_type, c.source) for c in served.cells] == [(c.cell_type, c.source) for c in source.cells]
    assert any("parameters" in c.metadata.get("tags", []) for c in served.cells if c.cell_type == "code")


@pytest.mark.slow
def test_lab_opens_markdown_in_jupytexts_notebook_by_default(lab):
    """The repository's setting makes "Jupytext Notebook" the default viewer of .md files, and that viewer is the one
    the installed jupytext extension registers (its name appears in the extension's code)."""
    base, token = lab
    settings = get(f"{base}/lab/api/settings/@jupyterlab/docmanager-extension:plugin?token={token}")
    viewers = settings["settings"]["defaultViewers"]
    assert viewers["markdown"] == viewers["myst"] == "Jupytext Notebook"
    with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=30) as response:
        page = response.read().decode()
    assert "jupyterlab-jupytext" in page  # the extension is loaded by this JupyterLab
    labextension = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "jupyterlab-jupytext" / "static"
    assert any('"Jupytext Notebook"' in path.read_text(errors="ignore") for path in labextension.glob("*.js"))


class Text(HTMLParser):
    """The text of an HTML fragment, and whether its tags balance."""

    def __init__(self):
        super().__init__()
        self.text, self.open = [], []

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open.pop() == tag, f"unbalanced </{tag}>"

    def handle_data(self, data):
        self.text.append(data)


def test_opening_box_in_html_holds_the_whole_box_without_myst():
    opening = Opening(CHAPTER, "smoke", {"max_epochs": 2},
                      "Figure 1 of *Understanding deep learning* {cite}`zhang2017rethinking,zhang2021rethinking`, "
                      "beside {cite:t}`theunissen2019insights`")
    parser = Text()
    parser.feed(opening.html("12 s to execute this page on `CPU`."))
    assert not parser.open
    text = "".join(parser.text)
    assert not MYST.search(text) and "{" not in text.replace("{max_epochs: 2}", "")
    zhang, theunissen = citations()["zhang2017rethinking"], citations()["theunissen2019insights"]
    assert f"({zhang[0]} {zhang[1]}; " in text and f"{theunissen[0]} ({theunissen[1]})" in text
    assert "12 s to execute this page on CPU." in text
    assert rerun_command(CHAPTER, "smoke", {"max_epochs": 2}) in text  # the command, unescaped by the parser
    assert 'href="intro.md"' in opening.html("")  # the introduction, as Jupyter opens it beside the chapter
    assert inline("*a* **b** `c`") == "<em>a</em> <strong>b</strong> <code>c</code>"


def test_the_book_renders_the_boxs_myst_and_jupyter_its_html():
    """myst-nb, configured by _config.yml, ranks the box's text/markdown first for the html builder; nbconvert's HTML
    export (the ranking Jupyter and Colab share: HTML before Markdown) picks its text/html."""
    from myst_nb.core.render import get_mime_priority
    from nbconvert.exporters import HTMLExporter

    bundle = ("text/html", "text/markdown", "text/plain")
    config = yaml.safe_load((REPO / "_config.yml").read_text())["sphinx"]["config"]
    book = get_mime_priority("html", [tuple(o) for o in config.get("nb_mime_priority_overrides", [])])
    assert next(m for m in book if m in bundle) == "text/markdown"
    jupyter = HTMLExporter().default_config["NbConvertBase"]["display_data_priority"]
    assert next(m for m in jupyter if m in bundle) == "text/html"


def test_executed_box_carries_both_forms_completed(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from lib.book.opening import open_chapter\n"
                                  f"opening = open_chapter({CHAPTER!r}, 'smoke', reproduces='Figure 1 of "
                                  "{cite}`zhang2017rethinking`')"),
        nbformat.v4.new_code_cell("opening.close();"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    [box] = [o for o in nb.cells[0].outputs if o.output_type == "display_data"]
    assert set(box.data) == {"text/html", "text/markdown", "text/plain"}
    for form in box.data.values():
        assert "to execute this page on" in form and "measured when" not in form
    assert box.data["text/markdown"].startswith("````{admonition}") and not MYST.search(box.data["text/html"])
