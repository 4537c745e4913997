"""Parameter files: every chapter has all three scales, and overrides are validated."""

from __future__ import annotations

import pytest

from lib.book.build import chapters
from lib.params import SCALES, load_params, params_path


@pytest.mark.parametrize("scale", SCALES)
def test_every_chapter_with_parameters_has_every_scale(scale):
    for chapter in chapters():
        if params_path(chapter, "cpu").is_file():
            assert params_path(chapter, scale).is_file(), f"{chapter} has no {scale} parameters"


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
