"""The double-descent chapter's risk curves (Belkin, Hsu, Ma & Mandal 2019; Weng 2019): which curves it trains, how
they are joined and averaged, and where they peak.

The training itself is :mod:`.double_descent` (its curves are cached, keyed on that module's source); this module
only assembles its calls and measures what comes back, so changing a measure here never retrains a curve.

- :func:`network_curves`: the four curves of Belkin et al.'s Figure 4 as the chapter runs them (with weight reuse,
  without, with label noise, and Weng's setting), per seed; :func:`join_reuse` builds the curve with reuse from the
  reuse chain below the interpolation threshold and the fresh sweep above it; :func:`average_seeds` averages a
  curve's seeds.
- :func:`peak_ratios`: Figure 4's double descent in two numbers, the test loss near the threshold n K and at the
  widest net, each over the under-parameterized minimum; :func:`ratio_table` sets them beside Belkin et al.'s.
- :func:`rff_table`, :func:`rff_peak`: the random-feature curve of Figure 2 and where it peaks.
- :func:`network_protocol`, :func:`weng_protocol`, :func:`rff_protocol`: how a curve's measurement departs from the
  protocol of the paper it is compared with (:class:`lib.verdicts.Protocol`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from lib.studies.weng2019 import double_descent as dd
from lib.verdicts import Protocol

#: The measured quantities of one network curve (:func:`lib.studies.weng2019.double_descent.nn_curve`), per width.
CURVE_FIELDS = ("width", "params", "epochs", "train_loss", "train_error", "train_clean_error", "test_loss",
                "test_error")
#: The columns of the random-feature curve (:func:`lib.studies.weng2019.double_descent.rff_curve`).
RFF_FIELDS = ("features", "train_loss", "train_error", "test_loss", "test_error", "norm")
#: Figure 4's curves, in the chapter's order: Belkin et al.'s protocol, without reuse, label noise, Weng's setting.
SETTINGS = ("with reuse (Belkin)", "without reuse", "label noise", "Weng's setting")
#: "Near the threshold": within this factor of n K parameters (and "under-parameterized": below n K over it).
WINDOW = 1.25


def join_reuse(chain: dict | None, fresh: dict, limit: float) -> dict:
    """Belkin et al.'s curve with weight reuse (Section 3.1, Figure 4): the reuse ``chain`` (the widths below the
    threshold width ``limit``; None when there are none) followed by the widths of the ``fresh`` sweep at or above
    ``limit`` (freshly initialized there, the same networks as the curve without reuse)."""
    return {k: (chain[k] if chain else []) + [v for w, v in zip(fresh["width"], fresh[k]) if w >= limit]
            for k in CURVE_FIELDS}


def network_curves(params) -> dict[str, list[dict]]:
    """The curves of Figure 4 the chapter draws, by setting (:data:`SETTINGS`), one curve per seed of
    ``params.seeds`` (``params``: the chapter's :class:`~lib.studies.weng2019.protocol.WengDoubleDescent`).

    "without reuse": every width fresh from Glorot, trained jointly; "label noise": the same with
    ``params.label_noise`` of the training labels redrawn; "Weng's setting": her widths and training, weights reused
    at every width; "with reuse (Belkin)": the reuse chain below the threshold (``params.chain_epochs`` per net)
    joined to the fresh sweep above it (:func:`join_reuse`). Each curve is trained once and cached
    (:func:`lib.studies.weng2019.double_descent.nn_curve`)."""
    split = {"n_train": params.n_train, "n_test": params.n_test, "seed": params.split_seed}
    noisy = {**split, "label_noise": params.label_noise, "noise_seed": params.noise_seed}
    # each training as the parameter file gives it (a plain mapping: the store keeps it with the curve)
    training, weng_training = dict(params.training), dict(params.weng.training)
    limit = dd.threshold_width(params.n_train)
    below = [w for w in params.widths if w < limit]
    runs: dict[str, list[dict]] = {name: [] for name in ("without reuse", "label noise", "Weng's setting",
                                                         "with reuse (Belkin)")}
    for seed in params.seeds:
        fresh = dd.nn_curve(split, params.widths, training, "none", seed)
        chain = (dd.nn_curve(split, below, {**training, "epochs": params.chain_epochs}, "chain", seed)
                 if below else None)
        runs["without reuse"].append(fresh)
        runs["label noise"].append(dd.nn_curve(noisy, params.widths, training, "none", seed))
        runs["Weng's setting"].append(dd.nn_curve(split, params.weng.widths, weng_training, "chain", seed))
        runs["with reuse (Belkin)"].append(join_reuse(chain, fresh, limit))
    return runs


def average_seeds(curves: list[dict]) -> pd.DataFrame:
    """One curve per width: the mean over seeds (``curves``, one per seed) of each of :data:`CURVE_FIELDS`."""
    frames = [pd.DataFrame({k: c[k] for k in CURVE_FIELDS}) for c in curves]
    return pd.concat(frames).groupby(["width", "params"], as_index=False).mean()


def peak_ratios(frame: pd.DataFrame, threshold: float) -> dict:
    """Figure 4's double descent on one averaged curve (``frame``: :func:`average_seeds`): the test squared loss
    near the threshold (the largest within a factor :data:`WINDOW` of ``threshold`` = n K parameters) over its
    minimum among the under-parameterized widths (below n K / 1.25), and the widest net's loss over that minimum.

    Also: how many widths each window holds (``n_under``, ``n_near``, before any fallback), the largest training
    error near the threshold, and the training errors at the peak and at the widest net. Where a window is empty
    the width closest to the threshold (near) or the smallest (under) stands in."""
    under = frame[frame.params < threshold / WINDOW]
    near = frame[(frame.params >= threshold / WINDOW) & (frame.params <= threshold * WINDOW)]
    counts = {"n_under": len(under), "n_near": len(near),  # widths in each window, before any fallback
              "near_train_error": float(near.train_error.max()) if len(near) else float("nan")}
    if near.empty:  # no width in the window: the one closest to the threshold
        near = frame.loc[[(np.log(frame.params) - np.log(threshold)).abs().idxmin()]]
    if under.empty:
        under = frame.loc[[frame.params.idxmin()]]
    at = near.loc[near.test_loss.idxmax()]
    best = under.loc[under.test_loss.idxmin()]
    widest = frame.loc[frame.params.idxmax()]
    return {"under_min": best.test_loss, "under_min_params": int(best.params), "peak": at.test_loss,
            "peak_params": int(at.params), "widest": widest.test_loss, "widest_params": int(widest.params),
            "peak_ratio": at.test_loss / best.test_loss, "widest_ratio": widest.test_loss / best.test_loss,
            "train_error_at_peak": at.train_error, "widest_train_error": widest.train_error, **counts}


def belkin_ratios(belkin) -> dict:
    """Belkin et al.'s Figure 4 with reuse, read off the figure (``belkin``: :func:`lib.papers.paper`
    ``("belkin2019")``): the test loss at the threshold and at the widest net over the under-parameterized
    minimum."""
    loss = "fig4.reuse.test_loss"
    return {"peak_ratio": belkin[f"{loss}.threshold"] / belkin[f"{loss}.minimum"],
            "widest_ratio": belkin[f"{loss}.widest"] / belkin[f"{loss}.minimum"]}


def ratio_table(ratios: dict[str, dict], belkin) -> pd.DataFrame:
    """Figure 4's numbers per setting (``ratios``: :func:`peak_ratios` by setting, in order) and Belkin et al.'s
    two curves read off the figure: the under-parameterized minimum of the test loss, the loss near n K and at the
    widest net, and both over the minimum."""
    rows = [{"setting": name, "test loss, under-param. minimum": round(r["under_min"], 3),
             "near n·K": round(r["peak"], 3), "widest": round(r["widest"], 3),
             "peak / minimum": round(r["peak_ratio"], 2), "widest / minimum": round(r["widest_ratio"], 2)}
            for name, r in ratios.items()]
    reuse, reference = "fig4.reuse.test_loss", belkin_ratios(belkin)
    rows.append({"setting": "Belkin et al., Figure 4, with reuse (read off the figure)",
                 "test loss, under-param. minimum": belkin[f"{reuse}.minimum"], "near n·K": belkin[f"{reuse}.threshold"],
                 "widest": belkin[f"{reuse}.widest"], "peak / minimum": round(reference["peak_ratio"], 2),
                 "widest / minimum": round(reference["widest_ratio"], 2)})
    under = np.mean(belkin["fig4.noreuse.test_loss.under"])
    rows.append({"setting": "Belkin et al., Figure 4, without reuse (read off the figure)",
                 "test loss, under-param. minimum": float(under), "near n·K": belkin["fig4.noreuse.test_loss.bump"],
                 "widest": belkin["fig4.noreuse.test_loss.widest"],
                 "peak / minimum": round(belkin["fig4.noreuse.test_loss.bump"] / under, 2),
                 "widest / minimum": round(belkin["fig4.noreuse.test_loss.widest"] / under, 2)})
    return pd.DataFrame(rows).set_index("setting")


def quoted_epochs(text: str) -> int:
    """The last epoch count a text quotes ("... for 500 epochs" → 500; thousands separators allowed): how long
    Weng trained, from her essay's description of the optimizer."""
    return int(re.findall(r"(\d[\d,]*) epochs", text)[-1].replace(",", ""))


