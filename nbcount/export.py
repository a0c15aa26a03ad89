"""Static views of a Report: text, escaped HTML, Markdown, LaTeX, CSV, JSON and the fallback mime bundle.

Each is the summary (totals with units, the convention named), the findings and the per-layer table
(``nbcount.table.layer_table``) written by one formatter of ``nbcount.formats``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nbcount import escape, formats
from nbcount.subtotals import Figures, figures
from nbcount.table import Table, layer_table

if TYPE_CHECKING:

    from nbcount.report import Report

UNITS = ("both", "raw", "si")
_SI = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k"))
#: rows of the static table before repeated blocks are folded and deep calls left to report.table
STATIC_ROWS = 60
#: what each kind of diagnostic is called in the views
KIND_TITLES = {"uncounted_op": "not counted", "shared_params": "shared parameters", "unused_module": "unused module",
               "note": "note", "peer_defect": "peer defect"}


# numbers ------------------------------------------------------------------------------------------
def human(value: float, units: str = "both") -> str:
    """``11,038,081 (11.04 M)`` for 'both', ``11,038,081`` for 'raw', ``11.04 M`` for 'si'."""
    if units not in UNITS:
        raise ValueError(f"units must be one of {', '.join(UNITS)}, not {units!r}")
    raw = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    short = si(value)
    if units == "raw" or short == raw:
        return raw
    return short if units == "si" else f"{raw} ({short})"


def si(value: float) -> str:
    """``11.04 M``; numbers below 1,000 as they are."""
    for scale, prefix in _SI:
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def megabytes(n_bytes: float) -> str:
    """Bytes as MB with MB = 2^20 bytes (torchsummary's unit)."""
    return f"{n_bytes / 2**20:,.2f} MB ({int(n_bytes):,} bytes)"


# summary ---------------------------------------------------------------------------------------
def totals(report: Report, sums: Figures | None = None) -> dict[str, int]:
    """The headline numbers once: unique, used and trainable parameters, MACs and the convention's own number
    (``headline``: FLOPs or MACs, as the convention counts)."""
    sums = figures(report) if sums is None else sums
    return {"params": report.total_params, "used": sum(sums.params), "trainable": report.trainable_params,
            "macs": sum(sums.macs), "headline": sum(sums.headline)}


def summary_items(report: Report, units: str = "both", sums: Figures | None = None) -> list[tuple[str, str]]:
    """(label, value) lines of the totals, each with its unit and the convention named."""
    conv = report.convention
    mem = report.memory
    total = totals(report, sums)
    status = "complete" if report.status == "complete" else "lower bound (some ops were not counted)"
    return [
        ("model", report.rows[0].call.module_type if report.rows else "?"),
        ("parameters (unique)", human(total["params"], units)),
        ("used by the forward pass", human(total["used"], units)),
        ("trainable", human(total["trainable"], units)),
        ("MACs", human(total["macs"], units)),
        (f"{conv.unit} under the {conv.name!r} convention", human(total["headline"], units)),
        ("status", status),
        ("parameter memory", megabytes(mem.get("param_bytes", 0))),
        ("peak activation memory (inference)", megabytes(mem.get("peak_activation_bytes", 0))),
    ]


def findings(report: Report) -> list[str]:
    """The diagnostics as sentences, uncounted ops first, then shared parameters and unused modules."""
    order = {"uncounted_op": 0, "shared_params": 1, "unused_module": 2}
    diags = sorted(report.diagnostics, key=lambda d: order.get(d.kind, 3))
    return [f"{KIND_TITLES.get(d.kind, d.kind.replace('_', ' '))}: {d.message}" for d in diags]


def table(report: Report, depth: int | None = None, columns: Sequence[str] | None = None,
          max_rows: int | None = None) -> Table:
    """The per-layer table of the static views (nbcount.table.layer_table)."""
    return layer_table(report, depth, columns, max_rows=max_rows)


def to_text(report: Report, depth: int | None = None, columns: Sequence[str] | None = None,
            units: str = "both", max_rows: int | None = None) -> str:
    """Plain text: totals, findings and the table."""
    lines = [f"{label}: {value}" for label, value in summary_items(report, units)]
    lines += [f"! {message}" for message in findings(report)]
    lines.append(formats.to_text(table(report, depth, columns, max_rows)))
    return "\n".join(lines)


# HTML ------------------------------------------------------------------------------------------
def summary_html(report: Report, units: str = "both") -> str:
    """The totals as an escaped HTML definition table."""
    rows = "".join(f"<tr><th style='text-align:left'>{escape.html(k)}</th><td style='text-align:left'>"
                   f"{escape.html(v)}</td></tr>" for k, v in summary_items(report, units))
    return f"<table class='nbcount-summary {escape.NO_MATH}'>{rows}</table>"


def findings_html(report: Report) -> str:
    """The diagnostics as an escaped HTML list ('no findings' when empty)."""
    items = findings(report)
    if not items:
        return "<p class='nbcount-findings'>No findings: no shared, unused or uncounted parts.</p>"
    lis = "".join(f"<li>{escape.html(m)}</li>" for m in items)
    return f"<ul class='nbcount-findings {escape.NO_MATH}'>{lis}</ul>"


def table_html(report: Report, depth: int | None = None, columns: Sequence[str] | None = None,
               max_rows: int | None = None) -> str:
    """The per-layer table as escaped HTML, indented by depth (no pandas Styler / jinja2 needed)."""
    return formats.to_html(table(report, depth, columns, max_rows))


def png_img_html(png: bytes, alt: str = "nbcount chart") -> str:
    """An <img> with the PNG inlined as a data URI."""
    data = base64.b64encode(png).decode("ascii")
    return f"<img class='nbcount-chart' alt='{escape.html(alt)}' src='data:image/png;base64,{data}'/>"


def report_html(report: Report, depth: int | None = None, columns: Sequence[str] | None = None,
                units: str = "both", png: bytes | None = None, max_rows: int | None = STATIC_ROWS) -> str:
    """Summary, findings, table and (if given) the chart as one escaped HTML fragment."""
    parts = ["<div class='nbcount-report'>", summary_html(report, units), findings_html(report),
             table_html(report, depth, columns, max_rows)]
    if png:
        parts.append(png_img_html(png))
    parts.append("</div>")
    return "".join(parts)


# Markdown / LaTeX / CSV / JSON -----------------------------------------------------------------
def md_escape(text: str) -> str:
    """Backslash-escape every Markdown / HTML / math punctuation character (nbcount.escape.markdown)."""
    return escape.markdown(text)


def to_markdown(report: Report, depth: int | None = None, columns: Sequence[str] | None = None,
                units: str = "both", max_rows: int | None = None) -> str:
    """Totals as a bullet list, findings, then the table as a Markdown pipe table (escaped)."""
    lines = [f"- **{escape.markdown(k)}**: {escape.markdown(v)}" for k, v in summary_items(report, units)]
    lines += [f"- ⚠ {escape.markdown(m)}" for m in findings(report)]
    lines += ["", formats.to_markdown(table(report, depth, columns, max_rows))]
    return "\n".join(lines)


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (text mode; nbcount.escape.latex)."""
    return escape.latex(text)


def to_latex(report: Report, depth: int | None = None, columns: Sequence[str] | None = None) -> str:
    """The table as a LaTeX ``tabular`` (booktabs-free, every cell escaped)."""
    conv = report.convention
    comment = f"nbcount: {conv.unit} under the {conv.name} convention; status {report.status}"
    return formats.to_latex(table(report, depth, columns), comment)


def to_csv(report: Report, path: Any = None) -> str | None:
    """The full table as CSV (written to `path`, or returned as a string)."""
    return report.table.to_csv(path, index=False)


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
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
                   "flops": report.total_flops, "headline": report.headline.value},
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
        "text/plain": to_text(report, depth, columns, units, max_rows=STATIC_ROWS),
        "text/html": report_html(report, depth, columns, units, png),
        "image/png": base64.b64encode(png).decode("ascii"),
        "text/markdown": to_markdown(report, depth, columns, units, max_rows=STATIC_ROWS),
    }
