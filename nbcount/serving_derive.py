"""Derivations and text of the serving view: one phase worked out, MFU / MBU of a measured time, the table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbcount.derive import Derivation, Step, given, step
from nbcount.machines import seconds, si
from nbcount.roofline_derive import number
from nbcount.traffic import ASSUMPTION, FLOPS_NOTE

if TYPE_CHECKING:
    from nbcount.serving_roofline import PhaseCost, ServingRoofline


def _effective_peak(phase: PhaseCost) -> Step:
    return step("effective peak P", "F/t_c", F=phase.flops, t_c=phase.compute_s,
                note="FLOPs over the seconds of arithmetic at each op's dense peak (matrix / vector)")


def derive_phase(view: ServingRoofline, phase: PhaseCost) -> Derivation:
    """Tokens, FLOPs and bytes of the step (the cache's share for decode), times and the tokens/s bound."""
    hardware, cache = phase.hardware, phase.cache
    shape = f"({view.batch}, {view.prompt_len if phase.phase == 'prefill' else 1})"
    steps = [given("tokens", phase.tokens, note="B·T of the prompt" if phase.phase == "prefill" else
                   f"one per sequence, after {view.context_len:,} tokens in the cache"),
             given("counted step FLOPs", phase.view.total_flops, note=f"model counted on {shape} token ids; "
                   f"{FLOPS_NOTE}"),
             given("counted step bytes", phase.view.total_bytes, note=ASSUMPTION)]
    if cache is not None:
        steps += [*cache.steps,
                  step("FLOPs F", "F_step + F_cache", F_step=phase.view.total_flops,
                       F_cache=cache.matrix_flops + cache.vector_flops),
                  step("bytes B", "B_step + B_cache", B_step=phase.view.total_bytes, B_cache=cache.nbytes,
                       note="cache read + append")]
    else:
        steps += [given("FLOPs F", phase.flops), given("bytes B", phase.nbytes)]
    bandwidth = number(hardware.bandwidth_bytes_per_s)
    steps += [given("fused bytes B_min", phase.fused_bytes, note="each layer fused: weights, cache, activations once"),
              _effective_peak(phase),
              given("bandwidth BW", bandwidth, note=f"{hardware.name} memory, bytes per second"),
              step("intensity I", "F/B_min", F=phase.flops, B_min=phase.fused_bytes,
                   note=f"ridge point {phase.flops / phase.compute_s / hardware.bandwidth_bytes_per_s:,.1f}: "
                        f"{phase.bound}-bound" if phase.compute_s else f"{phase.bound}-bound"),
              given("time (layer after layer, no fusion)", phase.time_s, note="seconds"),
              step("best time", "max(t_c, B_min/BW)", t_c=phase.compute_s, B_min=phase.fused_bytes, BW=bandwidth,
                   note="no step is faster on this hardware; seconds"),
              step("tokens per second at most", "N/t", N=phase.tokens, t=phase.best_time_s)]
    return Derivation(f"{phase.phase} on {hardware.name}", tuple(steps), "tokens/s")


@dataclass(frozen=True)
class Utilisation:
    """MFU and MBU of a measured step time, with their derivation."""

    mfu: float
    mbu: float
    derivation: Derivation

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.derivation._repr_mimebundle_(include, exclude)

    def __repr__(self) -> str:
        return f"<Utilisation MFU {self.mfu:.1%}, MBU {self.mbu:.1%}>"


def utilisation(phase: PhaseCost, measured_s: float) -> Utilisation:
    """MFU = F / (t·P) with P the step's effective peak; MBU = B_min / (t·BW) with B_min the fused bytes."""
    if not measured_s > 0:
        raise ValueError(f"measured_s must be a positive number of seconds, not {measured_s!r}")
    peak = phase.flops / phase.compute_s if phase.compute_s else phase.hardware.fp32_flops_per_s
    bandwidth = number(phase.hardware.bandwidth_bytes_per_s)
    mfu = step("MFU", "F/(t*P)", F=phase.flops, t=measured_s, P=number(peak),
               note="model FLOPs utilisation: achieved FLOP/s over the peak")
    mbu = step("MBU", "B_min/(t*BW)", B_min=phase.fused_bytes, t=measured_s, BW=bandwidth,
               note="memory bandwidth utilisation: the bytes the step cannot avoid (weights, cache, activations "
                    "once) per second over the bandwidth")
    steps = (given("measured step time t", measured_s, note="seconds"), _effective_peak(phase), mfu,
             given("bandwidth BW", bandwidth, note=f"{phase.hardware.name}"), mbu)
    derivation = Derivation(f"utilisation of one {phase.phase} step on {phase.hardware.name}", steps, "")
    return Utilisation(float(mfu.value), float(mbu.value), derivation)


def serving_text(view: ServingRoofline) -> str:
    """The per-hardware table: phase, tokens, FLOPs, bytes, bound, times and the tokens/s bound."""
    header = (f"Prefill of {view.prompt_len:,} tokens and one decode step after {view.context_len:,} (batch "
              f"{view.batch}); FLOPs real (2·MACs + other ops); time_s layer after layer with no fusion, best_time_s "
              "= max(arithmetic at peak, fused bytes at full bandwidth)")
    rows = [("hardware", "phase", "tokens", "FLOPs", "fused bytes", "bound", "time", "best time", "tokens/s ≤")]
    for p in view.phases:
        rows.append((p.hardware.name, p.phase, f"{p.tokens:,}", si(p.flops).strip(), si(p.fused_bytes).strip(),
                     p.bound, seconds(p.time_s), seconds(p.best_time_s), f"{p.tokens / p.best_time_s:,.0f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < 2 or i == 5 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    return "\n".join([header, ""] + lines)
