"""Worked derivations of the roofline: one layer (peak, bandwidth, ridge point, intensity, which side, time)
or a group of rows (a block, the whole model)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbcount.derive import Derivation, Step, given, step
from nbcount.traffic import ASSUMPTION, FLOPS_NOTE, op_dtype

if TYPE_CHECKING:
    from nbcount.machines import Hardware, Peak
    from nbcount.roofline import LayerRoofline, Roofline


def number(value: float) -> int | float:
    """An integral float as an int, so a derivation prints 3,350,000,000,000 rather than 3,350,000,000,000.0."""
    return int(value) if float(value).is_integer() else value


def _peak(view: Roofline, layer: LayerRoofline) -> Peak:
    """The peak a layer without FLOPs would run at (for its ridge point): its first op's dtype, or the forced one."""
    ops = view.report.rows[layer.index].call.ops
    return view.hardware.peak(view.dtype or next((op_dtype(op) for op in ops if not op.is_view), "float32"))


def _peak_note(hardware: Hardware, peak: Peak) -> str:
    what = f"{hardware.name} dense {peak.key} peak" if peak.key != "vector" else f"{hardware.name} fp32 peak"
    return f"{what}; {peak.note}" if peak.note else what


def _peak_steps(view: Roofline, layer: LayerRoofline) -> tuple[list[Step], float]:
    """The peak P: the dtype's dense peak, or the effective peak of a layer that computes in several dtypes."""
    hardware = view.hardware
    compute = layer.compute or ((_peak(view, layer), 0),)
    if len(compute) == 1:
        peak = compute[0][0]
        note = _peak_note(hardware, peak)
        return [given("peak P", number(peak.flops_per_s), note=note)], peak.flops_per_s
    steps: list[Step] = []
    symbols: dict[str, Any] = {"F": layer.flops}
    terms = []
    for i, (peak, flops) in enumerate(compute):
        steps += [given(f"FLOPs in {peak.key} F_{i}", flops),
                  given(f"peak {peak.key} P_{i}", number(peak.flops_per_s),
                        note=_peak_note(hardware, peak))]
        symbols.update({f"F_{i}": flops, f"P_{i}": peak.flops_per_s})
        terms.append(f"F_{i}/P_{i}")
    effective = step("effective peak P", f"F/({' + '.join(terms)})", note="the layer computes in several dtypes",
                     **symbols)
    return steps + [effective], float(effective.value)


def _side_steps(hardware: Hardware, flops: int, nbytes: int, peak: float) -> list[Step]:
    bandwidth = hardware.bandwidth_bytes_per_s
    ridge = peak / bandwidth
    intensity = flops / nbytes if nbytes else 0.0
    side = "memory-bound" if intensity < ridge or not flops else "compute-bound"
    relation = "below" if side == "memory-bound" else "at or above"
    intensity_step = (step("intensity I", "F/B", F=flops, B=nbytes, note=f"{relation} the ridge point {ridge:,.1f}: "
                           f"{side}") if nbytes else given("intensity I", 0, note="moves no bytes"))
    return [given("bandwidth BW", number(bandwidth), note=f"{hardware.name} memory, bytes per second"),
            step("ridge point", "P/BW", P=number(peak), BW=number(bandwidth),
                 note="FLOPs per byte at which arithmetic and traffic take equally long"), intensity_step]


def derive_layer(view: Roofline, layer: LayerRoofline) -> Derivation:
    """F, the bytes op by op, the peak, the ridge point, the side and the time of one row."""
    hardware = view.hardware
    if not layer.flops and not layer.bytes:
        nothing = (*layer.traffic.steps(), given("time", 0, note="no arithmetic and no bytes moved: no time"))
        return Derivation(f"roofline of {layer.label} on {hardware.name}", nothing, "s")
    peak_steps, peak = _peak_steps(view, layer)
    steps = [given("FLOPs F", layer.flops, note=FLOPS_NOTE), *layer.traffic.steps(), *peak_steps,
             *_side_steps(hardware, layer.flops, layer.bytes, peak),
             step("compute time t_c", "F/P", F=layer.flops, P=number(peak)),
             step("memory time t_m", "B/BW", B=layer.bytes, BW=number(hardware.bandwidth_bytes_per_s)),
             step("time", "max(t_c, t_m)", t_c=layer.compute_s, t_m=layer.memory_s,
                  note=f"{layer.bound}-bound on {hardware.name}; seconds")]
    return Derivation(f"roofline of {layer.label} on {hardware.name}", tuple(steps), "s")


def derive_rows(view: Roofline, layers: list[LayerRoofline], subject: str) -> Derivation:
    """Sums over rows: F, B, the effective peak and intensity, then the time layer after layer and its split."""
    hardware = view.hardware
    flops, nbytes = sum(x.flops for x in layers), sum(x.bytes for x in layers)
    compute_s = sum(x.compute_s for x in layers)
    time_s = sum(x.time_s for x in layers)
    memory = [x for x in layers if x.bound == "memory" and (x.flops or x.bytes)]
    busy = sum(1 for x in layers if x.flops or x.bytes)
    fused = sum(x.traffic.fused_bytes for x in layers)
    distinct = {p.flops_per_s for x in layers for p, n in x.compute if n}
    if len(distinct) > 1:
        peak_step = step("effective peak P", "F/t_c", F=flops, t_c=compute_s,
                         note="FLOPs over the seconds of arithmetic at each op's dense peak")
        peak = float(peak_step.value)
    else:  # every FLOP at one peak (or none): that peak as the data sheet gives it
        peak = distinct.pop() if distinct else (_peak(view, layers[0]).flops_per_s if layers else 1.0)
        peak_step = given("peak P", number(peak), note="the peak every FLOP of these rows runs at" if flops else "")
    steps = [given("rows", busy, note="rows that compute or move bytes"),
             given("FLOPs F", flops, note=f"Σ over the rows; {FLOPS_NOTE}"),
             given("bytes B", nbytes, note=f"Σ over the rows; {ASSUMPTION}"),
             given("fused bytes", fused, note="Σ over the rows of weights + inputs + outputs once"),
             peak_step,
             *_side_steps(hardware, flops, nbytes, peak),
             given("time with each layer fused", sum(max(x.compute_s, x.traffic.fused_bytes /
                                                         hardware.bandwidth_bytes_per_s) for x in layers),
                   note="Σ max(F_i/P_i, fused_i/BW); seconds"),
             step("memory-bound share", "t_mem/t", t_mem=sum(x.time_s for x in memory), t=time_s or 1.0,
                  note=f"{len(memory)} of {busy} rows are memory-bound; fraction of the time"),
             given("time (layer after layer)", time_s, note="Σ max(F_i/P_i, B_i/BW) over the rows; seconds")]
    return Derivation(f"roofline of {subject} on {hardware.name}", tuple(steps), "s")
