"""`calflops` and `deepspeed`: FLOPs of patched torch.nn.functional / torch calls, attributed to the innermost module.

Mirrors calflops/pytorch_ops.py (``_patch_functionals``, ``_patch_tensor_methods`` and the ``_*_flops_compute``
functions) with calflops/calculate_pipline.py (per-module pre/post hooks collect the functionals a module
runs itself), and its origin deepspeed/profiling/flops_profiler/profiler.py, which also patches
F.scaled_dot_product_attention, torch.mm, torch.bmm and ``Tensor.__matmul__``. FLOPs: 2 per MAC, conv
bias 1 per output, F.linear's bias not counted, norms 1-5 per element, activations and pooling 1 per
element.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from nbcount.convention import Convention, Cost, Defect, register
from nbcount.peers._common import (
    ADAPTIVE_OPS,
    AVG_POOL_OPS,
    BATCH_NORM_OPS,
    ELEMENTWISE_ADD_MUL,
    FLOP2,
    FLOP2_BIAS,
    MAX_POOL_OPS,
    MHA_CLASS,
    MHA_OP,
    RNN_CLASSES,
    SDPA_OPS,
    UPSAMPLE_OPS,
    OpCount,
    RowCount,
    conv_count,
    conv_transposed,
    excess,
    formula,
    in_count,
    is_pool_mean,
    keyed,
    matmul_count,
    mha_count,
    mha_need_weights,
    minus,
    nothing,
    out_count,
    per_element,
    rnn_hook_count,
    sdpa_count,
    weighted,
)
from nbcount.rules import args
from nbcount.types import OpEvent

if TYPE_CHECKING:
    from nbcount.report import Row

LABEL = "FLOPs (calflops)"


def conv(op: OpEvent) -> Cost:
    """_conv_flops_compute / _conv_trans_flops_compute: 2·MACs + C_out per output position for the bias."""
    return conv_count(op, LABEL, per_mac=2, bias=True)


def _norm(op: OpEvent, training: bool) -> Cost:
    affine = op.arg(1, "weight") is not None
    return per_element(LABEL, (5 if affine else 4) if training else (2 if affine else 1), op.args[0].numel)


def batch_norm(op: OpEvent) -> Cost:
    """_batch_norm_flops_compute: eval 2 per element (1 without affine), training 5 (4)."""
    return _norm(op, args.batch_norm_training(op))


def _is_relu6(op: OpEvent) -> bool:
    return (op.arg(1, "min_val", -1.0), op.arg(2, "max_val", 1.0)) == (0.0, 6.0)


def _hardtanh(op: OpEvent) -> Cost:
    """F.relu6 lowers to hardtanh(0, 6): 1 per element; other hardtanh calls are not patched."""
    return per_element(LABEL, 1, op.args[0].numel) if _is_relu6(op) else ()


def mha(op: OpEvent) -> Cost:
    """Slow-path MultiheadAttention: F.linear projections and the attention matmuls at 2 per MAC; with
    need_weights, torch.bmm twice and F.softmax 1 per score, else one F.scaled_dot_product_attention."""
    return mha_count(op, LABEL, per_mac=2, scores=1 if mha_need_weights(op) else 0)


def _layer_norm(weight_index: int) -> OpCount:
    def count(op: OpEvent) -> Cost:
        """_layer_norm_flops_compute / _group_norm_flops_compute: 5 per element, 4 without affine."""
        return per_element(LABEL, 5 if op.arg(weight_index, "weight") is not None else 4, op.args[0].numel)
    return count


CALFLOPS_OPS: dict[str, OpCount] = {
    **dict.fromkeys(("aten.convolution", "aten._convolution"), conv),
    **dict.fromkeys(("aten.mm", "aten.addmm", "aten.bmm"), lambda op: matmul_count(op, LABEL, per_mac=2)),
    "aten.baddbmm": lambda op: matmul_count(op, LABEL, per_mac=2, added=True),
    **dict.fromkeys(BATCH_NORM_OPS, batch_norm),
    "aten.native_layer_norm": _layer_norm(2),
    "aten.native_group_norm": _layer_norm(1),
    **dict.fromkeys(("aten.relu", "aten.relu_", "aten.prelu", "aten._prelu_kernel", "aten.elu", "aten.elu_",
                     "aten.leaky_relu", "aten.leaky_relu_", "aten.silu", "aten.silu_", "aten.gelu", "aten.gelu_"),
                    in_count(LABEL)),
    **dict.fromkeys(("aten.hardtanh", "aten.hardtanh_"), _hardtanh),
    **dict.fromkeys((*MAX_POOL_OPS, *AVG_POOL_OPS, *ADAPTIVE_OPS), in_count(LABEL)),
    "aten.mean": lambda op: per_element(LABEL, 1, op.args[0].numel) if is_pool_mean(op) else (),
    **dict.fromkeys(UPSAMPLE_OPS, out_count(LABEL)),
    **dict.fromkeys(("aten._softmax", "aten.softmax"), in_count(LABEL)),
    **dict.fromkeys(ELEMENTWISE_ADD_MUL, out_count(LABEL)),
    **dict.fromkeys(SDPA_OPS, lambda op: sdpa_count(op, LABEL, per_mac=2)),
    "aten._native_multi_head_attention": mha,
}


def _rnn(row: Row) -> Cost:
    """_rnn_forward_hook: 2 per weight − 1 per gate row, + gate ops + biases, per step."""
    return rnn_hook_count(row, LABEL, two_per_weight=True)


_RNN = keyed(RNN_CLASSES, _rnn)


def _ops(row: Row, names: tuple[str, ...]) -> list[OpEvent]:
    """The row's ops of these names; none for an RNN, whose module hook replaces its functionals."""
    if row.call.classes[0] in _RNN:
        return []
    return [op for op in row.call.ops if op.op in names]


