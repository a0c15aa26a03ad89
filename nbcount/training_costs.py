"""Costs of a training step from a TrainingTrace: backward per layer (∂input and ∂weight), training FLOPs.

The backward ops of each call are counted by the same op rules as the forward (never by a module's
forward rule); a step whose `part` names its gradient (``∂W`` of convolution_backward) is filed under
that gradient, any other under the part its op's outputs flow to (see training.weight_parts).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from nbcount.convention import Convention, conventions, get_convention
from nbcount.derive import Derivation, Step, given, step
from nbcount.report import tally_uncounted
from nbcount.rows import breakdown as breakdown_of
from nbcount.rows import op_costs
from nbcount.training import BackwardEvent, TrainingTrace, loss_call, with_ops
from nbcount.types import LayerCall, Part, Term

if TYPE_CHECKING:
    import pandas as pd

    from nbcount.report import Report

Costs = tuple[tuple[str, tuple[Step, ...]], ...]
_ATTENTION_OPS = ("aten.bmm", "aten.baddbmm", "scaled_dot_product", "_native_multi_head_attention")


# How a peer turns a forward count into a training step's (the convention's name before ":strict"):
# calflops/calculate_pipline.py prints fwd+bwd = fwd·(1 + compute_bp_factor), factor 2.0 by default;
# DeepSpeed's flops profiler prints bwd = 2 × fwd; FlopCounterMode counts the backward kernels it sees.
# A convention with term weights applies them to the counted backward; any other counts forward only.
_BACKWARD_RULES = {"calflops": "2x forward", "deepspeed": "2x forward", "torch": "flop counter"}
_FLOP_COUNTER_BACKWARD = ("aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm", "aten.convolution_backward",
                          "aten._scaled_dot_product_efficient_attention_backward",
                          "aten._scaled_dot_product_flash_attention_backward",
                          "aten._scaled_dot_product_cudnn_attention_backward")


def _macs(costs: Costs, attention_only: bool = False, ops: tuple[str, ...] | None = None) -> int:
    return sum(int(s.value) for source, steps in costs for s in steps if s.term == Term.MAC.value
               and (not attention_only or any(a in source for a in _ATTENTION_OPS))
               and (ops is None or source in ops))


@dataclass(frozen=True)
class BackwardRow:
    """The backward pass of one module call: ∂input and ∂weight costs, and the activation bytes it saved."""

    call: LayerCall
    input_costs: Costs
    weight_costs: Costs
    uncounted: tuple[str, ...]
    saved_bytes: int

    @property
    def input_macs(self) -> int:
        """MACs of gradients flowing back towards the layer's inputs (∂x)."""
        return _macs(self.input_costs)

    @property
    def weight_macs(self) -> int:
        """MACs of the layer's parameter gradients (∂W)."""
        return _macs(self.weight_costs)

    @property
    def macs(self) -> int:
        """All backward MACs of this call."""
        return self.input_macs + self.weight_macs

    @property
    def breakdown(self) -> dict[str, int]:
        """Backward operations per term, both gradients together."""
        out = breakdown_of(self.input_costs)
        for term, n in breakdown_of(self.weight_costs).items():
            out[term] = out.get(term, 0) + n
        return out

    def value(self, convention: Convention) -> int:
        """This row's backward count under `convention` (its term weights)."""
        return sum(convention.weights.get(term, 0) * n for term, n in self.breakdown.items())


def _split(costs: list[tuple[str, tuple[Step, ...]]], part: str) -> tuple[Costs, Costs]:
    inputs, weights = [], []
    for source, steps in costs:
        x = tuple(s for s in steps if (s.part or part) == Part.INPUT)
        w = tuple(s for s in steps if (s.part or part) == Part.WEIGHT)
        if x:
            inputs.append((source, x))
        if w:
            weights.append((source, w))
    return tuple(inputs), tuple(weights)


