"""Command line: ``python -m lib {run,book,runs} ...``.

    python -m lib run zhang-randomization --scale smoke -p max_epochs 20
    python -m lib run zhang-randomization --scale full --record
    python -m lib book --scale cpu
    python -m lib runs list
    python -m lib runs clear
    python -m lib runs migrate --dry-run
    python -m lib record-paper --budget-min 14
    python -m lib precision
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from lib.book import build as book
from lib.params import SCALES, load_params, parse_value


def _parse_value(text: str):
    """A ``-p NAME VALUE`` value as a parameters file reads it (:func:`lib.params.parse_value`: numbers, ``1e-3``
    too, lists, null, true/false; a repeated key is an error), else the string."""
    return parse_value(text)


def _is_tracked(path: Path) -> bool:
    """Whether git tracks ``path`` in the repository around the book (``False`` where there is no git or no checkout)."""
    try:
        relative = path.relative_to(book.REPO_ROOT)
    except ValueError:
        return False
    try:
        found = subprocess.run(["git", "-C", str(book.REPO_ROOT), "ls-files", "--error-unmatch", "--", str(relative)],
                               capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return found.returncode == 0


def check_output(output: Path) -> None:
    """Refuse (``ValueError``) an executed notebook's path that is not a ``.ipynb`` file, or that is a file git
    tracks (a chapter's ``book/*.md``, any source of the repository): ``-o`` never overwrites a source."""
    if output.suffix != ".ipynb":
        raise ValueError(f"-o {output}: an executed notebook is written to a .ipynb file, not a {output.suffix or 'suffix-less'} "
                         f"one (nothing was executed or overwritten)")
    if _is_tracked(output):
        raise ValueError(f"-o {output}: refusing to overwrite a file of the repository (git tracks it); write the "
                         f"executed notebook elsewhere (nothing was executed or overwritten)")


def command_run(args: argparse.Namespace) -> int:
    overrides = {name: _parse_value(value) for name, value in args.parameter or []}
    load_params(args.chapter, args.scale, overrides)  # fail fast on a typo, before starting a kernel
    output = Path(args.output or f"{args.chapter}-{args.scale}.ipynb").resolve()
    check_output(output)
    print(f"Executing book/{args.chapter}.md at scale {args.scale!r}"
          + (f" with {overrides}" if overrides else "") + f" → {output}")
    from lib import results, settings

    record = {"LIB_RECORD": args.scale} if args.record else {}
    with settings.override(**record):
        # a failed execution's notebook goes to the output too, for reading its error (no stamp: never reused)
        seconds = book.execute_chapter(args.chapter, args.scale, output, overrides, reuse=False, progress=args.chapter,
                                       failed=output)
    print(f"Done in {seconds:.0f} s")
    if args.record:
        print(f"Recorded into {results.results_dir() / args.scale}: commit it (git add {results.results_dir().name})")
    return 0


def command_book(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    html = book.build(args.scale, Path(args.build_dir), reuse=not args.rerun)
    print(f"Built in {time.perf_counter() - started:.0f} s: open {html / 'index.html'}")
    return 0


def command_migrate(args: argparse.Namespace) -> int:
    """``python -m lib runs migrate``: re-key the committed results store and the run caches to this checkout's keys
    without retraining (:mod:`lib.migrate`), printing what it did."""
    import json

    from lib import migrate, results
    from lib.train import RunConfig

    configs = []
    for text in args.config or []:  # a JSON mapping, or a file that holds one
        configs.append(RunConfig.from_dict(json.loads(text if text.lstrip().startswith("{") else Path(text).read_text())))
    caches = [] if args.no_cache else ([Path(c) for c in args.cache] if args.cache else migrate.default_caches())
    root = None if args.no_results else Path(args.results or results.results_dir())
    places = ([f"the results store {root}"] if root else []) + [f"the cache {c}" for c in caches]
    print(("Dry run: nothing is changed. " if args.dry_run else "") + "Migrating " + (", ".join(places) or "nothing"))
    report = migrate.Migration(root, caches, configs, dry_run=args.dry_run).run()
    for line in report.lines(dry_run=args.dry_run):
        print(line)
    return 0


def command_record_paper(args: argparse.Namespace) -> int:
    """``python -m lib record-paper``: record the most valuable runs of the papers' protocol the results store lacks,
    within a time budget (:func:`lib.book.record.record_paper`); exit status 1 where training failed."""
    from lib.book import record

    report = record.record_paper(args.scale, budget_s=args.budget_min * 60, batched=args.batched,
                                 checkpoint_every_s=args.checkpoint_every_s, dry_run=args.dry_run)
    if not args.dry_run:
        print(record.summary_line(report))
    return 1 if report.failed else 0


def command_precision(args: argparse.Namespace) -> int:
    """``python -m lib precision``: measure (or read from its cache) which precision trains each network of a scale's
    chapters faster here, fp32 or bf16 autocast (:mod:`lib.precision`), one line each with the parameters' choice."""
    from lib import precision
    from lib.book.record import recorded_networks

    networks = recorded_networks(args.scale, args.chapter or None)
    print(f"Milliseconds per training step in fp32 and in bf16 autocast, on {args.steps} steps x {args.epochs - 2} "
          f"epoch(s) x {args.rounds} round(s) each (cached in {precision.cache_path()}):")
    for network in networks:
        found = precision.probe(network.config, threads=args.threads or network.threads, remeasure=args.remeasure,
                                steps=args.steps, epochs=args.epochs, rounds=args.rounds)
        print(f"{network.chapter} {network.name}: {found.line()}; its parameters at {args.scale}: "
              f"{network.config.precision}")
    return 0


def command_runs(args: argparse.Namespace) -> int:
    if args.action == "clear":  # decided before lib.runs (and torch) is imported: a quick command
        from lib import settings

        return clear_cache(settings.cache_dir(), yes=args.yes)
    from lib.runs import cache_dir, cached_runs

    if args.action == "list":
        frame = cached_runs()
        if frame.empty:
            print(f"No runs cached in {cache_dir()}")
            return 0
        columns = [c for c in ("key", "dataset", "model", "randomization", "corruption", "n_train", "seed", "epochs",
                               "final_train_acc", "final_test_acc", "train_seconds", "intact") if c in frame]
        print(frame[columns].to_string(index=False))
        print(f"\n{len(frame)} runs in {cache_dir()}")
        for key in frame.key[~frame.intact] if "intact" in frame else []:
            print(f"damaged (never used; retrained when next asked for): {cache_dir() / key}  "
                  f"clear it with: rm -rf {cache_dir() / key}")
        return 0
    raise ValueError(f"unknown action {args.action!r}")


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e6:.1f} MB" if nbytes >= 1e5 else f"{nbytes:,} bytes"


def clear_cache(folder: Path, yes: bool = False) -> int:
    """Delete the cache ``folder`` (``python -m lib runs clear``) and say what was deleted; returns the exit status.

    Only a folder lib made is deleted: one that holds :data:`lib.cache.CACHE_MARKER` (written when lib creates a
    cache); any other folder is refused (status 2). Without ``yes`` it asks on the terminal, and where standard input
    is not a terminal it refuses (status 2) instead of deleting unasked. It reports the files and bytes actually
    deleted; a file it could not delete (a read-only cache) is named, and the status is then 1 (the marker stays, so
    the command can be run again)."""
    from lib.cache import CACHE_MARKER

    folder = Path(folder)
    if not folder.exists():
        print(f"No cache at {folder}: nothing to delete.")
        return 0
    if not (folder / CACHE_MARKER).is_file():
        print(f"error: refusing to delete {folder}: it is not a cache lib made (it has no {CACHE_MARKER} file, which "
              f"lib writes when it creates a cache). Check $LIB_CACHE_DIR; delete the folder yourself if you mean it.",
              file=sys.stderr)
        return 2
    files = [Path(root) / name for root, _, names in os.walk(folder) for name in names]
    contents = f"{len(files)} files, {_size(sum(path.lstat().st_size for path in files))}"
    if not yes:
        if not sys.stdin.isatty():
            print(f"error: refusing to delete {folder} ({contents}) without -y: standard input is not a terminal, so "
                  f"there is no one to ask. Run `python -m lib runs clear -y` to delete it.", file=sys.stderr)
            return 2
        if input(f"Delete the cache {folder} ({contents})? [y/N] ").strip().lower() != "y":
            print("Nothing deleted.")
            return 1
    deleted, nbytes, failed = 0, 0, []
    for root, dirs, names in os.walk(folder, topdown=False):
        for name in names:
            path = Path(root) / name
            if path == folder / CACHE_MARKER:
                continue  # last, once everything else is gone
            try:
                size = path.lstat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as error:
                failed.append(f"{path}: {error.strerror or error}")
                continue
            deleted, nbytes = deleted + 1, nbytes + size
        for name in dirs:
            try:
                (Path(root) / name).rmdir()
            except OSError:
                pass  # not empty: a file in it could not be deleted (named above)
    if not failed:
        try:
            size = (folder / CACHE_MARKER).lstat().st_size
            (folder / CACHE_MARKER).unlink()
            deleted, nbytes = deleted + 1, nbytes + size
            folder.rmdir()
        except OSError as error:
            failed.append(f"{folder}: {error.strerror or error}")
    done = f"Deleted {deleted} files ({_size(nbytes)}) from {folder}" if deleted else f"Deleted nothing in {folder}"
    if failed:
        print(f"{done}; {len(failed)} could not be deleted, e.g. {failed[0]}", file=sys.stderr)
        return 1
    print(f"{done}, and the folder.")
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m lib", description="Run chapters, build the book, manage cached runs.")
    commands = main.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="execute one chapter with papermill at a scale",
                              description="Execute book/CHAPTER.md with papermill at a scale, writing an executed notebook. "
                                          "Finished training runs come from the run cache.")
    run.add_argument("chapter", choices=book.chapters(), help="chapter name (a file book/<name>.md)")
    run.add_argument("--scale", default="cpu", choices=SCALES, help="parameters file to use (default: cpu)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="override one parameter of the chapter's file; VALUE is read as YAML (repeatable)")
    run.add_argument("-o", "--output", help="executed notebook to write (default: CHAPTER-SCALE.ipynb)")
    run.add_argument("--record", action="store_true",
                     help="record the chapter's runs, results and claims into the results store, results/SCALE/ "
                          "($LIB_RESULTS_DIR), for the book to show beside other scales (lib.results)")
    run.set_defaults(handler=command_run)

    build = commands.add_parser("book", help="build the whole book into _build/html",
                                description="Execute every chapter at a scale, then render the site with jupyter-book.")
    build.add_argument("--scale", default="cpu", choices=SCALES, help="scale to build at (default: cpu)")
    build.add_argument("--build-dir", default=str(book.REPO_ROOT / "_build"), help="output folder (default: _build)")
    build.add_argument("--rerun", action="store_true", help="execute chapters even if up-to-date executions exist")
    build.set_defaults(handler=command_book)

    runs = commands.add_parser("runs", help="list, clear or migrate the cached training runs",
                               description="The run cache is $LIB_CACHE_DIR or ~/.cache/lib/runs.")
    runs.add_argument("action", choices=("list", "clear", "migrate"),
                      help="list: one line per cached run; clear: delete them all; migrate: re-key the committed "
                           "results store and the run caches to this checkout's keys, without retraining")
    runs.add_argument("-y", "--yes", action="store_true",
                      help="clear without asking (needed where standard input is not a terminal)")
    runs.add_argument("--dry-run", action="store_true", help="migrate: say what would be re-keyed, change nothing")
    runs.add_argument("--cache", action="append", metavar="DIR",
                      help="migrate: this run cache (repeatable; default the configured one and <repo>/_runs)")
    runs.add_argument("--no-cache", action="store_true", help="migrate: no run cache, only the results store")
    runs.add_argument("--results", metavar="DIR", help="migrate: this results store (default $LIB_RESULTS_DIR or "
                                                       "<repo>/results)")
    runs.add_argument("--no-results", action="store_true", help="migrate: only the run caches")
    runs.add_argument("--config", action="append", metavar="JSON",
                      help="migrate: the configuration (a JSON mapping, or a file holding one) of an interrupted "
                           "run whose checkpoint does not name it (repeatable)")
    runs.set_defaults(handler=lambda args: command_migrate(args) if args.action == "migrate" else command_runs(args))

    paper = commands.add_parser(
        "record-paper", help="record the most valuable runs of the papers' protocol within a time budget",
        description="Train and record into results/SCALE/runs/ the runs of the papers' protocol the results store "
                    "lacks, most valuable first: the MASC MLP-MNIST grid, then Zhang et al.'s Inception and AlexNet on "
                    "true and random labels. Each run is recorded as it finishes; training stops before the budget "
                    "ends; calling again goes on (lib.book.record).")
    paper.add_argument("--budget-min", type=float, default=14.0, help="minutes this command may take (default: 14)")
    paper.add_argument("--scale", default="paper", choices=SCALES,
                       help="the parameters whose runs are recorded, into results/SCALE/ (default: paper)")
    paper.add_argument("--batched", action=argparse.BooleanOptionalAction, default=None,
                       help="stack runs of one shape into one model (default: where that pays, a GPU)")
    paper.add_argument("--checkpoint-every-s", type=float, default=30.0,
                       help="seconds between checkpoints of the training runs (default: 30)")
    paper.add_argument("--dry-run", action="store_true", help="say what would be trained; train and record nothing")
    paper.set_defaults(handler=command_record_paper)

    probe = commands.add_parser(
        "precision", help="measure whether fp32 or bf16 autocast trains each recorded network faster here",
        description="Time a few training steps of each network a scale's chapters train, in fp32 and in bf16 "
                    "autocast, on this machine and thread count; print ms per step and the faster precision (bf16 "
                    "only where it is faster by more than 5%). Results are cached per machine (lib.precision).")
    probe.add_argument("--scale", default="full", choices=SCALES, help="the chapters' parameters (default: full)")
    probe.add_argument("--chapter", action="append", help="only this chapter (repeatable)")
    probe.add_argument("--threads", type=int, default=None,
                       help="torch threads (default: each chapter's torch_threads, else torch's)")
    probe.add_argument("--remeasure", action="store_true", help="measure again even where a probe is cached")
    probe.add_argument("--steps", type=int, default=8, help="timed steps per epoch (default: 8)")
    probe.add_argument("--epochs", type=int, default=3, help="epochs per training, the first and last untimed (default: 3)")
    probe.add_argument("--rounds", type=int, default=2, help="trainings per precision (default: 2)")
    probe.set_defaults(handler=command_precision)
    return main


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand; a bad parameter, scale, data set or cache entry ends in one ``error: ...`` line
    (exit status 2) that names it, never in a traceback."""
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except (KeyError, ValueError, FileNotFoundError) as error:  # bad parameters (ParamsError), scales, missing data
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
    except Exception as error:
        # a chapter that failed inside its kernel: papermill's error carries the exception's name and value
        if type(error).__name__ == "PapermillExecutionError":
            print(f"error: book/{getattr(args, 'chapter', '?')}.md failed: {error.ename}: {error.evalue}",
                  file=sys.stderr)
            return 2
        from lib.results import RecordError
        from lib.runs import DamagedRunError

        if isinstance(error, (DamagedRunError, RecordError)):
            print(f"error: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
