"""No import cycles between the modules of ``src/pxrdbench``.

The graph is over modules (files); a package's ``__init__.py`` is the module ``pxrdbench.pkg``. Every import
statement counts, wherever it is: top level, inside functions and methods, under ``if TYPE_CHECKING:``, in
``try`` blocks. ``import pxrdbench.a.b`` and ``from pxrdbench.a import b`` (``b`` a module file) are edges to
``pxrdbench.a.b``; ``from pxrdbench.a import name`` (``name`` not a module) is an edge to ``pxrdbench.a``;
relative imports are resolved against the importing module. Dynamic imports (``importlib``) are not seen.

Package ``__init__`` edges: importing ``pxrdbench.a.b`` also runs ``pxrdbench/a/__init__.py`` first, so it
adds an edge to the package module ``pxrdbench.a`` (and to every package above it) — except to the importing
module's own enclosing packages. Python always starts a module's enclosing packages before the module itself,
so "``pxrdbench.a.b`` imports ``pxrdbench.a.c``, which implies ``pxrdbench.a``" is already satisfied when
``b`` runs, and counting it would turn every package whose ``__init__`` re-exports its submodules into a
spurious cycle (``__init__`` → ``b`` → ``pxrdbench.a``). An *explicit* import of an enclosing package
(``from pxrdbench.a import name`` inside ``pxrdbench.a.b``) does count: it reads names from a possibly
half-initialised ``__init__``, the classic cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

Graph = dict[str, dict[str, list[int]]]
"""module → imported module → line numbers of the import statements behind the edge."""


def module_files(src: Path, package: str) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` file under ``src/package``."""
    modules = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    """Candidate dotted names one import statement may load: for ``from X import a, b``, ``X.a``, ``X.b``
    (resolved to ``X`` by the caller when they are not modules); relative imports made absolute."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, base] if base else parts)
    for alias in node.names:
        yield base if alias.name == "*" else f"{base}.{alias.name}"


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the graph (``pkg.mod.func`` → ``pkg.mod``)."""
    while name not in modules:
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return name


def _enclosing_packages(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(src: Path, package: str) -> Graph:
    """The module import graph of ``src/package`` (see the module docstring for what counts as an edge)."""
    modules = module_files(src, package)
    graph: Graph = {m: {} for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        own_packages = set(_enclosing_packages(module))
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for name in _imported_names(node, module, is_package):
                target = _resolve(name, modules)
                if target is None:
                    continue  # outside the package
                implied = [p for p in _enclosing_packages(target) if p in modules and p not in own_packages]
                for dest in (target, *implied):
                    if dest != module:
                        graph[module].setdefault(dest, []).append(node.lineno)
    return graph


def find_cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


def describe(graph: Graph, cycle: list[str]) -> str:
    """One cycle with its edges and the lines of the imports behind them."""
    members = set(cycle)
    edges = [
        f"    {a} -> {b} (line {', '.join(map(str, sorted(set(lines))))})"
        for a in cycle
        for b, lines in sorted(graph[a].items())
        if b in members
    ]
    return "cycle: " + " <-> ".join(cycle) + "\n" + "\n".join(edges)


def test_no_import_cycles_in_pxrdbench() -> None:
    graph = import_graph(SRC, "pxrdbench")
    assert len(graph) > 50 and "pxrdbench.report.leaderboard" in graph  # the walk found the package
    cycles = find_cycles(graph)
    assert not cycles, f"{len(cycles)} import cycle(s):\n" + "\n".join(describe(graph, c) for c in cycles)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_cycle_finder_sees_imports_inside_functions(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "def f():\n    from pkg import b\n    return b\n",
            "pkg/b.py": "def g():\n    import pkg.a\n    return pkg.a.f\n",
            "pkg/c.py": "import pkg.a\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert find_cycles(graph) == [["pkg.a", "pkg.b"]]
    assert "pkg.a -> pkg.b (line 2)" in describe(graph, ["pkg.a", "pkg.b"])


def test_cycle_finder_sees_type_checking_relative_and_package_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "from .x import X\n",  # re-export: sub -> sub.x
            "pkg/sub/x.py": "from pkg.sub.y import Y\nX = Y\n",  # sub.x -> sub.y: no edge to its own sub
            "pkg/sub/y.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..z import Z\nY = 1\n",
            "pkg/z.py": "from pkg.sub import x\n",  # z -> sub.x and, implied, z -> sub
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.z"].keys() == {"pkg.sub", "pkg.sub.x"}
    assert graph["pkg.sub.x"].keys() == {"pkg.sub.y"}
    assert find_cycles(graph) == [["pkg.sub", "pkg.sub.x", "pkg.sub.y", "pkg.z"]]