def rff_table(curve: dict) -> pd.DataFrame:
    """The random-feature curve of Figure 2 (:func:`lib.studies.weng2019.double_descent.rff_curve`) as a table of
    :data:`RFF_FIELDS`, one row per feature count N."""
    return pd.DataFrame({k: v for k, v in curve.items() if k in RFF_FIELDS})


def rff_peak(rff: pd.DataFrame, n: int) -> dict:
    """Where Figure 2's test loss peaks (``rff``: :func:`rff_table` on ``n`` training images): the row of the peak
    (``peak``) and of the largest N (``largest``), the smallest test loss over N (``minimum``) and the smallest
    among N < n (``under_best``)."""
    return {"peak": rff.loc[rff.test_loss.idxmax()], "minimum": rff.test_loss.min(),
            "under_best": rff[rff.features < n].test_loss.min(), "largest": rff.loc[rff.features.idxmax()]}


def _optimizer(training) -> str:
    """A :class:`~lib.studies.weng2019.protocol.DoubleDescentTraining` as the protocol's optimizer field."""
    text = f"{training.optimizer} lr {training.lr:g}"
    if training.optimizer == "sgd" and training.momentum:
        text += f" momentum {training.momentum:g}"
    if training.lr_decay != 1.0 and training.lr_decay_every:
        text += f" x{training.lr_decay:g} every {training.lr_decay_every} epochs"
    text += " full batch" if training.batch_size is None else f" batch {training.batch_size}"
    return text + (f", squared error on the {training.loss_on} outputs" if training.loss_on != "linear" else "")


