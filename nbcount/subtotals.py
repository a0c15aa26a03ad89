"""Inclusive figures: a module call's own cost plus everything that ran inside that call.

A row's own (self) figures count only the ops attributed to it; a container such as a transformer
block owns few. Its inclusive figures add every call made while it ran (its subtree in the call
tree, found through ``LayerCall.parent``), so the root's inclusive figures are the model's totals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbcount.report import Report


@dataclass(frozen=True)
class Figures:
    """Per-row self and inclusive parameters, MACs and the convention's number (``headline``: FLOPs or MACs, as
    the report's convention counts), in row order."""

    params: tuple[int, ...]
    macs: tuple[int, ...]
    headline: tuple[int, ...]
    params_incl: tuple[int, ...]
    macs_incl: tuple[int, ...]
    headline_incl: tuple[int, ...]


def parents(report: Report) -> list[int | None]:
    """The index of each row's enclosing call (None for the root)."""
    return [row.call.parent for row in report.rows]


def figures(report: Report) -> Figures:
    """Self and inclusive figures of every row: each row's self figures added to all its ancestors."""
    value = report.convention.row_value
    params = [row.params for row in report.rows]
    macs = [row.macs for row in report.rows]
    headline = [int(value(row)) for row in report.rows]
    incl = [list(params), list(macs), list(headline)]
    up = parents(report)
    for k in range(len(report.rows) - 1, -1, -1):  # children come after their parent in call order
        parent = up[k]
        if parent is not None:
            for column in incl:
                column[parent] += column[k]
    return Figures(tuple(params), tuple(macs), tuple(headline), *(tuple(c) for c in incl))


def children(report: Report) -> list[list[int]]:
    """The rows called directly inside each row, in call order."""
    kids: list[list[int]] = [[] for _ in report.rows]
    for k, parent in enumerate(parents(report)):
        if parent is not None:
            kids[parent].append(k)
    return kids


_NUMBERED = re.compile(r"^(?P<stem>.*?)(?P<number>\d+)$")


def _run_keys(report: Report) -> list[tuple[Any, ...] | None]:
    """Per row whose name ends in a number (``h.3``, ``encoder_layer_3``): the block's signature and number.

    Two siblings are the same block when everything but the number agrees: parent path and name stem,
    type and call, as many parameters (itself and everything inside it), and the same output shapes.
    """
    params = [row.params for row in report.rows]
    for k in range(len(report.rows) - 1, -1, -1):
        parent = report.rows[k].call.parent
        if parent is not None:
            params[parent] += params[k]
    keys: list[tuple[Any, ...] | None] = []
    for k, row in enumerate(report.rows):
        head, _, last = row.call.path.rpartition(".")
        numbered = _NUMBERED.match(last)
        shapes = tuple(t.shape for t in row.call.out_tensors)
        keys.append((head, numbered.group("stem"), row.call.module_type, row.call.call_index, params[k], shapes,
                     int(numbered.group("number"))) if numbered else None)
    return keys


def repeated_runs(report: Report, kids: list[list[int]] | None = None) -> dict[int, list[int]]:
    """Runs of repeated blocks: consecutive sibling calls ``h.0, h.1, …`` of one type, keyed by their first row.

    Siblings form a run when their paths differ only in a trailing index (consecutive numbers) and they are
    the same block (type, parameters, output shapes), as the twelve ``GPT2Block`` of ``h``.
    """
    kids = children(report) if kids is None else kids
    keys = _run_keys(report)
    runs: dict[int, list[int]] = {}
    for siblings in kids:
        current: list[int] = []
        for k in siblings:
            key, last = keys[k], keys[current[-1]] if current else None
            if key is not None and last is not None and key[:-1] == last[:-1] and key[-1] == last[-1] + 1:
                current.append(k)
                continue
            if len(current) > 1:
                runs[current[0]] = current
            current = [k] if key is not None else []
        if len(current) > 1:
            runs[current[0]] = current
    return runs


def run_label(report: Report, run: list[int]) -> str:
    """``h.0–h.11 ×12`` (``encoder.layer_0–11 ×12`` for named blocks): the run's span and its length."""
    first, last = report.rows[run[0]].layer, report.rows[run[-1]].layer
    numbered = _NUMBERED.match(last.rpartition(".")[2])
    end = last if numbered is None or not numbered.group("stem") else numbered.group("number")
    return f"{first}–{end} ×{len(run)}"


def repeated_parents(report: Report) -> frozenset[str]:
    """The path of each run's blocks without their number (``h.`` in GPT-2, ``encoder.layers.encoder_layer_``)."""
    found = set()
    for run in repeated_runs(report).values():
        path = report.rows[run[0]].layer
        numbered = _NUMBERED.match(path.rpartition(".")[2])
        found.add(path[: len(path) - len(numbered.group("number"))] if numbered else path)
    return frozenset(found)
