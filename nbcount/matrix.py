"""The Conventions tab: every peer's number per layer as a compact matrix, the why in plain words.

Built from ``report.compare()``: repeated layers are folded into one row (``h.*.ln_1 ×12``, values
summed), each header names its unit, a cell that differs from nbcount's own count in that unit (MACs
or FLOPs) is marked, and the why of a row is split into what each tool counts and the tools' known
defects, written as sentences (the defects' internal names replaced by their descriptions).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nbcount import labels
from nbcount.conventions import get_convention
from nbcount.subtotals import repeated_parents
from nbcount.widget_data import ints

if TYPE_CHECKING:
    from nbcount.report import Report, Row

_NUMBER = re.compile(r"[-+]?\d[\d,]*")


def _defect_prose(names: Sequence[str]) -> dict[str, str]:
    """Internal defect ids of these conventions (``sdpa_unsupported``) → ''; their descriptions stay."""
    found = {}
    for name in names:
        try:
            convention = get_convention(name)
        except ValueError:
            continue
        for defect in convention.defects:
            found[defect.name] = defect.description
    return found


def why_parts(why: str, names: Sequence[str], defects: dict[str, str]) -> dict[str, Any]:
    """A compare() why as {'what', 'rules': [[tools, rule]], 'defects': [sentence]} without internal ids."""
    text = why
    for name in defects:
        text = text.replace(f" for {name}: ", ": ").replace(f" for {name}", "")
    tools = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    what, sep, rest = text.partition(" — ")
    if not sep:
        what, rest = "", text
    rules_text, _, defects_text = rest.partition("Defects: ")
    rules = []
    for part in re.split(rf"; (?=(?:{tools})(?:, (?:{tools}))*: )", rules_text.strip().rstrip(".")):
        who, colon, rule = part.partition(": ")
        if part:
            rules.append([who, rule] if colon else ["", part])
    sentences = [s.strip() for s in re.split(rf"; (?=(?:{tools})(?::strict)? )", defects_text) if s.strip()]
    return {"what": what.strip(), "rules": rules, "defects": sentences}


def _reference(row: Row) -> tuple[int, int]:
    """nbcount's own MACs and FLOPs of a row: what each peer's number is compared with."""
    return row.macs, int(get_convention("nbcount").row_value(row))


def conventions_payload(report: Report, conventions: Sequence[str] | None = None) -> dict[str, Any]:
    """The Conventions tab: columns (name, unit, description, source) and folded rows with values and why."""
    frame = report.compare(list(conventions) if conventions else None)
    names = [c for c in frame.columns if c not in ("layer", "call", "type", "why")]
    units = frame.attrs.get("units", {})
    sources = frame.attrs.get("sources", {})
    defects = _defect_prose(names)
    by_key = {(r.layer, r.call.call_index): r for r in report.rows}
    repeated = repeated_parents(report)
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    total = None
    for record in frame.to_dict(orient="records"):
        values = [int(record[n]) for n in names]
        row = by_key.get((record["layer"], int(record["call"])))
        if row is None:  # the total line
            total = values
            continue
        why = str(record["why"] or "")
        key = (labels.repeat_pattern(row.layer, repeated), row.call.module_type, _NUMBER.sub("#", why))
        group = groups.setdefault(key, {"rows": [], "values": [0] * len(names), "ref": [0, 0], "why": why})
        group["rows"].append(row)
        group["values"] = [a + b for a, b in zip(group["values"], values)]
        macs, flops = _reference(row)
        group["ref"] = [group["ref"][0] + macs, group["ref"][1] + flops]
    out_rows = [_row_payload(report, key, group, names, defects) for key, group in groups.items()]
    columns = [{"name": n, "unit": units.get(n, ""), "source": sources.get(n, ""),
                "description": _description(n)} for n in names]
    ref_total = [report.total_macs, sum(int(get_convention("nbcount").row_value(r)) for r in report.rows)]
    return {"kind": "conventions", "columns": columns, "rows": out_rows, "total": ints(total or []),
            "ref_total": ints(ref_total)}


def _description(name: str) -> str:
    try:
        return get_convention(name).description
    except ValueError:
        return ""


def _row_payload(report: Report, key: tuple[str, str, str], group: dict[str, Any], names: Sequence[str],
                 defects: dict[str, str]) -> dict[str, Any]:
    rows = group["rows"]
    first = rows[0]
    label = labels.row_label(first) if len(rows) == 1 else f"{key[0]} ×{len(rows)}"
    return {"label": label, "type": first.call.module_type, "n": len(rows),
            "row": report.rows.index(first) if len(rows) == 1 else -1,
            "values": ints(group["values"]), "ref": ints(group["ref"]),
            "why": why_parts(group["why"] if len(rows) == 1 else _signs_only(group["why"]), names, defects)}


def _signs_only(why: str) -> str:
    """A folded row's why: 'counts -786,432' (one layer's amount) becomes 'undercounts' / 'overcounts'."""
    return re.sub(r"counts ([-+])[\d,]+", lambda m: "undercounts" if m.group(1) == "-" else "overcounts", why)
