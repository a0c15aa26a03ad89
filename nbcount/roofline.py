"""The roofline of a counted model on named hardware: per layer, is it compute- or memory-bound, and how long?

A layer's time is bounded by its arithmetic or by its memory traffic: time = max(F / P, B / BW), with F its real
FLOPs (2·MACs + every other op: the ``nbcount`` convention, whatever convention the report prints), B the bytes its
ops move (``nbcount.traffic``: no fusion, no cache reuse — an upper bound), P the dense peak and BW the memory
bandwidth. Multiply-accumulates run at the matrix peak of the op's dtype (bf16 ops at the bf16 peak), every other
FLOP at the vector (fp32) peak; a layer with both has the effective peak F / (F_a/P_a + F_b/P_b). Below the ridge
point P / BW (FLOPs per byte) a layer is memory-bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from nbcount.convention import NBCOUNT
from nbcount.derive import Derivation, Step
from nbcount.machines import Hardware, Peak, dtype_key, get_hardware
from nbcount.traffic import LayerTraffic, layer_traffic, op_dtype
from nbcount.types import Term

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from nbcount.report import Report, Row

COLUMNS = ("layer", "call", "type", "dtype", "flops", "bytes", "fused_bytes", "intensity", "bound", "compute_s",
           "memory_s", "time_s", "share")


def split_flops(steps: tuple[Step, ...]) -> tuple[int, int]:
    """(matrix, vector) real FLOPs of one cost entry: 2 per multiply-accumulate, and 1 per any other op."""
    matrix = sum(NBCOUNT.weights[s.term] * int(s.value) for s in steps if s.term == Term.MAC.value)
    vector = sum(NBCOUNT.weights.get(s.term, 0) * int(s.value) for s in steps if s.term and s.term != Term.MAC.value)
    return matrix, vector


def flops_by_dtype(row: Row) -> dict[tuple[str, bool], int]:
    """A row's real FLOPs per (compute dtype, is vector): each cost at its op's dtype (a module rule's at the row's)."""
    ops = iter(row.call.ops)
    found: dict[tuple[str, bool], int] = {}
    fallback = next((op_dtype(op) for op in row.call.ops if not op.is_view), "float32")
    for source, steps in row.costs:
        dtype = next((op_dtype(op) for op in ops if op.op == source), None)
        if dtype is None:  # a module rule (or an op no longer matched): the row's own dtype
            ops, dtype = iter(()), fallback
        for vector, flops in zip((False, True), split_flops(steps)):
            if flops:
                found[dtype, vector] = found.get((dtype, vector), 0) + flops
    return found


@dataclass(frozen=True)
class LayerRoofline:
    """One row on the roofline: its FLOPs at each peak, its bytes, and the time each side bounds."""

    index: int  # position in report.rows
    layer: str
    call: int
    module_type: str
    compute: tuple[tuple[Peak, int], ...]  # (peak used, FLOPs run at it)
    traffic: LayerTraffic
    bandwidth: float

    @property
    def flops(self) -> int:
        """Real FLOPs of the row's own ops."""
        return sum(f for _, f in self.compute)

    @property
    def bytes(self) -> int:
        """Bytes the row's ops move (no fusion)."""
        return self.traffic.nbytes

    @property
    def compute_s(self) -> float:
        """Seconds of arithmetic at peak: Σ F_dtype / P_dtype."""
        return sum(f / peak.flops_per_s for peak, f in self.compute)

    @property
    def memory_s(self) -> float:
        """Seconds of memory traffic at full bandwidth: B / BW."""
        return self.bytes / self.bandwidth

    @property
    def time_s(self) -> float:
        """max(compute_s, memory_s): the roofline time."""
        return max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        """'compute' when arithmetic takes at least as long as the traffic, else 'memory'."""
        return "compute" if self.flops and self.compute_s >= self.memory_s else "memory"

    @property
    def intensity(self) -> float:
        """Arithmetic intensity F / B in FLOPs per byte."""
        return self.flops / self.bytes if self.bytes else 0.0

    @property
    def dtype(self) -> str:
        """The peak(s) the row runs at, e.g. 'bf16' or 'bf16+fp32'."""
        return "+".join(peak.key for peak, _ in self.compute) or "-"

    @property
    def label(self) -> str:
        """The row's name for tables and charts."""
        name = self.layer or f"({self.module_type})"
        return f"{name} [call {self.call}]" if self.call else name


def _compute(row: Row, hardware: Hardware, dtype: str | None) -> tuple[tuple[Peak, int], ...]:
    merged: dict[str, tuple[Peak, int]] = {}
    for (op_dt, vector), flops in flops_by_dtype(row).items():
        peak = hardware.peak(dtype or op_dt, vector)
        previous = merged.get(peak.key, (peak, 0))[1]
        merged[peak.key] = (peak, previous + flops)
    return tuple(merged.values())


