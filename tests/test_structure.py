"""The house rules that keep the tree easy to extend, checked so they stay true:

* no import cycle among the modules of ``src/unforgotten`` and ``benchmarks/`` (lazy imports inside
  functions count; imports under ``if TYPE_CHECKING:`` do not, they never run);
* no method module imports another method module (shared helpers live in their own modules);
* the training loop runs methods but never imports them (callers build them);
* ``cli.py`` imports only ``api`` (the work), ``config`` (reading arguments), ``errors`` (exit
  codes), ``report`` (printing tables) and ``service.commands`` (the service's own commands), as
  ``api.py`` says;
* no source file under ``src/`` is over 600 lines.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

from unforgotten.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
MAX_LINES = 600


# --------------------------------------------------------------------------- the import walk


def module_names(root: Path, top: Path) -> dict[str, Path]:
    """Dotted module name (relative to ``root``) -> file, for every .py file under ``top``."""
    out = {}
    for path in sorted(top.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules among ``known`` that ``name`` imports anywhere (top level or inside functions).

    ``from pkg import sub`` counts as importing ``pkg.sub`` when that is a module, else ``pkg``.
    """
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for stmt in child.orelse:
                    visit_one(stmt)
            else:
                visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.add(sub if sub in known else target)
        else:
            visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in known and m != name}


def import_graph(known: dict[str, Path]) -> dict[str, set[str]]:
    return {name: imported(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
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
                out.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                strong(v)
    finally:
        sys.setrecursionlimit(limit)
    return out


@functools.cache
def tree_graph() -> dict[str, set[str]]:
    known = {**module_names(SRC, SRC / "unforgotten"), **module_names(ROOT / "benchmarks", ROOT / "benchmarks")}
    return import_graph(known)


# --------------------------------------------------------------------------- the walk itself works


def test_the_walk_finds_cycles_lazy_imports_and_skips_type_checking(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c  # lazy\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from ..a import x\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .e import y\n")
    (pkg / "e.py").write_text("import pkg.d\n")
    graph = import_graph(module_names(tmp_path, pkg))
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.sub.c"} and graph["pkg.sub.c"] == {"pkg.a"}
    assert graph["pkg.d"] == set() and graph["pkg.e"] == {"pkg.d"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


# --------------------------------------------------------------------------- the rules


def test_no_import_cycles_in_src_or_benchmarks():
    graph = tree_graph()
    assert len(graph) > 60 and "unforgotten.train.loop" in graph and "reproduce" in graph
    assert cycles(graph) == []


def test_no_method_imports_another_method():
    graph = tree_graph()
    method_modules = {METHODS.get(n).__module__ for n in METHODS.names()}
    assert len(method_modules) == len(METHODS.names())
    bad = {m: sorted(graph[m] & (method_modules - {m})) for m in method_modules if graph[m] & (method_modules - {m})}
    assert bad == {}


def test_the_training_loop_never_imports_methods():
    graph = tree_graph()
    train_modules = [m for m in graph if m.startswith("unforgotten.train")]
    assert "unforgotten.train.loop" in train_modules
    bad = {m: sorted(i for i in graph[m] if i.startswith("unforgotten.methods")) for m in train_modules}
    assert {m: v for m, v in bad.items() if v} == {}


def test_the_cli_goes_through_api():
    # service/commands.py is the service's own CLI layer (typer wrappers over the service package,
    # as cli.py is over api.py), registered on the one app; it holds no work of its own either.
    allowed = {"unforgotten.api", "unforgotten.config", "unforgotten.errors", "unforgotten.report",
               "unforgotten.service.commands"}
    graph = tree_graph()
    assert graph["unforgotten.cli"] <= allowed
    assert {m for m in graph["unforgotten.service.commands"] if not m.startswith("unforgotten.service")} <= {
        "unforgotten.errors"}


def test_no_source_file_is_over_600_lines():
    lengths = {p.relative_to(SRC).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
               for p in (SRC / "unforgotten").rglob("*.py")}
    too_long = {f: n for f, n in lengths.items() if n > MAX_LINES}
    assert too_long == {}, f"split these files (one job each): {too_long}"
