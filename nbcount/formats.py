"""Formatters of a :class:`nbcount.table.Table`: plain text, escaped HTML, Markdown, LaTeX and a pandas Styler.

One row loop per format, every cell written through ``nbcount.escape``; the label column is indented
by depth, counts are right-aligned with thousands separators, the totals row (``Table.footer``) closes
the table and the note (rows left out) follows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbcount import escape
from nbcount.table import Table

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler


def _label_index(table: Table) -> int | None:
    return next((i for i, c in enumerate(table.columns) if c.kind == "label"), None)


def to_text(table: Table, indent: str = "  ") -> str:
    """Aligned plain text: a header, the rows (labels indented by depth), a rule and the totals row."""
    label = _label_index(table)
    body = table.text_rows()
    if label is not None and table.depth:
        for cells, depth in zip(body, table.depth):
            cells[label] = indent * depth + cells[label]
    head = [c.title for c in table.columns]
    footer = table.footer_text()
    everything = [head, *body, *([footer] if footer else [])]
    widths = [max(len(r[i]) for r in everything) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(v.rjust(w) if c.numeric else v.ljust(w)
                         for v, w, c in zip(cells, widths, table.columns)).rstrip()

    lines = [line(head), *(line(r) for r in body)]
    if footer:
        lines += ["-" * len(lines[0]), line(footer)]
    if table.note:
        lines.append(table.note)
    return "\n".join(lines)


def _html_cell(tag: str, text: str, numeric: bool, style: str = "") -> str:
    align = "right" if numeric else "left"
    return f"<{tag} style='text-align:{align}{style}'>{escape.html(text)}</{tag}>"


def to_html(table: Table) -> str:
    """An escaped HTML ``<table>`` (no scripts, no styles beyond inline alignment), math typesetting off."""
    label = _label_index(table)
    head = "".join(_html_cell("th", c.title, c.numeric) for c in table.columns)
    body = []
    for k, cells in enumerate(table.text_rows()):
        tds = []
        for i, (text, column) in enumerate(zip(cells, table.columns)):
            pad = f";padding-left:{0.3 + table.depth[k]:.1f}em" if i == label and table.depth else ""
            tds.append(_html_cell("td", text, column.numeric, pad))
        body.append("<tr>" + "".join(tds) + "</tr>")
    footer = table.footer_text()
    foot = ""
    if footer:
        foot = "<tfoot><tr>" + "".join(_html_cell("th", t, c.numeric) for t, c in zip(footer, table.columns))
        foot += "</tr></tfoot>"
    note = f"<caption style='caption-side:bottom;text-align:left'>{escape.html(table.note)}</caption>" \
        if table.note else ""
    return (f"<table class='{table.name} {escape.NO_MATH}'>{note}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody>{foot}</table>")


def to_markdown(table: Table) -> str:
    """A Markdown pipe table (every cell escaped), the totals row in bold, the note under it."""
    lines = ["| " + " | ".join(escape.markdown(c.title) for c in table.columns) + " |",
             "|" + "|".join("---:" if c.numeric else "---" for c in table.columns) + "|"]
    lines += ["| " + " | ".join(escape.markdown(v) for v in cells) + " |" for cells in table.text_rows()]
    footer = table.footer_text()
    if footer:
        lines.append("| " + " | ".join(f"**{escape.markdown(v)}**" if v else "" for v in footer) + " |")
    if table.note:
        lines += ["", escape.markdown(table.note)]
    return "\n".join(lines)


def to_latex(table: Table, comment: str = "") -> str:
    """A LaTeX ``tabular`` (no packages needed), every cell escaped; `comment` becomes a ``%`` line on top."""
    spec = "".join("r" if c.numeric else "l" for c in table.columns)
    lines = [f"% {escape.latex(comment)}"] if comment else []
    lines += [f"\\begin{{tabular}}{{{spec}}}", "\\hline",
              " & ".join(escape.latex(c.title) for c in table.columns) + r" \\", "\\hline"]
    lines += [" & ".join(escape.latex(v) for v in cells) + r" \\" for cells in table.text_rows()]
    footer = table.footer_text()
    if footer:
        lines += ["\\hline", " & ".join(escape.latex(v) for v in footer) + r" \\"]
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines)


def to_csv(table: Table) -> str:
    """The table's text cells as CSV (RFC 4180 quoting), header first."""
    rows = [[c.title for c in table.columns], *table.text_rows()]
    return "\n".join(",".join(escape.csv_cell(v) for v in row) for row in rows) + "\n"


def to_styler(table: Table, bars: bool = True) -> Styler:
    """A pandas Styler: escaped cells, labels indented by depth, counts right-aligned, inline bars on counts."""
    import pandas as pd

    columns = [c.title for c in table.columns]
    shown = pd.DataFrame(table.text_rows(), columns=columns)
    label = _label_index(table)
    counts = [c.title for c in table.columns if c.numeric]
    styler = shown.style.hide(axis="index").format(escape="html").format_index(escape="html", axis=1)

    def indent(data: Any) -> Any:
        css = pd.DataFrame("", index=data.index, columns=data.columns)
        if label is not None and table.depth:
            css.iloc[:, label] = [f"padding-left: {0.3 + d:.1f}em; text-align: left" for d in table.depth]
        return css

    styler = styler.apply(indent, axis=None).set_table_attributes(f'class="{table.name} {escape.NO_MATH}"')
    if counts:
        styler = styler.set_properties(subset=counts, **{"text-align": "right"})
    if bars and counts and table.rows:
        numbers = pd.DataFrame([[_number(v) for v, c in zip(row, table.columns) if c.numeric] for row in table.rows],
                               columns=counts)
        styler = styler.apply(lambda data: _bar_css(numbers), axis=None, subset=counts)
    if table.note:
        styler = styler.set_caption(escape.html(table.note))
    return styler


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _bar_css(numbers: Any) -> Any:
    """Inline bars as a background gradient proportional to each column's largest value."""
    out = numbers.copy().astype(object)
    for column in numbers.columns:
        top = max(numbers[column].max(), 1)
        out[column] = [f"background: linear-gradient(90deg, rgba(66,133,244,.28) {100 * v / top:.1f}%, "
                       f"transparent {100 * v / top:.1f}%)" if v > 0 else "" for v in numbers[column]]
    return out
