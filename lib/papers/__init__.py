"""The papers' own numbers, as data: one YAML file per paper in this folder, read by chapters and the scorecard.

A chapter never types a paper's number; it reads it here, with the table or figure it comes from::

    from lib.papers import paper
    zhang = paper("zhang2017")              # in a chapter: Chapter(..., papers=["zhang2017"]).papers["zhang2017"]
    zhang["table1.mlp3x512.none.test"]      # 52.39
    zhang.source("table1.mlp3x512.none.test")   # 'Table 1'
    zhang.table("table1")                   # every value under that prefix, as a DataFrame

File layout (``lib/papers/<name>.yaml``)::

    paper: zhang2017
    cite: zhang2017rethinking           # its key in references.bib
    title: Understanding deep learning requires rethinking generalization
    values:
      table1.mlp3x512.none.test: {value: 52.39, unit: "%", source: Table 1, note: "no regularizer"}

A value may be a number, a string, or a list (a range read off a figure, a row of a table). Keys are dotted paths
whose parts are the table/figure, then the row, then the column, so :meth:`Reference.table` can spread them out.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PAPERS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Reference:
    """The reference values of one paper (a read-only mapping from dotted keys to values)."""

    name: str
    cite: str
    title: str
    entries: dict

    def entry(self, key: str) -> dict:
        try:
            return self.entries[key]
        except KeyError:
            close = [k for k in self.entries if k.split(".")[0] == key.split(".")[0]]
            raise KeyError(f"{self.name} has no reference value {key!r}; under the same prefix: {close[:20]}") from None

    def __getitem__(self, key: str) -> Any:
        return self.entry(key)["value"]

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def get(self, key: str, default: Any = None) -> Any:
        return self.entries[key]["value"] if key in self.entries else default

    def source(self, key: str) -> str:
        """Where in the paper the value comes from (a table, a figure, a page of the text)."""
        return self.entry(key).get("source", "")

    def unit(self, key: str) -> str:
        return self.entry(key).get("unit", "")

    def keys(self, prefix: str = "") -> list[str]:
        """The keys under ``prefix`` (``"table1"`` matches ``table1.*``), in file order."""
        return [k for k in self.entries if not prefix or k == prefix or k.startswith(prefix + ".")]

    def table(self, prefix: str = ""):
        """The values under ``prefix`` as a DataFrame: one row per key, its parts after the prefix as columns."""
        import pandas as pd

        rows = []
        for key in self.keys(prefix):
            rest = key[len(prefix) + 1:] if prefix else key
            parts = rest.split(".")
            rows.append({**{f"level{i}": part for i, part in enumerate(parts)}, "key": key,
                         "value": self.entries[key]["value"], "unit": self.entries[key].get("unit", ""),
                         "source": self.entries[key].get("source", ""), "note": self.entries[key].get("note", "")})
        return pd.DataFrame(rows)


def _read(path: Path) -> Reference:
    data = yaml.safe_load(path.read_text()) or {}
    entries = {}
    for key, entry in (data.get("values") or {}).items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise ValueError(f"{path}: reference value {key!r} must be a mapping with a 'value' (and 'source')")
        if not entry.get("source"):
            raise ValueError(f"{path}: reference value {key!r} does not say where in the paper it comes from ('source')")
        entries[str(key)] = dict(entry)
    return Reference(data.get("paper", path.stem), data.get("cite", ""), data.get("title", ""), entries)


@functools.lru_cache(maxsize=None)
def paper(name: str) -> Reference:
    """The reference values of paper ``name`` (``lib/papers/<name>.yaml``)."""
    path = PAPERS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no reference values for paper {name!r}: {path} does not exist; "
                                f"known: {sorted(p.stem for p in PAPERS_DIR.glob('*.yaml'))}")
    return _read(path)


def papers() -> list[str]:
    return sorted(p.stem for p in PAPERS_DIR.glob("*.yaml"))
