"""Matplotlib bar charts of a Report (the static fallback and ``report.chart()``), rendered without pyplot.

Readable at a notebook's width: 10-point text at 96 dpi, k/M/G axis ticks, layers labelled by dotted
path (never a bare index), repeated blocks summed into one bar (``h.*.mlp.c_fc ×12``) or bars per
module type, the rest folded into 'others'. The widget draws its own charts in the browser (SVG).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbcount import escape, labels
from nbcount.subtotals import repeated_parents

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nbcount.report import Report

#: the charts of the static fallback, and every metric a chart can show
METRICS = ("params", "flops")
ALL_METRICS = ("params", "flops", "macs", "activation")
GROUPS = ("layer", "pattern", "type")
DPI = 96
_SI = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
BAR = "#4c72b0"
OTHER = "#a6a6a6"


@dataclass(frozen=True)
class Bars:
    """The bars of one chart: labels and values, largest first, the remainder folded into 'others'."""

    title: str
    labels: tuple[str, ...]
    values: tuple[int, ...]


def row_label(row: Any) -> str:
    """A row's display name (nbcount.labels.row_label)."""
    return labels.row_label(row)


def si(value: float) -> str:
    """Axis text: ``0``, ``250``, ``1.5k``, ``12M``, ``3.2G``."""
    for scale, prefix in _SI:
        if abs(value) >= scale:
            text = f"{value / scale:.1f}".rstrip("0").rstrip(".")
            return f"{text}{prefix}"
    return f"{value:g}"


def _row_value(report: Report, row: Any, metric: str) -> int:
    if metric == "params":
        return row.params
    if metric == "flops":
        return int(report.convention.row_value(row))
    if metric == "macs":
        return row.macs
    if metric == "activation":
        return row.output_bytes if row.call.is_leaf else 0  # a container's output is its last child's
    raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(ALL_METRICS)}")


def metric_values(report: Report, metric: str, group: str = "layer") -> list[tuple[str, int]]:
    """(label, value) per bar: each row's own value, summed per repeated block or per module type; zeros dropped."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; choose from {', '.join(GROUPS)}")
    repeated = repeated_parents(report) if group == "pattern" else frozenset()
    sums: dict[str, list[Any]] = {}
    for row in report.rows:
        value = _row_value(report, row, metric)
        if not value:
            continue
        if group == "type":
            key = row.call.module_type
        elif group == "pattern":
            call = f"#{row.call.call_index}" if row.call.call_index else ""
            key = labels.repeat_pattern(row.layer, repeated) + call
        else:
            key = labels.row_label(row)
        entry = sums.setdefault(key, [0, 0, row])
        entry[0] += int(value)
        entry[1] += 1
    out = []
    for key, (value, n, first) in sums.items():
        if group == "layer" or (group == "pattern" and n == 1):
            out.append((labels.row_label(first), value))
        else:
            out.append((f"{key or labels.ROOT} ×{n}", value))
    return out


GROUP_TITLES = {"layer": "per layer", "pattern": "per layer, repeated blocks summed (×n)",
                "type": "per module type (×n layers)"}


def metric_title(report: Report, metric: str, group: str = "layer") -> str:
    """The chart title with its unit and, for FLOPs, the convention that produced them."""
    if metric == "params":
        return "parameters (new at each call)"
    if metric == "flops":
        return f"{report.convention.unit} ({report.convention.name}), own ops"
    if metric == "macs":
        return "MACs, own ops"
    return "activation memory (bytes)"


def default_group(report: Report) -> str:
    """'pattern' when the model has repeated blocks (GPT-2's h.0–h.11), else 'layer'."""
    return "pattern" if repeated_parents(report) else "layer"


def top_bars(report: Report, metric: str, top: int = 10, group: str = "layer") -> Bars:
    """The `top` largest bars of `metric`, the rest summed into one 'others (k layers)' bar."""
    if top < 1:
        raise ValueError("top must be at least 1")
    pairs = sorted(metric_values(report, metric, group), key=lambda p: -p[1])
    head, rest = pairs[:top], pairs[top:]
    if rest:
        head.append((f"others ({len(rest)} bars)", sum(v for _, v in rest)))
    return Bars(metric_title(report, metric, group), tuple(p[0] for p in head), tuple(p[1] for p in head))


def _draw(ax: Any, bars: Bars, log: bool) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_title(escape.mathtext(bars.title), fontsize=10.5, loc="left")
    if not bars.values:
        ax.text(0.5, 0.5, "all zero", ha="center", va="center", transform=ax.transAxes, fontsize=10)
        ax.set_axis_off()
        return
    positions = list(range(len(bars.values)))[::-1]
    colours = [OTHER if lab.startswith("others (") else BAR for lab in bars.labels]
    ax.barh(positions, bars.values, color=colours, height=0.72)
    shown = [lab if len(lab) <= 34 else lab[:33] + "…" for lab in bars.labels]
    ax.set_yticks(positions, [escape.mathtext(lab) for lab in shown], fontsize=10)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: si(v)))
    ax.tick_params(axis="x", labelsize=10)
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)
    ax.grid(axis="x", alpha=0.3)
    for y, value in zip(positions, bars.values):
        ax.text(value, y, " " + si(value), va="center", fontsize=9)
    ax.margins(x=0.12)


