"""lib.settings: every environment variable read in one place, one on/off vocabulary, documented defaults, and an
override that leaves the environment exactly as it found it (also after a book build's environment)."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from lib import settings
from lib.book import build
from lib.train import progress_enabled

REPO = Path(__file__).resolve().parents[1]
FLAGS = {settings.BATCHED: settings.batched, settings.PROGRESS: settings.progress}


@pytest.fixture
def clean_env(monkeypatch):
    for name in settings.VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("name", FLAGS)
@pytest.mark.parametrize("word", settings.ON_WORDS + ("TRUE", "Yes", " On "))
def test_every_on_word_is_on(clean_env, name, word):
    clean_env.setenv(name, word)
    assert FLAGS[name]() is True


@pytest.mark.parametrize("name", FLAGS)
@pytest.mark.parametrize("word", settings.OFF_WORDS + ("FALSE", "No", "None", " off "))
def test_every_off_word_is_off(clean_env, name, word):
    clean_env.setenv(name, word)
    assert FLAGS[name]() is False


@pytest.mark.parametrize("name", FLAGS)
@pytest.mark.parametrize("word", ["2", "maybe", "enabled", "nein"])
def test_any_other_word_is_an_error_naming_the_variable_and_the_words(clean_env, name, word):
    clean_env.setenv(name, word)
    with pytest.raises(settings.SettingError, match=name) as error:
        FLAGS[name]()
    assert repr(word) in str(error.value)
    assert all(w in str(error.value) for w in settings.ON_WORDS + settings.OFF_WORDS[:-1])
    assert isinstance(error.value, ValueError)


def test_defaults(clean_env):
    clean_env.delenv(settings.CI, raising=False)
    clean_env.delenv("XDG_CACHE_HOME", raising=False)
    assert settings.cache_dir() == Path.home() / ".cache" / "lib" / "runs"  # the user's, shared by every checkout
    assert settings.data_dir() is None
    assert settings.torchvision_dir() == Path.home() / ".cache" / "lib" / "torchvision"
    assert settings.claims_dir() == REPO / "_build" / "claims"
    assert settings.checkpoint_every_s() == 60.0
    assert settings.batched() is True
    assert settings.progress() is None
    assert settings.dask_scheduler() is None
    assert settings.in_ci() is False


def test_values_are_read_at_each_call_not_at_import(clean_env, tmp_path):
    clean_env.setenv(settings.CACHE_DIR, str(tmp_path / "a"))
    assert settings.cache_dir() == tmp_path / "a"
    clean_env.setenv(settings.CACHE_DIR, str(tmp_path / "b"))
    assert settings.cache_dir() == tmp_path / "b"


def test_folders_expand_the_home_and_an_empty_value_is_unset(clean_env, tmp_path):
    clean_env.setenv("HOME", str(tmp_path))
    (tmp_path / "data").mkdir()
    clean_env.setenv(settings.DATA_DIR, "~/data")
    assert settings.data_dir() == tmp_path / "data"
    clean_env.setenv(settings.DATA_DIR, "")
    assert settings.data_dir() is None
    clean_env.setenv(settings.CACHE_DIR, "")
    clean_env.setenv("XDG_CACHE_HOME", "/xdg/cache")
    assert settings.cache_dir() == Path("/xdg/cache/lib/runs")


def test_checkpoint_interval(clean_env):
    clean_env.setenv(settings.CHECKPOINT_EVERY_S, "0")
    assert settings.checkpoint_every_s() == 0.0
    clean_env.setenv(settings.CHECKPOINT_EVERY_S, "2.5")
    assert settings.checkpoint_every_s() == 2.5
    for bad in ("soon", "-1", "nan", "inf"):
        clean_env.setenv(settings.CHECKPOINT_EVERY_S, bad)
        with pytest.raises(settings.SettingError, match=settings.CHECKPOINT_EVERY_S):
            settings.checkpoint_every_s()


def test_scheduler_off_words_mean_this_process(clean_env):
    for word in ("", "none", "OFF", "0", " false "):
        clean_env.setenv(settings.DASK_SCHEDULER, word)
        assert settings.dask_scheduler() is None
    clean_env.setenv(settings.DASK_SCHEDULER, " local:2 ")
    assert settings.dask_scheduler() == "local:2"
    assert settings.scheduler_spec("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"


def test_progress_follows_the_setting_then_ci(clean_env):
    clean_env.setenv(settings.PROGRESS, "on")
    assert progress_enabled() is True
    clean_env.setenv(settings.PROGRESS, "off")
    assert progress_enabled() is False
    clean_env.delenv(settings.PROGRESS)
    clean_env.setenv(settings.CI, "true")
    assert settings.in_ci() and progress_enabled() is False


def test_override_restores_the_environment_exactly(clean_env, tmp_path):
    clean_env.setenv(settings.CACHE_DIR, "/before")
    clean_env.delenv("PYTHONPATH", raising=False)
    before = dict(os.environ)
    with settings.override(LIB_CACHE_DIR=tmp_path, LIB_DATA_DIR=tmp_path / "data", LIB_BATCHED=False,
                           PYTHONPATH="/somewhere"):
        assert settings.cache_dir() == tmp_path
        assert os.environ[settings.DATA_DIR] == str(tmp_path / "data")
        assert os.environ[settings.BATCHED] == "0" and settings.batched() is False
        assert os.environ["PYTHONPATH"] == "/somewhere"
    assert dict(os.environ) == before
    assert settings.DATA_DIR not in os.environ and "PYTHONPATH" not in os.environ  # unset before: unset again


def test_override_restores_after_an_error_and_can_unset(clean_env):
    clean_env.setenv(settings.PROGRESS, "yes")
    before = dict(os.environ)
    with pytest.raises(RuntimeError, match="inside"):
        with settings.override(LIB_PROGRESS=None, LIB_CLAIMS_DIR="/claims"):
            assert settings.PROGRESS not in os.environ and settings.progress() is None
            raise RuntimeError("inside")
    assert dict(os.environ) == before


def test_override_refuses_a_misspelt_setting():
    before = dict(os.environ)
    with pytest.raises(settings.SettingError, match="LIB_CACHEDIR"):
        with settings.override(LIB_CACHEDIR="/x"):
            pass
    assert dict(os.environ) == before


def test_the_build_environment_is_restored_after_a_build(clean_env, tmp_path):
    clean_env.setenv("PYTHONPATH", "/elsewhere")
    before = dict(os.environ)
    with build.build_environment(tmp_path):
        assert settings.claims_dir() == tmp_path / "claims"
        with build._kernel_imports_this_lib():
            assert os.environ["PYTHONPATH"].split(os.pathsep) == [str(build.REPO_ROOT), "/elsewhere"]
        assert os.environ["PYTHONPATH"] == "/elsewhere"
    assert dict(os.environ) == before
    assert settings.CLAIMS_DIR not in os.environ


def test_the_readme_table_names_every_variable():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.M)
    assert rows == list(settings.VARIABLES)


def _environment_reads(path: Path) -> list[int]:
    """Lines of ``path`` that touch ``os.environ`` or call ``getenv``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "unsetenv"):
            lines.append(node.lineno)
        elif isinstance(node, ast.Name) and node.id in ("environ", "getenv"):
            lines.append(node.lineno)
    return lines


