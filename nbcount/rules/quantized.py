"""Quantized linear layers (torch.ao.quantization: dynamic and static): their packed weights are read by one op.

The weight is packed in a ScriptObject (``LinearPackedParamsBase``); capture counts its weight and bias as the
layer's parameters, and ``quantized.linear_unpack`` gives the bias here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nbcount.derive import step
from nbcount.rules.registry import Cost, op_rule
from nbcount.rules.table import exists
from nbcount.types import OpEvent, ParamRef, Term

aten = torch.ops.aten
LINEAR = ("quantized.linear_dynamic", "quantized.linear_dynamic_fp16", "quantized.linear")


def _has_bias(packed: Any) -> bool:
    try:
        return torch.ops.quantized.linear_unpack(packed)[1] is not None
    except Exception:  # an fp16 packing or another backend: the bias is not readable here
        return False


def quantized_linear(op: OpEvent) -> Cost:
    """MACs = n_out·K (K the input features: one dot product of K per output element); bias adds = n_out."""
    x, out = op.args[0], op.outputs[0]
    steps = [step("MACs", "n_out*K", term=Term.MAC, n_out=out.numel, K=x.shape[-1])]
    if _has_bias(op.args[1]):
        steps.append(step("bias adds", "n_out", term=Term.BIAS, n_out=out.numel))
    return tuple(steps)


op_rule(*(name for name in LINEAR if exists(name)))(quantized_linear)


@op_rule(aten.quantize_per_tensor, aten.quantize_per_channel, aten.quantize_per_tensor_dynamic)
def quantize(op: OpEvent) -> Cost:
    """q = clamp(round(x/scale) + zero_point): divide, round, add, clamp = 4 ops per element."""
    return (step("quantize ops", "4*n", term=Term.ELEMENTWISE, n=op.args[0].numel),)


@op_rule(aten.dequantize)
def dequantize(op: OpEvent) -> Cost:
    """x = (q − zero_point)·scale: 2 ops per element."""
    return (step("dequantize ops", "2*n", term=Term.ELEMENTWISE, n=sum(o.numel for o in op.outputs)),)


def packed_weights(module: nn.Module, prefix: str) -> list[ParamRef]:
    """The weight and bias a quantized module keeps packed in a ScriptObject (LinearPackedParams), not as
    nn.Parameter: named ``<prefix>.weight`` / ``<prefix>.bias``, at their quantized element size."""
    packed = getattr(module, "_packed_params", None)
    if not isinstance(packed, torch.ScriptObject) or not callable(getattr(module, "_weight_bias", None)):
        return []
    from torch.utils._python_dispatch import _disable_current_modes

    try:
        with _disable_current_modes():  # real weights: unpacked outside the fake mode the count may run in
            tensors = module._weight_bias()  # type: ignore[operator]
    except Exception:  # a packing nbcount does not know: nothing claimed
        return []
    names = ("weight", "bias")
    return [ParamRef(f"{prefix}.{n}" if prefix else n, tuple(t.shape), t.numel(), t.numel() * t.element_size(),
                     False) for n, t in zip(names, tensors) if isinstance(t, torch.Tensor)]
