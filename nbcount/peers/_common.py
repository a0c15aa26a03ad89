"""Shared pieces of the peer conventions: layer kinds, tensor shapes of a row, MAC formulas of aten ops."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nbcount.rules import attention, elementwise, in_mro, norm, pool, qualname, resample
from nbcount.rules.classify import facet
from nbcount.rules.table import names
from nbcount.types import OpEvent, TensorMeta

if TYPE_CHECKING:
    from nbcount.report import Row

aten = torch.ops.aten
RowCount = Callable[["Row"], int]
OpCount = Callable[[OpEvent], int]

KIND_TITLES = {
    "conv": "Conv1d/2d/3d", "conv_transpose": "ConvTranspose", "linear": "Linear",
    "matmul": "matmul / bmm (functional)",
    "batchnorm": "BatchNorm (eval)", "layernorm": "LayerNorm", "groupnorm": "GroupNorm", "instancenorm": "InstanceNorm",
    "relu": "ReLU", "relu6": "ReLU6", "leaky_relu": "LeakyReLU", "activation": "GELU / SiLU / ELU / PReLU",
    "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax", "maxpool": "MaxPool", "avgpool": "AvgPool",
    "adaptive_avgpool": "AdaptiveAvgPool (module or F.)", "adaptive_maxpool": "AdaptiveMaxPool", "upsample": "Upsample",
    "dropout": "Dropout (eval)", "mha": "MultiheadAttention", "sdpa": "scaled_dot_product_attention",
    "add_mul": "add / mul (functional)", "embedding": "Embedding", "rnn": "RNN / GRU / LSTM",
}
KINDS = tuple(KIND_TITLES)

_POOL_MEAN_DIMS = ((-1, -2), (-2, -1), (-1, -2, -3), (-3, -2, -1))


def row_kinds(row: Row) -> tuple[str, ...]:
    """The layer kinds of a row: its module's kind, else the kinds of the ops it ran itself."""
    found = in_mro(row.call.classes, "kind")
    if found is not None:
        return (found[1],)
    kinds = [("adaptive_avgpool" if is_pool_mean(op) else facet(op.op, "kind")) for op in row.call.ops]
    return tuple(dict.fromkeys(k for k in kinds if k))


def keyed(classes: Iterable[type], fn: RowCount) -> dict[str, RowCount]:
    """A module-override table: each class's qualname mapped to the same formula."""
    return {qualname(cls): fn for cls in classes}


def x(row: Row) -> TensorMeta:
    """The call's first input tensor."""
    return row.call.in_tensors[0]


def y(row: Row) -> TensorMeta:
    """The call's first output tensor."""
    return row.call.out_tensors[0]


def attr(row: Row, name: str, default: Any = None) -> Any:
    """A hyper-parameter of the row's module."""
    return row.call.attr(name, default)


def module_params(row: Row) -> list[tuple[str, int]]:
    """(attribute name, numel) of the module's own parameters at this call, first use or shared."""
    return [(p.name.rsplit(".", 1)[-1], p.numel) for p in (*row.call.params_new, *row.call.params_shared)]


def is_leaf(row: Row) -> bool:
    """Whether the row's module has no children."""
    return row.call.is_leaf


def spatial(shape: Sequence[int]) -> int:
    """Product of the dimensions after (N, C)."""
    return math.prod(shape[2:])


def kernel_elems(kernel: int | Sequence[int], ndim: int) -> int:
    """∏K of a kernel_size attribute (an int stands for the same size on every spatial axis)."""
    return kernel ** ndim if isinstance(kernel, int) else math.prod(kernel)


def ndim_spatial(row: Row) -> int:
    """Number of spatial axes of the input (at least 1)."""
    return max(len(x(row).shape) - 2, 1)


# aten ops ------------------------------------------------------------------------------------------------
def conv_macs(op: OpEvent) -> int:
    """MACs of aten.convolution: N·∏(out or, transposed, in spatial)·∏(weight)."""
    inp, w, out = op.args[0], op.args[1], op.outputs[0]
    transposed = bool(op.args[6]) if len(op.args) > 6 else False
    return inp.shape[0] * spatial(inp.shape if transposed else out.shape) * math.prod(w.shape)


def conv_has_bias(op: OpEvent) -> bool:
    """Whether aten.convolution got a bias tensor."""
    return op.args[2] is not None


def conv_transposed(op: OpEvent) -> bool:
    """Whether aten.convolution is a transposed convolution."""
    return bool(op.args[6]) if len(op.args) > 6 else False


def matmul_macs(op: OpEvent) -> int:
    """MACs of mm / addmm / bmm / baddbmm / mv / dot (the added matrix of addmm excluded)."""
    a, b = (op.args[1], op.args[2]) if op.op in ("aten.addmm", "aten.baddbmm", "aten.addmv") else op.args[:2]
    if len(b.shape) == 1:
        return math.prod(a.shape)
    return math.prod(a.shape) * b.shape[-1]


def added_numel(op: OpEvent) -> int:
    """Elements of the matrix that addmm / baddbmm adds (the bias)."""
    return op.args[0].numel


def sdpa_macs(op: OpEvent) -> int:
    """MACs of attention: B·H·L·S·E (q·kᵀ) + B·H·L·S·E_v (p·v)."""
    q, k, v = op.args[0], op.args[1], op.args[2]
    scores = math.prod(q.shape[:-1]) * k.shape[-2]
    return scores * q.shape[-1] + scores * v.shape[-1]


def sdpa_scores(op: OpEvent) -> int:
    """B·H·L·S: attention scores of one SDPA op."""
    q, k = op.args[0], op.args[1]
    return math.prod(q.shape[:-1]) * k.shape[-2]


