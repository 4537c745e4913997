"""Prose that cannot go stale: a chapter's typed text may quote the papers and its own protocol, never its results.

A number in a chapter's Markdown (outside code, math and references such as "Figure 3") is allowed when it is
a reference value of a paper (:mod:`lib.papers`), a parameter of the chapter at some scale (``params/``), or in
the chapter's short :data:`ALLOWED` list (numbers quoted from a paper's text that the papers' files do not
hold). Anything else is a result typed into the prose: it must come from the notebook (an f-string in a
``remove-input`` cell, or ``glue``) or go. :func:`stale_sentences` lists the offenders;
``python -m lib.book.prose book/<chapter>.md`` prints them.

What a chapter computes must not reach readers as a placeholder either: :func:`notebook_placeholders` lists every
"NaN", "+nan", "nanx", infinity, pandas' ``<NA>``, reason cut off after its colon ("not tested because x:") and run
hash naming a row (20 hex digits, a run's store key) in what a reader sees of an executed chapter.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]

# Numbers a chapter's prose may quote although neither the papers' files nor the parameters hold them:
# protocol facts of the papers' text and the notes (chapter -> numbers, as written).
ALLOWED: dict[str, set[str]] = {}
ALLOWED["zhang-expressivity"] = {"1,024", "24"}  # lib.studies.zhang2017.expressivity's solve block size (1,024 rows) and float32's 24-bit mantissa
ALLOWED["zhang-kernels"] = {"245", "775", "24", "28.8", "14.4"}  # protocol notes: √60,000 ≈ 245 (one-hot, K = I), ±1 coding ≈ 775, K = 28.8 GB in float64 / 14.4 GB in float32; the paper's 24 cores
ALLOWED["masc-decoding"] = {"16", "64", "250", "576", "256", "13", "30,976", "10,816"}  # the paper's CNN (16/32/64 filters, FC 250; layer names Flat (576), Flat (256)) and the pool-stride arithmetic 64·22·22, 64·13·13
ALLOWED["zhang-regularization"] = {"63", "1.8", "1.5", "24", "150"}  # protocol: TensorFlow's crop perturbations (lib.augment: brightness ±63/255, contrast ×[0.2, 1.8], saturation ×[0.5, 1.5]); Table 2's setting, not run: Inception v3's ~24 M parameters, ImageNet's ~150 GB
# Numbers of the inputs every chapter describes: 8-bit pixels, MNIST's 28x28 = 784 and CIFAR's 32x32x3 = 3,072 and
# 28x28x3 = 2,352 values; the data sets' sizes come from lib.data.SIZES and SPLIT_SIZES (and their sums).
COMMON = {"255", "784", "3072", "2352", "32", "28"}

_CODE = re.compile(r"```.*?```|`[^`]*`|\$\$.*?\$\$|\$[^$\n]*\$|\{[a-z]+\}`[^`]*`|<[^>]+>|\[[^\]]*\]\([^)]*\)", re.S)
_FRONT = re.compile(r"\A---\n.*?\n---\n", re.S)
_REFERENCE = re.compile(
    r"\b(?:Figures?|Fig\.|Tables?|Sections?|Appendix|Appendices|Algorithms?|Lemma|Theorem|Eq\.|Equation|Corollary|"
    r"Proposition|Chapter|step|steps|issue|Part)\s+[A-Z]?\d+(?:\.\d+)*[a-z]?(?:\s*(?:[–,-]|and|to)\s*[A-Z]?\d+[a-z]?)*", re.I)
_NAME = re.compile(r"\b[\w-]*[A-Za-z][\w-]*\d[\w.-]*|\b\d+(?:x\d+)+\b|\b\d+[×x]\d+\b|\b\d+-\d+(?:-\d+)+\b")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_NUMBER = re.compile(r"(?<![\w.])[-−]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")


def _canonical(text: str) -> str | None:
    text = text.replace(",", "").replace("−", "-").lstrip("-")
    try:
        value = float(text)
    except ValueError:
        return None
    return f"{value:.6g}"


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def allowed_numbers(chapter: str) -> set[str]:
    """Every number the chapter's prose may quote (canonical form): papers' values, its parameters, :data:`ALLOWED`."""
    numbers: set[str] = set()
    for path in (REPO_ROOT / "lib" / "papers").glob("*.yaml"):
        for entry in (yaml.safe_load(path.read_text()).get("values") or {}).values():
            for leaf in _leaves(entry.get("value")):
                if isinstance(leaf, (int, float)) and not isinstance(leaf, bool):
                    numbers.add(f"{float(leaf):.6g}")
                    if isinstance(leaf, float) and abs(leaf) <= 1:  # a fraction quoted as a percentage, and back
                        numbers.add(f"{100 * leaf:.6g}")
                    else:
                        numbers.add(f"{leaf / 100:.6g}")
                elif isinstance(leaf, str):
                    numbers.update(filter(None, map(_canonical, _NUMBER.findall(leaf))))
    from lib.data import SIZES, SPLIT_SIZES

    for train, test in list(SIZES.values()) + list(SPLIT_SIZES.values()):
        numbers.update(f"{float(v):.6g}" for v in (train, test, train + test))
    numbers.update(f"{float(v):.6g}" for v in (5_000, 70_000))  # Theunissen's validation part; MNIST's 70,000 images
    numbers.update(filter(None, map(_canonical, COMMON)))
    from lib.params import load_yaml

    for path in [*(REPO_ROOT / "params").glob(f"{chapter}.yaml"), *(REPO_ROOT / "params").glob(f"*/{chapter}.yaml")]:
        for leaf in _leaves(load_yaml(path) or {}):
            if isinstance(leaf, str):  # numbers inside names: mlp10x512, vgg11-div8
                numbers.update(filter(None, map(_canonical, re.findall(r"\d+(?:\.\d+)?", leaf))))
            elif isinstance(leaf, (int, float)) and not isinstance(leaf, bool):
                numbers.add(f"{float(leaf):.6g}")
                if isinstance(leaf, float) and abs(leaf) <= 1:
                    numbers.add(f"{100 * leaf:.6g}")
    numbers.update(filter(None, map(_canonical, ALLOWED.get(chapter, ()))))
    return numbers


def prose_of(markdown: str) -> str:
    """The typed prose of a MyST chapter: Markdown outside code cells, code, math, links and references."""
    text = _FRONT.sub("", markdown)
    text = re.sub(r"^```\{code-cell\}.*?^```", " ", text, flags=re.S | re.M)
    text = re.sub(r"^\(.*?\)=$", " ", text, flags=re.M)  # labels
    text = _CODE.sub(" ", text)
    text = _REFERENCE.sub(" ", text)
    text = _YEAR.sub(" ", text)
    return _NAME.sub(" ", text)


def stale_sentences(markdown: str, chapter: str, small: int = 10) -> list[tuple[str, str]]:
    """(number, sentence) for every number in the prose that is not allowed (integers up to ``small`` are
    words of ordinary prose: "two layers", "10 classes")."""
    allowed = allowed_numbers(chapter)
    found = []
    for sentence in re.split(r"(?<=[.!?;:])\s+|\n\s*\n", prose_of(markdown)):
        for number in _NUMBER.findall(sentence):
            canonical = _canonical(number)
            if canonical is None:
                continue
            value = float(canonical)
            if value.is_integer() and abs(value) <= small:
                continue
            if canonical not in allowed:
                found.append((number, " ".join(sentence.split())))
    return found



# --- placeholders: what a computation left in its output instead of words ------------------------------------------

PLACEHOLDERS: dict[str, re.Pattern] = {
    "NaN": re.compile(r"(?<![A-Za-z])[+\-−]?nan(?![a-wyz])", re.I),  # "NaN", "+nan", "nanx", "nan%"
    "infinity": re.compile(r"(?<![A-Za-z])[+\-−]?inf(?![a-z])", re.I),
    "pandas' missing value": re.compile(r"<NA>|&lt;NA&gt;|\bNaT\b"),
    "a reason cut off after its colon": re.compile(r"\bbecause\b[^.\n<]*?:\s*(?=$|[.;,)\]<])", re.M),
    # a run's store key (20 hex digits) naming a row: a table's row header, or the start of a printed line
    "a run hash as a row label": re.compile(r"<th[^>]*>\s*[0-9a-f]{20}\s*</th>|^\s*[0-9a-f]{20}\b", re.M),
}
# the output a rendered page shows of a display, highest first (the book's myst-nb ranks Markdown above HTML)
_SHOWN = ("text/markdown", "text/html", "text/plain")


def placeholders(text: str) -> list[tuple[str, str]]:
    """(kind, the text around it) for every placeholder of :data:`PLACEHOLDERS` in ``text``."""
    found = []
    for kind, pattern in PLACEHOLDERS.items():
        for match in pattern.finditer(text):
            around = text[max(0, match.start() - 60):match.end() + 30]
            found.append((kind, " ".join(re.sub(r"<[^>]+>", " ", around).split())))
    return found


def shown_outputs(notebook) -> list[tuple[int, str]]:
    """(cell index, text) of every output a reader of the executed notebook's page sees: printed text and each
    display's rendered form (charts and cells tagged ``remove-cell``/``remove-output`` left out)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, (str, Path)) else notebook
    shown = []
    for index, cell in enumerate(nb.cells):
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type != "code" or tags & {"remove-cell", "remove-output"}:
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                shown.append((index, output.get("text", "")))
                continue
            data = output.get("data", {})
            if "vega-embed" in data.get("text/html", ""):
                continue
            kind = next((k for k in _SHOWN if k in data), None)
            if kind:
                text = data[kind]
                shown.append((index, text if isinstance(text, str) else "".join(text)))
    return shown


def notebook_placeholders(notebook) -> list[str]:
    """Every placeholder (:func:`placeholders`) in what a reader sees of an executed notebook, as
    ``"cell N: kind: text around it"``."""
    return [f"cell {index}: {kind}: {around}" for index, text in shown_outputs(notebook)
            for kind, around in placeholders(text)]

def main(argv: list[str]) -> int:
    bad = 0
    for name in argv or sorted(str(p) for p in (REPO_ROOT / "book").glob("*.md")):
        path = Path(name)
        for number, sentence in stale_sentences(path.read_text(), path.stem):
            bad += 1
            print(f"{path.stem}: {number!r} in: {sentence[:200]}")
    print(f"{bad} number(s) typed into prose that neither the papers' files nor the parameters hold")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
