"""Parameter files: every chapter has all three scales, every file validates against its chapter's schema, and a
bad value fails at once (in load_params, in RunConfig, in `python -m lib run`, in papermill, in the book build)
with a message naming the key, the value and what is allowed, before anything is trained."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from lib import schemas
from lib.book.build import chapters
from lib.params import (PARAMS_DIR, SCALES, Replace, base_path, chapters_with_params, has_params, load_params, load_yaml,
                        merge, raw_params, scale_path)
from lib.train import RunConfig

REPO = Path(__file__).resolve().parents[1]


def _repeats(base, changes, where=""):
    """The leaves a scale file writes with the base's value (outside !replace mappings, which are given whole)."""
    if isinstance(changes, Replace):
        return []
    if isinstance(changes, dict) and isinstance(base, dict):
        return [r for k, v in changes.items() if k in base for r in _repeats(base[k], v, f"{where}{k}.")]
    return [where[:-1]] if changes == base else []


def test_every_chapter_with_parameters_has_a_base_file_and_scale_files_only_change_it():
    for chapter in chapters():
        if has_params(chapter):
            for scale in SCALES:
                base = load_yaml(base_path(chapter))
                path = scale_path(chapter, scale)
                changes = load_yaml(path) if path.is_file() else {}
                assert set(changes) <= set(base), (chapter, scale)
                assert not _repeats(base, changes), f"{path} repeats the base's value of {_repeats(base, changes)}"


def test_scale_files_merge_key_by_key_and_replace_where_tagged(tmp_path, monkeypatch):
    monkeypatch.setattr("lib.params.PARAMS_DIR", tmp_path)
    (tmp_path / "smoke").mkdir()
    (tmp_path / "zhang-kernels.yaml").write_text((REPO / "params" / "zhang-kernels.yaml").read_text())
    base = load_yaml(tmp_path / "zhang-kernels.yaml")
    (tmp_path / "smoke" / "zhang-kernels.yaml").write_text("iterative: {max_iter: 7}\n")
    merged = raw_params("zhang-kernels", "smoke")
    assert merged["iterative"] == {**base["iterative"], "max_iter": 7}  # the other keys are the base's
    (tmp_path / "smoke" / "zhang-kernels.yaml").write_text(
        "iterative: !replace {solver: cholesky, max_iter: 7, tol: 1.0e-6, m: 10, q: 5}\n")
    assert raw_params("zhang-kernels", "smoke")["iterative"] == {"solver": "cholesky", "max_iter": 7, "tol": 1e-6,
                                                                 "m": 10, "q": 5}
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}, "d": [1]}) == {"a": {"b": 1, "c": 3}, "d": [1]}


def test_every_params_file_validates_and_every_chapter_with_params_has_a_schema():
    files = sorted(PARAMS_DIR.glob("*.yaml")) + sorted(PARAMS_DIR.glob("*/*.yaml"))
    assert len(files) >= 12
    for file in files:
        scales = SCALES if file.parent == PARAMS_DIR else (file.parent.name,)
        assert set(scales) <= set(SCALES), f"{file}: not a scale folder"
        assert schemas.schema_of(file.stem) is not None, f"{file}: chapter {file.stem!r} has no schema"
        for scale in scales:
            load_params(file.stem, scale)  # raises ParamsError naming the bad key
    assert set(chapters_with_params()) <= set(schemas.all_schemas())


def test_typed_parameters_carry_the_files_values_unchanged():
    """The typed object holds exactly what the files say (no int turned float, nothing added), so the run
    configurations built from it, and their cache keys, are those built from the raw files."""
    for chapter in chapters_with_params():
        for scale in SCALES:
            typed = load_params(chapter, scale)
            assert isinstance(typed, schemas.ChapterParams) and typed.scale == scale
            assert (json.dumps(typed.model_dump(exclude_unset=True), sort_keys=True)
                    == json.dumps(raw_params(chapter, scale), sort_keys=True)), (chapter, scale)


def test_a_scale_file_may_not_add_a_key(tmp_path, monkeypatch):
    monkeypatch.setattr("lib.params.PARAMS_DIR", tmp_path)
    (tmp_path / "smoke").mkdir()
    (tmp_path / "zhang-kernels.yaml").write_text((REPO / "params" / "zhang-kernels.yaml").read_text())
    (tmp_path / "smoke" / "zhang-kernels.yaml").write_text("gamma: 0.5\ngama: 0.5\n")
    with pytest.raises(schemas.ParamsError, match="gama"):
        load_params("zhang-kernels", "smoke")
    (tmp_path / "smoke" / "zhang-kernels.yaml").write_text("gamma: 0.5\n")
    assert load_params("zhang-kernels", "smoke").gamma == 0.5
    assert load_params("zhang-kernels", "paper").gamma == yaml.safe_load((REPO / "params" / "zhang-kernels.yaml").read_text())["gamma"]


