"""No import circles in `gateway` or `benchmarks` (issue 10; house style: "no import circles").

The graph is read from the source with `ast`, so every import counts — at module level, inside a
function, under `if TYPE_CHECKING:` — because each one is a dependency a reader has to hold in
their head, whether or not Python happens to execute it at import time. An edge goes from a
module to the in-project module it names: `from a.b import c` is an edge to `a.b.c` when that is
a module, else to `a.b` (the rule grimp / import-linter use). Importing `a.b.c` also runs the
`__init__` of `a` and `a.b`, but those are not counted as edges: they do nothing here but carry
docstrings (`gateway/config/__init__.py` also re-exports its modules, none of which imports it
back), and counting them would make every package a circle with its own modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "benchmarks")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # path:line of the import statement


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name → file, for every .py file under each package."""
    out: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest in-project module that `name` starts with (`a.b.func` → `a.b`)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    """The dotted names an import statement reaches (relative imports made absolute)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        anchor = module.split(".")
        if not is_package:
            anchor = anchor[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, *([base] if base else [])])
    for alias in node.names:
        yield base if alias.name == "*" else f"{base}.{alias.name}"


def import_graph(root: Path, packages: Iterable[str]) -> list[Edge]:
    modules = module_files(root, packages)
    edges: list[Edge] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in _imported(node, module, path.name == "__init__.py"):
                target = _resolve(name, modules)
                if target is not None and target != module:
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    edges.append(Edge(module, target, where))
    return edges


def find_cycles(edges: Iterable[Edge]) -> list[list[Edge]]:
    """One cycle through each strongly connected component of more than one module (Tarjan)."""
    out_edges: dict[str, list[Edge]] = {}
    for e in edges:
        out_edges.setdefault(e.source, []).append(e)
        out_edges.setdefault(e.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:  # recursion depth is bounded by the module count (~150)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for e in out_edges[v]:
            if e.target not in index:
                visit(e.target)
                low[v] = min(low[v], low[e.target])
            elif e.target in on_stack:
                low[v] = min(low[v], index[e.target])
        if low[v] == index[v]:
            component: set[str] = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(out_edges):
        if v not in index:
            visit(v)
    return [_cycle_in(sorted(c), out_edges, c) for c in components]


def _cycle_in(nodes: list[str], out_edges: dict[str, list[Edge]], inside: set[str]) -> list[Edge]:
    """A shortest path from the component's first module back to itself (breadth-first)."""
    start = nodes[0]
    came_by: dict[str, Edge] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for v in frontier:
            for e in out_edges[v]:
                if e.target not in inside or e.target in came_by:
                    continue
                came_by[e.target] = e
                if e.target == start:
                    path = [e]
                    while path[0].source != start:
                        path.insert(0, came_by[path[0].source])
                    return path
                nxt.append(e.target)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def describe(cycle: list[Edge]) -> str:
    return " → ".join(f"{e.source} ({e.where})" for e in cycle) + f" → {cycle[0].source}"


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Module-level, function-level, TYPE_CHECKING and relative imports all make edges."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import c\n")
    (pkg / "a.py").write_text("import pkg.b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.sub import c\n    return c\n")
    (pkg / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import thing\n"
    )
    (pkg / "d.py").write_text("import json\nfrom pkg import a\n")
    edges = {(e.source, e.target) for e in import_graph(tmp_path, ["pkg"])}
    assert edges == {
        ("pkg.a", "pkg.b"),
        ("pkg.b", "pkg.sub.c"),
        ("pkg.sub.c", "pkg.a"),
        ("pkg.sub", "pkg.sub.c"),
        ("pkg.d", "pkg.a"),
    }
    (cycle,) = find_cycles(import_graph(tmp_path, ["pkg"]))
    assert [e.source for e in cycle] == ["pkg.a", "pkg.b", "pkg.sub.c"]
    assert describe(cycle).startswith("pkg.a (pkg/a.py:1) → pkg.b (pkg/b.py:2) → pkg.sub.c")


def test_no_import_cycles_in_gateway_or_benchmarks() -> None:
    edges = import_graph(ROOT, PACKAGES)
    assert any(e.source.startswith("benchmarks.") for e in edges)  # the walk found the code
    assert any(e.source.startswith("gateway.") for e in edges)
    cycles = find_cycles(edges)
    assert not cycles, "import cycles:\n" + "\n".join(describe(c) for c in cycles)
