# Two commands for a fresh machine:
#   make book   — creates the environment if needed, then builds the whole book at `cpu` scale into _build/html
#   make test   — creates the environment if needed, then runs the tests
# Options: make book SCALE=paper | SCALE=smoke;  PYTHON=python3.11 to choose the interpreter.
#   make lab    — JupyterLab on the repository, chapters (book/*.md) opening as notebooks

PYTHON ?= python3
VENV ?= .venv
SCALE ?= cpu
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: env book test lint browser bench lab clean clean-runs

env: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[pinned,book,test]'
	touch $(STAMP)

book: env
	$(BIN)/python -m lib.book --scale $(SCALE)

# The book's browser test needs Chromium (Debian's package); installed here when missing and run as root.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	    else echo "Chromium is needed for the browser test: sudo apt-get install chromium" >&2; exit 1; fi; }

test: env browser lint
	$(BIN)/python -m pytest -q

# ruff over lib, tests and every chapter's code (each chapter converted to a script by jupytext first)
lint: env
	$(BIN)/ruff check lib tests
	@rm -rf _build/lint && mkdir -p _build/lint
	@for f in book/*.md; do $(BIN)/jupytext --quiet --to py:percent -o _build/lint/$$(basename $$f .md).py $$f; done
	$(BIN)/ruff check _build/lint

# JupyterLab with this repository's settings (.jupyter/: jupytext's notebook is the default viewer of .md files, so
# a chapter opens as a notebook); it listens on localhost only. LAB_ARGS adds options, e.g. LAB_ARGS=--no-browser.
lab: env
	JUPYTER_CONFIG_DIR=$(CURDIR)/.jupyter $(BIN)/jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

# Speed, measured side by side in one run (writes _build/bench.json); BENCH_ARGS=--quick for a fast pass.
bench: env
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

clean:
	rm -rf _build

clean-runs:  # the tests' run cache (_runs) and the book's ($$LIB_CACHE_DIR, default ~/.cache/lib/runs)
	rm -rf _runs
	$(BIN)/python -m lib runs clear -y
