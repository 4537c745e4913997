"""No import cycle inside ``lib``: every module's imports of other ``lib`` modules, at the top and inside functions
alike (a lazy import hides a cycle, it does not remove it), form a graph without cycles.

Edges go to the module an import names (``from lib.x import y`` and ``from lib import x`` with ``x`` a module both
give an edge to ``lib.x``); the packages above it (``lib``, ``lib.book``) are left out, since a package that imports
its own submodules is not a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib"

#: Cycles known to exist in modules outside the engine work of issue 21, kept visible here for the lead to remove
#: (each entry is one cycle's modules, sorted). Empty when there are none.
KNOWN_CYCLES: set[tuple[str, ...]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(LIB.rglob("*.py"))}


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The deepest module of ``known`` that ``name`` (``lib.a.b.c``) names: ``lib.a.b`` if ``c`` is a function."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):  # every import, at any depth
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names]  # resolve() drops names that are not modules
        else:
            continue
        for target in targets:
            if target == "lib" or target.startswith("lib."):
                module = resolve(target, known)
                if module is not None and module != name:
                    found.add(module)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_lazy_imports():
    edges = graph()
    assert "lib.train" in edges["lib.runs"]
    assert "lib.batched" in edges["lib.runs"]  # imported inside plan_chunks / train_chunk only
    assert "lib.settings" in edges["lib.train"]


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [("a", "b", "c")]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_runs_and_cluster_do_not_import_each_other_in_a_cycle():
    edges = graph()
    assert "lib.runs" not in edges["lib.cluster"]  # the cluster gets what it needs passed in
    assert edges["lib.settings"] == set()  # every module may use the settings


def test_lib_has_no_import_cycle():
    found = set(cycles(graph()))
    unexpected = sorted(found - KNOWN_CYCLES)
    assert not unexpected, "import cycles in lib: " + "; ".join(" <-> ".join(c) for c in unexpected)
    assert not KNOWN_CYCLES - found, f"known cycles that are gone (remove them from KNOWN_CYCLES): {KNOWN_CYCLES - found}"