def _test_images(n_test: int | None) -> str:
    return "all 10,000" if n_test is None else f"{n_test:,}"


def _widths(widths) -> str:
    return f"784-H-10, H = {min(widths)}-{max(widths)} ({dd.n_params(min(widths)):,}-{dd.n_params(max(widths)):,} " \
           "parameters)"


def network_protocol(params, paper) -> Protocol:
    """How the network curves of ``params`` (the chapter's parameters) depart from Belkin et al.'s Figure 4 protocol
    (``paper``: the parameters at ``paper`` scale, the protocol as public reproductions quote it): training and test
    images, epochs (the fresh sweep's budget and the reuse chain's, which stops at zero training error), optimizer,
    widths and repetitions."""
    def side(p) -> dict:
        stop = ", to zero training error below n K" if p.training.stop_at_zero_error else ""
        return {"training images": f"{p.n_train:,}", "test images": _test_images(p.n_test),
                "epochs": f"{p.training.epochs:,} (reuse chain {p.chain_epochs:,}{stop})",
                "optimizer": _optimizer(p.training), "model": _widths(p.widths), "seeds": str(len(p.seeds))}

    return Protocol(side(params), side(paper))


def weng_protocol(params, paper, n_train_weng: int) -> Protocol:
    """How "Weng's setting" of ``params`` departs from her code's (``paper.weng``, one run per width, on
    ``n_train_weng`` images): training and test images, epochs, optimizer (with her loss), widths, runs."""
    def side(p, n_train: int, runs: int) -> dict:
        return {"training images": f"{n_train:,}", "test images": _test_images(p.n_test),
                "epochs": f"{p.weng.training.epochs:,}", "optimizer": _optimizer(p.weng.training),
                "model": _widths(p.weng.widths) + ", weights reused at every width", "seeds": str(runs)}

    return Protocol(side(params, params.n_train, len(params.seeds)), side(paper, n_train_weng, 1))


def rff_protocol(params, paper) -> Protocol:
    """How the random-feature curve of ``params`` departs from Belkin et al.'s Figure 2 (``paper``): its training
    and test images and feature counts; the solve is closed form (minimum-norm least squares) on both sides."""
    def side(p) -> dict:
        return {"training images": f"{p.rff.n_train:,}", "test images": _test_images(p.n_test),
                "epochs": "closed form", "optimizer": "minimum-norm least squares",
                "model": f"random Fourier features, N = {min(p.rff.features):,}-{max(p.rff.features):,}, "
                         f"sigma {p.rff.sigma:g}", "seeds": "1"}

    return Protocol(side(params), side(paper))
