"""The Conventions tab: every peer's number per layer as a compact matrix, the why in plain words.

Built from ``nbcount.compare.comparison`` (the records behind ``report.compare()``): repeated layers with the
same reason are folded into one row (``h.*.ln_1 ×12``, values and defect amounts summed), each header names its
unit, a cell that differs from nbcount's own count in that unit (MACs or FLOPs) is marked, and the why of a row
is what each group of tools counts and the tools' known defects, as sentences (without the defects' ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from nbcount import labels
from nbcount.compare import Line, Reason, comparison
from nbcount.convention import get_convention
from nbcount.subtotals import repeated_parents
from nbcount.widget_data import ints

if TYPE_CHECKING:
    from nbcount.report import Report, Row

_NBCOUNT = get_convention("nbcount")


def _reference(row: Row) -> tuple[int, int]:
    """nbcount's own MACs and FLOPs of a row: what each peer's number is compared with."""
    return row.macs, int(_NBCOUNT.row_value(row))


def _fold_key(reason: Reason) -> tuple[Any, ...]:
    """Rows fold together when they differ for the same reasons (the defects' amounts aside, only their sign)."""
    defects = tuple((d.tool, d.name, d.amount > 0) for d in reason.defects)
    return reason.what, reason.rules, defects


def _summed(reasons: Sequence[Reason]) -> Reason:
    """The reason of folded rows: each tool's defect amounts summed over them."""
    first = reasons[0]
    amounts: dict[tuple[str, str], int] = {}
    for r in reasons:
        for d in r.defects:
            amounts[d.tool, d.name] = amounts.get((d.tool, d.name), 0) + d.amount
    defects = tuple(replace(d, amount=amounts[d.tool, d.name]) for d in first.defects)
    return replace(first, defects=defects)


def why_payload(reason: Reason) -> dict[str, Any]:
    """A Reason as the front end draws it: {'what', 'rules': [[tools, rule]], 'defects': [sentence]}."""
    return {"what": reason.what, "rules": [[", ".join(r.tools), r.counts] for r in reason.rules],
            "defects": [d.to_text(name=False) for d in reason.defects]}


def conventions_payload(report: Report, conventions: Sequence[str] | None = None) -> dict[str, Any]:
    """The Conventions tab: columns (name, unit, description, source) and folded rows with values and why."""
    found = comparison(report, list(conventions) if conventions else None)
    repeated = repeated_parents(report)
    groups: dict[tuple[Any, ...], list[Line]] = {}
    for line in found.lines:
        row = line.row
        key = (labels.repeat_pattern(row.layer, repeated), row.call.module_type, *_fold_key(line.reason))
        groups.setdefault(key, []).append(line)
    columns = [{"name": c.name, "unit": c.unit, "source": c.source, "description": c.description}
               for c in found.conventions]
    ref_total = [report.total_macs, sum(int(_NBCOUNT.row_value(r)) for r in report.rows)]
    return {"kind": "conventions", "columns": columns,
            "rows": [_row_payload(report, str(key[0]), group) for key, group in groups.items()],
            "total": ints(found.totals), "ref_total": ints(ref_total)}


def _row_payload(report: Report, pattern: str, lines: list[Line]) -> dict[str, Any]:
    first = lines[0].row
    references = [_reference(line.row) for line in lines]
    values = [sum(column) for column in zip(*(line.values for line in lines))]
    return {"label": labels.row_label(first) if len(lines) == 1 else f"{pattern} ×{len(lines)}",
            "type": first.call.module_type, "n": len(lines),
            "row": report.rows.index(first) if len(lines) == 1 else -1,
            "values": ints(values), "ref": ints([sum(m for m, _ in references), sum(f for _, f in references)]),
            "why": why_payload(_summed([line.reason for line in lines]))}