def test_a_chapter_without_a_schema_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("lib.params.PARAMS_DIR", tmp_path)
    (tmp_path / "unschemed.yaml").write_text("n: 1\n")
    with pytest.raises(schemas.ParamsError, match="no schema"):
        load_params("unschemed", "smoke")


def test_overrides_apply_and_typos_fail():
    p = load_params("zhang-randomization", "smoke", {"max_epochs": 3})
    assert p.max_epochs == 3 and p.scale == "smoke" and p.overridden == ["max_epochs"]
    with pytest.raises(KeyError, match="max_epoch"):
        load_params("zhang-randomization", "smoke", {"max_epoch": 3})
    with pytest.raises(ValueError):
        load_params("zhang-randomization", "huge")


def test_paper_scale_is_the_papers_protocol():
    p = load_params("zhang-randomization", "paper")
    assert p.models["inception"]["lr"] == 0.1 and p.models["alexnet"]["lr"] == 0.01
    assert all(m["lr_decay"] == 0.95 and m["n_train"] is None for m in p.models.values())
    assert p.stop_train_acc == 1.0


NESTED_TYPO = {"mlp1x512": {"lr": 0.01, "n_trian": 500, "lr_decay": 0.999, "corruption_levels": [0.0]}}

# (chapter, overrides, words the message must hold); each of these is a mistake a reader can make
BAD = [
    ("zhang-randomization", {"max_epochs": -3}, "max_epochs: -3 — must be a positive integer"),
    ("zhang-randomization", {"batch_size": 0}, "batch_size: 0 — must be a positive integer"),
    ("zhang-randomization", {"stop_train_acc": 1.5}, "stop_train_acc: 1.5 — must be a number in (0, 1]"),
    ("zhang-randomization", {"n_test": 99999999}, "n_test: 99999999 — must be at most 10000 (cifar10 has 10,000 test"),
    ("zhang-randomization", {"loss_curve_model": "resnet99"}, "loss_curve_model: 'resnet99' — is not a known model"),
    ("zhang-randomization", {"dataset": "imagenet"}, "dataset: 'imagenet' — must be one of mnist, fashion-mnist, cifar10"),
    ("theunissen-noise", {"corruption_levels": [0.0, 1.5]}, "corruption_levels.1: 1.5 — must be a probability in [0, 1]"),
    ("zhang-randomization", {"max_epochs": "ten"}, "max_epochs: 'ten' — must be a positive integer"),
    ("zhang-randomization", {"max_epochs": 2.5}, "max_epochs: 2.5 — must be a positive integer"),
    ("zhang-randomization", {"models": NESTED_TYPO}, "models.mlp1x512.n_trian: 500 — is not a known parameter"),
    ("masc-decoding", {"models": {"MLP-MNIST": {"dataset": "mnist", "model": "mlp-128-512", "preprocessing": "scale",
                                                "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "batch_size": 32,
                                                "n_train": 60001, "max_epochs": 2, "stop_train_acc": 0.999,
                                                "paper": ["MLP"]}}},
     "models.MLP-MNIST.n_train: 60001 — must be at most 60000 (mnist has 60,000 training images)"),
    ("masc-decoding", {"variance_model": "MLP-CIFAR"}, "variance_model: 'MLP-CIFAR' — must be one of the models"),
    ("theunissen-noise", {"n_train": 56000}, "n_train: 56000 — must be at most 55000 (mnist has 55,000 training images in the theunissen split)"),
    ("theunissen-noise", {"noise_types": ["label"]}, "noise_types.0: 'label' — must be one of label_noise"),
    ("synthesis", {"variance": 0}, "variance: 0 — must be a number in (0, 1]"),
    ("masc-decoding", {"seeds": -1}, "seeds: -1 — must be a list"),
]


@pytest.mark.parametrize("chapter, overrides, message", BAD, ids=[str(b[1])[:40] for b in BAD])
def test_a_bad_value_names_its_key_value_and_what_is_allowed(chapter, overrides, message):
    with pytest.raises(schemas.ParamsError) as error:
        load_params(chapter, "smoke", overrides)
    assert message in str(error.value)


