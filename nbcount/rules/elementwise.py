"""Pointwise arithmetic, activations, softmax and reductions, forward and backward.

One floating-point operation per output element for every pointwise op (a transcendental function such
as exp or tanh counts as one, as in most FLOP counters); fused ops such as addcmul count each arithmetic
step. A reduction costs one operation per input element. In-place forms (``aten.add_``) are counted as
their op. Pointwise and reduction ops not named here are counted by torch's tags (nbcount.rules.classify).
"""

from __future__ import annotations

import torch
from torch import nn

from nbcount.derive import step
from nbcount.rules.fields_layout import along_dim
from nbcount.rules.fields_layout import reduction as reduction_field
from nbcount.rules.registry import Cost, OpRule, field_rule, kind, op_rule
from nbcount.types import OpEvent, Part, Term

aten = torch.ops.aten

ARITHMETIC = (aten.add, aten.sub, aten.mul, aten.div, aten.rsub, aten.neg, aten.pow, aten.sqrt, aten.rsqrt, aten.exp,
              aten.exp2, aten.log, aten.log2, aten.log10, aten.log1p, aten.expm1, aten.abs, aten.reciprocal, aten.sin,
              aten.cos, aten.tan, aten.erf, aten.erfc, aten.erfinv, aten.square, aten.maximum, aten.minimum,
              aten.fmod, aten.remainder, aten.clamp, aten.clamp_min, aten.clamp_max, aten.floor, aten.ceil,
              aten.round, aten.trunc, aten.sign, aten.atan, aten.atan2, aten.asin, aten.acos, aten.sinh, aten.cosh,
              aten.xlogy, aten.hypot, aten.floor_divide, aten.frac)
ARITHMETIC_2 = (aten.addcmul, aten.addcdiv, aten.lerp)
RELU = (aten.relu,)
ACTIVATIONS = (aten.relu6, aten.leaky_relu, aten.elu, aten.celu, aten.selu, aten.gelu, aten.silu, aten.sigmoid,
               aten.tanh, aten.hardtanh, aten.hardswish, aten.hardsigmoid, aten.mish, aten.softplus,
               aten.softshrink, aten.hardshrink, aten.threshold, aten.rrelu_with_noise, aten._prelu_kernel,
               aten.prelu, aten.glu, aten.log_sigmoid_forward)
SOFTMAX = (aten._softmax, aten._log_softmax, aten._safe_softmax, aten.softmax, aten.log_softmax)
REDUCTIONS = (aten.sum, aten.mean, aten.prod, aten.amax, aten.amin, aten.logsumexp, aten.cumsum, aten.cumprod,
              aten.nansum, aten.linalg_vector_norm, aten.norm, aten.any, aten.all, aten.logcumsumexp, aten.cummax,
              aten.cummin, aten._logcumsumexp, aten.native_norm, aten.segment_reduce)
VARIANCE = (aten.var, aten.std, aten.var_mean, aten.std_mean)
DROPOUT = (aten.native_dropout, aten.dropout, aten.bernoulli_, aten.feature_dropout)
ADD_MUL = (aten.add, aten.mul)


def _pointwise(label: str, term: Term, per_element: int) -> OpRule:
    def rule(op: OpEvent) -> Cost:
        out = op.outputs[0]
        if per_element == 1:
            return (step(label, "n_out", term=term, n_out=out.numel),)
        return (step(label, f"{per_element}*n_out", term=term, n_out=out.numel),)

    rule.__doc__ = f"{label} = {per_element}·n_out (one {term.value} op per output element)"
    return rule


op_rule(*ARITHMETIC)(_pointwise("elementwise ops", Term.ELEMENTWISE, 1))
op_rule(*ARITHMETIC_2, aten._add_relu)(_pointwise("elementwise ops", Term.ELEMENTWISE, 2))
op_rule(*RELU, *ACTIVATIONS)(_pointwise("activation ops", Term.ACTIVATION, 1))


@op_rule(*DROPOUT)
def dropout(op: OpEvent) -> Cost:
    """Training-mode dropout: one multiply per element by the scaled keep-mask."""
    return (step("dropout scale", "n_out", term=Term.ELEMENTWISE, n_out=op.outputs[0].numel),)


@op_rule(*SOFTMAX, aten._masked_softmax)
def softmax(op: OpEvent) -> Cost:
    """Stable softmax: max, subtract, exp, sum, divide = 5 ops per element."""
    return (step("softmax ops", "5*n", term=Term.SOFTMAX, n=op.outputs[0].numel),)


@op_rule(*REDUCTIONS)
def reduction(op: OpEvent) -> Cost:
    """A reduction: one operation per input element."""
    return (step("reduction ops", "n_in", term=Term.REDUCTION, n_in=op.args[0].numel),)


@op_rule(*VARIANCE)
def variance(op: OpEvent) -> Cost:
    """Variance: mean (1), subtract (1), square-accumulate (1) = 3 ops per input element."""
    return (step("reduction ops", "3*n_in", term=Term.REDUCTION, n_in=op.args[0].numel),)


@op_rule(aten.aminmax)
def aminmax(op: OpEvent) -> Cost:
    """Minimum and maximum together: 2 comparisons per input element."""
    return (step("reduction ops", "2*n_in", term=Term.REDUCTION, n_in=op.args[0].numel),)


