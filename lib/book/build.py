"""Build the book: execute each chapter with papermill at one scale, then render the executed notebooks.

Chapters are MyST-markdown notebooks (``book/*.md``, opened as notebooks by jupytext). For a
build, each is converted to ``.ipynb``, executed by papermill with ``scale`` (and optional
``overrides``) injected into its ``parameters`` cell, and written into a staging folder next to
the book's ``_config.yml`` and ``_toc.yml``; jupyter-book (< 2) then renders the staged
notebooks with execution turned off. Altair's vega libraries are vendored into ``_static`` so
the site draws its charts with no network.

Each executed notebook starts with :func:`install_cell` (hidden in the book), so that a downloaded
notebook opened on Colab installs ``lib`` from the repository named in ``_config.yml``. Every
chapter opens with a box (:mod:`lib.book.opening`) stating its scale and the compute time of the
execution that produced it.

An executed chapter is reused when its source, its parameters file, the scale and the library
source are unchanged (a stamp beside it records their hash); training runs are reused through
the run cache regardless (:mod:`lib.runs`). Chapters save their paper-vs-ours claims
(:mod:`lib.book.claims`) into the build folder; the intro and the scorecard, which summarize them,
run last, every time, and the build writes ``scorecard.json`` beside the site.

Command line: ``python -m lib.book [--scale cpu] [--build-dir _build]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from lib import settings
from lib.params import SCALES, has_params, load_params, params_files

REPO_ROOT = settings.REPO_ROOT  # the checkout, or the copy of its book files an installed wheel ships
BOOK_FILES = ("_config.yml", "_toc.yml")
SUMMARY_PAGES = ("intro", "scorecard")  # pages that summarize the other chapters' results


def chapters(root: Path = REPO_ROOT) -> list[str]:
    """Chapter names (``book/<name>.md``) in table-of-contents order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    names = [toc["root"]]

    def walk(entries: list) -> None:
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return [Path(n).name for n in names]


def is_notebook(chapter: str) -> bool:
    """Whether ``book/<chapter>.md`` is a notebook (a jupytext header naming a kernel) or a plain page."""
    front_matter = (REPO_ROOT / "book" / f"{chapter}.md").read_text().split("\n---", 1)[0]
    return "kernelspec:" in front_matter


def repository_url(root: Path = REPO_ROOT) -> str:
    """The book's repository (``repository.url`` of ``_config.yml``, the one place it is written)."""
    return (yaml.safe_load((root / "_config.yml").read_text()).get("repository") or {}).get("url", "")


def install_cell(url: str | None = None) -> str:
    """Source of the first cell of every executed notebook: where ``lib`` cannot be imported, use the repository
    checkout around the notebook, or else (Colab) install ``lib`` from ``url``. Does nothing where ``lib`` imports,
    as in ``make book`` and papermill runs."""
    url = url if url is not None else repository_url()
    return f"""# Colab or Binder: make this book's library importable (nothing happens where it already is).
import importlib.util, sys
from pathlib import Path

if importlib.util.find_spec("lib") is None:
    if (Path.cwd().parent / "lib" / "book" / "build.py").is_file():  # a checkout of the repository
        sys.path.insert(0, str(Path.cwd().parent))
    else:  # anywhere else: install it from the repository
        %pip install --quiet "lib @ git+{url}"
"""


def _library_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(settings.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _stamp(chapter: str, scale: str, overrides: dict) -> str:
    digest = hashlib.sha256()
    digest.update((REPO_ROOT / "book" / f"{chapter}.md").read_bytes())
    for params in params_files(chapter, scale):  # the base file and the scale's changes
        digest.update(params.read_bytes())
    digest.update(json.dumps([scale, overrides], sort_keys=True).encode())
    from lib import results

    for recorded in results.scales_recorded():  # a page shows what other scales recorded (lib.results)
        path = results.chapter_path(recorded, chapter)
        if path.is_file():
            digest.update(path.read_bytes())
    digest.update(_library_hash().encode())
    digest.update(install_cell().encode())
    return digest.hexdigest()


def _kernel_imports_this_lib():
    """Kernels started inside import this checkout's ``lib``, not another installed copy (e.g. an editable install
    of a different worktree, or a relative ``PYTHONPATH`` that means nothing in ``book/``); ``PYTHONPATH`` is
    restored afterwards."""
    return settings.override(PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))


