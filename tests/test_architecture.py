"""The layout stays one-way and small, read from the source with ``ast``:

- the import graph of ``nbcount/`` (every import at run time, function-level ones included; imports under
  ``if TYPE_CHECKING:`` are annotations only) has no cycle;
- no module is longer than 400 lines, no function longer than 60;
- no public module is shadowed by a function of the same name on the package (``nbcount.count`` is the function,
  the module is ``nbcount.counting``).

Private names across modules are checked in test_private_imports.py; real aten names in test_op_table.py.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import nbcount

PACKAGE = Path(__file__).resolve().parent.parent / "nbcount"
MODULE_LINES, FUNCTION_LINES = 400, 60


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in root.rglob("*.py"):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _annotation_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found.update(id(n) for sub in node.body for n in ast.walk(sub))
    return found


def _targets(name: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> Iterator[str]:
    """Modules an import statement loads: ``from m import sub`` loads m.sub when it is a module, else m. A
    module's own packages are not edges (Python imports every parent package before any module in it)."""
    if isinstance(node, ast.Import):
        found = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: resolve against this module's package
            package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            base = ".".join([*package[:len(package) - node.level + 1], *([base] if base else [])])
        found = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    yield from (t for t in found if t in modules and t != name and not name.startswith(t + "."))


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package's modules it imports at run time."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _annotation_only(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skip:
                graph[name].update(_targets(name, path, node, modules))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def oversized(root: Path = PACKAGE) -> list[str]:
    """'module: N lines' and 'module:function: N lines' beyond the limits."""
    out = []
    for name, path in sorted(_modules(root).items()):
        source = path.read_text(encoding="utf-8")
        if len(source.splitlines()) > MODULE_LINES:
            out.append(f"{name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > FUNCTION_LINES:
                    out.append(f"{name}:{node.name}: {length} lines")
    return out


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_no_module_or_function_too_long() -> None:
    assert oversized() == []


def test_no_module_is_shadowed_by_a_package_attribute() -> None:
    shadowed = [name for name in nbcount.__all__ if (PACKAGE / f"{name}.py").exists()]
    assert shadowed == []


def test_the_checks_see_a_cycle_a_long_function_and_skip_annotations(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("def f():\n    from pkg import b\n")  # function-level import: counted
    (root / "b.py").write_text("from .a import f\nfrom pkg import c\n")
    (root / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import d\n")
    (root / "d.py").write_text("import pkg.c\n" + "def g():\n" + "    x = 1\n" * 61)
    graph = import_graph(root)
    assert cycles(graph) == [["pkg.a", "pkg.b"]]  # c -> d is an annotation only: no cycle c <-> d
    assert graph["pkg.c"] == set() and graph["pkg.d"] == {"pkg.c"} and graph["pkg.b"] == {"pkg.a", "pkg.c"}
    assert oversized(root) == ["pkg.d:g: 62 lines"]
