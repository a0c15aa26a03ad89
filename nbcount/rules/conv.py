"""Convolutions, plain and transposed, any number of spatial axes: forward, backward, receptive field, kinds."""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from nbcount.derive import step
from nbcount.rules import args
from nbcount.rules.fields_layout import mix_all
from nbcount.rules.fields_window import window
from nbcount.rules.registry import Cost, expects, field_rule, kind, op_rule
from nbcount.types import OpEvent, Part, TensorMeta, Term

aten = torch.ops.aten

CONV = (aten.convolution, aten._convolution, aten.convolution_overrideable)
# Backend kernels below aten.convolution, each with its own argument order: counted from the weight's shape.
BACKEND = (aten.cudnn_convolution, aten.miopen_convolution, aten.miopen_depthwise_convolution,
           aten.mkldnn_convolution, aten._slow_conv2d_forward, aten.slow_conv3d_forward, aten.slow_conv_dilated2d,
           aten.slow_conv_dilated3d, aten._conv_depthwise2d, aten.conv_depthwise3d, aten._nnpack_spatial_convolution,
           aten._mps_convolution, aten.cudnn_convolution_relu, aten.miopen_convolution_relu)
BACKEND_TRANSPOSED = (aten.cudnn_convolution_transpose, aten.miopen_convolution_transpose, aten.slow_conv_transpose2d,
                      aten.slow_conv_transpose3d, aten._mps_convolution_transpose)
_AXES_TEXT = {1: "L", 2: "H, W", 3: "D, H, W"}


@op_rule(*CONV)
def convolution(op: OpEvent) -> Cost:
    """MACs = N·C_out·∏out·(C_in/groups·∏K); transposed: N·C_in·∏in·(C_out/groups·∏K); bias = N·C_out·∏out."""
    c = args.conv(op)
    symbols = c.symbols
    note = "each input element is scattered over C_out/g·∏K outputs" if c.transposed else ""
    steps = [step("MACs", c.mac_formula, term=Term.MAC, note=note, **args.used(c.mac_formula, symbols))]
    if c.bias:
        steps.append(step("bias adds", c.outputs_formula, term=Term.BIAS, **args.used(c.outputs_formula, symbols)))
    return tuple(steps)


@op_rule(*BACKEND, *BACKEND_TRANSPOSED)
def backend_convolution(op: OpEvent) -> Cost:
    """MACs = n_out·∏W[1:] (each output a C_in/g·∏K dot product); transposed: n_in·∏W[1:]; bias = n_out adds."""
    x, w, out = op.args[0], op.args[1], op.outputs[0]
    transposed = op.op in _TRANSPOSED_NAMES
    per = {f"W_{i}": d for i, d in enumerate(w.shape[1:], 1)}
    n = {"n_in": x.numel} if transposed else {"n_out": out.numel}
    steps = [step("MACs", f"{next(iter(n))}*{'*'.join(per)}", term=Term.MAC, **n, **per)]
    channels = out.shape[1] if len(out.shape) > 1 else 0
    if any(isinstance(a, TensorMeta) and a.shape == (channels,) for a in op.args[2:]):
        steps.append(step("bias adds", "n_out", term=Term.BIAS, n_out=out.numel))
    if op.op.endswith("_relu"):
        steps.append(step("ReLU", "n_out", term=Term.ACTIVATION, n_out=out.numel))
    return tuple(steps)


_TRANSPOSED_NAMES = {str(op) for op in BACKEND_TRANSPOSED}


def _mask(op: OpEvent, index: int, size: int) -> tuple[bool, ...]:
    mask = op.arg(index, "output_mask")
    return tuple(bool(m) for m in mask) if mask is not None else (True,) * size


@op_rule(aten.convolution_backward)
def convolution_backward(op: OpEvent) -> Cost:
    """∂x MACs = ∂W MACs = the forward MACs N·C_out·∏out·(C_in/g·∏K); ∂b = N·C_out·∏out sums."""
    dy, x, w = op.args[0], op.args[1], op.args[2]
    transposed, groups = bool(op.args[7]), int(op.args[9])
    mask = _mask(op, 10, 3)
    kernel = {f"K_{i}": k for i, k in enumerate(w.shape[2:])}
    if transposed:  # forward MACs of a transposed conv: N·C_in·∏in·(C_out/g·∏K)
        spatial = {f"S_{i}": s for i, s in enumerate(x.shape[2:])}
        symbols = {"N": x.shape[0], "C_in": x.shape[1], "C_out": dy.shape[1], "g": groups, **spatial, **kernel}
        formula = f"N*C_in*{'*'.join(spatial) or '1'}*(C_out/g*{'*'.join(kernel) or '1'})"
    else:
        spatial = {f"S_{i}": s for i, s in enumerate(dy.shape[2:])}
        symbols = {"N": dy.shape[0], "C_out": dy.shape[1], "C_in": x.shape[1], "g": groups, **spatial, **kernel}
        formula = f"N*C_out*{'*'.join(spatial) or '1'}*(C_in/g*{'*'.join(kernel) or '1'})"
    steps = []
    if mask[0]:
        steps.append(step("MACs ∂x", formula, term=Term.MAC, part=Part.INPUT,
                          note="transposed convolution of ∂y with W", **symbols))
    if mask[1]:
        steps.append(step("MACs ∂W", formula, term=Term.MAC, part=Part.WEIGHT, note="convolution of x with ∂y",
                          **symbols))
    if mask[2]:
        out = {f"S_{i}": s for i, s in enumerate(dy.shape[2:])}
        steps.append(step("∂b sums", f"N*C_out*{'*'.join(out) or '1'}", term=Term.REDUCTION, part=Part.WEIGHT,
                          N=dy.shape[0], C_out=dy.shape[1], **out))
    return tuple(steps)


field_rule(*CONV)(window)
field_rule(*BACKEND, *BACKEND_TRANSPOSED)(mix_all)
kind("conv", *CONV, nn.modules.conv._ConvNd)
kind("conv_transpose", nn.modules.conv._ConvTransposeNd)


def spatial_ndim(module: nn.Module) -> int:
    """Spatial axes of an N-d layer, from its class name (Conv2d → 2); 2 when the name does not say."""
    for cls in type(module).__mro__:
        found = re.search(r"([123])d$", cls.__name__)
        if found:
            return int(found.group(1))
    return 2


def shape_text(values: Any) -> str:
    """``(3,)`` / ``(3, 3)``: a tuple as Python writes it."""
    values = tuple(values)
    return f"({values[0]},)" if len(values) == 1 else "(" + ", ".join(str(v) for v in values) + ")"


@expects(nn.modules.conv._ConvNd)
def conv_input(m: Any) -> str:
    """Conv expects (N, C_in, *spatial) and a spatial size at least the dilated kernel."""
    axes, c = _AXES_TEXT[spatial_ndim(m)], m.in_channels
    text = f"(N, C_in={c}, {axes}) or (C_in={c}, {axes})"
    if not m.transposed:
        span = tuple(d * (k - 1) + 1 for k, d in zip(m.kernel_size, m.dilation))
        text += f", each spatial size (after padding) at least dilation·(kernel−1)+1 = {shape_text(span)}"
    return text
