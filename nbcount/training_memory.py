"""Memory of training: parameters, gradients, optimizer state, master weights and activations per device.

Bytes per parameter by precision (ZeRO paper, Rajbhandari et al. 2020, §3.1): mixed precision keeps
fp16/bf16 parameters and gradients (2 + 2) and an fp32 master copy (4) beside the optimizer's fp32 states
(Adam: momentum 4 + variance 4) = 16 bytes. ZeRO stage 1 shards the optimizer states and master weights
over the data-parallel devices, stage 2 also the gradients, stage 3 (FSDP's full sharding) also the
parameters. Activations are what autograd saved for backward, measured by count(..., training=True).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbcount.derive import Derivation, Step, given, step, total

if TYPE_CHECKING:
    from nbcount.report import Report


@dataclass(frozen=True)
class Precision:
    """Bytes per element of each kind of training state."""

    param: int
    grad: int
    master: int
    state: int
    activation: int
    description: str


PRECISIONS: dict[str, Precision] = {
    "fp32": Precision(4, 4, 0, 4, 4, "everything in fp32"),
    "mixed": Precision(2, 2, 4, 4, 2, "fp16/bf16 weights, gradients and activations; fp32 master weights and "
                                       "optimizer states"),
    "bf16": Precision(2, 2, 0, 2, 2, "pure bf16: weights, gradients, optimizer states and activations"),
}
OPTIMIZER_STATES: dict[str, tuple[int, str]] = {
    "sgd": (0, "no state"),
    "sgd-momentum": (1, "momentum buffer"),
    "adam": (2, "momentum m and variance v"),
    "adamw": (2, "momentum m and variance v (decoupled weight decay needs none)"),
}


# the ZeRO stage from which each state is sharded (its symbol in the derivation)
_SHARDED_FROM = {"parameters": ("P", 3), "gradients": ("G", 2), "master_weights": ("M", 1),
                 "optimizer_state": ("O", 1)}


class MemoryBreakdown(dict):  # type: ignore[type-arg]
    """Bytes per kind of training state (a dict) that carries its derivation (``.derivation``)."""

    derivation: Derivation

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.derivation._repr_mimebundle_(include, exclude)

    def __str__(self) -> str:
        return self.derivation.to_text()


def _activation_steps(report: Report, precision: Precision) -> tuple[list[Step], int | None]:
    from nbcount.training import TrainingTrace

    trace = report.trace
    if not isinstance(trace, TrainingTrace):
        return [given("activations", 0, note="not measured: count(..., training=True) measures them")], None
    floats = sum(s.nbytes // s.itemsize for s in trace.saved if s.floating)
    other = sum(s.nbytes for s in trace.saved if not s.floating)
    measured = sum(s.nbytes for s in trace.saved)
    steps = [given("activations measured", measured, note="saved for backward, at the counted dtypes"),
             step("activations", "E_float*b_act + B_other", E_float=floats, b_act=precision.activation,
                  B_other=other, note="floating elements at the precision's bytes; indices and masks as counted")]
    return steps, int(steps[-1].value)


def _per_device(label: str, symbol: str, value: int, shards: int, sharded: bool) -> Step:
    symbols: dict[str, Any] = {symbol: value}
    if not sharded:
        return step(f"{label} per device", symbol, note="replicated on every device", **symbols)
    return step(f"{label} per device", f"ceil({symbol}/S)", S=shards, **symbols)


def training_memory(report: Report, optimizer: str = "adam", precision: str = "mixed", shards: int = 1,
                    zero_stage: int = 0) -> MemoryBreakdown:
    """Per-device bytes of parameters, gradients, optimizer state, master weights and activations."""
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_STATES)}, not {optimizer!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if zero_stage not in (0, 1, 2, 3) or shards < 1:
        raise ValueError("zero_stage must be 0, 1, 2 or 3 (3 = FSDP full sharding) and shards ≥ 1")
    p = PRECISIONS[precision]
    k, state_note = OPTIMIZER_STATES[optimizer]
    n, n_t = report.total_params, report.trainable_params
    steps = [given("parameters N", n), given("trainable parameters N_t", n_t),
             step("bytes per parameter", "b_p + b_g + b_m + k*b_s", b_p=p.param, b_g=p.grad, b_m=p.master, k=k,
                  b_s=p.state, note=f"{precision}: {p.description}; {optimizer}: {k} state(s), {state_note}"),
             step("parameters", "N*b_p", N=n, b_p=p.param),
             step("gradients", "N_t*b_g", N_t=n_t, b_g=p.grad),
             step("master weights", "N_t*b_m", N_t=n_t, b_m=p.master),
             step("optimizer state", "N_t*k*b_s", N_t=n_t, k=k, b_s=p.state)]
    per_param = int(steps[2].value)
    totals = {"parameters": int(steps[3].value), "gradients": int(steps[4].value),
              "master_weights": int(steps[5].value), "optimizer_state": int(steps[6].value)}
    act_steps, activations = _activation_steps(report, p)
    steps += act_steps
    per_device = dict(totals)
    if shards > 1:
        for key, (symbol, stage) in _SHARDED_FROM.items():
            steps.append(_per_device(key.replace("_", " "), symbol, totals[key], shards, zero_stage >= stage))
            per_device[key] = int(steps[-1].value)
    if activations is not None:
        per_device["activations"] = activations
    steps.append(total("total per device", [(k.replace("_", " "), v) for k, v in per_device.items()],
                       note=f"ZeRO stage {zero_stage} over {shards} devices" if shards > 1 else "one device"))
    result = MemoryBreakdown(per_device)
    result.update({"activations": activations, "total": int(steps[-1].value), "bytes_per_param": per_param})
    title = f"Training memory: {optimizer}, {precision}, ZeRO-{zero_stage} × {shards}"
    result.derivation = Derivation(title, tuple(steps), "bytes")
    return result
