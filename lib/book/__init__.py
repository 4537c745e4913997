"""The publishing layer: what only the book needs, apart from the science in ``lib``.

- :mod:`lib.book.build`: execute the chapters with papermill and render the site (``python -m lib.book``);
- :mod:`lib.book.cli`: the command line ``python -m lib {run,book,runs}``;
- :mod:`lib.book.opening`: the box that opens every chapter;
- :mod:`lib.book.claims`: paper-vs-ours claims and the scorecard;
- :mod:`lib.book.plots`: the book's chart theme and chart helpers;
- :mod:`lib.book.sphinx_fixes`: a Sphinx extension for the build.

A new chapter's science (a solver, a probe, a model) goes into ``lib``; what only its page needs goes here.
"""