@dataclass(frozen=True)
class Roofline:
    """Every row of a report on one hardware's roofline; ``table``, ``derive(layer)``, ``chart()``."""

    report: Report
    hardware: Hardware
    dtype: str | None  # a forced peak column ("tf32", "bf16", ...), or None: each op's own dtype
    layers: tuple[LayerRoofline, ...]  # one per report row, in call order

    @property
    def peaks(self) -> dict[str, Peak]:
        """The distinct peaks the layers run at, by key ("bf16", "vector", ...); fp32's when nothing computes."""
        found = {peak.key: peak for lay in self.layers for peak, _ in lay.compute}
        return found or {"fp32": self.hardware.peak("fp32")}

    def ridge(self, peak: Peak) -> float:
        """FLOPs per byte where a layer at `peak` turns from memory- to compute-bound: peak / bandwidth."""
        return peak.flops_per_s / self.hardware.bandwidth_bytes_per_s

    @property
    def moving(self) -> tuple[LayerRoofline, ...]:
        """The rows that do arithmetic or move bytes (the table's rows)."""
        return tuple(lay for lay in self.layers if lay.flops or lay.bytes)

    @property
    def total_time_s(self) -> float:
        """Σ over layers of max(F / P, B / BW): layer after layer, nothing overlapped or fused."""
        return sum(lay.time_s for lay in self.layers)

    @property
    def fused_time_s(self) -> float:
        """The same with each layer's fused bytes (weights + inputs + outputs once): a faster estimate."""
        return sum(max(lay.compute_s, lay.traffic.fused_bytes / self.hardware.bandwidth_bytes_per_s)
                   for lay in self.layers)

    @property
    def total_flops(self) -> int:
        """Real FLOPs of every row."""
        return sum(lay.flops for lay in self.layers)

    @property
    def total_bytes(self) -> int:
        """Bytes every row moves (no fusion)."""
        return sum(lay.bytes for lay in self.layers)

    @property
    def memory_bound_share(self) -> float:
        """Fraction of total_time_s spent in memory-bound layers."""
        time = self.total_time_s
        return sum(lay.time_s for lay in self.layers if lay.bound == "memory") / time if time else 0.0

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per layer that computes or moves bytes: FLOPs, bytes, intensity, bound and time."""
        import pandas as pd

        total = self.total_time_s or 1.0
        records = [{"layer": lay.layer, "call": lay.call, "type": lay.module_type, "dtype": lay.dtype,
                    "flops": lay.flops, "bytes": lay.bytes, "fused_bytes": lay.traffic.fused_bytes,
                    "intensity": lay.intensity, "bound": lay.bound, "compute_s": lay.compute_s,
                    "memory_s": lay.memory_s, "time_s": lay.time_s, "share": lay.time_s / total}
                   for lay in self.moving]
        return pd.DataFrame(records, columns=list(COLUMNS))

    def layer(self, layer: str, call: int = 0) -> LayerRoofline:
        """The roofline entry of one row (the same lookup as report.row)."""
        return self.layers[self.report.rows.index(self.report.row(layer, call))]

    def subtree(self, index: int) -> list[LayerRoofline]:
        """The row at `index` and every row called inside it."""
        inside = {index}
        for i, row in enumerate(self.report.rows):
            if row.call.parent in inside:
                inside.add(i)
        return [self.layers[i] for i in sorted(inside)]

    def derive(self, layer: str | None = None, call: int = 0, own: bool = False) -> Derivation:
        """Why a layer is compute- or memory-bound, and its time.

        A layer with layers inside it (a block) adds up its rows, its own ops included (`own`: only its own ops);
        None: the whole model.
        """
        from nbcount.roofline_derive import derive_layer, derive_rows

        if layer is None:
            return derive_rows(self, list(self.layers), "the whole model")
        entry = self.layer(layer, call)
        inside = self.subtree(entry.index)
        if own or len(inside) == 1:
            return derive_layer(self, entry)
        return derive_rows(self, inside, f"{entry.label} (its {len(inside) - 1} layers inside and its own ops)")

    def chart(self, top: int = 6) -> Figure:
        """The log-log roofline: one dot per layer (area ∝ time), roofs per dtype, the `top` slowest labelled."""
        from nbcount.roofline_chart import roofline_figure

        return roofline_figure(self, top)

    def to_text(self, top: int = 15) -> str:
        """Totals and the `top` slowest layers as plain text."""
        from nbcount.roofline_text import roofline_text

        return roofline_text(self, top)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-ready values (hardware, totals, one record per layer)."""
        from nbcount.roofline_text import roofline_dict

        return roofline_dict(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from nbcount.roofline_text import roofline_html

        return {"text/plain": self.to_text(), "text/html": roofline_html(self)}

    def __repr__(self) -> str:
        return (f"<nbcount.Roofline on {self.hardware.name}: {self.total_time_s:.3g} s, "
                f"{self.memory_bound_share:.0%} of it memory-bound>")


def roofline(report: Report, hardware: str | Hardware = "H100-SXM", dtype: Any = None) -> Roofline:
    """Place every row of `report` on `hardware`'s roofline; dtype forces one peak column (e.g. "tf32")."""
    machine = get_hardware(hardware)
    forced = dtype_key(dtype) if dtype is not None else None
    traffic = layer_traffic(report)
    layers = tuple(LayerRoofline(i, row.layer, row.call.call_index, row.call.module_type,
                                 _compute(row, machine, forced), traffic[i], machine.bandwidth_bytes_per_s)
                   for i, row in enumerate(report.rows))
    return Roofline(report, machine, forced, layers)


def roofline_view(report: Report, hardware: str | Hardware = "H100-SXM", dtype: Any = None,
                  chart: bool = False) -> dict[str, Any]:
    """A JSON-able dict for a widget tab or the CLI: hardware, totals, layers; `chart`: a base64 PNG too."""
    view = roofline(report, hardware, dtype)
    data = view.to_dict()
    if chart:
        import base64

        from nbcount.roofline_chart import roofline_png

        data["chart_png"] = base64.b64encode(roofline_png(view)).decode("ascii")
    return data
