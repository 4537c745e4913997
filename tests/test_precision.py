"""bf16 autocast, which the `full` scale uses for time, changes nothing that matters: each `full` configuration
trained on a subset in fp32 and in bf16 from the same seed reaches the same training and test accuracies (within two
points), while bf16 is really on (the loss curves differ). The `full` params files cite this test."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lib.params import load_params
from lib.protocols import masc_config, theunissen_config, zhang_config
from lib.train import train


def full_configs() -> dict:
    """One `full`-scale configuration of each chapter that trains in bf16 there, on its true labels."""
    zhang = load_params("zhang-randomization", "full", {})
    masc = load_params("masc-decoding", "full", {})
    theunissen = load_params("theunissen-noise", "full", {})
    return {
        "zhang mlp1x512 (cross-entropy, SGD, CIFAR-10)": zhang_config(zhang, "mlp1x512", corruption=0.0),
        "MASC MLP-MNIST (cross-entropy, SGD, batch 32)": masc_config(masc, masc.models["MLP-MNIST"], 0.0, 0),
        "Theunissen 10x512 (MSE, Adam)": theunissen_config(theunissen, "mnist", "label_noise", 0.0),
    }


@pytest.mark.parametrize("name", list(full_configs()))
def test_bf16_reaches_the_accuracies_of_fp32(name):
    config = full_configs()[name]
    assert config.precision == "bf16", "the full scale trains this model in bf16"
    small = replace(config, n_train=2000, n_test=1000, max_epochs=4, stop_train_acc=None, test_every=1)
    fp32 = train(replace(small, precision="fp32"), progress=False)
    bf16 = train(replace(small, precision="bf16"), progress=False)
    assert fp32.history.train_loss.tolist() != bf16.history.train_loss.tolist()  # autocast did change the arithmetic
    for metric in ("final_train_acc", "final_test_acc"):
        assert abs(fp32.summary[metric] - bf16.summary[metric]) <= 0.02, (name, metric, fp32.summary[metric],
                                                                          bf16.summary[metric])
    assert fp32.summary["final_test_acc"] > 0.25  # learned (chance: 0.1): the comparison is not of two chance runs
