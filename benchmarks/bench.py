"""`make bench`: the library's speed, measured side by side in one run on this machine, as ratios.

- the lib trainer vs a minimal hand-written loop over in-memory tensors (overhead), and vs the
  conventional loop of the papers' public code (a torchvision dataset with per-sample
  ToTensor/Normalize through a shuffling DataLoader), for MLP 784-512x3-10 and the 10x512 MSE MLP;
- batched K = 6 vs sequential training for the MASC MLP (784-128-512-2048-2048-10) and the 10x512
  MLP, and what the grid runner actually does for each (it picks the faster path);
- bf16 autocast vs float32: throughput and the final-accuracy difference;
- on a GPU: samples/s and the fraction of the GPU's peak FLOP rate achieved, and the wall time of
  the full `paper` grid of the MASC chapter's MLP-MNIST (6 degrees x 3 seeds, 60,000 images);
- the ceilings that bound two of these ratios on this machine: how much faster one stacked product
  runs than the per-model products (no stacked trainer can beat that), and how much of the
  DataLoader loop's time is the per-sample transforms (no trainer can beat loop / (loop - transforms)).

Writes ``_build/bench.json`` and prints a table. Each ratio compares runs made in this process,
interleaved, so a busy machine slows both sides alike. ``--quick`` uses fewer samples.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from lib.batched import architecture, prefers_batched, train_batched
from lib.data import DatasetNotFound, load_dataset
from lib.models import build_model
from lib.train import RunConfig, default_device, train

ROOT = Path(__file__).resolve().parents[1]


def mnist_config(model: str, n: int, epochs: int, **changes) -> RunConfig:
    values = dict(dataset="mnist", n_train=n, n_test=2000, preprocessing="scale", model=model, lr=0.01,
                  lr_decay=1.0, max_epochs=epochs, stop_train_acc=None, test_every=epochs, batch_size=128)
    values.update(changes)
    return RunConfig(**values)


def minimal_loop(config: RunConfig) -> float:
    """The least a PyTorch user writes: shuffled index batches over tensors in memory. Returns seconds."""
    device = default_device()
    data = load_dataset("mnist")
    x = (data.x_train[:config.n_train].float() / 255.0).to(device)
    y = data.y_train[:config.n_train].to(device)
    x_test = (data.x_test[:config.n_test].float() / 255.0).to(device)
    model = build_model(config.model, (1, 28, 28), 10, config.seed).to(device)
    optimizer = (torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9) if config.optimizer == "sgd"
                 else torch.optim.Adam(model.parameters(), lr=config.lr))
    loss_fn = nn.functional.cross_entropy if config.loss == "cross_entropy" else \
        (lambda out, t: nn.functional.mse_loss(out, nn.functional.one_hot(t, 10).float()))
    started = time.perf_counter()
    for epoch in range(config.max_epochs):
        order = torch.randperm(len(y)).to(device)
        for i in range(0, len(y), config.batch_size):
            index = order[i:i + config.batch_size]
            loss = loss_fn(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():  # the trainer evaluates train and test sets at the end; so does this loop
        model(x).argmax(1)
        model(x_test).argmax(1).cpu()
    return time.perf_counter() - started


def conventional_loader(config: RunConfig, raw_root: Path):
    """The papers' code's data pipeline: torchvision MNIST, per-sample ToTensor/Normalize, a shuffling DataLoader."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_set = Subset(datasets.MNIST(str(raw_root), train=True, download=False, transform=transform),
                       range(config.n_train))
    loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, num_workers=0)
    return loader


