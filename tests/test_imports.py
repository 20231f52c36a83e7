"""No import circles inside vsugsp/ (issue 22 item 6).

Every module is parsed with ast; every import counts, at module level or inside a
function (a lazy import is still a circle), relative or absolute.  The edge rules
are those of the project's before-stop check (/work/shared/hooks/before-stop): an
import names a module, or a package whose ``__init__`` only gathers names; edges
to a package's ``__init__`` and to one's own parent package are left out.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vsugsp"


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every .py under ``root`` (a package folder)."""
    mods = {}
    for f in root.rglob("*.py"):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def imported_names(tree: ast.AST, pkg: str) -> list[str]:
    """Absolute dotted names every import in ``tree`` may refer to (``pkg``: the importing package)."""
    names: list[str] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            names += [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            base = n.module or ""
            if n.level:
                parts = pkg.split(".")
                up = parts[: len(parts) - (n.level - 1)]
                base = ".".join(up + ([n.module] if n.module else []))
            # ``from a import b``: b may be a name in a or the module a.b
            names += [base] + [f"{base}.{a.name}" for a in n.names]
    return names


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → modules of the package it imports (the before-stop check's edges)."""
    mods = module_files(root)

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        pkg = m if f.name == "__init__.py" else m.rpartition(".")[0]
        for x in imported_names(ast.parse(f.read_text(encoding="utf-8"), str(f)), pkg):
            r = resolve(x)
            if r and r != m and not m.startswith(r + ".") and mods[r].name != "__init__.py":
                graph[m].add(r)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a → … → a) per strongly connected component that has one (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(_cycle_through(graph, set(comp), min(comp)))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return cycles


def _cycle_through(graph: dict[str, set[str]], comp: set[str], start: str) -> list[str]:
    """A shortest path start → … → start inside one strongly connected component (breadth first)."""
    prev: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & comp):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return path[::-1] + [start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is on no cycle")  # Tarjan said it was


def test_no_import_circles_in_the_package():
    graph = import_graph()
    assert len(graph) > 50 and graph["vsugsp.model.blocks"], "the package was not parsed"
    cycles = find_cycles(graph)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_every_kind_of_import_is_an_edge(tmp_path):
    # module-level and function-level, relative and absolute, ``from . import x``
    pkg = tmp_path / "p"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import p.b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")
    (pkg / "sub" / "c.py").write_text("from ..d import name\n")
    (pkg / "d.py").write_text("def g():\n    from p import a\n")
    graph = import_graph(pkg)
    assert graph == {"p": set(), "p.sub": set(), "p.a": {"p.b"}, "p.b": {"p.sub.c"}, "p.sub.c": {"p.d"},
                     "p.d": {"p.a"}}
    assert find_cycles(graph) == [["p.a", "p.b", "p.sub.c", "p.d", "p.a"]]
    (pkg / "d.py").write_text("import os\n")
    assert find_cycles(import_graph(pkg)) == []


def test_one_rule_for_names_and_paths():
    # presets/recipes and weights share vsugsp.names: a bare word is a bundled name, a path
    # needs a separator or the kind's suffix
    from pathlib import Path

    from vsugsp.model.io import looks_like_path as weights_path
    from vsugsp.yamlfile import looks_like_path as yaml_path

    for word in ("fast", "small", "small-cpu", "fast.pt.bak"):
        assert not yaml_path(word) and not weights_path(word)
    assert weights_path("mine.pt") and not yaml_path("mine.pt")
    assert yaml_path("mine.yaml") and yaml_path("mine.yml") and not weights_path("mine.yaml")
    for p in ("./fast", "dir/small", "C:\\w\\small"):
        assert yaml_path(p) and weights_path(p)
    assert weights_path(Path("small"))
