"""Content keys: what the run cache (:mod:`lib.runs`), the result store (:mod:`lib.cache`) and the results store
(:mod:`lib.results`) file a result under.

A run's key (:func:`run_key`) is the SHA-256 of its configuration (:class:`lib.train.RunConfig`), of the version of
the training code (:func:`code_version`) and of the data it reads (:func:`lib.data.fingerprint`: the content of the
data set's arrays, wherever and in whatever format they are found). The same configuration trained by code that
behaves differently, or on other data, gets another key; the same configuration on the same data with the same code
gets the same key on every machine.

The version of the code is a digest of its behaviour, not of its text (:func:`behaviour_digest`): each module's
syntax tree with its docstrings (and any other bare string statement) removed, comments never being part of it, and
with no line or column numbers. Editing a docstring, a comment, blank lines or the layout of a module keeps every
key; any edit of code (an expression, a constant, a default, an import) changes them.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lib.train import RunConfig

PACKAGE_DIR = Path(__file__).resolve().parent
#: The modules whose code determines a run's result; their behaviour digest is part of every run's key.
TRAINING_MODULES = ("data.py", "corrupt.py", "augment.py", "models.py", "train.py", "batched.py")


def _is_bare_string(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _canonical(node) -> str:
    """A node as text: its class and every field that holds something, recursively; no positions.

    Fields that are ``None`` or empty lists are left out, so a field a newer Python adds to the tree with an empty
    default (``type_params`` in 3.12) leaves the text unchanged. Bare string statements (docstrings) are dropped
    from every body."""
    if isinstance(node, ast.AST):
        parts = []
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                value = [item for item in value if not _is_bare_string(item)]
            if value is None or value == []:
                continue
            parts.append(f"{name}={_canonical(value)}")
        return f"{type(node).__name__}({', '.join(parts)})"
    if isinstance(node, list):
        return "[" + ", ".join(_canonical(item) for item in node) + "]"
    return repr(node)


def behaviour_digest(source: str) -> str:
    """SHA-256 of the behaviour of Python ``source``: its syntax tree without docstrings, comments or positions
    (:func:`_canonical`). Two sources that differ only in docstrings, comments or layout have the same digest."""
    return hashlib.sha256(_canonical(ast.parse(source)).encode()).hexdigest()


def file_digest(path: Path) -> str:
    """:func:`behaviour_digest` of a Python file; the SHA-256 of the bytes of any other file."""
    data = Path(path).read_bytes()
    return behaviour_digest(data.decode()) if Path(path).suffix == ".py" else hashlib.sha256(data).hexdigest()


def training_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 (16 hex digits) of the behaviour of :data:`TRAINING_MODULES` (:func:`file_digest`), names and
    digests, in order."""
    digest = hashlib.sha256()
    for name in TRAINING_MODULES:
        digest.update(name.encode())
        digest.update(file_digest(package_dir / name).encode())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The version of the training code in every run key: :func:`training_digest` of this package."""
    return training_digest()


def run_key(config: RunConfig) -> str:
    """The key of ``config``'s run: SHA-256 (20 hex digits) of the configuration, :func:`code_version` and
    :func:`lib.data.fingerprint` of its data set (loaded, or downloaded where torchvision may, if it was never
    fingerprinted; :class:`lib.data.DatasetNotFound` if it is nowhere)."""
    from lib.data import fingerprint

    payload = json.dumps(config.to_dict(), sort_keys=True) + code_version() + (fingerprint(config.dataset) or "")
    return hashlib.sha256(payload.encode()).hexdigest()[:20]