def backward_row(call: LayerCall, events: list[BackwardEvent], saved_bytes: int) -> BackwardRow:
    """Count one call's backward ops with the op rules and file each step under ∂input or ∂weight."""

    inputs: Costs = ()
    weights: Costs = ()
    uncounted: list[str] = []
    for part in ("input", "weight"):
        costs, missing = op_costs(with_ops(call, tuple(e.op for e in events if e.part == part)))
        x, w = _split(costs, part)
        inputs, weights, uncounted = inputs + x, weights + w, uncounted + missing
    return BackwardRow(call, inputs, weights, tuple(uncounted), saved_bytes)


class TrainingCosts:
    """The training step of a Report counted with training=True: backward rows aligned with report.rows."""

    def __init__(self, report: Report):
        trace = report.trace
        if not isinstance(trace, TrainingTrace):
            raise ValueError("this report counted the forward pass only: count(model, ..., training=True) "
                             "also runs and counts the backward pass")
        self.report, self.trace = report, trace
        events: dict[int | None, list[BackwardEvent]] = {}
        for e in trace.backward:
            events.setdefault(e.call, []).append(e)
        saved: dict[int | None, int] = {}
        for s in trace.saved:
            saved[s.call] = saved.get(s.call, 0) + s.nbytes
        self.rows = tuple(backward_row(r.call, events.get(i, []), saved.get(i, 0)) for i, r in enumerate(report.rows))
        self.loss = backward_row(loss_call(), events.get(None, []), saved.get(None, 0))
        from nbcount.rows import build_row

        self.loss_forward = build_row(with_ops(loss_call(), trace.loss_ops))

    # totals ----------------------------------------------------------------------
    @property
    def forward_macs(self) -> int:
        """Forward MACs of the model (the report's total_macs)."""
        return self.report.total_macs

    @property
    def input_macs(self) -> int:
        """Backward MACs of gradients w.r.t. activations (∂x), summed over layers."""
        return sum(r.input_macs for r in self.rows)

    @property
    def weight_macs(self) -> int:
        """Backward MACs of gradients w.r.t. parameters (∂W), summed over layers."""
        return sum(r.weight_macs for r in self.rows)

    @property
    def backward_macs(self) -> int:
        """All backward MACs of the model (the loss excluded)."""
        return self.input_macs + self.weight_macs

    @property
    def saved_bytes(self) -> int:
        """Bytes of activations autograd saved for backward (each storage once, weights excluded)."""
        return sum(s.nbytes for s in self.trace.saved)

    @property
    def uncounted_ops(self) -> dict[str, int]:
        """Backward aten ops without a rule, with how often they ran."""
        return tally_uncounted(self.rows)

    @property
    def status(self) -> str:
        """'complete', or 'lower_bound' when a forward or backward op could not be counted."""
        return "lower_bound" if self.uncounted_ops or self.report.status != "complete" else "complete"

    def backward_flops(self, convention: str | Convention | None = None) -> int | None:
        """Backward count under `convention` (the report's by default); None for a forward-only tool."""
        conv = get_convention(convention) if convention is not None else self.report.convention
        rule = _BACKWARD_RULES.get(conv.name.split(":")[0])
        if rule == "2x forward":
            return 2 * sum(conv.row_value(r) for r in self.report.rows)
        if rule == "flop counter":
            return 2 * sum(_macs(r.input_costs + r.weight_costs, ops=_FLOP_COUNTER_BACKWARD) for r in self.rows)
        if conv.weights:
            return sum(r.value(conv) for r in self.rows)
        return None

    def flops(self, convention: str | Convention | None = None) -> int | None:
        """Forward + backward count of one training step under `convention` (the loss excluded)."""
        conv = get_convention(convention) if convention is not None else self.report.convention
        backward = self.backward_flops(conv)
        return None if backward is None else sum(conv.row_value(r) for r in self.report.rows) + backward

    def loss_flops(self, convention: str | Convention | None = None) -> int:
        """The loss's forward and backward count (outside the model, so outside every total)."""
        conv = get_convention(convention) if convention is not None else self.report.convention
        return conv.row_value(self.loss_forward) + self.loss.value(conv)

    def by_convention(self) -> pd.DataFrame:
        """Forward, backward and training-step counts under every registered convention."""
        import pandas as pd

        records = []
        for name in conventions():
            conv = get_convention(name)
            rule = _BACKWARD_RULES.get(name, "counted backward ops" if conv.weights else "forward pass only")
            records.append({"convention": name, "unit": conv.unit,
                            "forward": sum(conv.row_value(r) for r in self.report.rows),
                            "backward": self.backward_flops(conv), "training_step": self.flops(conv),
                            "backward_rule": rule})
        return pd.DataFrame(records).astype({"backward": "Int64", "training_step": "Int64"})  # None: <NA>

    @cached_property
    def table(self) -> pd.DataFrame:
        """Per call: forward MACs, backward ∂x / ∂W MACs, backward count, saved activation bytes."""
        import pandas as pd

        records = []
        for fwd, back in zip(self.report.rows, self.rows):
            records.append({"layer": fwd.layer, "call": fwd.call.call_index, "type": fwd.call.module_type,
                            "forward_macs": fwd.macs, "backward_input_macs": back.input_macs,
                            "backward_weight_macs": back.weight_macs, "backward_macs": back.macs,
                            "backward_flops": back.value(self.report.convention), "saved_bytes": back.saved_bytes,
                            "uncounted": ", ".join(sorted(set(back.uncounted)))})
        if self.loss_flops() or self.loss.saved_bytes:
            records.append({"layer": "(loss)", "call": 0, "type": "loss", "forward_macs": self.loss_forward.macs,
                            "backward_input_macs": self.loss.input_macs, "backward_weight_macs": 0,
                            "backward_macs": self.loss.macs, "backward_flops": self.loss.value(self.report.convention),
                            "saved_bytes": self.loss.saved_bytes, "uncounted": ""})
        return pd.DataFrame(records)

    # derivations ---------------------------------------------------------------------
    def explain(self) -> Derivation:
        """Why backward ≈ 2× forward, and by how much this model does less (or more)."""
        return backward_ratio(self)

    def six_nd(self) -> Derivation:
        """Training FLOPs per token against the 6·N rule, the attention term shown apart."""
        return six_nd(self)

    def attention_macs(self) -> tuple[int, int]:
        """(forward, backward) MACs of activation×activation products: attention scores and values."""
        forward = sum(_macs(r.costs, attention_only=True) for r in self.report.rows)
        backward = sum(_macs(r.input_costs + r.weight_costs, attention_only=True) for r in self.rows)
        return forward, backward

    def summary(self) -> dict[str, Any]:
        """The headline numbers as a dict."""
        return {"forward_macs": self.forward_macs, "backward_input_macs": self.input_macs,
                "backward_weight_macs": self.weight_macs, "backward_macs": self.backward_macs,
                "training_flops": self.flops(), "unit": self.report.convention.unit,
                "saved_activation_bytes": self.saved_bytes, "status": self.status}

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self.explain()._repr_mimebundle_(include, exclude)

    def __repr__(self) -> str:
        s = self.summary()
        return (f"<nbcount.TrainingCosts forward {s['forward_macs']:,} MACs, backward {s['backward_macs']:,} MACs "
                f"(∂x {s['backward_input_macs']:,} + ∂W {s['backward_weight_macs']:,}), "
                f"saved {s['saved_activation_bytes']:,} bytes, {s['status']}>")