def test_unknown_scale_and_missing_file():
    with pytest.raises(ValueError, match="unknown scale 'huge'; choose one of smoke, cpu, full, paper"):
        load_params("zhang-randomization", "huge")
    with pytest.raises(FileNotFoundError, match="no-such-chapter.yaml does not exist"):
        load_params("no-such-chapter", "smoke")


@pytest.mark.parametrize("changes, message", [
    ({"max_epochs": -3}, "max_epochs: -3 — must be a positive integer"),
    ({"batch_size": 0}, "batch_size: 0 — must be a positive integer"),
    ({"stop_train_acc": 1.5}, "stop_train_acc: 1.5 — must be a number in (0, 1]"),
    ({"stop_train_acc": 0}, "stop_train_acc: 0 — must be a number in (0, 1]"),
    ({"n_test": 99999999}, "n_test: 99999999 — must be at most 10000"),
    ({"model": "resnet"}, "model: 'resnet' — is not a known model"),
    ({"dataset": "imagenet"}, "dataset: 'imagenet' — must be one of"),
    ({"corruption": -0.1}, "corruption: -0.1 — must be a probability in [0, 1]"),
    ({"randomization": "shuffle"}, "randomization: 'shuffle' — must be one of none, partial_labels"),
    ({"lr": "0.1"}, "lr: '0.1' — must be a positive number"),
    ({"optimizer": "lbfgs"}, "optimizer: 'lbfgs' — must be one of sgd, adam"),
    ({"split": "random"}, "split: 'random' — must be one of standard, theunissen"),
])
def test_run_config_checks_its_fields_the_same_way(changes, message):
    with pytest.raises(schemas.ParamsError) as error:
        RunConfig(**changes)
    assert message in str(error.value) and "invalid RunConfig" in str(error.value)


def test_valid_run_configs_still_build():
    assert RunConfig().max_epochs == 100 and RunConfig(stop_train_acc=None, n_train=None).stop_train_acc is None
    assert RunConfig(dataset="random-vectors", preprocessing="none", lr=1, corruption=1).corruption == 1


CLI_BAD = [(["-p", "max_epochs", "-3"], "max_epochs: -3 — must be a positive integer"),
           (["-p", "batch_size", "0"], "batch_size: 0"),
           (["-p", "stop_train_acc", "1.5"], "stop_train_acc: 1.5"),
           (["-p", "n_test", "99999999"], "n_test: 99999999"),
           (["-p", "models", "{mlp1x512: {lr: 0.01, n_trian: 500, lr_decay: 0.999, corruption_levels: [0.0]}}"],
            "models.mlp1x512.n_trian")]


@pytest.mark.slow
@pytest.mark.parametrize("arguments, message", CLI_BAD, ids=[a[1] for a, _ in CLI_BAD])
def test_the_cli_fails_at_once_and_trains_nothing(tmp_path, arguments, message):
    cache = tmp_path / "runs"
    result = subprocess.run([sys.executable, "-m", "lib", "run", "zhang-randomization", "--scale", "smoke", *arguments,
                             "-o", str(tmp_path / "out.ipynb")], cwd=REPO, capture_output=True, text=True, timeout=60,
                            env={**__import__("os").environ, "LIB_CACHE_DIR": str(cache)})
    assert result.returncode == 2 and message in result.stderr and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert not cache.exists() and not (tmp_path / "out.ipynb").exists()  # nothing trained, nothing executed


def test_the_cli_refuses_an_unknown_scale_cleanly():
    result = subprocess.run([sys.executable, "-m", "lib", "run", "zhang-randomization", "--scale", "huge"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "invalid choice: 'huge'" in result.stderr


def test_the_book_build_checks_parameters_before_executing(tmp_path, monkeypatch):
    from lib.book import build

    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "runs"))
    with pytest.raises(schemas.ParamsError, match="max_epochs: -3"):
        build.execute_chapter("zhang-randomization", "smoke", tmp_path / "z.ipynb", {"max_epochs": -3}, reuse=False)
    assert not (tmp_path / "z.ipynb").exists() and not (tmp_path / "runs").exists()


def test_papermill_fails_in_the_parameters_cell(tmp_path, monkeypatch):
    """A reader running papermill by hand: the chapter's load_params fails before any data is loaded."""
    from conftest import papermill_cli

    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "runs"))
    result = papermill_cli("zhang-randomization", tmp_path / "z.ipynb", "-p", "scale", "smoke",
                           "-y", "'overrides: {max_epochs: -3}'", timeout=300)
    assert result.returncode != 0
    assert "max_epochs: -3 — must be a positive integer" in result.stderr + result.stdout
    assert not (tmp_path / "runs").exists()


# --- values that once passed the schema and failed (or trained NaN) inside the kernel --------------------------

