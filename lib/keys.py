"""The content key of a training run: what the run cache (:mod:`lib.runs`) and the results store
(:mod:`lib.results`) file a run under.

A run's key is the SHA-256 of its configuration (:class:`lib.train.RunConfig`) and of the version of the training
code, the digest of :data:`TRAINING_MODULES` (or the earlier version string :data:`KEPT_VERSIONS` pins it to): the
same configuration trained by other training code gets another key.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lib.train import RunConfig

PACKAGE_DIR = Path(__file__).resolve().parent
#: The modules whose source determines a run's result; their digest is part of every run's key.
TRAINING_MODULES = ("data.py", "corrupt.py", "augment.py", "models.py", "train.py", "batched.py")

#: Digests of :data:`TRAINING_MODULES` whose runs keep an earlier key. Until issue 21 the key also hashed
#: ``runs.py`` (the cache's own plumbing, which decides no result), so editing the cache retrained everything.
#: When ``runs.py`` left the key, the six modules' digest at that moment was pinned to the version string the
#: stored runs were keyed with, so every run kept its key. Add an entry only for an edit shown not to change
#: results (a retrained run equal bit for bit to the stored one); any other edit gets a new key.
KEPT_VERSIONS = {
    "6d798a78f53f0531": "674e11421a77144b",  # issue 21: runs.py left the key; the training code as of 1e8ab9d
    # issue 21: data.py and train.py read LIB_* through lib.settings, batched.py silences its layout warning only
    # while it trains. Retrained with this code, 8 stored smoke runs (MLPs, LeNet, the MASC CNN, AlexNet with crops,
    # on MNIST, Fashion-MNIST, CIFAR-10, random vectors, Theunissen's noise) gave the same history and weights bit
    # for bit as the code before (a dropout MLP differs from run to run under either code).
    "1f0da960cb958026": "674e11421a77144b",
}


def training_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """SHA-256 (16 hex digits) of the source of :data:`TRAINING_MODULES`, names and bytes, in order."""
    digest = hashlib.sha256()
    for name in TRAINING_MODULES:
        digest.update(name.encode())
        digest.update((package_dir / name).read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The version of the training code in every run key: :func:`training_digest`, or the earlier version
    string it is pinned to in :data:`KEPT_VERSIONS`."""
    digest = training_digest()
    return KEPT_VERSIONS.get(digest, digest)


def run_key(config: RunConfig) -> str:
    payload = json.dumps(config.to_dict(), sort_keys=True) + code_version()
    return hashlib.sha256(payload.encode()).hexdigest()[:20]
