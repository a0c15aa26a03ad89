"""The compact JSON model of a Report that the widget's front end draws: rows as columns of numbers.

Sent once per widget (and saved with the notebook), so it is lean: paths relative to the parent call,
module types and shapes as indices into small tables, inclusive figures only for rows that have calls
inside them, repeated blocks as (first row, count, stride). Derivations are built on demand
(:func:`derivation_payload`), one row at a time. Every string is data: the front end writes it with
``textContent``, never as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nbcount import export, labels
from nbcount.subtotals import Figures, children, figures, repeated_runs

if TYPE_CHECKING:
    from nbcount.report import Report

FORMAT = 1
_EXACT = 2**53  # larger integers travel as strings: JavaScript numbers are exact only below this


def ints(values: Sequence[int]) -> list[Any]:
    """Integers for JSON; those a JavaScript number cannot hold exactly become strings."""
    return [int(v) if -_EXACT < v < _EXACT else str(int(v)) for v in values]


def _interned(values: Sequence[str]) -> tuple[list[str], list[int]]:
    """Distinct values in first-seen order, and each value's index into them."""
    table: dict[str, int] = {}
    index = [table.setdefault(v, len(table)) for v in values]
    return list(table), index


def _shape_text(tensors: Sequence[Any]) -> str:
    shapes = ["×".join(str(d) for d in t.shape) or "scalar" for t in tensors]
    return ", ".join(shapes)


def _relative(path: str, parent_path: str | None) -> str:
    """``.c_fc`` when `path` is the parent's path plus one name (the front end rebuilds it), else the path."""
    if parent_path is not None:
        prefix = f"{parent_path}." if parent_path else ""
        rest = path[len(prefix):]
        if path.startswith(prefix) and rest and "." not in rest:
            return "." + rest
    return path


def rows_model(report: Report, sums: Figures | None = None) -> dict[str, Any]:
    """Columns of the per-row data: path, parent, call index, type, output shape, self and inclusive figures."""
    rows = report.rows
    sums = figures(report) if sums is None else sums
    kids = children(report)
    paths = [r.layer for r in rows]
    parent = [r.call.parent for r in rows]
    types, type_index = _interned([r.call.module_type for r in rows])
    shapes, shape_index = _interned([_shape_text(r.call.out_tensors) for r in rows])
    model: dict[str, Any] = {
        "path": [_relative(p, paths[q] if q is not None else None) for p, q in zip(paths, parent)],
        "parent": [-1 if q is None else q for q in parent],
        "type": type_index, "types": types, "shape": shape_index, "shapes": shapes,
        "params": ints(sums.params), "macs": ints(sums.macs), "flops": ints(sums.headline),
        "out": ints([r.output_bytes for r in rows]),
        "incl": [[k, *ints([sums.params_incl[k], sums.macs_incl[k], sums.headline_incl[k]])]
                 for k in range(len(rows)) if kids[k]],
        "call": [[k, r.call.call_index] for k, r in enumerate(rows) if r.call.call_index],
        "uncounted": [[k, ", ".join(sorted(set(r.uncounted)))] for k, r in enumerate(rows) if r.uncounted],
        "runs": runs_model(report, kids),
    }
    return model


def runs_model(report: Report, kids: list[list[int]]) -> list[list[int]]:
    """Repeated blocks: ``[first, count, stride]`` when evenly spaced (identical blocks), else the row list."""
    out = []
    for run in repeated_runs(report, kids).values():
        steps = {b - a for a, b in zip(run, run[1:])}
        out.append([run[0], len(run), steps.pop()] if len(steps) == 1 else [-1, *run])
    return out


def summary_model(report: Report, units: str, sums: Figures | None = None) -> dict[str, Any]:
    """The totals (exact and short), the convention, the status and the findings."""
    conv = report.convention
    sums = figures(report) if sums is None else sums
    total = export.totals(report, sums)
    return {
        "model": report.rows[0].call.module_type if report.rows else "?",
        "items": [[k, v] for k, v in export.summary_items(report, units, sums)],
        "totals": {**{key: ints([total[key]])[0] for key in ("params", "used", "macs")},
                   "flops": ints([total["headline"]])[0]},  # the front end's key for the convention's number
        "convention": {"name": conv.name, "unit": conv.unit, "description": conv.description},
        "status": report.status,
        "findings": [[export.KIND_TITLES.get(d.kind, d.kind.replace("_", " ")), d.message, list(d.layers)]
                     for d in report.diagnostics],
    }


# derivations ---------------------------------------------------------------------------------------
def step_payload(step: Any) -> list[Any]:
    """[label, formula, substituted, value, note] of one Step (symbols and numbers as plain text)."""
    from nbcount.render import fmt

    formula = getattr(step, "formula", "") or ""
    substituted = step.substituted if formula and getattr(step, "symbols", ()) else ""
    value = step.value
    return [str(step.label), formula, substituted, fmt(value) if isinstance(value, (int, float)) else str(value),
            str(getattr(step, "note", "") or "")]


def derivation_payload(report: Report, index: int | None) -> dict[str, Any]:
    """One row's worked derivation (index None: the totals) as sections of steps, plus LaTeX and text to copy."""
    row = report.rows[index] if index is not None else None
    try:
        found = report.derive(row.layer if row is not None else None, row.call.call_index if row is not None else 0)
    except Exception as error:  # a derivation problem must not take the widget down: say what happened
        return {"row": -1 if index is None else index, "error": f"{type(error).__name__}: {error}"}
    sections = getattr(found, "sections", None)
    if sections is None:  # a single Derivation
        parts = [{"title": str(getattr(found, "subject", "")), "steps": [step_payload(s) for s in found.steps]}]
    else:
        parts = [{"title": str(s.derivation.subject), "steps": [step_payload(st) for st in s.steps]} for s in sections]
    return {"row": -1 if index is None else index, "subject": str(getattr(found, "subject", "")),
            "label": labels.row_label(row) if row is not None else "totals",
            "sections": parts, "latex": found.to_latex(), "text": found.to_text()}