INF = float("inf")
MLP = {"lr": 0.01, "n_train": 500, "lr_decay": 0.999, "corruption_levels": [0.0, 1.0]}
LAYER_NET = {"label": "MLP", "model": "mlp3x256", "dataset": "mnist", "n_train": 100, "n_test": 100,
             "preprocessing": "scale", "init": "glorot_uniform", "lr": 0.05, "momentum": 0.9, "lr_decay": 0.95,
             "batch_size": 128, "max_epochs": 2, "checkpoints": [0, 1, 2], "draws": 1}
STRICTER = [
    ("zhang-randomization", {"models": {"mlp1x512": {**MLP, "lr": INF}}}, "models.mlp1x512.lr: inf — must be a positive number (a finite number"),
    ("theunissen-noise", {"lr": float("nan")}, "lr: nan — must be a positive number"),
    ("zhang-randomization", {"models": {"mlp1x512": {**MLP, "lr_decay": 1e6}}}, "models.mlp1x512.lr_decay: 1000000.0 — must be a number in (0, 1]"),
    ("zhang-randomization", {"max_epochs": 10**12}, "max_epochs: 1000000000000 — must be a positive integer, at most 100,000 epochs"),
    ("weng-layer-robustness", {"torch_threads": 10**6}, "torch_threads: 1000000 — must be a non-negative integer, at most 1024 threads"),
    ("weng-layer-robustness", {"fc": {}}, "fc: {} — must have at least 1 item(s)"),
    ("weng-layer-robustness", {"weng": {**LAYER_NET, "checkpoints": [0, 7]}}, "checkpoints: [0, 7] — must be at most max_epochs, 2"),
    ("weng-layer-robustness", {"weng": {**LAYER_NET, "checkpoints": [1, 2]}}, "checkpoints: [1, 2] — must include 0"),
    ("zhang-randomization", {"models": {"mlp1x512": {**MLP, "corruption_levels": [0.0]}}},
     "models.mlp1x512.corruption_levels: [0.0] — must include 1.0 (it is the loss_curve_model"),
    ("zhang-randomization", {"models": {"mlp1x512": MLP, "alexnet": {**MLP, "corruption_levels": [0.5, 1.0]}}},
     "models.alexnet.corruption_levels: [0.5, 1.0] — must include 0.0"),
    ("zhang-regularization", {"models": {}}, "models: {} — must have at least 1 item(s)"),
    ("zhang-regularization", {"stop_train_acc": 0}, "stop_train_acc: 0 — must be a number in (0, 1]"),
    ("zhang-regularization", {"dataset": "imagenet"}, "dataset: 'imagenet' — must be one of"),
    ("zhang-regularization", {"models": {"mlp1x521": {"lr": 0.01, "n_train": 100, "lr_decay": 0.99, "weight_decay": 1e-4}}},
     "models.mlp1x521: is not a model of the paper's Table 1 (did you mean mlp1x512?)"),
    ("zhang-regularization", {"table4_augmented_lr_decay": 2}, "table4_augmented_lr_decay: 2 — must be a number in (0, 1]"),
    ("weng-double-descent", {"widths": [4, 2]}, "widths: [4, 2] — must increase"),
    ("zhang-kernels", {"n_curve": []}, "n_curve: [] — must have at least 1 item(s)"),
    ("masc-decoding", {"seeds": [0, 0]}, "seeds: [0, 0] — must not repeat 0"),
]


@pytest.mark.parametrize("chapter, overrides, message", STRICTER, ids=[m.split(" — ")[0][:40] for _, _, m in STRICTER])
def test_values_that_failed_in_the_kernel_fail_before_it(chapter, overrides, message):
    """Each of these once passed load_params: `lr: .inf` trained five NaN runs and cached them, `fc: {}` ended in an
    empty StopIteration, `corruption_levels: [0.0]` trained 24 s then raised KeyError: ['random labels']."""
    with pytest.raises(schemas.ParamsError) as error:
        load_params(chapter, "smoke", overrides)
    assert message in str(error.value)
    assert "\n" not in str(error.value)  # one problem, one line