@op_rule(aten.polar)
def polar(op: OpEvent) -> Cost:
    """abs·cos(angle) + i·abs·sin(angle): cos, sin and two multiplies = 4 ops per output element."""
    return (step("elementwise ops", "4*n_out", term=Term.ELEMENTWISE, n_out=op.outputs[0].numel),)


CUMULATIVE = (aten.cumsum, aten.cumprod, aten.logcumsumexp, aten.cummax, aten.cummin, aten._logcumsumexp)
_OTHER_SIGNATURE = (*CUMULATIVE, aten.segment_reduce, aten.native_norm)  # no (self, dim, …) reduction signature
field_rule(*(r for r in REDUCTIONS if r not in _OTHER_SIGNATURE), *VARIANCE, aten.aminmax, aten.max, aten.min,
           aten.argmax, aten.argmin, aten.median, aten.mode, aten.count_nonzero)(reduction_field)
field_rule(*SOFTMAX, *(c for c in CUMULATIVE if c is not aten._logcumsumexp), aten.sort, aten.topk,
           aten.argsort)(along_dim)
kind("add_mul", *ADD_MUL)
kind("softmax", aten._softmax, aten.softmax, aten._safe_softmax, nn.Softmax)
kind("relu", *RELU, nn.ReLU)
kind("relu6", nn.ReLU6)
kind("leaky_relu", nn.LeakyReLU)
kind("sigmoid", nn.Sigmoid)
kind("tanh", nn.Tanh)
kind("activation", nn.GELU, nn.SiLU, nn.ELU, nn.PReLU)
kind("dropout", nn.modules.dropout._DropoutNd)


# backward ---------------------------------------------------------------------------------------------------
_ACTIVATION_BACKWARD = {
    aten.threshold_backward: (1, "∂y where x > 0"), aten.hardtanh_backward: (1, "∂y inside the range"),
    aten.leaky_relu_backward: (1, "∂y or slope·∂y"), aten.hardsigmoid_backward: (1, "∂y/6 inside the range"),
    aten.hardshrink_backward: (1, "∂y outside ±λ"), aten.softshrink_backward: (1, "∂y outside ±λ"),
    aten.rrelu_with_noise_backward: (1, "∂y·noise"), aten.native_dropout_backward: (1, "∂y·mask·scale"),
    aten.elu_backward: (2, "∂y·(y + α) for x < 0"), aten.hardswish_backward: (3, "∂y·(2x + 3)/6"),
    aten.sigmoid_backward: (3, "∂y·y·(1 − y)"), aten.tanh_backward: (3, "∂y·(1 − y²)"),
    aten.softplus_backward: (4, "∂y·σ(βx)"), aten.log_sigmoid_backward: (4, "∂y·σ(−x)"),
    aten.silu_backward: (6, "∂y·σ(x)·(1 + x·(1 − σ(x)))"),
    aten.gelu_backward: (8, "∂y·(Φ(x) + x·φ(x)): Φ 3, φ 3, combine 2"),
    aten.mish_backward: (8, "∂y·(tanh(sp) + x·σ(x)·sech²(sp))"),
}


def _activation_backward(ops: int, what: str, term: Term) -> OpRule:
    def rule(op: OpEvent) -> Cost:
        formula = "n" if ops == 1 else f"{ops}*n"
        return (step("∂x ops", formula, term=term, part=Part.INPUT, n=op.args[0].numel, note=what),)

    rule.__doc__ = f"{what}: {ops} op(s) per element"
    return rule


for _op, (_ops, _what) in _ACTIVATION_BACKWARD.items():
    _term = Term.ELEMENTWISE if _op is aten.native_dropout_backward else Term.ACTIVATION
    op_rule(_op)(_activation_backward(_ops, _what, _term))


@op_rule(aten.glu_backward)
def glu_backward(op: OpEvent) -> Cost:
    """GLU a·σ(b): ∂a = ∂y·σ(b) (1), ∂b = ∂y·a·σ(b)·(1 − σ(b)) (4) per output element."""
    return (step("∂x ops", "5*n", term=Term.ACTIVATION, part=Part.INPUT, n=op.args[0].numel),)


@op_rule(aten._prelu_kernel_backward)
def prelu_backward(op: OpEvent) -> Cost:
    """∂x = ∂y or a·∂y: n; ∂W = Σ ∂y·x over negative inputs: 2·n."""
    n = op.args[0].numel
    return (step("∂x ops", "n", term=Term.ACTIVATION, part=Part.INPUT, n=n),
            step("∂W = Σ ∂y·x", "2*n", term=Term.ACTIVATION, part=Part.WEIGHT, n=n))


@op_rule(aten._softmax_backward_data)
def softmax_backward(op: OpEvent) -> Cost:
    """∂x = y·(∂y − Σ ∂y·y): multiply, sum, subtract, multiply = 4 ops per element."""
    return (step("softmax ∂x ops", "4*n", term=Term.SOFTMAX, part=Part.INPUT, n=op.args[0].numel),)


@op_rule(aten._log_softmax_backward_data)
def log_softmax_backward(op: OpEvent) -> Cost:
    """∂x = ∂y − exp(y)·Σ ∂y: sum, exp, multiply, subtract = 4 ops per element."""
    return (step("log-softmax ∂x ops", "4*n", term=Term.SOFTMAX, part=Part.INPUT, n=op.args[0].numel),)
