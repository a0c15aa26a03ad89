"""Side by side: every layer counted under several conventions, with each difference explained.

:func:`comparison` is the data: per row, each convention's number and a :class:`Reason` (the kinds of work,
what each tool counts for them, the peers' known defects on the row, as records). :func:`compare` writes it as
a DataFrame whose ``why`` column is each Reason in words; the widget's Conventions tab reads the records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from nbcount.convention import Convention, get_convention
from nbcount.escape import table_cell as cell
from nbcount.peers import KIND_TITLES, KINDS, memory, row_kinds

if TYPE_CHECKING:
    from nbcount.report import Report, Row

DEFAULT = ("nbcount", "torch", "fvcore", "thop", "ptflops", "torchinfo", "torchscan", "calflops")
TOTAL = "(total)"


@dataclass(frozen=True)
class ToolsRule:
    """What some tools count for a row's kinds of work (``thop, fvcore``: ``1 per MAC``)."""

    tools: tuple[str, ...]
    counts: str

    def to_text(self) -> str:
        """``thop, fvcore: 1 per MAC``."""
        return f"{', '.join(self.tools)}: {self.counts}"


@dataclass(frozen=True)
class RowDefect:
    """A tool's known mistake on a row: what it adds (negative: drops) beyond its own rule, and why."""

    tool: str
    strict: bool  # True: the tool's (strict) column includes it; False: only the real tool does it
    name: str  # the defect's name in the convention (``functional_counted_twice``)
    description: str
    amount: int

    def to_text(self, name: bool = True) -> str:
        """``ptflops (the real tool) counts +4,704 for functional_counted_twice: …`` (`name`: with the defect's id)."""
        who = f"{self.tool} includes" if self.strict else f"{self.tool} (the real tool) counts"
        named = f" for {self.name}" if name else ""
        return f"{who} {self.amount:+,}{named}: {self.description}"


@dataclass(frozen=True)
class Reason:
    """Why the conventions disagree on a row: its kinds of work, each group of tools' rule, the tools' defects.

    `rules` is empty when every tool gives the same number (the defects may still apply).
    """

    what: str
    rules: tuple[ToolsRule, ...]
    defects: tuple[RowDefect, ...]

    def to_text(self) -> str:
        """The reason in one line ('' when the tools agree and have no defect on the row)."""
        defects = "; ".join(d.to_text() for d in self.defects)
        if not self.rules:
            return f"Defects: {defects}" if defects else ""
        text = f"{self.what} — " + "; ".join(r.to_text() for r in self.rules)
        return f"{text}. Defects: {defects}" if defects else text


@dataclass(frozen=True)
class Line:
    """One row of a comparison: the row, each convention's number, and the reason they differ."""

    row: Row
    values: tuple[int, ...]
    reason: Reason


@dataclass(frozen=True)
class Comparison:
    """Every counted row under several conventions (rows all count 0 on, with no defect, left out unless asked)."""

    conventions: tuple[Convention, ...]
    lines: tuple[Line, ...]
    totals: tuple[int, ...]

    @property
    def names(self) -> list[str]:
        """The conventions' names, in column order."""
        return [c.name for c in self.conventions]


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


def _rules(convs: Sequence[Convention], kinds: Sequence[str]) -> tuple[ToolsRule, ...]:
    """Conventions grouped by what they count for these kinds: 'thop, fvcore: 1 per MAC; torch: 2 per MAC'."""
    groups: dict[str, list[str]] = {}
    for c in convs:
        text = "; ".join(c.rule_for(k) for k in kinds) if kinds else c.rule_for("*")
        groups.setdefault(text, []).append(c.name)
    return tuple(ToolsRule(tuple(names), text) for text, names in groups.items())


def _defects(convs: Sequence[Convention], row: Row) -> tuple[RowDefect, ...]:
    """The peers' accidents on this row: included in strict columns, otherwise what the real tool adds."""
    described = {d.name: d.description for c in convs for d in c.defects}
    return tuple(RowDefect(c.name, c.strict, name, described[name], delta)
                 for c in convs for name, delta in c.defect_deltas(row).items())


def reason(row: Row, convs: Sequence[Convention], values: Sequence[int]) -> Reason:
    """Why the conventions disagree on a row (no rules when they agree), and the peers' defects on it."""
    defects = _defects(convs, row)
    if len(set(values)) <= 1:
        return Reason("", (), defects)
    kinds = row_kinds(row)
    return Reason(_title(row, kinds), _rules(convs, kinds), defects)


def comparison(report: Report, conventions: str | Convention | Iterable[str | Convention] | None = None, *,
               strict: bool = False, all_rows: bool = False) -> Comparison:
    """Each row's number under each convention and the Reason they differ; totals over every row."""
    convs = _resolve(conventions, strict)
    lines = []
    totals = [0] * len(convs)
    for row in report.rows:
        values = tuple(c.row_value(row) for c in convs)
        totals = [t + v for t, v in zip(totals, values)]
        why = reason(row, convs, values)
        if all_rows or any(values) or why.defects:
            lines.append(Line(row, values, why))
    return Comparison(tuple(convs), tuple(lines), tuple(totals))


def compare(report: Report, conventions: str | Convention | Iterable[str | Convention] | None = None, *,
            strict: bool = False, all_rows: bool = False) -> pd.DataFrame:
    """One row per layer call, one column per convention (its per-row number), and `why` in words.

    Rows where every convention counts 0 and no peer defect applies are left out unless `all_rows`; the last
    row is the total.
    `strict=True` applies each peer's documented defects (bug-for-bug numbers).
    """
    found = comparison(report, conventions, strict=strict, all_rows=all_rows)
    names = found.names
    records = [{"layer": line.row.layer, "call": line.row.call.call_index, "type": line.row.call.module_type,
                **dict(zip(names, line.values)), "why": line.reason.to_text()} for line in found.lines]
    units = {c.name: c.unit for c in found.conventions}
    totals = found.totals
    why_total = "headline units: " + ", ".join(f"{n} {u}" for n, u in units.items()) if len(set(totals)) > 1 else ""
    records.append({"layer": TOTAL, "call": 0, "type": "", **dict(zip(names, totals)), "why": why_total})
    frame = pd.DataFrame(records, columns=["layer", "call", "type", *names, "why"])
    frame.attrs["units"] = units
    frame.attrs["sources"] = {c.name: c.source for c in found.conventions}
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
    from nbcount.convention import conventions

    return list(conventions())


def conventions_markdown() -> str:
    """The generated part of docs/conventions.md: overview, the per-kind table, and each convention's notes."""
    convs = [get_convention(n) for n in _all_names()]
    lines = ["| convention | unit | what it counts | mirrors |", "|---|---|---|---|"]
    lines += [f"| `{c.name}` | {c.unit} | {cell(c.description)} | {cell(c.source)} |" for c in convs]
    lines += ["", "### What each convention counts, per layer kind", ""]
    lines += ["| layer kind | " + " | ".join(f"`{c.name}`" for c in convs) + " |",
              "|---|" + "---|" * len(convs)]
    lines += [f"| {KIND_TITLES[k]} | " + " | ".join(cell(c.rule_for(k)) for c in convs) + " |" for k in KINDS]
    for c in convs:
        lines += ["", f"### `{c.name}`", "", f"{c.description} Unit: {c.unit}. Mirrors {c.source}.", ""]
        lines += [f"- {cell(note)}" for note in c.notes]
        lines += [f"- Defect `{d.name}` (only under `{c.name}:strict`): {cell(d.description)}" for d in c.defects]
    return "\n".join(lines).replace("\n\n\n", "\n\n")
