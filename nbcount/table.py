"""The table model every view formats: columns with a title, a unit and a format, rows of raw values.

A :class:`Table` is data: the text, HTML, Markdown, LaTeX and Styler formatters (``nbcount.formats``), the
CLI and the widget's copy buttons all read one. :func:`layer_table` builds the per-layer table of a Report:
one row per module call, or, with ``group=True``, repeated blocks folded into one row (``h.0–h.11 ×12``)
so a large model stays a readable page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbcount import labels
from nbcount.subtotals import children, repeated_runs, run_label

if TYPE_CHECKING:
    from nbcount.report import Report

#: how a column's values are written: text as is, counts with thousands separators, shapes as torch prints them
KINDS = ("text", "count", "shape", "flag", "label")


@dataclass(frozen=True)
class Column:
    """One column: its key in ``report.table``, its header title (naming the unit: ``MACs``, ``FLOPs (nbcount)``),
    the unit alone, and how values are formatted (``kind``, one of KINDS)."""

    key: str
    title: str
    unit: str = ""
    kind: str = "text"
    help: str = ""

    @property
    def numeric(self) -> bool:
        """Right-aligned counts."""
        return self.kind == "count"


@dataclass(frozen=True)
class Table:
    """Columns and rows of raw values; `depth` indents the label column; `note` is written under the table."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    depth: tuple[int, ...] = ()
    note: str = ""
    name: str = "nbcount-table"
    footer: tuple[Any, ...] | None = field(default=None)

    def text_rows(self) -> list[list[str]]:
        """Every cell as text (``cell_text``), row by row."""
        return [[cell_text(v, c) for v, c in zip(row, self.columns)] for row in self.rows]

    def footer_text(self) -> list[str] | None:
        """The footer (totals) row as text, if any."""
        if self.footer is None:
            return None
        return [cell_text(v, c) for v, c in zip(self.footer, self.columns)]