def test_only_settings_reads_the_environment():
    """Every ``LIB_*`` variable goes through lib.settings; the book build may still read ``PYTHONPATH`` to extend it."""
    readers = {str(path.relative_to(REPO)): lines for path in sorted((REPO / "lib").rglob("*.py"))
               if (lines := _environment_reads(path))}
    assert set(readers) <= {"lib/settings.py", "lib/book/build.py"}, readers
    build_source = (REPO / "lib" / "book" / "build.py").read_text().splitlines()
    assert all("PYTHONPATH" in build_source[line - 1] for line in readers.get("lib/book/build.py", []))


def test_a_data_dir_that_is_not_a_folder_is_an_error_naming_the_variable(clean_env, tmp_path):
    """LIB_DATA_DIR=/does-not-exist once fell back to ../shared/data in silence: a reader who meant another copy of
    the data trained on this one."""
    from lib.data import load_dataset

    clean_env.setenv(settings.DATA_DIR, str(tmp_path / "does-not-exist"))
    with pytest.raises(settings.SettingError, match=r"LIB_DATA_DIR='.*does-not-exist' is not a folder \(no such folder\)"):
        settings.data_dir()
    with pytest.raises(settings.SettingError, match="LIB_DATA_DIR"):
        load_dataset("mnist")  # not MNIST from ../shared/data
    (tmp_path / "a-file").write_text("")
    clean_env.setenv(settings.DATA_DIR, str(tmp_path / "a-file"))
    with pytest.raises(settings.SettingError, match=r"is not a folder \(it is a file\)"):
        settings.data_dir()
    clean_env.setenv(settings.DATA_DIR, str(tmp_path))
    assert settings.data_dir() == tmp_path
