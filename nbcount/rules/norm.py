"""Normalisation (BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm, weight norm): forward and backward.

With running statistics (BatchNorm in eval) the normalisation folds into y = a·x + b per channel:
2 ops per element. With statistics computed from the batch: mean (1), centre (1), square and
accumulate (2), scale by 1/σ (1) = 5 ops per element, plus 2 for the affine γ·x̂ + β.
A decomposed RMSNorm (pow, mean, rsqrt, mul) is counted by the rules of those ops.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules import batchnorm, instancenorm

from nbcount.derive import Step, step
from nbcount.rules import args
from nbcount.rules.conv import shape_text, spatial_ndim
from nbcount.rules.registry import Cost, expects, kind, op_rule
from nbcount.types import OpEvent, Part, Term

aten = torch.ops.aten

BATCH_NORM = (aten.native_batch_norm, aten._native_batch_norm_legit, aten._native_batch_norm_legit_functional,
              aten.batch_norm, aten.cudnn_batch_norm, aten.miopen_batch_norm, aten._batch_norm_with_update,
              aten._batch_norm_no_update, aten._native_batch_norm_legit_no_training)
LAYER_NORM = (aten.native_layer_norm, aten.layer_norm)
GROUP_NORM = (aten.native_group_norm, aten.group_norm)
RMS_NORM = (aten._fused_rms_norm, aten.rms_norm)
_AXES_TEXT = {1: "L", 2: "H, W", 3: "D, H, W"}


def _normalise(n: int, affine: bool, batch_stats: bool) -> Cost:
    if not batch_stats:
        return (step("normalise (running statistics)", "2*n", term=Term.NORM, n=n, note="y = a·x + b folded"),)
    steps = [step("normalise (batch statistics)", "5*n", term=Term.NORM, n=n,
                  note="mean, centre, square, accumulate, scale")]
    if affine:
        steps.append(step("affine γ·x̂ + β", "2*n", term=Term.NORM, n=n))
    return tuple(steps)


@op_rule(*BATCH_NORM)
def batch_norm(op: OpEvent) -> Cost:
    """Eval: 2·n (folded scale and shift); training: 5·n + 2·n if affine."""
    x, weight = op.args[0], op.arg(1, "weight")
    return _normalise(x.numel, weight is not None, batch_stats=args.batch_norm_training(op))


@op_rule(*LAYER_NORM)
def layer_norm(op: OpEvent) -> Cost:
    """5·n statistics and normalisation, + 2·n for γ·x̂ + β when elementwise-affine."""
    return _normalise(op.args[0].numel, op.arg(2, "weight") is not None, batch_stats=True)


@op_rule(*GROUP_NORM)
def group_norm(op: OpEvent) -> Cost:
    """5·n statistics and normalisation, + 2·n for γ·x̂ + β when affine."""
    return _normalise(op.args[0].numel, op.arg(1, "weight") is not None, batch_stats=True)


@op_rule(*RMS_NORM)
def rms_norm(op: OpEvent) -> Cost:
    """RMSNorm: square and accumulate (2), scale by 1/rms (1) = 3·n, + n for the weight."""
    n = op.args[0].numel
    steps = [step("normalise (RMS)", "3*n", term=Term.NORM, n=n)]
    if op.arg(2, "weight") is not None:
        steps.append(step("weight γ·x̂", "n", term=Term.NORM, n=n))
    return tuple(steps)


@op_rule(aten._weight_norm_interface)
def weight_norm(op: OpEvent) -> Cost:
    """w = g·v/‖v‖: square and accumulate v (2·n), one sqrt and one divide per norm, scale v (n): 3·n + 2·m."""
    v, g = op.args[0], op.args[1]
    return (step("weight norm ops", "3*n + 2*m", term=Term.NORM, n=v.numel, m=g.numel,
                 note="n weight elements, m norms (one per output channel)"),)


def _mask(op: OpEvent, index: int, size: int) -> tuple[bool, ...]:
    mask = op.arg(index, "output_mask")
    return tuple(bool(m) for m in mask) if mask is not None else (True,) * size


def _norm_backward(n: int, mask: tuple[bool, ...], batch_stats: bool, scale_by_gamma: bool) -> Cost:
    steps: list[Step] = []
    if mask[0]:
        if batch_stats:
            steps.append(step("∂x normalisation", "8*n", term=Term.NORM, part=Part.INPUT, n=n,
                              note="x̂ (2), Σ∂y and Σ∂y·x̂ (3), ∂y − mean(∂y) − x̂·mean(∂y·x̂) scaled by 1/σ (3)"))
        else:
            steps.append(step("∂x normalisation", "n", term=Term.NORM, part=Part.INPUT, n=n,
                              note="∂y·γ/σ, one folded scale per channel"))
        if scale_by_gamma:
            steps.append(step("∂x times γ", "n", term=Term.NORM, part=Part.INPUT, n=n))
    if len(mask) > 1 and mask[1]:
        steps.append(step("∂γ = Σ ∂y·x̂", "2*n", term=Term.NORM, part=Part.WEIGHT, n=n))
    if len(mask) > 2 and mask[2]:
        steps.append(step("∂β = Σ ∂y", "n", term=Term.NORM, part=Part.WEIGHT, n=n))
    return tuple(steps)


@op_rule(aten.native_batch_norm_backward)
def batch_norm_backward(op: OpEvent) -> Cost:
    """Batch statistics: ∂x 8·n; running statistics: ∂x n; ∂γ 2·n; ∂β n (n input elements)."""
    return _norm_backward(op.args[1].numel, _mask(op, 9, 3), bool(op.arg(7, "train", True)), False)


@op_rule(aten.native_layer_norm_backward)
def layer_norm_backward(op: OpEvent) -> Cost:
    """∂x 8·n (+ n for ∂y·γ when affine); ∂γ 2·n; ∂β n (n input elements)."""
    return _norm_backward(op.args[1].numel, _mask(op, 7, 3), True, op.arg(5, "weight") is not None)


@op_rule(aten.native_group_norm_backward)
def group_norm_backward(op: OpEvent) -> Cost:
    """∂x 8·n (+ n for ∂y·γ when affine); ∂γ 2·n; ∂β n (n input elements)."""
    return _norm_backward(op.args[1].numel, _mask(op, 9, 3), True, op.arg(4, "weight") is not None)


@op_rule(aten._fused_rms_norm_backward)
def rms_norm_backward(op: OpEvent) -> Cost:
    """RMSNorm: ∂x 5·n (x̂, Σ∂y·x̂, combine and scale) + n for γ; ∂γ 2·n."""
    n, mask = op.args[1].numel, _mask(op, 5, 2)
    steps = []
    if mask[0]:
        steps.append(step("∂x normalisation (RMS)", "5*n", term=Term.NORM, part=Part.INPUT, n=n))
        if op.arg(4, "weight") is not None:
            steps.append(step("∂x times γ", "n", term=Term.NORM, part=Part.INPUT, n=n))
    if mask[1]:
        steps.append(step("∂γ = Σ ∂y·x̂", "2*n", term=Term.NORM, part=Part.WEIGHT, n=n))
    return tuple(steps)


kind("batchnorm", aten.native_batch_norm, aten._native_batch_norm_legit_no_training, aten._native_batch_norm_legit,
     batchnorm._BatchNorm)
kind("instancenorm", instancenorm._InstanceNorm)
kind("layernorm", aten.native_layer_norm, nn.LayerNorm)
kind("groupnorm", aten.native_group_norm, nn.GroupNorm)


@expects(batchnorm._BatchNorm)
def batch_norm_input(m: Any) -> str:
    """BatchNorm expects (N, C, *) with C = num_features."""
    c, n = m.num_features, spatial_ndim(m)
    if type(m).__name__.startswith("SyncBatchNorm"):
        return f"(N, C={c}, *)"
    if n == 1:
        return f"(N, C={c}) or (N, C={c}, L)"
    return f"(N, C={c}, {_AXES_TEXT[n]})"


@expects(instancenorm._InstanceNorm)
def instance_norm_input(m: Any) -> str:
    """InstanceNorm expects (N, C, *spatial) or (C, *spatial)."""
    axes, c = _AXES_TEXT[spatial_ndim(m)], m.num_features
    return f"(N, C={c}, {axes}) or (C={c}, {axes})"


@expects(nn.GroupNorm)
def group_norm_input(m: Any) -> str:
    """GroupNorm expects (N, C, *) with C divisible by num_groups."""
    return f"(N, C={m.num_channels}, *) with C divisible by num_groups={m.num_groups}"


@expects(nn.LayerNorm, nn.RMSNorm)
def layer_norm_input(m: Any) -> str:
    """LayerNorm / RMSNorm expect the last dimensions equal to normalized_shape."""
    dims = ", ".join(str(d) for d in m.normalized_shape)
    return f"(*, {dims}): the last dimension(s) equal to normalized_shape={shape_text(m.normalized_shape)}"