def cell_text(value: Any, column: Column | None = None) -> str:
    """A cell as text: thousands separators for counts, shapes as ``(1, 3, 224, 224)``, '' for None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, int) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    if isinstance(value, list):
        return ", ".join(cell_text(v) for v in value)
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


# the per-layer table ----------------------------------------------------------------------------------
def layer_columns(report: Report) -> dict[str, Column]:
    """Every column of the per-layer table, keyed as in ``report.table``, titled with units."""
    conv = report.convention
    flops = f"{conv.unit} ({conv.name})"
    specs = [
        Column("layer", "layer", kind="label", help="dotted path; #k: the k-th repeated call"),
        Column("call", "call", kind="count"), Column("type", "type"), Column("depth", "depth", kind="count"),
        Column("input_shape", "input shape", kind="shape"), Column("output_shape", "output shape", kind="shape"),
        Column("params", "params (self)", "params", "count", "parameters first used at this call"),
        Column("params_incl", "params", "params", "count", "this call and every call inside it"),
        Column("shared", "shared", kind="flag"),
        Column("macs", "MACs (self)", "MACs", "count", "multiply-accumulates of this call's own ops"),
        Column("macs_incl", "MACs", "MACs", "count", "this call and every call inside it"),
        Column(conv.column, f"{flops} (self)", conv.unit, "count", "this call's own ops"),
        Column(conv.column + "_incl", flops, conv.unit, "count", "this call and every call inside it"),
        Column("param_bytes", "param bytes", "bytes", "count"),
        Column("buffers", "buffers", "elements", "count", "buffer elements first seen at this call"),
        Column("buffer_bytes", "buffer bytes", "bytes", "count"),
        Column("output_bytes", "output bytes", "bytes", "count"),
        Column("rf", "receptive field"), Column("jump", "jump"), Column("start", "start"),
        Column("uncounted", "uncounted ops"),
    ]
    known: dict[str, Column] = {}
    for c in specs:  # the macs convention's column is the macs column: the first spec of a key wins
        known.setdefault(c.key, c)
    for key in report.table.columns:  # a column added to report.table later still shows, titled by its name
        if key not in known:
            kind = "count" if report.table[key].dtype.kind in "iu" else "text"
            known[key] = Column(key, key.replace("_", " "), kind=kind)
    return known


#: shown by default: inclusive figures, so a row at any depth carries the cost of everything inside it
#: (``flops``/``flops_incl`` in a choice of columns stand for the convention's column: ``macs_fvcore_incl``, ...)
DEFAULT_COLUMNS = ("layer", "type", "output_shape", "params_incl", "macs_incl", "flops_incl", "output_bytes")


def check_columns(report: Report, columns: Sequence[str] | None) -> list[str]:
    """The requested columns (default: DEFAULT_COLUMNS), validated (ValueError listing the valid ones)."""
    column = report.convention.column
    chosen = [column + c.removeprefix("flops") if c in ("flops", "flops_incl") else c for c in columns or
              DEFAULT_COLUMNS]
    chosen = list(dict.fromkeys(chosen))  # under the macs convention, flops_incl is macs_incl
    valid = layer_columns(report)
    unknown = [c for c in chosen if c not in valid]
    if unknown:
        raise ValueError(f"unknown column(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    return chosen


def _value(report: Report, frame: Any, key: str, index: int) -> Any:
    if key == "layer":
        row = report.rows[index]
        return labels.row_label(row)
    return frame[key][index]


def _group_value(report: Report, frame: Any, key: str, run: list[int]) -> Any:
    column = layer_columns(report)[key]
    if key == "layer":
        return run_label(report, run)
    if column.kind == "count" and key not in ("depth", "call"):
        return sum(int(frame[key][k]) for k in run)
    return frame[key][run[0]]


def _visible(report: Report, depth: int | None, kids: list[list[int]],
             runs: dict[int, list[int]]) -> list[int | list[int]]:
    """Rows in tree order up to `depth`; each run of repeated blocks in `runs` as one list, not descended."""
    inside = {k for run in runs.values() for k in run[1:]}
    out: list[int | list[int]] = []
    stack = [k for k, row in enumerate(report.rows) if row.call.parent is None][::-1]
    while stack:
        k = stack.pop()
        if k in inside:
            continue
        if depth is not None and report.rows[k].call.depth > depth:
            continue
        if k in runs:
            out.append(runs[k])
            continue
        out.append(k)
        stack.extend(reversed(kids[k]))
    return out


def layer_table(report: Report, depth: int | None = None, columns: Sequence[str] | None = None, *,
                group: bool = False, max_rows: int | None = None) -> Table:
    """The per-layer table: rows in tree order up to `depth`, repeated blocks folded when `group`.

    With `max_rows` and no `depth`, the deepest depth whose rows fit is chosen (folding repeated blocks),
    and the note says how to see every row.
    """
    wanted = check_columns(report, columns)
    spec = layer_columns(report)
    frame = _columns_of(report, wanted)
    kids = children(report)
    folded = repeated_runs(report, kids)
    if max_rows is not None and depth is None and len(report.rows) > max_rows:
        group = True
        depth = _fitting_depth(report, max_rows, kids, folded)
    shown = _visible(report, depth, kids, folded if group else {})
    rows, depths = [], []
    for item in shown:
        if isinstance(item, list):
            rows.append(tuple(_group_value(report, frame, key, item) for key in wanted))
            depths.append(report.rows[item[0]].call.depth)
        else:
            rows.append(tuple(_value(report, frame, key, item) for key in wanted))
            depths.append(report.rows[item].call.depth)
    hidden = len(report.rows) - sum(len(i) if isinstance(i, list) else 1 for i in shown)
    note = ""
    if hidden:
        note = (f"{len(rows):,} of {len(report.rows):,} rows shown (deeper calls and repeated blocks folded; "
                "each row includes the cost of everything inside it). report.table has every row.")
    footer = _footer(report, wanted, frame)
    return Table(tuple(spec[k] for k in wanted), tuple(rows), tuple(depths), note, "nbcount-table", footer)


def _fitting_depth(report: Report, max_rows: int, kids: list[list[int]], runs: dict[int, list[int]]) -> int:
    deepest = max((r.call.depth for r in report.rows), default=0)
    best = 0
    for depth in range(deepest + 1):
        if len(_visible(report, depth, kids, runs)) > max_rows:
            break
        best = depth
    return best


def _footer(report: Report, wanted: list[str], frame: dict[str, list[Any]]) -> tuple[Any, ...] | None:
    """The totals row: the root's inclusive figures, the model's unique parameters."""
    if not report.rows:
        return None
    totals: dict[str, Any] = {"layer": "total", "params_incl": report.total_params, "macs_incl": report.total_macs,
                              report.convention.column + "_incl": report.headline.value}
    return tuple(totals.get(key, "") for key in wanted)


def _columns_of(report: Report, wanted: list[str]) -> dict[str, list[Any]]:
    """The wanted columns as lists, read from report.table (the layer label is made per row)."""
    table = report.table
    return {key: (table[key].tolist() if key in table.columns else []) for key in wanted if key != "layer"}
