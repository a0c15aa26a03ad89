"""`fvcore`: fvcore.nn.FlopCountAnalysis — one "flop" per MAC, plus a few norms and resampling ops.

Mirrors fvcore/nn/flop_count.py ``_DEFAULT_SUPPORTED_OPS`` and the handles of fvcore/nn/jit_handles.py
(addmm_flop_jit, linear_flop_jit, matmul_flop_jit, bmm_flop_jit, conv_flop_jit, einsum_flop_jit,
batchnorm_flop_jit, norm_flop_counter, elementwise_flop_counter). fvcore traces JIT ops; nbcount maps the
dispatcher ops they lower to back onto those handles. Activations, pooling other than adaptive_avg_pool2d,
softmax and elementwise ops are "unsupported" (0, with a warning).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbcount.conventions import Convention, Defect, register
from nbcount.peers._common import (
    BATCH_NORM_OPS,
    MAC,
    MHA_OP,
    RNN_CLASSES,
    SDPA_OPS,
    OpCount,
    bn_training,
    conv_macs,
    in_numel,
    is_pool_mean,
    keyed,
    matmul_macs,
    mha_macs,
    mha_need_weights,
    mha_parts,
    out_numel,
    sdpa_macs,
)
from nbcount.types import OpEvent

if TYPE_CHECKING:
    from nbcount.report import Row


def _batch_norm(op: OpEvent) -> int:
    """batchnorm_flop_jit: training 5·n (4·n without affine); eval 2·n (1·n without affine)."""
    affine = op.arg(1, "weight") is not None
    if bn_training(op):
        return op.args[0].numel * (5 if affine else 4)
    return op.args[0].numel * (2 if affine else 1)


def _norm(weight_index: int) -> OpCount:
    def count(op: OpEvent) -> int:
        """norm_flop_counter: 5·n with an affine weight, 4·n without."""
        return op.args[0].numel * (5 if op.arg(weight_index, "weight") is not None else 4)
    return count


def _adaptive_mean(op: OpEvent) -> int:
    """aten::adaptive_avg_pool2d to 1×1 dispatches as a mean over (-1, -2): input elements."""
    return op.args[0].numel if is_pool_mean(op) and len(op.args[0].shape) == 4 else 0


_RNN = set(keyed(RNN_CLASSES, lambda row: 0))

OP_COUNTS = {
    **dict.fromkeys(("aten.mm", "aten.addmm", "aten.bmm", "aten.mv", "aten.dot"), matmul_macs),
    **dict.fromkeys(("aten.convolution", "aten._convolution"), conv_macs),
    **dict.fromkeys(BATCH_NORM_OPS, _batch_norm),
    "aten.native_layer_norm": _norm(2),
    "aten.native_group_norm": _norm(1),
    "aten.upsample_nearest2d": out_numel,
    "aten.upsample_bilinear2d": lambda op: 4 * out_numel(op),
    "aten.grid_sampler_2d": lambda op: 4 * out_numel(op),
    "aten._adaptive_avg_pool2d": in_numel,
    "aten.mean": _adaptive_mean,
    "aten._native_multi_head_attention": mha_macs,
    **dict.fromkeys(SDPA_OPS, sdpa_macs),
}


def _rnn_unsupported(row: Row) -> int:
    """aten::lstm / gru / rnn_tanh have no handle: the recurrent matmuls are skipped."""
    return -row.macs if row.call.classes[0] in _RNN else 0


def _sdpa(row: Row) -> int:
    """SDPA, also inside MultiheadAttention called with need_weights=False, is unsupported."""
    return -sum(sdpa_macs(op) for op in row.call.ops if op.op in SDPA_OPS) - sum(
        mha_parts(op)["attention_macs"] for op in row.call.ops if op.op == MHA_OP and not mha_need_weights(op))


FVCORE = register(Convention(
    name="fvcore",
    description="fvcore FlopCountAnalysis: 1 per MAC of conv / linear / matmul (it calls a MAC a flop), "
                "norms, upsampling and adaptive average pooling; activations and elementwise ops are skipped.",
    source="fvcore/nn/flop_count.py: _DEFAULT_SUPPORTED_OPS; fvcore/nn/jit_handles.py",
    unit="MACs",
    op_counts=OP_COUNTS,
    module_overrides=keyed(RNN_CLASSES, lambda row: row.macs),
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