def build_environment(build_dir: Path):
    """The environment of a build, for the length of the build: the chapters' kernels save their claims into
    ``build_dir/claims`` (``$LIB_CLAIMS_DIR``), where the summary pages and the scorecard read them. The previous
    environment is restored afterwards (:func:`lib.settings.override`), so a build leaves ``os.environ`` as it
    found it."""
    return settings.override(LIB_CLAIMS_DIR=Path(build_dir) / "claims")


def _hide_injected_parameters(notebook: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell``: the chapter's opening box states the scale and overrides."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, notebook)


def execute_chapter(chapter: str, scale: str, output: Path, overrides: dict | None = None,
                    reuse: bool = True, progress: bool | str = False) -> float:
    """Execute ``book/<chapter>.md`` at ``scale`` into the notebook ``output``; returns seconds spent.

    ``progress`` shows papermill's bar over the chapter's cells (with its elapsed time) on standard error; a string
    is the bar's label (the build passes ``"[k/n] chapter"``)."""
    import jupytext
    import nbformat
    import papermill

    overrides = overrides or {}
    if has_params(chapter):  # bad parameters fail here, before a kernel starts
        load_params(chapter, scale, overrides)
    if not is_notebook(chapter):  # a plain page: nothing to execute
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / "book" / f"{chapter}.md", output.with_suffix(".md"))
        return 0.0
    stamp_file = output.with_suffix(".stamp")
    stamp = _stamp(chapter, scale, overrides)
    if reuse and output.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp:
        return 0.0
    started = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    source = output.with_name(f".{chapter}.source.ipynb")
    notebook = jupytext.read(REPO_ROOT / "book" / f"{chapter}.md")
    notebook.cells.insert(0, nbformat.v4.new_code_cell(install_cell(), metadata={"tags": ["remove-cell"]}))
    jupytext.write(notebook, source)
    parameters = {"scale": scale, "overrides": overrides}
    with _kernel_imports_this_lib():
        bar = False
        if progress:
            bar = {"desc": progress if isinstance(progress, str) else chapter, "unit": "cell", "file": sys.stderr,
                   "mininterval": 1.0, "dynamic_ncols": True}
            if not sys.stderr.isatty():  # a log (CI, make > file): one line every 30 s instead of redraws
                bar.update(mininterval=30.0, ncols=100)
        papermill.execute_notebook(str(source), str(output), parameters=parameters, cwd=str(REPO_ROOT / "book"),
                                   kernel_name="python3", progress_bar=bar)
    source.unlink()
    _hide_injected_parameters(output)
    stamp_file.write_text(stamp)
    return time.perf_counter() - started


def vega_versions() -> dict[str, str]:
    """The vega, vega-lite and vega-embed versions altair's HTML asks for, keyed as its ``VEGA_DEBUG`` reads them."""
    import altair as alt
    import pandas as pd

    html = alt.Chart(pd.DataFrame({"x": [0]})).mark_point().encode(x="x")._repr_mimebundle_()
    html = (html[0] if isinstance(html, tuple) else html).get("text/html", "")
    found = dict(re.findall(r'maybeLoadScript\("([\w-]+)", "([^"]+)"\)', html))
    if not found:  # altair's html template changed: fall back to its declared versions
        found = {"vega": alt.VEGA_VERSION.lstrip("v").split(".")[0], "vega-lite": alt.VEGALITE_VERSION.lstrip("v"),
                 "vega-embed": alt.VEGAEMBED_VERSION.lstrip("v").split(".")[0]}
    return {f"{name.replace('-', '')}_version": version for name, version in found.items()}


def write_vega_assets(static: Path) -> list[str]:
    """Write the vendored vega bundle and the ``VEGA_DEBUG`` shim into ``static``; return their file names."""
    import altair as alt
    import vl_convert

    static.mkdir(parents=True, exist_ok=True)
    vegalite = "v" + "_".join(alt.VEGALITE_VERSION.lstrip("v").split(".")[:2])
    try:
        bundle = vl_convert.javascript_bundle(vl_version=vegalite)
    except ValueError:  # this vl-convert does not carry altair's exact vega-lite: use its newest
        bundle = vl_convert.javascript_bundle()
    # Wrapped in a function so the bundle's top-level names cannot clash with the theme's scripts.
    (static / "vega-bundle.js").write_text("(function () {\n" + bundle + "\n})();\n")
    (static / "vega-debug.js").write_text(
        "// altair's chart HTML skips loading a library from a CDN when VEGA_DEBUG names its version.\n"
        f"window.VEGA_DEBUG = {json.dumps(vega_versions())};\n")
    return ["vega-debug.js", "vega-bundle.js"]


