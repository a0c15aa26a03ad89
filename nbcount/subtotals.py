"""Inclusive figures: a module call's own cost plus everything that ran inside that call.

A row's own (self) figures count only the ops attributed to it; a container such as a transformer
block owns few. Its inclusive figures add every call made while it ran (its subtree in the call
tree, found through ``LayerCall.parent``), so the root's inclusive figures are the model's totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbcount.report import Report


@dataclass(frozen=True)
class Figures:
    """Per-row self and inclusive parameters, MACs and FLOPs (under the report's convention), in row order."""

    params: tuple[int, ...]
    macs: tuple[int, ...]
    flops: tuple[int, ...]
    params_incl: tuple[int, ...]
    macs_incl: tuple[int, ...]
    flops_incl: tuple[int, ...]


def parents(report: Report) -> list[int | None]:
    """The index of each row's enclosing call (None for the root)."""
    return [row.call.parent for row in report.rows]


def figures(report: Report) -> Figures:
    """Self and inclusive figures of every row: each row's self figures added to all its ancestors."""
    value = report.convention.row_value
    params = [row.params for row in report.rows]
    macs = [row.macs for row in report.rows]
    flops = [int(value(row)) for row in report.rows]
    incl = [list(params), list(macs), list(flops)]
    up = parents(report)
    for k in range(len(report.rows) - 1, -1, -1):  # children come after their parent in call order
        parent = up[k]
        if parent is not None:
            for column in incl:
                column[parent] += column[k]
    return Figures(tuple(params), tuple(macs), tuple(flops), *(tuple(c) for c in incl))


def children(report: Report) -> list[list[int]]:
    """The rows called directly inside each row, in call order."""
    kids: list[list[int]] = [[] for _ in report.rows]
    for k, parent in enumerate(parents(report)):
        if parent is not None:
            kids[parent].append(k)
    return kids


def _run_key(report: Report, index: int) -> tuple[str, str, int] | None:
    """(parent path, type, call) when the row's path ends in a number under its parent's path, else None."""
    call = report.rows[index].call
    head, _, last = call.path.rpartition(".")
    return (head, call.module_type, call.call_index) if last.isdigit() else None


def _continues(report: Report, previous: int, index: int) -> bool:
    """Whether row `index` continues a run ending at row `previous` (same parent path and type, next number)."""
    key = _run_key(report, index)
    if key is None or key != _run_key(report, previous):
        return False
    number = int(report.rows[index].layer.rpartition(".")[2])
    return number == int(report.rows[previous].layer.rpartition(".")[2]) + 1


def repeated_runs(report: Report, kids: list[list[int]] | None = None) -> dict[int, list[int]]:
    """Runs of repeated blocks: consecutive sibling calls ``h.0, h.1, …`` of one type, keyed by their first row.

    Siblings form a run when their paths differ only in a trailing index (consecutive numbers) and their
    module type is the same, as the twelve ``GPT2Block`` of ``h`` or the ``Bottleneck`` blocks of ``layer1``.
    """
    kids = children(report) if kids is None else kids
    runs: dict[int, list[int]] = {}
    for siblings in kids:
        current: list[int] = []
        for k in siblings:
            if current and _continues(report, current[-1], k):
                current.append(k)
                continue
            if len(current) > 1:
                runs[current[0]] = current
            current = [k] if _run_key(report, k) is not None else []
        if len(current) > 1:
            runs[current[0]] = current
    return runs


def run_label(report: Report, run: list[int]) -> str:
    """``h.0–h.11 ×12``: the first and last path of a run of repeated blocks and how many there are."""
    first, last = report.rows[run[0]].layer, report.rows[run[-1]].layer
    return f"{first}–{last} ×{len(run)}"


def repeated_parents(report: Report) -> frozenset[str]:
    """Paths whose numbered children form a run of repeated blocks (``h`` in GPT-2, ``layers`` in an MLP)."""
    return frozenset(report.rows[run[0]].layer.rpartition(".")[0] for run in repeated_runs(report).values())
