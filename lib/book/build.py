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
source are unchanged (a stamp beside it records their hash; it is written after the notebook and removed
before an execution starts, so a chapter whose execution was interrupted or failed is executed again, never
published half-done); training runs are reused through the run cache regardless (:mod:`lib.runs`). Two builds
may run at once in one checkout (:func:`build`). Chapters save their paper-vs-ours claims
(:mod:`lib.book.claims`) into the build folder; the intro and the scorecard, which summarize them,
run last, every time, and the build writes ``scorecard.json`` beside the site.

Command line: ``python -m lib.book [--scale cpu] [--build-dir _build]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
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


def is_notebook(chapter: str, book_dir: Path | None = None) -> bool:
    """Whether ``book/<chapter>.md`` (in ``book_dir``, default the book's) is a notebook (a jupytext header naming a
    kernel) or a plain page."""
    front_matter = (Path(book_dir or REPO_ROOT / "book") / f"{chapter}.md").read_text().split("\n---", 1)[0]
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


def _stamp(chapter: str, scale: str, overrides: dict, book_dir: Path | None = None) -> str:
    digest = hashlib.sha256()
    digest.update((Path(book_dir or REPO_ROOT / "book") / f"{chapter}.md").read_bytes())
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


def _unique() -> str:
    """A name part no other process or call uses (per-build temporary files)."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _write_atomically(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, renamed over it (a reader never sees half)."""
    temporary = path.with_name(f".{path.name}.{_unique()}.tmp")
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _copy_atomically(source: Path, destination: Path) -> None:
    temporary = destination.with_name(f".{destination.name}.{_unique()}.tmp")
    try:
        shutil.copy2(source, temporary)
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def _exclusive(lock_file: Path, waiting: str):
    """Hold an exclusive ``flock`` on ``lock_file`` for a block (released by the kernel if the process dies);
    ``waiting`` is printed to standard error while another process holds it. No lock where ``fcntl`` is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(waiting, file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def execute_chapter(chapter: str, scale: str, output: Path, overrides: dict | None = None,
                    reuse: bool = True, progress: bool | str = False, book_dir: Path | None = None,
                    scratch: Path | None = None, failed: Path | None = None) -> float:
    """Execute ``book/<chapter>.md`` at ``scale`` into the notebook ``output``; returns seconds spent (0: reused).

    ``output`` is written only when the chapter executed completely, in one rename, and its stamp (``.stamp`` beside
    it: the hash of the chapter, its parameters, the scale, the overrides and the library) is written after it and
    removed before an execution starts, so an interrupted or failed execution is never reused: the next call
    executes again. Each call executes in temporary files of its own, in ``scratch`` (a folder on ``output``'s
    filesystem; default ``output``'s folder), and one ``output`` is executed by one process at a time (a lock beside
    it): a second build asking for the same chapter waits, then reuses the first's execution. The notebook of a
    failed or interrupted execution, as far as it went, is written to ``failed`` (default ``<name>.failed.ipynb``
    beside ``output``), never to ``output``.

    ``progress`` shows papermill's bar over the chapter's cells (with its elapsed time) on standard error; a string
    is the bar's label (the build passes ``"[k/n] chapter"``). ``book_dir``: where ``<chapter>.md`` is (default
    the book's folder; the chapter still runs in the book's folder)."""
    import jupytext
    import nbformat
    import papermill

    overrides = overrides or {}
    book_dir = Path(book_dir or REPO_ROOT / "book")
    if has_params(chapter):  # bad parameters fail here, before a kernel starts
        load_params(chapter, scale, overrides)
    for setting in (settings.data_dir, settings.checkpoint_every_s, settings.batched, settings.progress,
                    settings.record_scale):  # and bad settings (a LIB_DATA_DIR that is not a folder)
        setting()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if not is_notebook(chapter, book_dir):  # a plain page: nothing to execute
        _copy_atomically(book_dir / f"{chapter}.md", output.with_suffix(".md"))
        return 0.0
    stamp_file = output.with_suffix(".stamp")
    stamp = _stamp(chapter, scale, overrides, book_dir)
    with _exclusive(output.with_name(f".{output.name}.lock"),
                    f"waiting for another process executing {chapter} into {output}"):
        if reuse and output.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp:
            return 0.0
        started = time.perf_counter()
        stamp_file.unlink(missing_ok=True)  # from here until the new stamp, output is not a finished execution
        unique, scratch = _unique(), Path(scratch or output.parent)
        scratch.mkdir(parents=True, exist_ok=True)
        source = scratch / f".{chapter}.{unique}.source.ipynb"
        executing = scratch / f".{chapter}.{unique}.executing.ipynb"
        try:
            notebook = jupytext.read(book_dir / f"{chapter}.md")
            notebook.cells.insert(0, nbformat.v4.new_code_cell(install_cell(), metadata={"tags": ["remove-cell"]}))
            jupytext.write(notebook, source)
            parameters = {"scale": scale, "overrides": overrides}
            with _kernel_imports_this_lib():
                bar = False
                if progress:
                    bar = {"desc": progress if isinstance(progress, str) else chapter, "unit": "cell",
                           "file": sys.stderr, "mininterval": 1.0, "dynamic_ncols": True}
                    if not sys.stderr.isatty():  # a log (CI, make > file): one line every 30 s instead of redraws
                        bar.update(mininterval=30.0, ncols=100)
                papermill.execute_notebook(str(source), str(executing), parameters=parameters,
                                           cwd=str(REPO_ROOT / "book"), kernel_name="python3", progress_bar=bar)
            _hide_injected_parameters(executing)
            os.replace(executing, output)
            _write_atomically(stamp_file, stamp)  # last: the stamp says output is a complete execution
        except BaseException:
            if executing.is_file():  # as far as it went, for reading the error; never published
                failed = Path(failed or output.with_name(f"{output.stem}.failed.ipynb"))
                failed.parent.mkdir(parents=True, exist_ok=True)
                os.replace(executing, failed)
            raise
        finally:
            source.unlink(missing_ok=True)
            executing.unlink(missing_ok=True)
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
    _write_atomically(static / "vega-bundle.js", "(function () {\n" + bundle + "\n})();\n")
    _write_atomically(static / "vega-debug.js",
                      "// altair's chart HTML skips loading a library from a CDN when VEGA_DEBUG names its version.\n"
                      f"window.VEGA_DEBUG = {json.dumps(vega_versions())};\n")
    return ["vega-debug.js", "vega-bundle.js"]


def _site_lock(build_dir: Path):
    """The lock of ``build_dir``'s site while one build stages or renders it (another build waits)."""
    return _exclusive(Path(build_dir) / ".site.lock", f"waiting for another build staging or rendering {build_dir}")


