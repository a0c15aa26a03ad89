"""Matplotlib bar charts of a Report's per-layer costs, rendered to PNG bytes (no pyplot, no backend)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nbcount.report import Report, Row

#: (metric, title suffix) of the three default charts.
METRICS = ("params", "flops", "activation")


@dataclass(frozen=True)
class Bars:
    """The bars of one chart: labels and values, largest first, the remainder folded into 'others'."""

    title: str
    labels: tuple[str, ...]
    values: tuple[int, ...]


def row_label(row: Row) -> str:
    """A row's display name: its dotted path (the class name for the root), with the call index if > 0."""
    name = row.layer or f"({row.call.module_type})"
    return f"{name} [call {row.call.call_index}]" if row.call.call_index else name


def metric_values(report: Report, metric: str) -> list[tuple[str, int]]:
    """(label, value) per row for 'params', 'flops' or 'activation' (leaf outputs' bytes), zeros dropped."""
    pairs: list[tuple[str, int]] = []
    for row in report.rows:
        if metric == "params":
            value = row.params
        elif metric == "flops":
            value = report.convention.row_value(row)
        elif metric == "activation":
            value = row.output_bytes if row.call.is_leaf else 0  # a container's output is its last child's
        else:
            raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
        if value:
            pairs.append((row_label(row), int(value)))
    return pairs


def metric_title(report: Report, metric: str) -> str:
    """The chart title with its unit and, for FLOPs, the convention that produced them."""
    if metric == "params":
        return "parameters (new at each call)"
    if metric == "flops":
        return f"{report.convention.unit} ({report.convention.name} convention)"
    return "activation memory (bytes of each leaf layer's output)"


def top_bars(report: Report, metric: str, top: int = 10) -> Bars:
    """The `top` largest rows of `metric`, the rest summed into one 'others (k layers)' bar."""
    if top < 1:
        raise ValueError("top must be at least 1")
    pairs = sorted(metric_values(report, metric), key=lambda p: -p[1])
    head, rest = pairs[:top], pairs[top:]
    if rest:
        head.append((f"others ({len(rest)} layers)", sum(v for _, v in rest)))
    return Bars(metric_title(report, metric), tuple(p[0] for p in head), tuple(p[1] for p in head))


def _mpl_safe(text: str) -> str:
    """Keep matplotlib from reading a module name as mathtext."""
    return text.replace("$", r"\$")


def figure(report: Report, metrics: tuple[str, ...] = METRICS, top: int = 10, log: bool = False) -> Figure:
    """A figure with one horizontal bar chart per metric (top-N plus 'others')."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    charts = [top_bars(report, m, top) for m in metrics]
    height = max(2.0, 0.28 * max((len(c.labels) for c in charts), default=1) + 1.2)
    fig = Figure(figsize=(6.4 * len(charts), height), layout="constrained")
    axes = fig.subplots(1, len(charts), squeeze=False)[0]
    for ax, bars in zip(axes, charts):
        ax.set_title(_mpl_safe(bars.title), fontsize=10)
        if not bars.values:
            ax.text(0.5, 0.5, "all zero", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        positions = list(range(len(bars.values)))[::-1]
        colours = ["#bbbbbb" if lab.startswith("others (") else "#4c72b0" for lab in bars.labels]
        ax.barh(positions, bars.values, color=colours)
        ax.set_yticks(positions, [_mpl_safe(lab) for lab in bars.labels], fontsize=8)
        if log:
            ax.set_xscale("log")
        else:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
        ax.tick_params(axis="x", labelsize=8)
    return fig


def chart_png(report: Report, metrics: tuple[str, ...] = METRICS, top: int = 10, log: bool = False,
              dpi: int = 80) -> bytes:
    """The charts as PNG bytes (works under any MPLBACKEND; the figure is discarded afterwards)."""
    fig = figure(report, metrics, top, log)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        fig.clear()
    return buffer.getvalue()