def _names(layers: list[str], limit: int = 3) -> str:
    shown = ", ".join(name or "(root)" for name in layers[:limit])
    return shown + (f" and {len(layers) - limit} more" if len(layers) > limit else "")


def backward_ratio(costs: TrainingCosts) -> Derivation:
    """Backward = ∂x + ∂W ≈ 2·forward: each forward product A·B needs one product per operand that wants
    a gradient; what is not needed (the first layer's ∂x, frozen weights' ∂W) is shown and subtracted."""
    no_input, frozen = 0, 0
    no_input_layers: list[str] = []
    frozen_layers: list[str] = []
    for fwd, back in zip(costs.report.rows, costs.rows):
        if not fwd.macs:
            continue
        params = fwd.call.params_new + fwd.call.params_shared
        if back.input_macs == 0:
            no_input += fwd.macs if params else 2 * fwd.macs  # a weight-free product has two ∂x
            no_input_layers.append(fwd.layer)
        if params and not any(p.trainable for p in params):
            frozen += fwd.macs
            frozen_layers.append(fwd.layer)
    f, i, w = costs.forward_macs, costs.input_macs, costs.weight_macs
    steps = [given("forward MACs F", f),
             given("∂x MACs I", i, note="gradient w.r.t. each product's activation operand: as many MACs as forward"),
             given("∂W MACs W", w, note="gradient w.r.t. each weight: as many MACs as forward"),
             step("backward MACs", "I + W", I=i, W=w)]
    if f:
        steps.append(step("backward / forward", "(I + W)/F", I=i, W=w, F=f))
    steps += [step("∂x not needed", "S_x", S_x=no_input,
                   note=f"no input gradient: {_names(no_input_layers)}" if no_input_layers else "every layer's ∂x ran"),
              step("∂W not needed (frozen)", "S_W", S_W=frozen,
                   note=f"frozen: {_names(frozen_layers)}" if frozen_layers else "no frozen layer"),
              step("2·F less what is not needed", "2*F - S_x - S_W", F=f, S_x=no_input, S_W=frozen),
              step("other", "I + W - (2*F - S_x - S_W)", I=i, W=w, F=f, S_x=no_input, S_W=frozen,
                   note="fused attention recomputes q·kᵀ in backward; rules without a backward twin")]
    return Derivation("Backward MACs ≈ 2 × forward", tuple(steps), "MACs")


