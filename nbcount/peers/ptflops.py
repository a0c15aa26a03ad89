"""`ptflops`: ptflops.get_model_complexity_info (pytorch backend) — MACs with bias, plus patched functionals.

Mirrors ptflops/pytorch_ops.py: ``MODULES_MAPPING`` (hooks on modules of an exactly matching type:
conv_flops_counter_hook, linear_flops_counter_hook, bn_flops_counter_hook, relu_flops_counter_hook,
pool_flops_counter_hook, upsample_flops_counter_hook, rnn_flops_counter_hook,
multihead_attention_counter_hook), ``FUNCTIONAL_MAPPING`` and ``TENSOR_OPS_MAPPING`` (F.relu, F.*pool*,
F.softmax, F.interpolate, torch.matmul / mm / bmm / addmm / baddbmm / add / mul, patched by
ptflops/pytorch_engine.py patch_functional / patch_tensor_ops).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torch import nn

from nbcount.conventions import Convention, Defect, register
from nbcount.peers._common import (
    ADAPTIVE_OPS,
    AVG_POOL_OPS,
    ELEMENTWISE_ADD_MUL,
    MAC_BIAS,
    MAX_POOL_OPS,
    MHA_CLASS,
    MHA_OP,
    RNN_CLASSES,
    UPSAMPLE_OPS,
    added_numel,
    attr,
    broadcast_numel,
    in_numel,
    is_pool_mean,
    keyed,
    matmul_macs,
    mha_need_weights,
    mha_parts,
    out_numel,
    rnn_hook_flops,
    spatial,
    x,
    y,
)
from nbcount.rules import qualname
from nbcount.types import OpEvent

if TYPE_CHECKING:
    from nbcount.report import Row

_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
          nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
          nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
_ACTIVATIONS = (nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6, nn.GELU)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
          nn.GroupNorm, nn.LayerNorm)
# Modules whose forward calls a functional that ptflops also patches: counted by the hook and again.
_DOUBLE_COUNTED = {qualname(c) for c in (nn.ReLU, nn.PReLU, nn.ELU, nn.GELU, nn.Upsample, *_POOLS)}


def conv(row: Row) -> int:
    """conv_flops_counter_hook: ∏K·C_in·C_out/g per position (output; input if transposed) + bias per output."""
    per_position = math.prod(attr(row, "kernel_size")) * attr(row, "in_channels") * (
        attr(row, "out_channels") // attr(row, "groups", 1))
    positions = x(row).shape[0] * spatial(x(row).shape if attr(row, "transposed") else y(row).shape)
    return per_position * positions + (y(row).numel if attr(row, "bias") else 0)


def linear(row: Row) -> int:
    """linear_flops_counter_hook: (in·out + bias out) per leading position."""
    rows = math.prod(x(row).shape[:-1])
    return (x(row).shape[-1] * y(row).shape[-1] + (y(row).shape[-1] if attr(row, "bias") else 0)) * rows


def norm(row: Row) -> int:
    """bn_flops_counter_hook: 1 per input element, 2 with an affine transform (LayerNorm's included)."""
    affine = bool(attr(row, "affine", False) or attr(row, "elementwise_affine", False))
    return x(row).numel * (2 if affine else 1)


def mha(row: Row) -> int:
    """multihead_attention_counter_hook: scale + projections + per-head (q·kᵀ, softmax, p·v) + out-projection."""
    q, k, v = row.call.in_tensors[:3]
    batch_first = bool(attr(row, "batch_first", False))
    b, li = (q.shape[0], 1) if batch_first else (q.shape[1], 0)
    qlen, klen, vlen = q.shape[li], k.shape[li], v.shape[li]
    qdim, kdim, vdim, heads = q.shape[2], k.shape[2], v.shape[2], attr(row, "num_heads")
    flops = qlen * qdim + qlen * qdim * qdim + klen * kdim * kdim + vlen * vdim * vdim
    if any(p.name.endswith("in_proj_bias") for p in (*row.call.params_new, *row.call.params_shared)):
        flops += (qlen + klen + vlen) * qdim
    flops += heads * (qlen * klen * (qdim // heads) + qlen * klen + qlen * klen * (vdim // heads))
    return (flops + qlen * vdim * (vdim + 1)) * b


OVERRIDES = {
    **keyed((nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d), conv),
    **keyed(_ACTIVATIONS, lambda row: y(row).numel),
    **keyed(_POOLS, lambda row: x(row).numel),
    **keyed(_NORMS, norm),
    **keyed((nn.Linear,), linear),
    **keyed((nn.Upsample,), lambda row: y(row).numel),
    **keyed(RNN_CLASSES, lambda row: rnn_hook_flops(row, two_per_weight=False)),
    **keyed((nn.MultiheadAttention,), mha),
}


def _hardtanh(op: OpEvent) -> int:
    """F.relu6 lowers to hardtanh(0, 6); other hardtanh calls are not patched."""
    low, high = op.arg(1, "min_val", -1.0), op.arg(2, "max_val", 1.0)
    return op.args[0].numel if (low, high) == (0.0, 6.0) else 0


def _addmm(op: OpEvent) -> int:
    """_addmm_tensor_flops_hook: ∏mat1·n + the added matrix's elements."""
    return matmul_macs(op) + added_numel(op)


OP_COUNTS = {
    **dict.fromkeys(("aten.relu", "aten.relu_", "aten.prelu", "aten._prelu_kernel", "aten.elu", "aten.elu_",
                     "aten.gelu", "aten.gelu_", "aten.silu", "aten.silu_"), in_numel),
    **dict.fromkeys(("aten.hardtanh", "aten.hardtanh_"), _hardtanh),
    **dict.fromkeys((*MAX_POOL_OPS, *AVG_POOL_OPS, *ADAPTIVE_OPS), in_numel),
    "aten.mean": lambda op: op.args[0].numel if is_pool_mean(op) else 0,
    **dict.fromkeys(("aten._softmax", "aten.softmax"), in_numel),
    **dict.fromkeys(UPSAMPLE_OPS, out_numel),
    **dict.fromkeys(("aten.mm", "aten.bmm"), matmul_macs),
    **dict.fromkeys(("aten.addmm", "aten.baddbmm"), _addmm),
    **dict.fromkeys(ELEMENTWISE_ADD_MUL, broadcast_numel),
}
_HOOKED = set(OVERRIDES)


def _functional_again(row: Row) -> int:
    """The patched functional inside a hooked module adds its count a second time."""
    if row.call.classes[0] in _DOUBLE_COUNTED:
        return sum(fn(op) for op in row.call.ops if (fn := OP_COUNTS.get(op.op)) is not None)
    if row.call.classes[0] == MHA_CLASS:  # with need_weights the slow path runs torch.bmm twice and F.softmax
        fused = [op for op in row.call.ops if op.op == MHA_OP]
        if fused:
            parts = [mha_parts(op) for op in fused if mha_need_weights(op)]
            return sum(p["attention_macs"] + p["scores"] for p in parts)
        return sum(OP_COUNTS[op.op](op) for op in row.call.ops if op.op in ("aten.bmm", "aten._softmax"))
    return 0


def _operators(row: Row) -> int:
    """`a + b`, `a * b`, `+=` do not go through the patched torch.add / torch.mul."""
    if row.call.classes[0] in _HOOKED:
        return 0
    return -sum(broadcast_numel(op) for op in row.call.ops if op.op in ELEMENTWISE_ADD_MUL)


def _layer_norm_affine(row: Row) -> int:
    """LayerNorm's affine flag is called elementwise_affine, so hasattr(module, 'affine') is False."""
    if row.call.classes[0] == qualname(nn.LayerNorm) and attr(row, "elementwise_affine", False):
        return -x(row).numel
    return 0


PTFLOPS = register(Convention(
    name="ptflops",
    description="ptflops (pytorch backend): MACs of hooked module types with bias adds, norms 1-2 and "
                "activations / pooling 1 per element, plus patched functionals and torch.add / mul / matmul.",
    source="ptflops/pytorch_ops.py: MODULES_MAPPING, FUNCTIONAL_MAPPING, TENSOR_OPS_MAPPING; "
           "ptflops/pytorch_engine.py: patch_functional, patch_tensor_ops",
    unit="MACs",
    module_overrides=OVERRIDES,
    exact_type=True,
    op_counts=OP_COUNTS,
    defects=(
        Defect("functional_counted_twice", "nn.ReLU / PReLU / ELU / GELU, every pooling module and nn.Upsample "
               "call a functional that ptflops also patches (F.relu, F.max_pool2d, ...): the module hook and the "
               "patched functional both count it (MultiheadAttention with need_weights: torch.bmm and F.softmax again)",
               _functional_again),
        Defect("operators_not_patched", "only calls spelled torch.add / Tensor.add / torch.mul are patched: "
               "`a + b`, `a * b` and `+=` count 0 (strict mode assumes the operator spelling)", _operators),
        Defect("layernorm_affine_ignored", "bn_flops_counter_hook doubles for `module.affine`, which LayerNorm "
               "does not have (it is elementwise_affine): LayerNorm counts 1 per element", _layer_norm_affine),
    ),
    notes=("Module hooks match the exact type; subclasses are counted only through their functionals.",
           "Module-hook counts are divided by the batch size (per-sample MACs) while functional counts are "
           "not; nbcount counts the whole batch everywhere, so compare at batch size 1.",
           "The per-layer printout shows module hooks only; functional and tensor-op counts appear only in "
           "the total. F.linear is not patched, so a functional linear outside nn.Linear counts 0.",
           "torch.matmul (patched) and `@` (not patched) reach the dispatcher as the same mm / bmm: nbcount "
           "cannot tell them apart and counts both.",
           "nn.Upsample's hook counts one sample's output elements (then divided by the batch again); torch.add / "
           "mul broadcast shapes are aligned from the left. Both agree with nbcount at batch size 1 and equal shapes."),
    rules={"conv": MAC_BIAS, "conv_transpose": MAC_BIAS + "; MACs per input pixel", "linear": MAC_BIAS,
           "matmul": "torch.matmul/mm/bmm 1 per MAC; addmm + bias",
           "batchnorm": "1 per element, 2 with affine", "layernorm": "1 per element, 2 with affine (affine "
           "ignored: a defect)", "groupnorm": "1 per element, 2 with affine", "instancenorm": "1 per element, "
           "2 with affine", "relu": "1 per element (counted twice: a defect)", "relu6": "1 per element",
           "leaky_relu": "1 per element", "activation": "1 per element (F.silu, F.gelu, F.elu patched)",
           "softmax": "1 per element (F.softmax)", "maxpool": "1 per input element (counted twice: a defect)",
           "avgpool": "1 per input element (counted twice: a defect)",
           "adaptive_avgpool": "1 per input element (module: twice, a defect; F.: once)",
           "adaptive_maxpool": "1 per input element (counted twice: a defect)",
           "upsample": "1 per output element", "mha": "its own formula: projections, scale, q·kᵀ, softmax, "
           "p·v, out-projection with bias", "add_mul": "1 per output element for torch.add / torch.mul "
           "(operators: 0, a defect)", "rnn": "rnn_flops_counter_hook: weights + gate ops + biases per step", "*": "0"},
))