def test_a_misspelt_key_names_the_nearest_one():
    with pytest.raises(KeyError) as error:
        load_params("zhang-randomization", "smoke", {"max_epoch": 3})
    assert "override max_epoch: not a parameter of 'zhang-randomization' (did you mean max_epochs?)" in str(error.value)
    assert isinstance(error.value, schemas.ParamsError) and "\n" not in str(error.value)
    with pytest.raises(schemas.ParamsError, match=r"models\.mlp1x512\.n_trian: 500 — is not a known parameter "
                                                  r"\(did you mean n_train\?\)"):
        load_params("zhang-randomization", "smoke", {"models": NESTED_TYPO})
    with pytest.raises(schemas.ParamsError, match=r"iterative\.max_iters: 3 — is not a known parameter \(did you mean max_iter\?\)"):
        load_params("zhang-kernels", "smoke", {"iterative": {"max_iters": 3, "m": 10, "q": 5}})
    with pytest.raises(ValueError, match=r"unknown scale 'smok' \(did you mean smoke\?\)"):
        load_params("zhang-randomization", "smok")


def test_a_number_given_as_text_says_how_to_write_it():
    """papermill's YAML (1.1) reads `1e-3` as text: the message says so instead of only "must be a number"."""
    with pytest.raises(schemas.ParamsError, match=r"stop_train_acc: '1e-3' — must be a number in \(0, 1\].*write 0\.001"):
        load_params("zhang-randomization", "smoke", {"stop_train_acc": "1e-3"})


def test_yaml_reads_1e_3_as_a_number_and_refuses_a_repeated_key(tmp_path, monkeypatch):
    """In a parameters file and in `-p NAME VALUE`: `1e-3` was the string '1e-3', and a repeated key silently kept
    the last value."""
    from lib.book.cli import _parse_value
    from lib.params import parse_value

    assert parse_value("1e-3") == 0.001 and parse_value("[1e-3, 2E+2, -1.5e-1]") == [0.001, 200.0, -0.15]
    assert _parse_value("1e-3") == 0.001 and _parse_value("3") == 3 and _parse_value("mnist") == "mnist"
    with pytest.raises(schemas.ParamsError, match="key 'lr' appears twice"):
        parse_value("{lr: 0.1, lr: 0.2}")
    monkeypatch.setattr("lib.params.PARAMS_DIR", tmp_path)
    base = (REPO / "params" / "zhang-kernels.yaml").read_text()
    (tmp_path / "zhang-kernels.yaml").write_text(base.replace("\ngamma:", "\ngamma: 2e-2\nold_gamma:", 1)
                                                 .replace("old_gamma:", "#", 1))
    assert load_params("zhang-kernels", "paper").gamma == 0.02
    repeated = base + "\ngamma: 0.123\n"
    (tmp_path / "zhang-kernels.yaml").write_text(repeated)
    lines = repeated.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("gamma:")) + 1
    with pytest.raises(schemas.ParamsError, match=rf"zhang-kernels.yaml, line {lines.index('gamma: 0.123') + 1}, is not "
                                                  rf"valid YAML: key 'gamma' appears twice \(first on line {first}\)"):
        load_params("zhang-kernels", "paper")


def test_an_unknown_papermill_parameter_is_an_error_with_a_suggestion():
    """`papermill -p scal smoke` warned once and ran 15 minutes at `cpu`; `-p max_epochs 3` (not through overrides)
    warned and ran 8 epochs."""
    from lib.book.chapter import check_injected_parameters

    check_injected_parameters("zhang-randomization", ["scale", "overrides", "PAPERMILL_INPUT_PATH"])
    with pytest.raises(schemas.ParamsError, match=r"papermill parameter scal: not a parameter of 'zhang-randomization' "
                                                  r"\(did you mean scale\?\)"):
        check_injected_parameters("zhang-randomization", ["scal"])
    with pytest.raises(schemas.ParamsError, match=r"papermill parameter max_epochs: .* give it through overrides: "
                                                  r"-y 'overrides: \{max_epochs: \.\.\.\}'"):
        check_injected_parameters("zhang-randomization", ["scale", "max_epochs"])


def test_papermill_stops_an_unknown_parameter_in_the_first_cell(tmp_path, monkeypatch):
    """The reader's papermill command with `-p max_epochs 3`: the chapter fails in its first cell, in one line,
    before anything trains."""
    from conftest import papermill_cli

    monkeypatch.setenv("LIB_CACHE_DIR", str(tmp_path / "runs"))
    result = papermill_cli("zhang-randomization", tmp_path / "z.ipynb", "-p", "scale", "smoke", "-p", "max_epochs", "3",
                           timeout=300)
    assert result.returncode != 0
    assert "papermill parameter max_epochs" in result.stderr and "give it through overrides" in result.stderr
    assert not (tmp_path / "runs").exists()
    notebook = nbformat.read(tmp_path / "z.ipynb", as_version=4)
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == "UnknownParameter"
    assert len(errors[0].traceback) == 1  # the message, not a 55-line traceback