def mha_parts(op: OpEvent) -> dict[str, int]:
    """aten._native_multi_head_attention split into projection MACs, attention MACs, scores, bias adds."""
    query, key = op.args[0], op.args[1]
    embed, heads = int(op.args[3]), int(op.args[4])
    b, lq = (query.shape[0], query.shape[1]) if len(query.shape) == 3 else (1, query.shape[0])
    s = key.shape[1] if len(key.shape) == 3 else key.shape[0]
    bias = (b * lq * embed + 2 * b * s * embed if op.args[6] is not None else 0) + (
        b * lq * embed if op.args[8] is not None else 0)
    return {"projection_macs": 2 * b * lq * embed * embed + 2 * b * s * embed * embed,
            "attention_macs": 2 * b * lq * s * embed, "scores": b * heads * lq * s, "bias": bias}


def mha_macs(op: OpEvent) -> int:
    """All MACs of MultiheadAttention's fused op: projections + q·kᵀ + p·v."""
    parts = mha_parts(op)
    return parts["projection_macs"] + parts["attention_macs"]


def is_pool_mean(op: OpEvent) -> bool:
    """aten.mean over the last 2 (or 3) axes with keepdim: what adaptive_avg_pool to size 1 dispatches to."""
    if op.op != "aten.mean" or len(op.args) < 3:
        return False
    dims = tuple(op.args[1]) if isinstance(op.args[1], (tuple, list)) else ()
    return dims in _POOL_MEAN_DIMS and bool(op.args[2])


def bn_training(op: OpEvent) -> bool:
    """Whether a batch-norm op normalised with batch statistics."""
    if op.op == "aten._native_batch_norm_legit_no_training":
        return False
    if op.op == "aten._native_batch_norm_legit":
        return bool(op.args[5]) if len(op.args) > 5 and op.args[3] is not None else True
    return bool(op.arg(5, "training", True))


BATCH_NORM_OPS = names(*norm.BATCH_NORM)
ELEMENTWISE_ADD_MUL = names(*elementwise.ADD_MUL, aten.add_, aten.mul_)
UPSAMPLE_OPS = names(aten.upsample_nearest1d, aten.upsample_nearest2d, aten.upsample_nearest3d, *resample.LINEAR,
                     aten.upsample_bilinear2d, *resample.TRILINEAR, aten.upsample_bicubic2d)
MAX_POOL_OPS = names(*pool.MAX_POOL)
AVG_POOL_OPS = names(*pool.AVG_POOL)
ADAPTIVE_OPS = names(aten._adaptive_avg_pool2d, aten._adaptive_avg_pool3d, aten.adaptive_avg_pool1d, *pool.ADAPTIVE_MAX)
SDPA_OPS = names(*attention.SDPA)


def in_numel(op: OpEvent) -> int:
    """Elements of the op's first argument."""
    return op.args[0].numel


def out_numel(op: OpEvent) -> int:
    """Elements of the op's first output."""
    return op.outputs[0].numel


def pool_in_numel(op: OpEvent) -> int:
    """Input elements of a pooling op, including aten.mean standing for adaptive_avg_pool to 1."""
    return op.args[0].numel if op.op != "aten.mean" or is_pool_mean(op) else 0


def broadcast_numel(op: OpEvent) -> int:
    """Elements of the broadcast result of a binary op (a scalar operand broadcasts to the tensor)."""
    return op.outputs[0].numel if op.outputs else op.args[0].numel


# Shared wording of the rules tables, so that conventions that count alike are grouped in compare().
MAC = "1 per MAC, bias not counted"
MAC_BIAS = "1 per MAC + 1 per output for the bias"
FLOP2 = "2 per MAC, bias not counted"
FLOP2_BIAS = "2 per MAC + 1 per output for the bias"


_RNN_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_RNN_EXTRA = {"RNN": 1, "GRU": 7, "LSTM": 10}  # pointwise ops per hidden unit the hooks add per step
RNN_CLASSES = (nn.RNN, nn.GRU, nn.LSTM, nn.RNNCell, nn.GRUCell, nn.LSTMCell)


def rnn_hook_flops(row: Row, two_per_weight: bool) -> int:
    """ptflops rnn_flops (one per weight) / calflops and DeepSpeed _rnn_flops (2·weights − G per matrix), per layer
    + gate pointwise ops + both biases, × x[0]·x[1] (× 2 if bidirectional); cells × batch."""
    name = row.call.module_type
    kind = name.removesuffix("Cell")
    cell = name.endswith("Cell")
    h, gates = attr(row, "hidden_size"), _RNN_GATES[kind] * attr(row, "hidden_size")
    dirs = 2 if attr(row, "bidirectional", False) else 1
    total = 0
    for layer in range(1 if cell else attr(row, "num_layers", 1)):
        i = attr(row, "input_size") if layer == 0 else h * dirs
        w_ih, w_hh = gates * i, gates * h
        total += (2 * w_ih - gates + 2 * w_hh - gates) if two_per_weight else (w_ih + w_hh)
        total += _RNN_EXTRA[kind] * h + (2 * gates if attr(row, "bias", True) else 0)
    if cell:
        return total * x(row).shape[0]
    return total * x(row).shape[0] * x(row).shape[1] * dirs


MHA_OP = "aten._native_multi_head_attention"
MHA_CLASS = qualname(nn.MultiheadAttention)


def mha_need_weights(op: OpEvent) -> bool:
    """Whether the fused MHA op returned attention weights: the slow path then runs torch.bmm + softmax, else SDPA."""
    return bool(op.arg(10, "need_weights", True))
