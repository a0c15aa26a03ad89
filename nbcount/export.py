"""Static views of a Report: text, escaped HTML, Markdown, LaTeX, CSV, JSON and the fallback mime bundle."""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from nbcount.report import Report

#: Columns shown by default in the static table and the widget (all columns stay in report.table).
DEFAULT_COLUMNS = ("layer", "type", "output_shape", "params", "macs", "flops", "output_bytes")
NUMERIC = ("params", "macs", "flops", "param_bytes", "buffer_bytes", "output_bytes")
UNITS = ("both", "raw", "si")
_SI = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k"))


# numbers and selections -------------------------------------------------------------------------
def human(value: float, units: str = "both") -> str:
    """``11,038,081 (11.04 M)`` for 'both', ``11,038,081`` for 'raw', ``11.04 M`` for 'si'."""
    if units not in UNITS:
        raise ValueError(f"units must be one of {', '.join(UNITS)}, not {units!r}")
    raw = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    short = next((f"{value / scale:.2f} {prefix}" for scale, prefix in _SI if abs(value) >= scale), raw)
    if units == "raw" or short == raw:
        return raw
    return short if units == "si" else f"{raw} ({short})"


def megabytes(n_bytes: float) -> str:
    """Bytes as MB with MB = 2^20 bytes (torchsummary's unit)."""
    return f"{n_bytes / 2**20:,.2f} MB ({int(n_bytes):,} bytes)"


