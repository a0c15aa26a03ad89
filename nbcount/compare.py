"""Side by side: every layer counted under several conventions, with each difference explained in words."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from nbcount.conventions import Convention, get_convention
from nbcount.peers import memory
from nbcount.peers._common import KIND_TITLES, KINDS, row_kinds

if TYPE_CHECKING:
    from nbcount.report import Report, Row

DEFAULT = ("nbcount", "torch", "fvcore", "thop", "ptflops", "torchinfo", "torchscan", "calflops")
TOTAL = "(total)"


def _resolve(conventions: str | Convention | Iterable[str | Convention] | None, strict: bool) -> list[Convention]:
    if conventions is None:
        conventions = DEFAULT
    if isinstance(conventions, (str, Convention)):
        conventions = [conventions]
    return [get_convention(c, strict=strict) for c in conventions]


def _title(row: Row, kinds: Sequence[str]) -> str:
    if not kinds:
        ops = sorted({op.op.removeprefix("aten.") for op in row.call.ops if not op.is_view})
        return f"{row.call.module_type} own ops ({', '.join(ops) or 'none'})"
    return " + ".join(KIND_TITLES.get(k, k) for k in kinds)


def _rules(convs: Sequence[Convention], kinds: Sequence[str]) -> str:
    """Conventions grouped by what they count for these kinds: 'thop, fvcore: 1 per MAC; torch: 2 per MAC'."""
    groups: dict[str, list[str]] = {}
    for c in convs:
        text = "; ".join(c.rule_for(k) for k in kinds) if kinds else c.rule_for("*")
        groups.setdefault(text, []).append(c.name)
    return "; ".join(f"{', '.join(names)}: {text}" for text, names in groups.items())


def _defects(convs: Sequence[Convention], row: Row) -> str:
    """The peers' accidents on this row: included in strict columns, otherwise what the real tool adds."""
    parts = []
    described = {d.name: d.description for c in convs for d in c.defects}
    for c in convs:
        for name, delta in c.defect_deltas(row).items():
            who = f"{c.name} includes" if c.strict else f"{c.name} (the real tool) counts"
            parts.append(f"{who} {delta:+,} for {name}: {described[name]}")
    return "; ".join(parts)


def explain(row: Row, convs: Sequence[Convention], values: Sequence[int]) -> str:
    """Why the conventions disagree on a row, and the peers' defects on it ('' when they agree and have none)."""
    defects = _defects(convs, row)
    if len(set(values)) <= 1:
        return f"Defects: {defects}" if defects else ""
    kinds = row_kinds(row)
    text = f"{_title(row, kinds)} — {_rules(convs, kinds)}"
    return f"{text}. Defects: {defects}" if defects else text


def compare(report: Report, conventions: str | Convention | Iterable[str | Convention] | None = None, *,
            strict: bool = False, all_rows: bool = False) -> pd.DataFrame:
    """One row per layer call, one column per convention (its per-row number), and `why` in words.

    Rows where every convention counts 0 and no peer defect applies are left out unless `all_rows`; the last
    row is the total.
    `strict=True` applies each peer's documented defects (bug-for-bug numbers).
    """
    convs = _resolve(conventions, strict)
    names = [c.name for c in convs]
    records = []
    totals = [0] * len(convs)
    for row in report.rows:
        values = [c.row_value(row) for c in convs]
        totals = [t + v for t, v in zip(totals, values)]
        why = explain(row, convs, values)
        if not all_rows and not any(values) and not why:
            continue
        records.append({"layer": row.layer, "call": row.call.call_index, "type": row.call.module_type,
                        **dict(zip(names, values)), "why": why})
    units = {c.name: c.unit for c in convs}
    why_total = "headline units: " + ", ".join(f"{n} {u}" for n, u in units.items()) if len(set(totals)) > 1 else ""
    records.append({"layer": TOTAL, "call": 0, "type": "", **dict(zip(names, totals)), "why": why_total})
    frame = pd.DataFrame(records, columns=["layer", "call", "type", *names, "why"])
    frame.attrs["units"] = units
    frame.attrs["sources"] = {c.name: c.source for c in convs}
    return frame


def compare_memory(report: Report) -> pd.DataFrame:
    """The four memory figures as nbcount (MiB), torchsummary (MB = 2^20) and torchinfo (MB = 10^6) give them."""
    columns = {"nbcount": memory.nbcount_memory(report), "torchsummary": memory.torchsummary(report),
               "torchinfo": memory.torchinfo(report)}
    frame = pd.DataFrame({name: [fig[k] for k in memory.FIGURES] for name, fig in columns.items()},
                         index=list(memory.FIGURES))
    frame["why"] = [memory.WHY[k] for k in memory.FIGURES]
    frame.attrs["units"] = {"nbcount": "MiB (2^20 bytes)", "torchsummary": "MB (2^20 bytes)",
                            "torchinfo": "MB (10^6 bytes)"}
    return frame


def rules_table(conventions: Iterable[str | Convention] | None = None) -> pd.DataFrame:
    """What each convention counts per layer kind: the table of docs/conventions.md."""
    convs = _resolve(conventions if conventions is not None else _all_names(), strict=False)
    data = {c.name: [c.rule_for(k) for k in KINDS] for c in convs}
    return pd.DataFrame(data, index=[KIND_TITLES[k] for k in KINDS])


def _all_names() -> list[str]:
    from nbcount.conventions import conventions

    return list(conventions())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def conventions_markdown() -> str:
    """The generated part of docs/conventions.md: overview, the per-kind table, and each convention's notes."""
    convs = [get_convention(n) for n in _all_names()]
    lines = ["| convention | unit | what it counts | mirrors |", "|---|---|---|---|"]
    lines += [f"| `{c.name}` | {c.unit} | {_cell(c.description)} | {_cell(c.source)} |" for c in convs]
    lines += ["", "### What each convention counts, per layer kind", ""]
    lines += ["| layer kind | " + " | ".join(f"`{c.name}`" for c in convs) + " |",
              "|---|" + "---|" * len(convs)]
    lines += [f"| {KIND_TITLES[k]} | " + " | ".join(_cell(c.rule_for(k)) for c in convs) + " |" for k in KINDS]
    for c in convs:
        lines += ["", f"### `{c.name}`", "", f"{c.description} Unit: {c.unit}. Mirrors {c.source}.", ""]
        lines += [f"- {_cell(note)}" for note in c.notes]
        lines += [f"- Defect `{d.name}` (only under `{c.name}:strict`): {_cell(d.description)}" for d in c.defects]
    return "\n".join(lines).replace("\n\n\n", "\n\n")