def figure(report: Report, metrics: tuple[str, ...] = METRICS, top: int = 10, log: bool = False,
           group: str | None = None, width: float = 9.6) -> Figure:
    """A figure with one horizontal bar chart per metric, side by side, `width` inches wide.

    The axes are placed by hand (room for the longest label, the values and the titles): a layout engine
    would measure every text twice, which costs more than drawing the chart.
    """
    from matplotlib.figure import Figure

    group = group or default_group(report)
    charts = [top_bars(report, m, top, group) for m in metrics]
    rows = max(max((len(c.labels) for c in charts), default=1), 2)
    height = 0.95 + 0.3 * rows
    fig = Figure(figsize=(width, height))
    fig.suptitle(GROUP_TITLES[group], fontsize=10, x=0.01, y=1 - 0.06 / height, ha="left", va="top",
                 color="#555555")
    panel = width / len(charts)
    top_in, bottom_in, right_in = 0.55, 0.35, 0.6
    for k, bars in enumerate(charts):
        longest = max((min(len(lab), 34) for lab in bars.labels), default=4)
        left_in = min(0.45 * panel, 0.2 + 0.075 * longest)
        box = ((k * panel + left_in) / width, bottom_in / height, (panel - left_in - right_in) / width,
               (height - top_in - bottom_in) / height)
        _draw(fig.add_axes(box), bars, log)
    return fig


def chart_png(report: Report, metrics: tuple[str, ...] = METRICS, top: int = 10, log: bool = False,
              group: str | None = None, dpi: int = DPI) -> bytes:
    """The charts as PNG bytes (works under any MPLBACKEND; the figure is discarded afterwards)."""
    fig = figure(report, metrics, top, log, group)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        fig.clear()
    return buffer.getvalue()


@dataclass(frozen=True)
class Chart:
    """``report.chart()``: shows as a PNG in a notebook; ``.figure()`` gives the matplotlib Figure to adjust."""

    report: Report
    metrics: tuple[str, ...] = METRICS
    top: int = 10
    log: bool = False
    group: str | None = None

    def figure(self) -> Figure:
        """A fresh matplotlib Figure of these charts."""
        return figure(self.report, self.metrics, self.top, self.log, self.group)

    def to_png(self, dpi: int = DPI) -> bytes:
        """The charts as PNG bytes."""
        return chart_png(self.report, self.metrics, self.top, self.log, self.group, dpi)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        import base64

        return {"image/png": base64.b64encode(self.to_png()).decode("ascii"),
                "text/plain": f"<nbcount chart: {', '.join(self.metrics)}>"}


def chart(report: Report, metric: str | tuple[str, ...] = METRICS, top: int = 10, log: bool = False,
          group: str | None = None) -> Chart:
    """Bar charts of `metric` ('params', 'flops', 'macs', 'activation', or several) for `report`."""
    metrics = (metric,) if isinstance(metric, str) else tuple(metric)
    for m in metrics:
        if m not in ALL_METRICS:
            raise ValueError(f"unknown metric {m!r}; choose from {', '.join(ALL_METRICS)}")
    if group is not None and group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; choose from {', '.join(GROUPS)}")
    return Chart(report, metrics, top, log, group)
