"""The package installs: a wheel built from this checkout, installed into a fresh virtual environment away from the
source tree, imports every module, answers ``python -m lib --help``, executes a chapter at ``smoke`` with its
caches in the user's cache folder, and the notebook that execution writes (the one Colab opens) runs again from an
empty folder with only the installed package.

The fresh environment gets the dependencies (torch, jupyter, ...) from the running interpreter's site-packages
through a ``.pth`` line, so nothing is downloaded; ``lib`` itself comes only from the wheel (a ``.pth`` line adds
a folder to the path without running that folder's own ``.pth`` files, so this checkout's editable install is not
seen), and every command runs outside the checkout with ``PYTHONPATH`` unset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CHAPTER = "zhang-randomization"  # one chapter, at smoke with one epoch: about 30 s on 2 busy CPU cores

pytestmark = pytest.mark.slow


def run(venv: Path, *arguments: str, cwd: Path, home: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """``venv``'s python with ``arguments``, in ``cwd``, with ``home`` as the home folder and no ``PYTHONPATH``."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "LIB_CACHE_DIR", "LIB_CLAIMS_DIR", "XDG_CACHE_HOME", "VIRTUAL_ENV")}
    env.update(HOME=str(home), LIB_DATA_DIR=str(DATA), LIB_PROGRESS="0")
    return subprocess.run([str(venv / "bin" / "python"), *arguments], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """The wheel built from this checkout, installed into a fresh virtual environment: its paths."""
    root = tmp_path_factory.mktemp("install")
    dist = root / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "-w", str(dist), str(REPO)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    [wheel] = dist.glob("lib-*.whl")
    venv = root / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True, timeout=120)
    purelib = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                              "--no-deps", "--quiet", str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    home, work = root / "home", root / "work"
    home.mkdir(), work.mkdir()
    return {"wheel": wheel, "venv": venv, "purelib": purelib, "home": home, "work": work}


def source_modules() -> set[str]:
    return {".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            for path in (REPO / "lib").rglob("*.py")}


def test_wheel_holds_every_module_and_what_chapters_read(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    assert {f"{path.relative_to(REPO)}" for path in (REPO / "lib").rglob("*.py")} <= names
    assert {f"{path.relative_to(REPO)}" for path in (REPO / "lib" / "papers").glob("*.yaml")} <= names
    shipped = {f"lib/_repo/{path.relative_to(REPO)}" for folder in ("params", "book", "results")
               for path in (REPO / folder).rglob("*") if path.is_file()}
    assert shipped and shipped <= names
    assert {"lib/_repo/_toc.yml", "lib/_repo/_config.yml", "lib/_repo/references.bib"} <= names


def test_installed_package_imports_every_module_from_the_wheel(installed):
    script = """
import importlib, json, pkgutil, lib, lib.settings, lib.params
names = [m.name for m in pkgutil.walk_packages(lib.__path__, "lib.") if not m.name.endswith("__main__")]
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as error:
        failed[name] = repr(error)
print(json.dumps({"file": lib.__file__, "root": str(lib.settings.REPO_ROOT), "params": str(lib.params.PARAMS_DIR),
                  "modules": ["lib", *names], "failed": failed}))
"""
    result = run(installed["venv"], "-c", script, cwd=installed["work"], home=installed["home"])
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert Path(found["file"]).is_relative_to(installed["purelib"])
    assert Path(found["root"]) == installed["purelib"] / "lib" / "_repo"
    assert (Path(found["params"]) / f"{CHAPTER}.yaml").is_file()
    assert found["failed"] == {}
    assert set(found["modules"]) == source_modules() - {"lib.__main__", "lib.book.__main__"}


def test_command_line_help_lists_the_chapters(installed):
    top = run(installed["venv"], "-m", "lib", "--help", cwd=installed["work"], home=installed["home"])
    assert top.returncode == 0, top.stderr[-3000:]
    assert top.stdout.startswith("usage: python -m lib")
    chapters = run(installed["venv"], "-m", "lib", "run", "--help", cwd=installed["work"], home=installed["home"])
    assert chapters.returncode == 0, chapters.stderr[-3000:]
    assert CHAPTER in chapters.stdout and "masc-decoding" in chapters.stdout


@pytest.fixture(scope="module")
def executed(installed) -> Path:
    """``python -m lib run CHAPTER --scale smoke`` with the installed package, from an empty folder."""
    out = installed["work"] / f"{CHAPTER}.ipynb"
    result = run(installed["venv"], "-m", "lib", "run", CHAPTER, "--scale", "smoke", "-p", "max_epochs", "1",
                 "-o", str(out), cwd=installed["work"], home=installed["home"], timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return out


@pytest.mark.book
def test_installed_package_executes_a_chapter_with_caches_in_the_users_cache_folder(installed, executed):
    nb = nbformat.read(executed, as_version=4)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert outputs and not [o for o in outputs if o.output_type == "error"]
    assert any("to execute this page on" in o.get("data", {}).get("text/markdown", "") for o in outputs)
    runs = [path.parent for path in (installed["home"] / ".cache").rglob("manifest.json")]
    assert runs, "the chapter's training runs are not in the user's cache folder"
    package = installed["purelib"] / "lib"
    written = [path for path in package.rglob("*") if path.is_dir() and path.name in ("_runs", "_build")]
    assert not written, f"the installed package wrote into itself: {written}"


@pytest.mark.book
def test_generated_notebook_runs_from_a_clean_folder(installed, executed, tmp_path):
    """The executed notebook (the build's Colab notebook) runs as it is, its install cell first, in an empty folder;
    a last cell shows which ``lib`` the kernel imported."""
    clean = tmp_path / "clean"
    clean.mkdir()
    nb = nbformat.read(executed, as_version=4)
    assert "find_spec(\"lib\")" in nb.cells[0].source and "torch==" not in nb.cells[0].source
    nb.cells.append(nbformat.v4.new_code_cell("import lib, lib.params\nprint(lib.__file__)\nprint(lib.params.PARAMS_DIR)"))
    notebook = clean / "colab.ipynb"
    nbformat.write(nb, notebook)
    script = (f"import nbformat, nbclient\nnb = nbformat.read({str(notebook)!r}, as_version=4)\n"
              f"nbclient.NotebookClient(nb, timeout=600, kernel_name='python3', "
              f"resources={{'metadata': {{'path': {str(clean)!r}}}}}).execute()\n"
              f"nbformat.write(nb, {str(notebook)!r})\n")
    result = run(installed["venv"], "-c", script, cwd=clean, home=installed["home"], timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    nb = nbformat.read(notebook, as_version=4)
    assert not [o for cell in nb.cells for o in cell.get("outputs", []) if o.output_type == "error"]
    assert not nb.cells[0].outputs  # lib imports: the install cell does nothing
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs).split()
    assert Path(printed[0]).is_relative_to(installed["purelib"]) and Path(printed[1]).is_relative_to(installed["purelib"])