def check_columns(report: Report, columns: Sequence[str] | None) -> list[str]:
    """The requested columns, validated against the table (ValueError listing the valid ones)."""
    if not columns:
        return list(DEFAULT_COLUMNS)
    valid = list(report.table.columns)
    unknown = [c for c in columns if c not in valid]
    if unknown:
        raise ValueError(f"unknown column(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    return list(columns)


def select(report: Report, depth: int | None = None, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The table's rows up to `depth` (None: all) with `columns`, plus the 'depth' column for indenting."""
    table = report.table
    if depth is not None:
        table = table[table["depth"] <= depth]
    wanted = check_columns(report, columns)
    keep = wanted + (["depth"] if "depth" not in wanted else [])
    return table[keep].copy()


def column_title(report: Report, column: str) -> str:
    """Header of a column; the flops column names its unit and convention."""
    if column == "flops":
        return f"{report.convention.unit} ({report.convention.name})"
    return column


def cell_text(value: Any) -> str:
    """A table cell as text: thousands separators for numbers, shapes as written by torch."""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, int) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"):
        return f"{int(value):,}"
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(cell_text(v) for v in value)
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def layer_label(layer: str, call: int) -> str:
    """'(root)' for the root, the dotted path otherwise, with '[call k]' for repeated calls."""
    name = layer or "(root)"
    return f"{name} [call {call}]" if call else name


# summary ---------------------------------------------------------------------------------------
def summary_items(report: Report, units: str = "both") -> list[tuple[str, str]]:
    """(label, value) lines of the totals, each with its unit and the convention named."""
    conv = report.convention
    mem = report.memory
    status = "complete" if report.status == "complete" else "lower bound (some ops were not counted)"
    items = [
        ("model", report.rows[0].call.module_type if report.rows else "?"),
        ("parameters (unique)", human(report.total_params, units)),
        ("used by the forward pass", human(report.used_params, units)),
        ("trainable", human(report.trainable_params, units)),
        ("MACs", human(report.total_macs, units)),
        (f"{conv.unit} under the {conv.name!r} convention", human(report.total_flops, units)),
        ("status", status),
        ("parameter memory", megabytes(mem.get("param_bytes", 0))),
        ("peak activation memory (inference)", megabytes(mem.get("peak_activation_bytes", 0))),
    ]
    return items


def findings(report: Report) -> list[str]:
    """The diagnostics' messages, shared / unused / uncounted first."""
    order = {"uncounted_op": 0, "shared_params": 1, "unused_module": 2}
    diags = sorted(report.diagnostics, key=lambda d: order.get(d.kind, 3))
    return [f"{d.kind}: {d.message}" for d in diags]


def to_text(report: Report, depth: int | None = None, columns: Sequence[str] | None = None,
            units: str = "both") -> str:
    """Plain text: totals, findings and the table."""
    lines = [f"{label}: {value}" for label, value in summary_items(report, units)]
    lines += [f"! {message}" for message in findings(report)]
    frame = select(report, depth, columns)
    wanted = check_columns(report, columns)
    cells = [[column_title(report, c) for c in wanted]]
    for index, rec in frame.iterrows():
        label = layer_label(rec["layer"], int(report.table.loc[index, "call"]))
        cells.append([("  " * int(rec["depth"]) + label) if c == "layer" else cell_text(rec[c]) for c in wanted])
    widths = [max(len(r[i]) for r in cells) for i in range(len(wanted))]
    for r in cells:
        lines.append("  ".join(v.rjust(w) if wanted[i] in NUMERIC else v.ljust(w)
                               for i, (v, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(lines)


# HTML ------------------------------------------------------------------------------------------
def summary_html(report: Report, units: str = "both") -> str:
    """The totals as an escaped HTML definition table."""
    rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
                   f"{html.escape(v)}</td></tr>" for k, v in summary_items(report, units))
    return f"<table class='nbcount-summary tex2jax_ignore mathjax_ignore'>{rows}</table>"


def findings_html(report: Report) -> str:
    """The diagnostics as an escaped HTML list ('no findings' when empty)."""
    items = findings(report)
    if not items:
        return "<p class='nbcount-findings'>No findings: no shared, unused or uncounted parts.</p>"
    lis = "".join(f"<li>{html.escape(m)}</li>" for m in items)
    return f"<ul class='nbcount-findings tex2jax_ignore mathjax_ignore'>{lis}</ul>"


def table_html(report: Report, depth: int | None = None, columns: Sequence[str] | None = None) -> str:
    """The per-layer table as escaped HTML, indented by depth (no pandas Styler / jinja2 needed)."""
    frame = select(report, depth, columns)
    wanted = check_columns(report, columns)
    head = "".join(f"<th>{html.escape(column_title(report, c))}</th>" for c in wanted)
    body = []
    for index, rec in frame.iterrows():
        tds = []
        for c in wanted:
            if c == "layer":
                text = layer_label(rec["layer"], int(report.table.loc[index, "call"]))
                tds.append(f"<td style='text-align:left;padding-left:{0.3 + int(rec['depth'])}em'>"
                           f"{html.escape(text)}</td>")
            else:
                align = "right" if c in NUMERIC else "left"
                tds.append(f"<td style='text-align:{align}'>{html.escape(cell_text(rec[c]))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (f"<table class='nbcount-table tex2jax_ignore mathjax_ignore'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def png_img_html(png: bytes, alt: str = "nbcount chart") -> str:
    """An <img> with the PNG inlined as a data URI."""
    data = base64.b64encode(png).decode("ascii")
    return f"<img class='nbcount-chart' alt='{html.escape(alt)}' src='data:image/png;base64,{data}'/>"


def report_html(report: Report, depth: int | None = None, columns: Sequence[str] | None = None,
                units: str = "both", png: bytes | None = None) -> str:
    """Summary, findings, table and (if given) the chart as one escaped HTML fragment."""
    parts = ["<div class='nbcount-report'>", summary_html(report, units), findings_html(report),
             table_html(report, depth, columns)]
    if png:
        parts.append(png_img_html(png))
    parts.append("</div>")
    return "".join(parts)


# Markdown / LaTeX / CSV / JSON -----------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|<>$~&])")


def md_escape(text: str) -> str:
    """Backslash-escape every Markdown / HTML / math punctuation character."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def to_markdown(report: Report, depth: int | None = None, columns: Sequence[str] | None = None,
                units: str = "both") -> str:
    """Totals as a bullet list, findings, then the table as a Markdown pipe table (escaped)."""
    lines = [f"- **{md_escape(k)}**: {md_escape(v)}" for k, v in summary_items(report, units)]
    lines += [f"- ⚠ {md_escape(m)}" for m in findings(report)]
    wanted = check_columns(report, columns)
    lines += ["", "| " + " | ".join(md_escape(column_title(report, c)) for c in wanted) + " |",
              "|" + "|".join("---:" if c in NUMERIC else "---" for c in wanted) + "|"]
    for index, rec in select(report, depth, columns).iterrows():
        cells = [layer_label(rec["layer"], int(report.table.loc[index, "call"])) if c == "layer"
                 else cell_text(rec[c]) for c in wanted]
        lines.append("| " + " | ".join(md_escape(v) for v in cells) + " |")
    return "\n".join(lines)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
                  "%": r"\%", "_": r"\_", "^": r"\^{}", "~": r"\~{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (text mode)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(report: Report, depth: int | None = None, columns: Sequence[str] | None = None) -> str:
    """The table as a LaTeX ``tabular`` (booktabs-free, every cell escaped)."""
    wanted = check_columns(report, columns)
    spec = "".join("r" if c in NUMERIC else "l" for c in wanted)
    lines = [f"% nbcount: {latex_escape(report.convention.unit)} under the "
             f"{latex_escape(report.convention.name)} convention; status {report.status}",
             f"\\begin{{tabular}}{{{spec}}}", "\\hline",
             " & ".join(latex_escape(column_title(report, c)) for c in wanted) + r" \\", "\\hline"]
    for index, rec in select(report, depth, columns).iterrows():
        cells = [layer_label(rec["layer"], int(report.table.loc[index, "call"])) if c == "layer"
                 else cell_text(rec[c]) for c in wanted]
        lines.append(" & ".join(latex_escape(v) for v in cells) + r" \\")
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines)


def to_csv(report: Report, path: Any = None) -> str | None:
    """The full table as CSV (written to `path`, or returned as a string)."""
    return report.table.to_csv(path, index=False)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def to_dict(report: Report) -> dict[str, Any]:
    """Totals, convention, memory, rows and diagnostics as plain Python data."""
    conv = report.convention
    rows = [{k: _plain(v) for k, v in rec.items()} for rec in report.table.to_dict(orient="records")]
    return {
        "convention": {"name": conv.name, "unit": conv.unit, "description": conv.description, "source": conv.source},
        "totals": {"params": report.total_params, "used_params": report.used_params,
                   "trainable_params": report.trainable_params, "macs": report.total_macs,
                   "flops": report.total_flops},
        "status": report.status,
        "uncounted_ops": dict(report.uncounted_ops),
        "memory": {k: _plain(v) for k, v in report.memory.items()},
        "rows": rows,
        "diagnostics": [{"kind": d.kind, "message": d.message, "layers": list(d.layers), "count": d.count}
                        for d in report.diagnostics],
    }


def to_json(report: Report, indent: int | None = 1) -> str:
    """to_dict() as a JSON string."""
    return json.dumps(to_dict(report), indent=indent, default=str)


def mimebundle(report: Report, depth: int | None = None, columns: Sequence[str] | None = None,
               units: str = "both", top: int = 10, log: bool = False, png: bytes | None = None) -> dict[str, Any]:
    """The static fallback: text/plain, escaped text/html (with the chart inlined), image/png, text/markdown."""
    if png is None:
        from nbcount.charts import chart_png

        png = chart_png(report, top=top, log=log)
    return {
        "text/plain": to_text(report, depth, columns, units),
        "text/html": report_html(report, depth, columns, units, png),
        "image/png": base64.b64encode(png).decode("ascii"),
        "text/markdown": to_markdown(report, depth, columns, units),
    }
