"""Build notebooks/*.ipynb (clean, no outputs) from the percent-format sources in scripts/notebooks/*.py.

Usage: ``python scripts/build_notebooks.py`` (write) or ``--check`` (exit 1 if a notebook is out of date).
A source is a Python file whose cells start with ``# %%`` (code) or ``# %% [markdown]`` (Markdown written
as ``# `` comment lines).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "scripts" / "notebooks"
TARGET = ROOT / "notebooks"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def parse_cells(text: str) -> list[tuple[str, str]]:
    """Split a percent-format source into (kind, source) cells."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            cells[-1][1].append(line)
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        body = "\n".join(lines).strip("\n")
        if body:
            out.append((kind, body))
    return out


def build(source: Path) -> nbformat.NotebookNode:
    """The clean notebook of one source file (deterministic cell ids)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    for index, (kind, body) in enumerate(parse_cells(source.read_text(encoding="utf-8"))):
        cell = nbformat.v4.new_markdown_cell(body) if kind == "markdown" else nbformat.v4.new_code_cell(body)
        cell["id"] = f"{source.stem[:40]}-{index}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(source: Path) -> str:
    """The notebook file's exact text."""
    return nbformat.writes(build(source)) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write every notebook, or with --check report the stale ones."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check that notebooks/ is up to date")
    args = parser.parse_args(argv)
    stale = []
    for source in sorted(SOURCES.glob("*.py")):
        target = TARGET / f"{source.stem}.ipynb"
        text = render(source)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        stale.append(target.name)
        if not args.check:
            TARGET.mkdir(exist_ok=True)
            target.write_text(text, encoding="utf-8")
    if args.check and stale:
        print("out of date (run python scripts/build_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