def _attention_unpatched(row: Row) -> Cost:
    """F.scaled_dot_product_attention and torch.bmm are not patched: attention matmuls count 0."""
    counted = [(op.op, sdpa_count(op, LABEL, per_mac=2)) for op in _ops(row, SDPA_OPS)]
    counted += [(op.op, formula(LABEL, "2*(2*B*L*S*E)", "the attention matmuls", **args.multi_head(op).symbols))
                for op in _ops(row, (MHA_OP,))]
    if MHA_CLASS in row.call.classes:
        counted += [(op.op, matmul_count(op, LABEL, per_mac=2)) for op in _ops(row, ("aten.bmm",))]
    return minus("defect attention_unpatched", counted, "F.scaled_dot_product_attention and torch.bmm are not "
                 "patched")


def calflops_conv_transpose(op: OpEvent) -> Cost:
    """_conv_trans_flops_compute as written: C_out/g taken from the weight, divided by g again, and the bias
    sized by output dims from the *direct*-conv formula."""
    inp, w = op.args[0], op.args[1]
    stride, padding, dilation, groups = op.args[3], op.args[4], op.args[5], int(op.args[8])
    dims = [(i + 2 * p - (d * (k - 1) + 1)) // s + 1
            for i, k, s, p, d in zip(inp.shape[2:], w.shape[2:], stride, padding, dilation)]
    symbols = {"K": math.prod(w.shape[2:]), "C_in": inp.shape[1], "W_1": w.shape[1], "g": groups,
               "N": inp.shape[0], "P_in": math.prod(inp.shape[2:]), "P_direct": math.prod(dims)}
    text = "2*K*C_in*(W_1//g)*N*P_in"
    if op.args[2] is not None:
        text += " + W_1*N*P_direct"
    return formula(LABEL, text, "W_1 = C_out/g from the weight; P_direct: output positions of a direct conv",
                   **symbols)


def _conv_transpose(row: Row) -> Cost:
    """What calflops' transposed-conv formula adds beyond the rule (2·MACs + 1 per output for the bias)."""
    parts = []
    for op in _ops(row, ("aten.convolution", "aten._convolution")):
        if conv_transposed(op):
            parts.append((op.op, excess("defect conv_transpose", calflops_conv_transpose(op), conv(op))))
    return weighted("defect conv_transpose", parts) or nothing("defect conv_transpose", "no transposed conv")


def _relu6_hardtanh(row: Row) -> Cost:
    """nn.ReLU6 calls F.hardtanh, which is not patched (F.relu6 is)."""
    return minus("defect relu6_unpatched", [(op.op, _hardtanh(op)) for op in _ops(row, ("aten.hardtanh",
                                                                                        "aten.hardtanh_"))],
                 "F.hardtanh is not patched")


def _operators(row: Row) -> Cost:
    return minus("defect operators_not_patched", [(op.op, out_count(LABEL)(op)) for op in
                                                  _ops(row, ELEMENTWISE_ADD_MUL)], "`+` and `*` bypass torch.add")


def _upsample_size(deepspeed: bool) -> RowCount:
    def delta(row: Row) -> Cost:
        """_upsample_flops_compute: a given size counts ∏size (no N·C); calflops' scale path counts the input."""
        parts = []
        for op in _ops(row, UPSAMPLE_OPS):
            size, scales = op.args[1], op.args[2:]
            n_out = op.outputs[0].numel
            if all(s is None for s in scales) and size is not None:
                parts.append((op.op, formula("defect upsample_size", "prod_size - n_out", "∏size without N·C",
                                             prod_size=_prod(size), n_out=n_out)))
            elif not deepspeed:
                parts.append((op.op, formula("defect upsample_size", "n_in - n_out", "the input's elements",
                                             n_in=op.args[0].numel, n_out=n_out)))
        return weighted("defect upsample_size", parts) or nothing("defect upsample_size", "no F.interpolate")
    return delta


def _prod(values: Iterable[int]) -> int:
    return math.prod(int(v) for v in values)


