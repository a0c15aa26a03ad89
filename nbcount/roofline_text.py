"""Plain-text, escaped-HTML and JSON views of a Roofline (what the CLI, a widget tab and the repr show)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbcount import escape
from nbcount.machines import seconds, si
from nbcount.traffic import ASSUMPTION, FLOPS_NOTE, PEAKS_NOTE

if TYPE_CHECKING:
    from nbcount.roofline import LayerRoofline, Roofline

HEADERS = ("layer", "type", "dtype", "FLOPs", "bytes", "FLOP/B", "bound", "time", "share")


def _peaks_line(view: Roofline) -> str:
    hardware = view.hardware
    parts = [f"{k} {si(p.flops_per_s)}FLOP/s (ridge {view.ridge(p):,.1f} FLOP/B)" for k, p in view.peaks.items()]
    return f"{hardware.name}: {', '.join(parts)}; {si(hardware.bandwidth_bytes_per_s)}B/s"


def summary_lines(view: Roofline) -> list[str]:
    """The header: hardware, the two assumptions, totals."""
    model = view.report.rows[0].call.module_type if view.report.rows else "model"
    forced = f" (every matrix op at the {view.dtype} peak)" if view.dtype else ""
    return [f"Roofline of {model} on {_peaks_line(view)}{forced}",
            f"FLOPs: {FLOPS_NOTE}; {PEAKS_NOTE}", f"bytes: {ASSUMPTION}",
            f"total {seconds(view.total_time_s)} layer after layer ({seconds(view.fused_time_s)} with each layer "
            f"fused), {view.memory_bound_share:.0%} of it memory-bound; {si(view.total_flops)}FLOPs, "
            f"{si(view.total_bytes)}B moved"]


def _cells(lay: LayerRoofline, total: float) -> tuple[str, ...]:
    return (lay.label, lay.module_type, lay.dtype, si(lay.flops).strip(), si(lay.bytes).strip(),
            f"{lay.intensity:,.3g}", lay.bound, seconds(lay.time_s), f"{lay.time_s / total:.1%}")


def slowest(view: Roofline, top: int) -> list[LayerRoofline]:
    """The `top` rows with the longest roofline time, slowest first."""
    return sorted(view.moving, key=lambda lay: -lay.time_s)[:top]


def roofline_text(view: Roofline, top: int = 15) -> str:
    """The summary and the `top` slowest layers as an aligned plain-text table."""
    total = view.total_time_s or 1.0
    rows = [HEADERS] + [_cells(lay, total) for lay in slowest(view, top)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(c.ljust(w) if i < 3 or i == 6 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    more = len(view.moving) - top
    tail = [f"... {more} more layers (roofline.table has all)"] if more > 0 else []
    return "\n".join(summary_lines(view) + [""] + lines + tail)


def roofline_html(view: Roofline, top: int = 15, chart: bool = True) -> str:
    """Escaped HTML: the summary, the slowest layers and (with `chart`) the roofline as an inline PNG."""
    import base64

    total = view.total_time_s or 1.0
    head = "".join(f"<th>{escape.html(h)}</th>" for h in HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{escape.html(c)}</td>" for c in _cells(lay, total)) + "</tr>"
                   for lay in slowest(view, top))
    summary = "<br>".join(escape.html(line) for line in summary_lines(view))
    image = ""
    if chart and view.moving:
        from nbcount.roofline_chart import roofline_png

        data = base64.b64encode(roofline_png(view)).decode("ascii")
        image = f"<img alt='roofline chart' src='data:image/png;base64,{data}'>"
    return (f"<div class='nbcount-roofline'><p>{summary}</p>{image}"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def roofline_dict(view: Roofline) -> dict[str, Any]:
    """Plain values only: hardware record, assumptions, totals, ridge points, one record per layer."""
    records = view.table.to_dict(orient="records")
    return {"hardware": view.hardware.record(), "dtype": view.dtype, "flops": FLOPS_NOTE, "bytes": ASSUMPTION,
            "total_time_s": view.total_time_s, "fused_time_s": view.fused_time_s, "total_flops": view.total_flops,
            "total_bytes": view.total_bytes, "memory_bound_share": view.memory_bound_share,
            "peaks_flops_per_s": {k: p.flops_per_s for k, p in view.peaks.items()},
            "ridge_flops_per_byte": {k: view.ridge(p) for k, p in view.peaks.items()},
            "layers": [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records],
            "summary": summary_lines(view)}