def stage(build_dir: Path) -> Path:
    """Copy the book's configuration and static files into ``build_dir/site`` (each file replaced whole, under the
    site's lock, so a build rendering the same folder never reads half a file)."""
    site = build_dir / "site"
    site.mkdir(parents=True, exist_ok=True)
    with _site_lock(build_dir):
        for name in BOOK_FILES + ("references.bib",):
            if (REPO_ROOT / name).is_file():
                _copy_atomically(REPO_ROOT / name, site / name)
        if (REPO_ROOT / "_static").is_dir():
            for path in sorted((REPO_ROOT / "_static").rglob("*")):
                if path.is_file():
                    target = site / "_static" / path.relative_to(REPO_ROOT / "_static")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    _copy_atomically(path, target)
        write_vega_assets(site / "_static")
    return site


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


def build(scale: str = "cpu", build_dir: Path | str = REPO_ROOT / "_build", reuse: bool = True,
          only: list[str] | None = None, log=print, show_progress: bool = True) -> Path:
    """Execute every chapter at ``scale`` and render the site into ``build_dir/html``; returns that folder.

    A chapter is published (its notebook in ``build_dir/site/book``) only once it executed completely
    (:func:`execute_chapter`); the notebook of one that failed goes to ``build_dir/failed``. Two builds may run at
    once in one folder: each executes in temporary files of its own (``build_dir/.executing``), a chapter is
    executed by one of them at a time (the other reuses it), and staging and rendering take turns.

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
                                      progress=label if show_progress else False, scratch=build_dir / ".executing",
                                      failed=build_dir / "failed" / f"{chapter}.ipynb")
            timings[chapter] = seconds
            log(f"  {label}: {'reused' if seconds == 0 else f'executed in {seconds:.0f} s'}")
        _write_atomically(build_dir / "timings.json", json.dumps({"scale": scale, "seconds": timings}, indent=1))
        from lib.book.claims import write_scorecard

        write_scorecard(build_dir / "scorecard.json", scale)
    log(f"  rendering the site with jupyter-book (book elapsed {_clock(time.perf_counter() - started)})")
    started = time.perf_counter()
    with _site_lock(build_dir):
        result = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(site), "--path-output",
                                 str(build_dir), "--keep-going"], capture_output=True, text=True)
        _write_atomically(build_dir / "jupyter-book.log", result.stdout + result.stderr)
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