def _tokens(report: Report) -> tuple[int, str]:
    inputs = report.trace.input_tensors
    if not inputs:
        return 1, "no input tensor: per step"
    x = inputs[0]
    if not x.is_floating and len(x.shape) >= 2:
        return x.numel, f"input ids {x.shape}: every position is a token"
    if len(x.shape) == 3:
        return x.shape[0] * x.shape[1], f"input {x.shape}: batch × sequence positions"
    return (x.shape[0] if x.shape else 1), f"input {x.shape}: per sample"


def six_nd(costs: TrainingCosts) -> Derivation:
    """Training FLOPs per token = 2·(forward + backward MACs)/D against 6·N, split into weight products
    (each weight: 1 MAC forward, 2 backward per token → 6 FLOPs) and attention (activation × activation)."""
    report = costs.report
    d, what = _tokens(report)
    n = report.total_params
    m_f, m_b = costs.forward_macs, costs.backward_macs
    a_f, a_b = costs.attention_macs()
    steps = (given("tokens D", d, note=what),
             given("parameters N", n),
             step("training FLOPs per token", "2*(M_f + M_b)/D", M_f=m_f, M_b=m_b, D=d,
                  note="2 FLOPs per MAC, forward and backward MACs as counted"),
             step("6·N", "6*N", N=n, note="the rule: 2·N forward + 4·N backward per token"),
             step("weights used per token N_matmul", "(M_f - A_f)/D", M_f=m_f, A_f=a_f, D=d,
                  note="forward MACs of weight products per token; N minus lookups (embeddings), norms, biases"),
             step("weight products per token", "2*(M_f - A_f + M_b - A_b)/D", M_f=m_f, A_f=a_f, M_b=m_b,
                  A_b=a_b, D=d, note="≈ 6·N_matmul"),
             step("attention per token", "2*(A_f + A_b)/D", A_f=a_f, A_b=a_b, D=d,
                  note="q·kᵀ and p·v: grows with the context length, not with N (dense, as counted)"),
             step("counted / 6·N", "2*(M_f + M_b)/(6*N*D)", M_f=m_f, M_b=m_b, N=n, D=d))
    return Derivation("Training FLOPs per token vs 6·N", steps, "FLOPs")