def stage(build_dir: Path) -> Path:
    """Copy the book's configuration and static files into ``build_dir/site``."""
    site = build_dir / "site"
    site.mkdir(parents=True, exist_ok=True)
    for name in BOOK_FILES + ("references.bib",):
        if (REPO_ROOT / name).is_file():
            shutil.copy2(REPO_ROOT / name, site / name)
    if (REPO_ROOT / "_static").is_dir():
        shutil.copytree(REPO_ROOT / "_static", site / "_static", dirs_exist_ok=True)
    write_vega_assets(site / "_static")
    return site


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


def build(scale: str = "cpu", build_dir: Path | str = REPO_ROOT / "_build", reuse: bool = True,
          only: list[str] | None = None, log=print, show_progress: bool = True) -> Path:
    """Execute every chapter at ``scale`` and render the site into ``build_dir/html``; returns that folder.

    ``log`` gets a line as each chapter starts (k of n, the build's elapsed time) and ends; ``show_progress``
    shows papermill's bar over the executing chapter's cells."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {SCALES}")
    for chapter in chapters():  # every chapter's parameters are checked before the first one executes
        if has_params(chapter):
            load_params(chapter, scale)
    build_dir = Path(build_dir).resolve()
    site = stage(build_dir)
    timings = {}
    # Summary pages read what the chapters found, so they run last and every time.
    order = [c for c in chapters() if c not in SUMMARY_PAGES] + [c for c in chapters() if c in SUMMARY_PAGES]
    order = [c for c in order if not only or c in only or c in SUMMARY_PAGES]
    started = time.perf_counter()
    with build_environment(build_dir):  # chapters' kernels save their claims into the build folder
        for k, chapter in enumerate(order, 1):
            label = f"[{k}/{len(order)}] {chapter}"
            if is_notebook(chapter):
                log(f"  {label}: executing at scale {scale!r} (book elapsed {_clock(time.perf_counter() - started)})")
            seconds = execute_chapter(chapter, scale, site / "book" / f"{chapter}.ipynb",
                                      reuse=reuse and chapter not in SUMMARY_PAGES,
                                      progress=label if show_progress else False)
            timings[chapter] = seconds
            log(f"  {label}: {'reused' if seconds == 0 else f'executed in {seconds:.0f} s'}")
        (build_dir / "timings.json").write_text(json.dumps({"scale": scale, "seconds": timings}, indent=1))
        from lib.book.claims import write_scorecard

        write_scorecard(build_dir / "scorecard.json", scale)
    log(f"  rendering the site with jupyter-book (book elapsed {_clock(time.perf_counter() - started)})")
    started = time.perf_counter()
    result = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(site), "--path-output", str(build_dir),
                             "--keep-going"], capture_output=True, text=True)
    (build_dir / "jupyter-book.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"jupyter-book failed (see {build_dir / 'jupyter-book.log'}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    html = build_dir / "_build" / "html"
    final = build_dir / "html"
    if final.exists():
        shutil.rmtree(final)
    shutil.move(str(html), str(final))
    log(f"  rendered in {time.perf_counter() - started:.0f} s → {final / 'index.html'}")
    return final


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lib.book", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="cpu", choices=SCALES, help="parameters to execute chapters with (default: cpu)")
    parser.add_argument("--build-dir", default=str(REPO_ROOT / "_build"), help="where executed notebooks and html go")
    parser.add_argument("--rerun", action="store_true", help="execute every chapter even if an up-to-date one exists")
    parser.add_argument("--only", nargs="*", help="execute only these chapters (others must exist from earlier builds)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(f"Building the book at scale {args.scale!r} into {args.build_dir}")
    build(args.scale, Path(args.build_dir), reuse=not args.rerun, only=args.only)
    print(f"Done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
