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

from nbcount.convention import Convention, Cost, Defect, register
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
    attr,
    formula,
    in_count,
    is_pool_mean,
    kernel_symbols,
    keyed,
    matmul_count,
    mha_need_weights,
    minus,
    nothing,
    out_count,
    per_element,
    product,
    rnn_hook_count,
    spatial,
    weighted,
    x,
    y,
)
from nbcount.rules import args, qualname
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


LABEL = "MACs (ptflops)"


def conv(row: Row) -> Cost:
    """conv_flops_counter_hook: ∏K·C_in·C_out/g per position (output; input if transposed) + bias per output."""
    kernel = kernel_symbols(attr(row, "kernel_size"), len(attr(row, "kernel_size")))
    positions = x(row).shape[0] * spatial(x(row).shape if attr(row, "transposed") else y(row).shape)
    text = f"{product(kernel)}*C_in*(C_out/g)*P" + (" + n_out" if attr(row, "bias") else "")
    where = "input" if attr(row, "transposed") else "output"
    return formula(LABEL, text, f"P: N × the {where}'s spatial positions", **kernel, C_in=attr(row, "in_channels"),
                   C_out=attr(row, "out_channels"), g=attr(row, "groups", 1), P=positions, n_out=y(row).numel)


def linear(row: Row) -> Cost:
    """linear_flops_counter_hook: (in·out + bias out) per leading position."""
    text = "(N_in*N_out + N_out)*rows" if attr(row, "bias") else "N_in*N_out*rows"
    return formula(LABEL, text, "rows: every leading position", N_in=x(row).shape[-1], N_out=y(row).shape[-1],
                   rows=math.prod(x(row).shape[:-1]))


def norm(row: Row) -> Cost:
    """bn_flops_counter_hook: 1 per input element, 2 with an affine transform (LayerNorm's included)."""
    affine = bool(attr(row, "affine", False) or attr(row, "elementwise_affine", False))
    return per_element(LABEL, 2 if affine else 1, x(row).numel)


def mha(row: Row) -> Cost:
    """multihead_attention_counter_hook: scale + projections + per-head (q·kᵀ, softmax, p·v) + out-projection."""
    q, k, v = row.call.in_tensors[:3]
    batch_first = bool(attr(row, "batch_first", False))
    b, li = (q.shape[0], 1) if batch_first else (q.shape[1], 0)
    bias = any(p.name.endswith("in_proj_bias") for p in (*row.call.params_new, *row.call.params_shared))
    text = "(Lq*Dq + Lq*Dq*Dq + Lk*Dk*Dk + Lv*Dv*Dv" + (" + (Lq + Lk + Lv)*Dq" if bias else "") + \
        " + H*(Lq*Lk*(Dq/H) + Lq*Lk + Lq*Lk*(Dv/H)) + Lq*Dv*(Dv + 1))*B"
    return formula(LABEL, text, "scale, q/k/v projections, per head q·kᵀ, softmax, p·v, out-projection",
                   Lq=q.shape[li], Lk=k.shape[li], Lv=v.shape[li], Dq=q.shape[2], Dk=k.shape[2], Dv=v.shape[2],
                   H=attr(row, "num_heads"), B=b)


OVERRIDES = {
    **keyed((nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d), conv),
    **keyed(_ACTIVATIONS, lambda row: per_element(LABEL, 1, y(row).numel, "out")),
    **keyed(_POOLS, lambda row: per_element(LABEL, 1, x(row).numel)),
    **keyed(_NORMS, norm),
    **keyed((nn.Linear,), linear),
    **keyed((nn.Upsample,), lambda row: per_element(LABEL, 1, y(row).numel, "out")),
    **keyed(RNN_CLASSES, lambda row: rnn_hook_count(row, LABEL, two_per_weight=False)),
    **keyed((nn.MultiheadAttention,), mha),
}


def _hardtanh(op: OpEvent) -> Cost:
    """F.relu6 lowers to hardtanh(0, 6); other hardtanh calls are not patched."""
    low, high = op.arg(1, "min_val", -1.0), op.arg(2, "max_val", 1.0)
    return per_element(LABEL, 1, op.args[0].numel) if (low, high) == (0.0, 6.0) else ()


def _addmm(op: OpEvent) -> Cost:
    """_addmm_tensor_flops_hook: ∏mat1·n + the added matrix's elements."""
    return matmul_count(op, LABEL, added=True)


OP_COUNTS = {
    **dict.fromkeys(("aten.relu", "aten.relu_", "aten.prelu", "aten._prelu_kernel", "aten.elu", "aten.elu_",
                     "aten.gelu", "aten.gelu_", "aten.silu", "aten.silu_"), in_count(LABEL)),
    **dict.fromkeys(("aten.hardtanh", "aten.hardtanh_"), _hardtanh),
    **dict.fromkeys((*MAX_POOL_OPS, *AVG_POOL_OPS, *ADAPTIVE_OPS), in_count(LABEL)),
    "aten.mean": lambda op: per_element(LABEL, 1, op.args[0].numel) if is_pool_mean(op) else (),
    **dict.fromkeys(("aten._softmax", "aten.softmax"), in_count(LABEL)),
    **dict.fromkeys(UPSAMPLE_OPS, out_count(LABEL)),
    **dict.fromkeys(("aten.mm", "aten.bmm"), lambda op: matmul_count(op, LABEL)),
    **dict.fromkeys(("aten.addmm", "aten.baddbmm"), _addmm),
    **dict.fromkeys(ELEMENTWISE_ADD_MUL, out_count(LABEL)),
}
_HOOKED = set(OVERRIDES)


def _functional_again(row: Row) -> Cost:
    """The patched functional inside a hooked module adds its count a second time."""
    label = "defect functional_counted_twice"
    if row.call.classes[0] in _DOUBLE_COUNTED:
        again = [(op.op, fn(op)) for op in row.call.ops if (fn := OP_COUNTS.get(op.op)) is not None]
    elif row.call.classes[0] == MHA_CLASS:  # with need_weights the slow path runs torch.bmm twice and F.softmax
        fused = [op for op in row.call.ops if op.op == MHA_OP]
        if fused:
            again = [(op.op, formula(LABEL, "2*B*L*S*E + B*H*L*S", "the attention matmuls and softmax",
                                     **args.multi_head(op).symbols)) for op in fused if mha_need_weights(op)]
        else:
            again = [(op.op, OP_COUNTS[op.op](op)) for op in row.call.ops if op.op in ("aten.bmm", "aten._softmax")]
    else:
        again = []
    return weighted(label, again) or nothing(label, "no functional counted again")


def _operators(row: Row) -> Cost:
    """`a + b`, `a * b`, `+=` do not go through the patched torch.add / torch.mul."""
    if row.call.classes[0] in _HOOKED:
        return nothing("defect operators_not_patched", "a hooked module")
    return minus("defect operators_not_patched", [(op.op, out_count(LABEL)(op)) for op in row.call.ops
                                                  if op.op in ELEMENTWISE_ADD_MUL], "`+` and `*` bypass torch.add")


def _layer_norm_affine(row: Row) -> Cost:
    """LayerNorm's affine flag is called elementwise_affine, so hasattr(module, 'affine') is False."""
    if row.call.classes[0] == qualname(nn.LayerNorm) and attr(row, "elementwise_affine", False):
        return formula("defect layernorm_affine_ignored", "-n_in", "counted 1 per element, not 2", n_in=x(row).numel)
    return nothing("defect layernorm_affine_ignored", "not an affine LayerNorm")


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