def dataloader_loop(config: RunConfig, raw_root: Path) -> float:
    """The conventional loop of the papers' code, over :func:`conventional_loader`."""
    loader = conventional_loader(config, raw_root)
    device = default_device()
    model = build_model(config.model, (1, 28, 28), 10, config.seed).to(device)
    optimizer = (torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9) if config.optimizer == "sgd"
                 else torch.optim.Adam(model.parameters(), lr=config.lr))
    started = time.perf_counter()
    for epoch in range(config.max_epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            out = model(xb)
            loss = (nn.functional.cross_entropy(out, yb) if config.loss == "cross_entropy"
                    else nn.functional.mse_loss(out, nn.functional.one_hot(yb, 10).float()))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def loader_only(config: RunConfig, raw_root: Path) -> float:
    """One pass of the conventional loop's DataLoader with no model: the per-sample transforms' cost."""
    loader = conventional_loader(config, raw_root)
    started = time.perf_counter()
    for epoch in range(config.max_epochs):
        for xb, yb in loader:
            pass
    return time.perf_counter() - started


def product_ceiling(k: int = 6, batch: int = 128, width: int = 512, repeats: int = 200) -> dict:
    """FLOP rates of the 10x512 MLP's product (``batch`` x ``width`` x ``width``) one model at a time,
    stacked for ``k`` models (``bmm``), and as one large product. The stacked/single ratio bounds what
    stacking can gain for a model made of such products."""
    device = default_device()
    a, b = torch.randn(batch, width, device=device), torch.randn(width, width, device=device)
    sa, sb = torch.randn(k, batch, width, device=device), torch.randn(k, width, width, device=device)
    big = torch.randn(2048, 2048, device=device)

    def rate(fn, flops: float) -> float:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(repeats):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return flops * repeats / (time.perf_counter() - started)

    single = rate(lambda: a @ b, 2 * batch * width * width)
    stacked = rate(lambda: torch.bmm(sa, sb), 2 * k * batch * width * width)
    large = rate(lambda: big @ big, 2 * 2048 ** 3)
    return dict(single_gflops=single / 1e9, stacked_gflops=stacked / 1e9, large_gflops=large / 1e9,
                stacking_ceiling=stacked / single)


def torchvision_mnist_folder() -> Path:
    """Decompress the on-disk MNIST into torchvision's layout, in a temporary folder."""
    source = Path(load_dataset("mnist").source)
    root = Path(tempfile.mkdtemp(prefix="bench-mnist-"))
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        packed = source / f"{name}.gz"
        if packed.exists():
            with gzip.open(packed) as f, open(raw / name, "wb") as out:
                shutil.copyfileobj(f, out)
        else:
            shutil.copy(source / name, raw / name)
    return root


def trainer_seconds(config: RunConfig) -> float:
    return train(config, progress=False).summary["train_seconds"]


def batched_vs_sequential(model: str, n: int, epochs: int, k: int = 6, **changes) -> dict:
    """K runs of a corruption grid (p = 0, 0.2, ...), one by one and then stacked; ``changes`` set the
    data set, optimizer and so on (default: MNIST, SGD, batch 32 for the MASC MLP and 128 otherwise)."""
    changes = {"batch_size": 32 if "2048" in model else 128, **changes}
    configs = [mnist_config(model, n, epochs, seed=s, randomization="partial_labels", corruption=round(0.2 * s, 1),
                            **changes) for s in range(k)]
    started = time.perf_counter()
    for config in configs:
        train(config, progress=False)
    sequential = time.perf_counter() - started
    started = time.perf_counter()
    train_batched(configs)
    batched = time.perf_counter() - started
    device = default_device()
    picks_batched = prefers_batched(architecture(configs[0]), device)
    return dict(sequential_s=sequential, batched_s=batched, ratio=sequential / batched,
                grid_runner_path="batched" if picks_batched else "sequential",
                grid_runner_ratio=sequential / batched if picks_batched else 1.0)


def bf16_vs_fp32(n: int, epochs: int) -> dict:
    fp32 = train(mnist_config("mlp3x512", n, epochs), progress=False)
    bf16 = train(mnist_config("mlp3x512", n, epochs, precision="bf16"), progress=False)
    return dict(fp32_s=fp32.summary["train_seconds"], bf16_s=bf16.summary["train_seconds"],
                speed_ratio=fp32.summary["train_seconds"] / bf16.summary["train_seconds"],
                fp32_test_acc=fp32.summary["final_test_acc"], bf16_test_acc=bf16.summary["final_test_acc"],
                accuracy_delta=bf16.summary["final_test_acc"] - fp32.summary["final_test_acc"])


def gpu_utilization(n: int) -> dict | None:
    """Samples/s and model-FLOPs utilization of the 3x512 MLP, batched K=6, on a GPU (None on a CPU)."""
    if not torch.cuda.is_available():
        return None
    configs = [mnist_config("mlp3x512", n, 3, seed=s) for s in range(6)]
    started = time.perf_counter()
    train_batched(configs)
    seconds = time.perf_counter() - started
    widths = [784, 512, 512, 512, 10]
    flops_per_sample = 6 * sum(a * b for a, b in zip(widths, widths[1:]))  # forward + backward
    return dict(device=torch.cuda.get_device_name(0), samples_per_s=n * 3 * 6 / seconds,
                mfu=_mfu(flops_per_sample * n * 3 * 6 / seconds))


# Epochs the MASC authors' MLP-MNIST runs took to reach the criterion, p = 0, 0.2, ..., 1 (midpoints of
# the ranges in their result files; ../shared/notes/protocol-notes.md): for projecting a capped probe.
AUTHORS_MASC_MLP_EPOCHS = [48.5, 160.5, 150.0, 137.0, 126.5, 120.0]


def masc_paper_grid(max_epochs: int | None = None) -> dict:
    """The `paper` grid of the MASC chapter's MLP-MNIST (every degree x seed, full MNIST, batch 32, to
    the 99.9% criterion): wall time trained as one stack, and the one-by-one time projected from a
    sequentially trained run's seconds per epoch times the epochs each run took (the same arithmetic,
    so the same epochs). With ``max_epochs`` the grid is a capped probe, and both times are also
    projected to the epochs the authors' runs took."""
    from lib.params import load_params
    from lib.studies.protocols import masc_config

    params = load_params("masc-decoding", "paper")
    spec = params.models["MLP-MNIST"]
    configs = [masc_config(params, spec, p, seed) for p in params.corruption_levels for seed in params.seeds]
    if max_epochs is not None:
        configs = [replace(c, max_epochs=max_epochs) for c in configs]
    probe = train(replace(configs[0], max_epochs=3, stop_train_acc=None), progress=False)
    sequential_epoch_s = float(probe.history.seconds.diff().iloc[1:].median())
    started = time.perf_counter()
    runs = train_batched(configs, progress=True)
    batched_s = time.perf_counter() - started
    epochs = [r.summary["epochs"] for r in runs]
    widths = architecture(configs[0])[1]
    flops_per_sample = 6 * sum(a * b for a, b in zip(widths, widths[1:]))
    n = runs[0].summary["n_train"]
    rows = [dict(corruption=r.config.corruption, seed=r.config.seed, epochs=r.summary["epochs"],
                 converged_epoch=r.summary["converged_epoch"], final_train_acc=r.summary["final_train_acc"],
                 final_test_acc=r.summary["final_test_acc"], best_test_acc=r.summary["best_test_acc"]) for r in runs]
    projected = sequential_epoch_s * sum(epochs)
    result = dict(runs=len(configs), max_epochs=max_epochs, batched_wall_s=batched_s,
                  sequential_epoch_s=sequential_epoch_s, sequential_projected_s=projected,
                  batched_vs_sequential=projected / batched_s, samples_per_s=n * sum(epochs) / batched_s,
                  mfu=_mfu(flops_per_sample * n * sum(epochs) / batched_s), per_run=rows)
    if max_epochs is not None:  # a capped probe: project the full grid to the authors' epochs
        model_epochs = len(params.seeds) * sum(AUTHORS_MASC_MLP_EPOCHS)
        result.update(batched_model_epoch_s=batched_s / sum(epochs),
                      full_grid_batched_projected_s=batched_s / sum(epochs) * model_epochs,
                      full_grid_sequential_projected_s=sequential_epoch_s * model_epochs)
    return result


def _mfu(flops_per_s: float) -> float | None:
    """Achieved over the device's float32 peak (no tensor cores: the runs are float32 without TF32)."""
    peak = {"H100": 67e12, "H200": 67e12, "A100": 19.5e12}
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    peak_flops = next((v for k, v in peak.items() if k in name), None)
    return None if peak_flops is None else flops_per_s / peak_flops


def measure(n: int, epochs: int, results: dict) -> None:
    """Every measurement but the paper grid, into ``results``."""
    raw_root = torchvision_mnist_folder()
    try:
        overhead = {}
        for label, model, extra in (("mlp784-512x3", "mlp3x512", {}),
                                    ("mlp10x512_mse_adam", "mlp10x512-firstbias", dict(loss="mse", optimizer="adam", lr=1e-3))):
            config = mnist_config(model, n, epochs, **extra)
            minimal_loop(config)  # warm-up (first-touch allocations, thread pools)
            t_minimal = minimal_loop(config)
            t_trainer = trainer_seconds(config)
            t_loader = dataloader_loop(config, raw_root)
            t_transforms = loader_only(config, raw_root)
            overhead[label] = dict(trainer_s=t_trainer, minimal_s=t_minimal, dataloader_s=t_loader,
                                   transforms_s=t_transforms,
                                   trainer_vs_minimal_loop=t_minimal / t_trainer,
                                   trainer_vs_dataloader_loop=t_loader / t_trainer,
                                   dataloader_ceiling=t_loader / max(t_loader - t_transforms, 1e-9))
        results["overhead"] = overhead
        results["trainer_vs_minimal_loop"] = min(v["trainer_vs_minimal_loop"] for v in overhead.values())
        results["trainer_vs_dataloader_loop"] = min(v["trainer_vs_dataloader_loop"] for v in overhead.values())
        masc = batched_vs_sequential("mlp-128-512-2048-2048", n // 2, 1)
        deep = batched_vs_sequential("mlp10x512-firstbias", n // 2, epochs)
        results["batched6"] = {"masc_mlp": masc, "mlp10x512": deep}
        results["batched6_vs_sequential_masc_mlp"] = masc["ratio"]
        results["batched6_vs_sequential_mlp10x512"] = deep["ratio"]
        results["grid_runner_vs_sequential_masc_mlp"] = masc["grid_runner_ratio"]
        results["grid_runner_vs_sequential_mlp10x512"] = deep["grid_runner_ratio"]
        conv_n = n // 2 if torch.cuda.is_available() else n // 10
        for label, model, data in (("masc_cnn", "masc-cnn", dict(dataset="fashion-mnist", preprocessing="standardize")),
                                   ("alexnet", "alexnet", dict(dataset="cifar10", preprocessing="zhang"))):
            try:  # the MASC chapter's CNN (Adam, batch 32) and Zhang et al.'s small AlexNet (SGD, batch 128)
                extra = dict(optimizer="adam", lr=2e-4, batch_size=32) if model == "masc-cnn" else {}
                results["batched6"][label] = batched_vs_sequential(model, conv_n, 1, n_test=500, **data, **extra)
                results[f"batched6_vs_sequential_{label}"] = results["batched6"][label]["ratio"]
                results[f"grid_runner_vs_sequential_{label}"] = results["batched6"][label]["grid_runner_ratio"]
            except DatasetNotFound as error:
                results["batched6"][label] = f"skipped: {str(error).splitlines()[0]}"
        precision = bf16_vs_fp32(n, max(epochs, 3))
        results["bf16"] = precision
        results["bf16_vs_fp32_speed"] = precision["speed_ratio"]
        results["bf16_vs_fp32_accuracy_delta"] = precision["accuracy_delta"]
        results["product_ceiling"] = product_ceiling()
        results["gpu"] = gpu_utilization(n) or "no GPU on this machine"
    finally:
        shutil.rmtree(raw_root, ignore_errors=True)


def double_descent_sweep(n: int = 4000, epochs: int = 3, widths: tuple[int, ...] | None = None) -> dict:
    """Belkin et al.'s width sweep (lib.studies.weng2019.double_descent): all widths trained jointly as one block-structured model
    vs one width at a time, same full-batch momentum steps, interleaved in this process. Also how close the joint
    sweep runs to the cost of its widest member alone."""
    from lib.studies.weng2019 import double_descent as dd

    widths = list(widths or (51, 56, 64, 80, 100, 150, 250, 400, 1000))
    split = dd.mnist_split(n, 1000, seed=0)
    spec = dd.TrainSpec(epochs=epochs, lr=0.01, momentum=0.9)

    def joint() -> float:
        started = time.perf_counter()
        dd.train_sweep([dd.glorot(w, 0) for w in widths], split.x_train, split.y_train, spec)
        return time.perf_counter() - started

    def one_by_one() -> tuple[float, float]:
        total, widest = 0.0, 0.0
        for w in widths:
            started = time.perf_counter()
            dd.train_sweep([dd.glorot(w, 0)], split.x_train, split.y_train, spec)
            elapsed = time.perf_counter() - started
            total += elapsed
            widest = elapsed if w == max(widths) else widest
        return total, widest

    joint()  # warm-up
    joint_s, (sequential_s, widest_s) = joint(), one_by_one()
    joint_s = min(joint_s, joint())
    return {"widths": widths, "n_train": n, "epochs": epochs, "joint_s": joint_s, "one_by_one_s": sequential_s,
            "widest_alone_s": widest_s, "speedup": sequential_s / joint_s, "joint_vs_widest": joint_s / widest_s}


def kernel_solver(n: int = 10000, iterations: int = 20) -> dict:
    """The kernel interpolation solver of lib.studies.zhang2017.kernels (Zhang et al. Section 5) on n MNIST images: building K
    (2 n² d flops), then PCG and EigenPro with the Nyström preconditioner, each for ``iterations`` products with K
    (2 n² · 10 flops each) and an exact float64 Cholesky solve for reference; GFLOP/s against the machine's large
    float32 product rate (:func:`product_ceiling`)."""
    from lib.studies.zhang2017 import kernels
    from lib.train import RunConfig, prepare_data

    data = prepare_data(RunConfig(dataset="mnist", n_train=n, n_test=100, preprocessing="scale"))
    x, y = data.x_train.flatten(1), kernels.one_hot(data.y_train, 10)
    started = time.perf_counter()
    K = kernels.gaussian_kernel(x, gamma=0.02)
    build_s = time.perf_counter() - started
    rows = {"n": n, "build_s": build_s, "build_gflops": 2 * n * n * x.shape[1] / build_s / 1e9}
    for method in ("pcg", "eigenpro"):
        _, info = kernels.solve_iterative(K, y, method=method, max_iter=iterations, tol=0.0)
        products_s = info.seconds - info.preconditioner["seconds"]
        rows[method] = {"iterations": info.iterations, "seconds": info.seconds, "residual": info.residuals[-1],
                        "preconditioner_s": info.preconditioner["seconds"],
                        "product_gflops": info.products * 2 * n * n * y.shape[1] / products_s / 1e9}
    started = time.perf_counter()
    kernels.solve_cholesky(K.double(), y)
    rows["cholesky_s"] = time.perf_counter() - started
    rows["large_product_gflops"] = product_ceiling(repeats=20)["large_gflops"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke test of the benchmark)")
    parser.add_argument("--out", default=str(ROOT / "_build" / "bench.json"))
    parser.add_argument("--paper-grid", choices=("auto", "yes", "no"), default="auto",
                        help="time the MASC MLP-MNIST paper grid (auto: only on a GPU; it takes minutes there)")
    parser.add_argument("--paper-grid-epochs", type=int, default=None,
                        help="cap the paper grid at this many epochs and project the full grid from it")
    parser.add_argument("--only-paper-grid", action="store_true", help="skip every other measurement")
    parser.add_argument("--only-double-descent", action="store_true", help="only the double-descent sweep")
    parser.add_argument("--only-kernels", action="store_true", help="only the kernel solver")
    args = parser.parse_args()
    n, epochs = (2000, 1) if args.quick else ((60000, 2) if torch.cuda.is_available() else (10000, 2))
    torch.set_num_threads(torch.get_num_threads())
    results: dict = {"device": str(default_device()), "threads": torch.get_num_threads(), "n_train": n, "epochs": epochs}
    only = args.only_paper_grid or args.only_double_descent or args.only_kernels
    if not only:
        measure(n, epochs, results)
    if not only or args.only_double_descent:
        results["double_descent_sweep"] = double_descent_sweep(epochs=1 if args.quick else 3)
    if not only or args.only_kernels:
        results["kernel_solver"] = kernel_solver(n=2000 if args.quick else 10000, iterations=5 if args.quick else 20)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    if args.paper_grid == "yes" or (args.paper_grid == "auto" and torch.cuda.is_available()):
        print("Timing the MASC MLP-MNIST paper grid (the other results are written already)", flush=True)
        results["masc_mlp_paper_grid"] = masc_paper_grid(args.paper_grid_epochs)
        out.write_text(json.dumps(results, indent=1))
    if not only:
        print_table(results, n, epochs)
    if "kernel_solver" in results:
        k = results["kernel_solver"]
        print(f"  kernel solver (MNIST n = {k['n']:,}): K built in {k['build_s']:.1f} s ({k['build_gflops']:.0f} GFLOP/s); "
              + "; ".join(f"{m}: {k[m]['iterations']} products in {k[m]['seconds']:.1f} s, residual {k[m]['residual']:.1e}, "
                          f"{k[m]['product_gflops']:.0f} GFLOP/s" for m in ("pcg", "eigenpro"))
              + f"; exact float64 Cholesky {k['cholesky_s']:.1f} s; this machine's large float32 product "
                f"{k['large_product_gflops']:.0f} GFLOP/s")
    if "double_descent_sweep" in results:
        d = results["double_descent_sweep"]
        print(f"  double-descent sweep ({len(d['widths'])} widths {d['widths'][0]}-{d['widths'][-1]}, {d['n_train']} "
              f"images, {d['epochs']} full-batch epochs): jointly {d['joint_s']:.2f} s, one width at a time "
              f"{d['one_by_one_s']:.2f} s, speed-up {d['speedup']:.2f}x; the joint sweep costs "
              f"{d['joint_vs_widest']:.2f}x its widest member alone")
    if "masc_mlp_paper_grid" in results:
        g = results["masc_mlp_paper_grid"]
        print(f"  MASC MLP-MNIST paper grid ({g['runs']} runs, max {g['max_epochs'] or 'all'} epochs): "
              f"{g['batched_wall_s']:.0f} s stacked, {g['sequential_projected_s']:.0f} s one by one (projected), "
              f"{g['batched_vs_sequential']:.1f}x; {g['samples_per_s']:.0f} samples/s, MFU {g['mfu']}")
        if g.get("full_grid_batched_projected_s"):
            print(f"  projected to the authors' epochs: {g['full_grid_batched_projected_s'] / 60:.0f} min stacked, "
                  f"{g['full_grid_sequential_projected_s'] / 60:.0f} min one by one")
    print(f"Written to {out}")


def conv_rows(results: dict) -> list[tuple[str, float]]:
    """Table rows for the conv nets' batched ratios that were measured (their data sets may be absent)."""
    rows = []
    for key, name in (("masc_cnn", "MASC CNN (Fashion-MNIST)"), ("alexnet", "small AlexNet (CIFAR-10)")):
        if f"batched6_vs_sequential_{key}" in results:
            rows += [(f"batched K=6 vs sequential, {name}", results[f"batched6_vs_sequential_{key}"]),
                     ("  grid runner's choice for it vs sequential", results[f"grid_runner_vs_sequential_{key}"])]
    return rows


def print_table(results: dict, n: int, epochs: int) -> None:
    rows = [("lib trainer vs minimal loop (>= 0.9 wanted)", results["trainer_vs_minimal_loop"]),
            ("lib trainer vs DataLoader loop (>= 2 wanted)", results["trainer_vs_dataloader_loop"]),
            ("batched K=6 vs sequential, MASC MLP (2048-wide)", results["batched6_vs_sequential_masc_mlp"]),
            ("  grid runner's choice for it vs sequential", results["grid_runner_vs_sequential_masc_mlp"]),
            ("batched K=6 vs sequential, 10x512 MLP (>= 1.3 wanted)", results["batched6_vs_sequential_mlp10x512"]),
            ("  grid runner's choice for it vs sequential", results["grid_runner_vs_sequential_mlp10x512"]),
            *conv_rows(results),
            ("bf16 vs fp32 speed", results["bf16_vs_fp32_speed"]),
            ("bf16 - fp32 final test accuracy", results["bf16_vs_fp32_accuracy_delta"])]
    print(f"\nBenchmarks on {results['device']} ({results['threads']} threads), {n} MNIST images, {epochs} epochs")
    for label, value in rows:
        print(f"  {label:<56} {value:8.3f}")
    for label, v in results["overhead"].items():
        print(f"  {label}: trainer {v['trainer_s']:.2f} s, minimal {v['minimal_s']:.2f} s, DataLoader {v['dataloader_s']:.2f} s")
    for label, v in results["overhead"].items():
        print(f"  {label}: DataLoader loop ceiling (loop / (loop - transforms)) {v['dataloader_ceiling']:.2f}")
    c = results["product_ceiling"]
    print(f"  products: one model {c['single_gflops']:.0f} GFLOP/s, six stacked {c['stacked_gflops']:.0f}, "
          f"2048^3 {c['large_gflops']:.0f}; stacking ceiling {c['stacking_ceiling']:.2f}x")
    print(f"  GPU: {results['gpu']}")


if __name__ == "__main__":
    main()
