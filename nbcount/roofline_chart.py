"""The classic log-log roofline chart of a Roofline: roofs per dtype, one dot per layer (area ∝ time)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from nbcount import escape
from nbcount.machines import seconds, si

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from nbcount.roofline import LayerRoofline, Roofline

MEMORY, COMPUTE, ROOF = "#4c72b0", "#dd8452", "#444444"


class RooflineFigure(Figure):
    """A matplotlib Figure that shows itself as a PNG in any notebook, whatever the backend (Agg included)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def _ticks(ax: Axes) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: si(v).strip()))
    ax.tick_params(labelsize=10)


def _roofs(ax: Axes, view: Roofline, low: float, high: float) -> None:
    bandwidth = view.hardware.bandwidth_bytes_per_s
    roofs: dict[float, list[str]] = {}
    for key, peak in view.peaks.items():
        roofs.setdefault(peak.flops_per_s, []).append(key)
    for i, (flops_per_s, keys) in enumerate(sorted(roofs.items())):
        ridge = flops_per_s / bandwidth
        xs = [low, ridge, high] if low < ridge < high else [low, high]
        ax.plot(xs, [min(flops_per_s, x * bandwidth) for x in xs], color=ROOF, lw=1.5,
                ls=("-", "--", ":", "-.")[i % 4],
                label=f"{' / '.join(keys)} roof {si(flops_per_s)}FLOP/s, ridge {ridge:,.3g} FLOP/B")
        ax.axvline(ridge, color=ROOF, lw=0.6, ls=":", alpha=0.6)


@dataclass(frozen=True)
class Dot:
    """Rows at the same point of the chart (repeated blocks), drawn as one dot whose area is their summed time."""

    label: str
    count: int
    intensity: float
    flops_per_s: float
    time_s: float
    bound: str


def _group_label(rows: list[LayerRoofline]) -> str:
    """'layers.*.w1 ×32' for a repeated block (path parts that differ become *), else 'wq and 224 more (Linear)'."""
    if len(rows) == 1:
        return rows[0].label
    split = [row.label.split(".") for row in rows]
    if len({len(parts) for parts in split}) == 1:
        return ".".join(p[0] if len(set(p)) == 1 else "*" for p in zip(*split)) + f" ×{len(rows)}"
    types: dict[str, int] = {}
    for row in rows:
        types[row.module_type] = types.get(row.module_type, 0) + 1
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(types.items(), key=lambda kv: -kv[1]))
    return f"{rows[0].label} and {len(rows) - 1} more ({kinds})"


def dots(view: Roofline) -> list[Dot]:
    """One dot per point of the chart (rows within 2% of each other in both axes merged), slowest first."""
    groups: dict[tuple[float, float, str], list[LayerRoofline]] = {}
    for lay in view.moving:
        if lay.flops and lay.bytes:
            key = (round(math.log10(lay.intensity), 2), round(math.log10(lay.flops / lay.time_s), 2), lay.bound)
            groups.setdefault(key, []).append(lay)
    ordered = [sorted(g, key=lambda x: -x.time_s) for g in groups.values()]  # the slowest names the group
    found = [Dot(_group_label(g), len(g), g[0].intensity, g[0].flops / g[0].time_s,
                 sum(x.time_s for x in g), g[0].bound) for g in ordered]
    return sorted(found, key=lambda d: -d.time_s)


def _draw_dots(ax: Axes, found: list[Dot], total: float, top: int) -> list[str]:
    """The dots, the `top` slowest numbered beside them; returns the numbered key's lines."""
    biggest = max((d.time_s for d in found), default=1.0) or 1.0
    for bound, colour in (("memory", MEMORY), ("compute", COMPUTE)):
        chosen = [d for d in found if d.bound == bound]
        if chosen:
            ax.scatter([d.intensity for d in chosen], [d.flops_per_s for d in chosen],
                       s=[15 + 600 * d.time_s / biggest for d in chosen], color=colour, alpha=0.6,
                       edgecolors="white", linewidths=0.5, label=f"{bound}-bound layers (area ∝ time)")
    key = []
    for rank, d in enumerate(found[:top], start=1):
        offset = ((6, 4), (6, -14), (-16, 4), (-16, -14))[(rank - 1) % 4]
        ax.annotate(str(rank), (d.intensity, d.flops_per_s), xytext=offset, textcoords="offset points",
                    fontsize=10, fontweight="bold")
        key.append(f"{rank}. {d.label}: {d.time_s / total:.0%} ({d.bound})")
    return key


def _limits(view: Roofline, found: list[Dot]) -> tuple[float, float, float, float]:
    peaks = list(view.peaks.values())
    xs = [d.intensity for d in found] + [view.ridge(p) for p in peaks]
    low, high = min(xs) / 4, max(xs) * 4
    bottom = min([d.flops_per_s for d in found] + [low * view.hardware.bandwidth_bytes_per_s]) / 3
    return low, high, bottom, max(p.flops_per_s for p in peaks) * 3


def roofline_figure(view: Roofline, top: int = 6) -> RooflineFigure:
    """A matplotlib Figure (no pyplot: safe under Agg and any backend), readable at notebook width."""
    found = dots(view)
    key_height = 0.22 * min(top, len(found)) + 0.15
    fig = RooflineFigure(figsize=(8, 5 + key_height), layout="constrained")
    ax, side = fig.subplots(2, 1, height_ratios=(5, key_height))
    side.set_axis_off()
    ax.set_xscale("log")
    ax.set_yscale("log")
    total = view.total_time_s or 1.0
    low, high, bottom, ceiling = _limits(view, found)
    _roofs(ax, view, low, high)
    key = _draw_dots(ax, found, total, top)
    hidden = [lay for lay in view.moving if not lay.flops]
    if hidden:
        share = sum(lay.time_s for lay in hidden) / total
        what = "layer only moves" if len(hidden) == 1 else "layers only move"
        ax.text(0.01, 0.01, f"{len(hidden)} {what} bytes (no FLOPs, not drawn): {share:.0%} of the time",
                transform=ax.transAxes, fontsize=10, color="#555555")
    ax.set_xlim(low, high)
    ax.set_ylim(bottom, ceiling)
    ax.set_xlabel("arithmetic intensity (FLOPs per byte)", fontsize=11)
    ax.set_ylabel("attained FLOP/s", fontsize=11)
    model = view.report.rows[0].call.module_type if view.report.rows else "model"
    ax.set_title(escape.mathtext(f"{model} on {view.hardware.name}: {seconds(view.total_time_s)}, "
                           f"{view.memory_bound_share:.0%} memory-bound"), fontsize=12)
    _ticks(ax)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=10, loc="upper left")
    side.text(0.0, 1.0, escape.mathtext("\n".join(key)), fontsize=10, va="top", ha="left", transform=side.transAxes)
    return fig


def roofline_png(view: Roofline, top: int = 6) -> bytes:
    """The chart as PNG bytes (the figure is discarded afterwards)."""
    fig = roofline_figure(view, top)
    try:
        return fig._repr_png_()
    finally:
        fig.clear()