_SHARED_DEFECTS = (
    Defect("relu6_unpatched", "nn.ReLU6 runs F.hardtanh, which is not patched: 0 instead of 1 per element",
           _relu6_hardtanh),
    Defect("operators_not_patched", "`a + b`, `a * b` and `+=` bypass the patched torch.add / torch.mul: 0 "
           "(strict mode assumes the operator spelling)", _operators),
)
_RULES = {"conv": FLOP2_BIAS, "conv_transpose": FLOP2_BIAS + "; MACs per input pixel", "linear": FLOP2 + " (F.linear)",
          "matmul": "2 per MAC (torch.matmul / addmm / baddbmm + the added matrix)",
          "batchnorm": "2 per element (1 without affine); training 5 (4)", "layernorm": "5 per element (4)",
          "groupnorm": "5 per element (4)", "instancenorm": "5 per element (4)",
          "relu": "1 per element", "relu6": "1 per element (nn.ReLU6: 0, a defect)", "leaky_relu": "1 per element",
          "activation": "1 per element (F.gelu, F.silu, F.elu, F.prelu)", "sigmoid": "0 (torch.sigmoid not patched)",
          "tanh": "0 (not patched)", "softmax": "1 per element", "maxpool": "1 per input element",
          "avgpool": "1 per input element", "adaptive_avgpool": "1 per input element",
          "adaptive_maxpool": "1 per input element", "upsample": "1 per output element (size / scale quirks: "
          "defects)", "add_mul": "1 per output element for torch.add / torch.mul (operators: 0, a defect)",
          "embedding": "0", "dropout": "0", "*": "0 (not patched)"}

CALFLOPS = register(Convention(
    name="calflops",
    description="calflops calculate_flops: 2 per MAC of F.linear / F.conv* / torch.matmul (conv bias 1 per "
                "output), norms 1-5 and activations / pooling / softmax 1 per element.",
    source="calflops/pytorch_ops.py: _patch_functionals, _patch_tensor_methods; calflops/calculate_pipline.py",
    unit="FLOPs",
    op_counts=CALFLOPS_OPS,
    module_overrides=_RNN,
    exact_type=True,
    defects=(*_SHARED_DEFECTS,
             Defect("conv_transpose", "_conv_trans_flops_compute sizes the bias with the direct-conv output "
                    "formula (a stride-2 ConvTranspose counts its bias over a quarter of its input's positions) "
                    "and divides C_out by the groups twice", _conv_transpose),
             Defect("attention_unpatched", "F.scaled_dot_product_attention and torch.bmm are not patched: the "
                    "attention matmuls (q·kᵀ, p·v) of SDPA and of nn.MultiheadAttention count 0",
                    _attention_unpatched),
             Defect("upsample_size", "F.interpolate: a size counts ∏size without N·C; a scale_factor counts "
                    "the input elements (the multiply by the scale is discarded)", _upsample_size(False))),
    notes=("`@`, torch.mm and torch.bmm are not patched by calflops (DeepSpeed patches them): they reach "
           "the dispatcher as the same mm / bmm as torch.matmul, so nbcount counts them.",
           "calflops also reports MACs (F.linear, F.conv*, matmul only); its headline is the FLOPs.",
           "Counts are attributed to the innermost module, exactly as nbcount's rows are."),
    rules={**_RULES, "conv_transpose": FLOP2_BIAS + "; MACs per input pixel (bias sized wrongly: a defect)",
           "sdpa": "0 (F.scaled_dot_product_attention not patched: a defect)",
           "mha": "2 per MAC of projections and attention matmuls (+ softmax with need_weights); attention "
           "matmuls unpatched: a defect",
           "rnn": "_rnn_forward_hook: 2 per weight − 1 per gate row, + gate ops + biases per step"},
))

DEEPSPEED = register(Convention(
    name="deepspeed",
    description="DeepSpeed flops profiler: calflops' rules plus F.scaled_dot_product_attention, torch.mm, "
                "torch.bmm and `@` at 2 per MAC.",
    source="deepspeed/profiling/flops_profiler/profiler.py: _patch_functionals, _patch_tensor_methods",
    unit="FLOPs",
    op_counts=CALFLOPS_OPS,
    module_overrides=_RNN,
    exact_type=True,
    defects=(*_SHARED_DEFECTS,
             Defect("upsample_size", "F.interpolate with a size counts ∏size without N·C", _upsample_size(True))),
    notes=("Not installed by the test extra: its rules are checked by arithmetic. They are calflops' (a fork "
           "of an older DeepSpeed profiler) plus attention, torch.mm / bmm / `@`, a correct ConvTranspose "
           "and upsampling by scale (DeepSpeed 0.19.8).",),
    rules={**_RULES, "sdpa": "2 per MAC of q·kᵀ and p·v", "mha": "2 per MAC of projections and attention "
           "matmuls + softmax",
           "rnn": "_rnn_forward_hook: 2 per weight − 1 per gate row, + gate ops + biases per step"},
))
