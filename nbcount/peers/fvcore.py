"""`fvcore`: fvcore.nn.FlopCountAnalysis — one "flop" per MAC, plus a few norms and resampling ops.

Mirrors fvcore/nn/flop_count.py ``_DEFAULT_SUPPORTED_OPS`` and the handles of fvcore/nn/jit_handles.py
(addmm_flop_jit, linear_flop_jit, matmul_flop_jit, bmm_flop_jit, conv_flop_jit, einsum_flop_jit,
batchnorm_flop_jit, norm_flop_counter, elementwise_flop_counter). fvcore traces JIT ops; nbcount maps the
dispatcher ops they lower to back onto those handles. Activations, pooling other than adaptive_avg_pool2d,
softmax and elementwise ops are "unsupported" (0, with a warning).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbcount.convention import Convention, Cost, Defect, register
from nbcount.peers._common import (
    BATCH_NORM_OPS,
    MAC,
    MHA_OP,
    RNN_CLASSES,
    SDPA_OPS,
    OpCount,
    conv_count,
    formula,
    is_pool_mean,
    keyed,
    matmul_count,
    mha_count,
    mha_need_weights,
    minus,
    nothing,
    per_element,
    sdpa_count,
)
from nbcount.rules import args
from nbcount.types import OpEvent

if TYPE_CHECKING:
    from nbcount.report import Row

LABEL = "MACs (fvcore)"


def _matmul(op: OpEvent) -> Cost:
    """matmul_flop_jit / addmm_flop_jit / bmm_flop_jit: M·K·N (one "flop" per MAC; the added matrix dropped)."""
    return matmul_count(op, LABEL)


def _conv(op: OpEvent) -> Cost:
    """conv_flop_jit: N·∏out·C_out·(C_in/g)·∏K (transposed: per input pixel)."""
    return conv_count(op, LABEL)


def _batch_norm(op: OpEvent) -> Cost:
    """batchnorm_flop_jit: training 5·n (4·n without affine); eval 2·n (1·n without affine)."""
    affine = op.arg(1, "weight") is not None
    k = (5 if affine else 4) if args.batch_norm_training(op) else (2 if affine else 1)
    return per_element(LABEL, k, op.args[0].numel)


def _norm(weight_index: int) -> OpCount:
    def count(op: OpEvent) -> Cost:
        """norm_flop_counter: 5·n with an affine weight, 4·n without."""
        return per_element(LABEL, 5 if op.arg(weight_index, "weight") is not None else 4, op.args[0].numel)
    return count


def _adaptive_mean(op: OpEvent) -> Cost:
    """aten::adaptive_avg_pool2d to 1×1 dispatches as a mean over (-1, -2): input elements."""
    if is_pool_mean(op) and len(op.args[0].shape) == 4:
        return per_element(LABEL, 1, op.args[0].numel)
    return ()


def _upsample(k: int) -> OpCount:
    def count(op: OpEvent) -> Cost:
        return per_element(LABEL, k, op.outputs[0].numel, "out")
    count.__doc__ = f"{k} per output element"
    return count


OP_COUNTS = {
    **dict.fromkeys(("aten.mm", "aten.addmm", "aten.bmm", "aten.mv", "aten.dot"), _matmul),
    **dict.fromkeys(("aten.convolution", "aten._convolution"), _conv),
    **dict.fromkeys(BATCH_NORM_OPS, _batch_norm),
    "aten.native_layer_norm": _norm(2),
    "aten.native_group_norm": _norm(1),
    "aten.upsample_nearest2d": _upsample(1),
    "aten.upsample_bilinear2d": _upsample(4),
    "aten.grid_sampler_2d": _upsample(4),
    "aten._adaptive_avg_pool2d": lambda op: per_element(LABEL, 1, op.args[0].numel),
    "aten.mean": _adaptive_mean,
    "aten._native_multi_head_attention": lambda op: mha_count(op, LABEL),
    **dict.fromkeys(SDPA_OPS, lambda op: sdpa_count(op, LABEL)),
}
_RNN = set(keyed(RNN_CLASSES, lambda row: ()))


def _rnn_macs(row: Row) -> Cost:
    """The recurrent matmuls: nbcount's MACs of the layer (fvcore's rule, had it a handle)."""
    return formula(LABEL, "macs", "the layer's multiply-accumulates", macs=row.macs)


def _rnn_unsupported(row: Row) -> Cost:
    """aten::lstm / gru / rnn_tanh have no handle: the recurrent matmuls are skipped."""
    if row.call.classes[0] not in _RNN:
        return nothing("defect rnn_unsupported", "not a recurrent layer")
    return minus("defect rnn_unsupported", [("recurrent matmuls", _rnn_macs(row))], "fvcore has no handle for it")


def _sdpa(row: Row) -> Cost:
    """SDPA, also inside MultiheadAttention called with need_weights=False, is unsupported."""
    counted = [(op.op, sdpa_count(op, LABEL)) for op in row.call.ops if op.op in SDPA_OPS]
    counted += [(op.op, formula(LABEL, "2*B*L*S*E", "the attention matmuls", **args.multi_head(op).symbols))
                for op in row.call.ops if op.op == MHA_OP and not mha_need_weights(op)]
    return minus("defect sdpa_unsupported", counted, "aten::scaled_dot_product_attention has no handle")


FVCORE = register(Convention(
    name="fvcore",
    description="fvcore FlopCountAnalysis: 1 per MAC of conv / linear / matmul (it calls a MAC a flop), "
                "norms, upsampling and adaptive average pooling; activations and elementwise ops are skipped.",
    source="fvcore/nn/flop_count.py: _DEFAULT_SUPPORTED_OPS; fvcore/nn/jit_handles.py",
    unit="MACs",
    op_counts=OP_COUNTS,
    module_overrides=keyed(RNN_CLASSES, _rnn_macs),
    defects=(Defect("rnn_unsupported", "aten::lstm / aten::gru / aten::rnn_tanh have no handle: recurrent layers "
                    "count 0 ('unsupported operator' warning)", _rnn_unsupported),
             Defect("sdpa_unsupported", "aten::scaled_dot_product_attention has no handle: the attention "
                    "matmuls (also those of nn.MultiheadAttention with need_weights=False) are skipped with an "
                    "'unsupported operator' warning", _sdpa),),
    notes=("fvcore's unit is the MAC although it prints 'flops' (jit_handles.py: 'one fused multiply-add "
           "counts as one flop').",
           "torch.baddbmm, adaptive_avg_pool1d/3d and upsampling other than nearest/bilinear 2-D are "
           "unsupported (0).",
           "by_module() is cumulative; nbcount shows each module's own share.",
           "fvcore traces in the caller's grad mode: under torch.no_grad() an eval batch_first self-attention "
           "nn.MultiheadAttention takes the fused aten::_native_multi_head_attention, which fvcore does not "
           "support (0); with grad enabled (its usual use) it is counted, as nbcount does."),
    rules={"conv": MAC, "conv_transpose": MAC + "; MACs per input pixel", "linear": MAC,
           "matmul": "1 per MAC (baddbmm unsupported: 0)",
           "batchnorm": "2 per element (1 without affine); training 5 (4)",
           "layernorm": "5 per element (4 without affine)", "groupnorm": "5 per element (4 without affine)",
           "instancenorm": "5 per element (4 without affine)",
           "adaptive_avgpool": "1 per input element (2-D only)",
           "upsample": "nearest 1, bilinear 4 per output element (2-D only)",
           "mha": "1 per MAC of the projections and both attention matmuls (need_weights=False: attention via "
           "SDPA, 0, a defect)",
           "sdpa": "unsupported: 0 (a defect; nbcount counts 1 per MAC)",
           "rnn": "unsupported: 0 (a defect; nbcount counts 1 per MAC of its matmuls)",
           "*": "unsupported or ignored: 0 (activations, max/avg pool, softmax, elementwise)"},
))
