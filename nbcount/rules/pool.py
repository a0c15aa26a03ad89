"""Pooling (max, average, adaptive): forward, backward, receptive field, kinds and expected input."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules import pooling

from nbcount.derive import step
from nbcount.rules import args
from nbcount.rules.conv import spatial_ndim
from nbcount.rules.fields_window import adaptive_pool, window
from nbcount.rules.registry import Cost, expects, field_rule, kind, op_rule
from nbcount.types import OpEvent, Part, Term

aten = torch.ops.aten

MAX_POOL = (aten.max_pool1d, aten.max_pool2d, aten.max_pool3d, aten.max_pool1d_with_indices,
            aten.max_pool2d_with_indices, aten.max_pool3d_with_indices, aten.mkldnn_max_pool2d, aten.mkldnn_max_pool3d,
            aten.quantized_max_pool1d, aten.quantized_max_pool2d, aten.quantized_max_pool3d)
AVG_POOL = (aten.avg_pool1d, aten.avg_pool2d, aten.avg_pool3d)
ADAPTIVE_AVG = (aten._adaptive_avg_pool2d, aten._adaptive_avg_pool3d, aten.adaptive_avg_pool1d,
                aten.adaptive_avg_pool2d, aten.adaptive_avg_pool3d, aten.mkldnn_adaptive_avg_pool2d)
ADAPTIVE_MAX = (aten.adaptive_max_pool1d, aten.adaptive_max_pool2d, aten.adaptive_max_pool3d)
_AXES_TEXT = {1: "L", 2: "H, W", 3: "D, H, W"}


def _window_symbols(ks: tuple[int, ...]) -> dict[str, Any]:
    return {f"K_{a.lower()}": k for a, k in zip(args.axis_names(len(ks)), ks)}


@op_rule(*MAX_POOL)
def max_pool(op: OpEvent) -> Cost:
    """Comparisons = n_out·(∏K − 1): each output is the max of a ∏K window."""
    ks = _window_symbols(args.pool_window(op).kernel)
    return (step("comparisons", f"n_out*({'*'.join(ks)} - 1)", term=Term.POOL, n_out=op.outputs[0].numel, **ks),)


@op_rule(*AVG_POOL)
def avg_pool(op: OpEvent) -> Cost:
    """Adds and divide = n_out·∏K: ∏K − 1 additions and one division per output."""
    ks = _window_symbols(args.pool_window(op).kernel)
    return (step("pool ops", f"n_out*{'*'.join(ks)}", term=Term.POOL, n_out=op.outputs[0].numel, **ks),)


@op_rule(*ADAPTIVE_AVG)
def adaptive_avg_pool(op: OpEvent) -> Cost:
    """Adds and divide ≈ n_in + n_out: each input added once, each output divided once (exact if divisible)."""
    return (step("pool ops", "n_in + n_out", term=Term.POOL, n_in=op.args[0].numel, n_out=op.outputs[0].numel),)


@op_rule(*ADAPTIVE_MAX)
def adaptive_max_pool(op: OpEvent) -> Cost:
    """Comparisons ≈ n_in − n_out (exact for divisible sizes)."""
    return (step("comparisons", "n_in - n_out", term=Term.POOL, n_in=op.args[0].numel, n_out=op.outputs[0].numel),)


@op_rule(aten.fractional_max_pool2d, aten.fractional_max_pool3d)
def fractional_max_pool(op: OpEvent) -> Cost:
    """Comparisons = n_out·(∏K − 1): each output the max of a ∏K window at a random stride."""
    ks = _window_symbols(args.per_axis(op.args[1], int(op.op[-2])))
    return (step("comparisons", f"n_out*({'*'.join(ks)} - 1)", term=Term.POOL, n_out=op.outputs[0].numel, **ks),)


@op_rule(aten.max_pool2d_with_indices_backward, aten.max_pool3d_with_indices_backward,
         aten.adaptive_max_pool2d_backward, aten.adaptive_max_pool3d_backward, aten.max_pool2d_backward,
         aten.mkldnn_max_pool2d_backward, aten.mkldnn_max_pool3d_backward, aten.fractional_max_pool2d_backward,
         aten.fractional_max_pool3d_backward)
def max_pool_backward(op: OpEvent) -> Cost:
    """Each ∂y element is added to the input position that was the max: n_out adds."""
    return (step("∂x adds", "n_out", term=Term.POOL, part=Part.INPUT, n_out=op.args[0].numel),)


@op_rule(aten.avg_pool2d_backward, aten.avg_pool3d_backward)
def avg_pool_backward(op: OpEvent) -> Cost:
    """Each ∂y element is divided once and added to ∏K inputs: n_out·(∏K + 1)."""
    kernel = {f"K_{i}": k for i, k in enumerate(op.arg(2, "kernel_size"))}
    return (step("∂x ops", f"n_out*({'*'.join(kernel)} + 1)", term=Term.POOL, part=Part.INPUT,
                 n_out=op.args[0].numel, **kernel),)


@op_rule(aten._adaptive_avg_pool2d_backward, aten._adaptive_avg_pool3d_backward, aten.adaptive_avg_pool3d_backward,
         aten.mkldnn_adaptive_avg_pool2d_backward)
def adaptive_avg_pool_backward(op: OpEvent) -> Cost:
    """The mirror of the forward: n_out divisions and n_in adds."""
    return (step("∂x ops", "n_in + n_out", term=Term.POOL, part=Part.INPUT, n_in=op.args[1].numel,
                 n_out=op.args[0].numel),)


field_rule(*MAX_POOL, *AVG_POOL)(window)
field_rule(*(a for a in ADAPTIVE_AVG if a is not aten.mkldnn_adaptive_avg_pool2d), *ADAPTIVE_MAX)(adaptive_pool)
kind("maxpool", *MAX_POOL, pooling._MaxPoolNd)
kind("avgpool", *AVG_POOL, pooling._AvgPoolNd)
kind("adaptive_avgpool", aten._adaptive_avg_pool2d, aten._adaptive_avg_pool3d, pooling._AdaptiveAvgPoolNd)
kind("adaptive_maxpool", pooling._AdaptiveMaxPoolNd)


@expects(pooling._MaxPoolNd, pooling._AvgPoolNd, pooling._LPPoolNd, pooling._AdaptiveAvgPoolNd,
         pooling._AdaptiveMaxPoolNd, pooling._MaxUnpoolNd)
def pool_input(m: nn.Module) -> str:
    """Pooling expects (N, C, *spatial) or (C, *spatial)."""
    axes = _AXES_TEXT[spatial_ndim(m)]
    return f"(N, C, {axes}) or (C, {axes})"
