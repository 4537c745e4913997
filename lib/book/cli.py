"""Command line: ``python -m lib {run,book,runs} ...``.

    python -m lib run zhang-randomization --scale smoke -p max_epochs 20
    python -m lib run zhang-randomization --scale full --record
    python -m lib book --scale cpu
    python -m lib runs list
    python -m lib runs clear
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from lib.book import build as book
from lib.params import SCALES, load_params, parse_value


def _parse_value(text: str):
    """A ``-p NAME VALUE`` value as a parameters file reads it (:func:`lib.params.parse_value`: numbers, ``1e-3``
    too, lists, null, true/false; a repeated key is an error), else the string."""
    return parse_value(text)


def command_run(args: argparse.Namespace) -> int:
    overrides = {name: _parse_value(value) for name, value in args.parameter or []}
    load_params(args.chapter, args.scale, overrides)  # fail fast on a typo, before starting a kernel
    output = Path(args.output or f"{args.chapter}-{args.scale}.ipynb").resolve()
    print(f"Executing book/{args.chapter}.md at scale {args.scale!r}"
          + (f" with {overrides}" if overrides else "") + f" → {output}")
    from lib import results, settings

    record = {"LIB_RECORD": args.scale} if args.record else {}
    with settings.override(**record):
        seconds = book.execute_chapter(args.chapter, args.scale, output, overrides, reuse=False, progress=args.chapter)
    print(f"Done in {seconds:.0f} s")
    if args.record:
        print(f"Recorded into {results.results_dir() / args.scale}: commit it (git add {results.results_dir().name})")
    return 0


def command_book(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    html = book.build(args.scale, Path(args.build_dir), reuse=not args.rerun)
    print(f"Built in {time.perf_counter() - started:.0f} s: open {html / 'index.html'}")
    return 0


def command_runs(args: argparse.Namespace) -> int:
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
    if not args.yes and sys.stdin.isatty():
        if input(f"Delete every cached run in {cache_dir()}? [y/N] ").strip().lower() != "y":
            print("Nothing deleted.")
            return 1
    shutil.rmtree(cache_dir(), ignore_errors=True)
    print(f"Deleted {cache_dir()}")
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

    runs = commands.add_parser("runs", help="list or clear the cached training runs",
                               description="The run cache is $LIB_CACHE_DIR or <repo>/_runs.")
    runs.add_argument("action", choices=("list", "clear"), help="list: one line per cached run; clear: delete them all")
    runs.add_argument("-y", "--yes", action="store_true", help="clear without asking")
    runs.set_defaults(handler=command_runs)
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
