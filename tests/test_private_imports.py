"""No module of nbcount imports another module's private names, nor a private module of another package.

Read from the source with ``ast`` (function-level imports included): ``from nbcount.x import _y`` is a defect;
``from nbcount.peers._common import ...`` is allowed only inside ``nbcount/peers``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nbcount"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(root: Path = PACKAGE) -> list[str]:
    """'file:line: from module import names' for each import of a private name or of another package's module."""
    found = []
    for path in sorted(root.rglob("*.py")):
        package = ".".join(("nbcount", *path.relative_to(root).parent.parts))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("nbcount"):
                continue
            module = node.module or ""
            names = [a.name for a in node.names if _private(a.name)]
            parts = module.split(".")
            foreign = any(_private(p) for p in parts) and ".".join(parts[:-1]) != package
            if names or foreign:
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}: from {module} import "
                             + ", ".join(a.name for a in node.names))
    return found


def test_no_private_imports_across_modules() -> None:
    assert private_imports() == []


def test_the_check_sees_a_private_import(tmp_path: Path) -> None:
    (tmp_path / "peers").mkdir()
    (tmp_path / "a.py").write_text("def f():\n    from nbcount.b import _helper\n")
    (tmp_path / "c.py").write_text("from nbcount.peers._common import KINDS\n")
    (tmp_path / "peers" / "d.py").write_text("from nbcount.peers._common import KINDS\n")
    assert [line.split(": ", 1)[1] for line in private_imports(tmp_path)] == [
        "from nbcount.b import _helper", "from nbcount.peers._common import KINDS"]
