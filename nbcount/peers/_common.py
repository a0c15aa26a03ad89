"""Shared pieces of the peer conventions: layer kinds, tensor shapes of a row, formulas of aten ops as steps."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nbcount.convention import Cost, last
from nbcount.derive import step, total
from nbcount.rules import args, attention, elementwise, in_mro, norm, pool, qualname, resample
from nbcount.rules.classify import facet
from nbcount.rules.table import names
from nbcount.types import OpEvent, TensorMeta

if TYPE_CHECKING:
    from nbcount.report import Row

aten = torch.ops.aten
RowCount = Callable[["Row"], Cost]
OpCount = Callable[[OpEvent], Cost]

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


def kernel_symbols(kernel: int | Sequence[int], ndim: int) -> dict[str, Any]:
    """K_h, K_w (K_d, …) of a kernel_size attribute (an int stands for the same size on every spatial axis)."""
    sizes = [kernel] * ndim if isinstance(kernel, int) else list(kernel)
    return {f"K_{a.lower()}": int(k) for a, k in zip(args.axis_names(len(sizes)), sizes)}


def product(symbols: dict[str, int]) -> str:
    """``K_h*K_w``: the product of named symbols (``1`` for none)."""
    return "*".join(symbols) or "1"


def ndim_spatial(row: Row) -> int:
    """Number of spatial axes of the input (at least 1)."""
    return max(len(x(row).shape) - 2, 1)


# formulas as steps -----------------------------------------------------------------------------------------
def formula(label: str, text: str, note: str = "", **symbols: Any) -> Cost:
    """The peer's formula `text` over named symbols, as one step (symbols it does not name are dropped)."""
    return (step(label, text, note=note, **args.used(text, symbols)),)


def nothing(label: str, why: str) -> Cost:
    """The peer counts 0 here, and why."""
    return (step(label, "0", note=why),)


def per_element(label: str, k: int, n: int, side: str = "in", note: str = "") -> Cost:
    """k operations per input (or output) element."""
    name = f"n_{side}"
    return formula(label, name if k == 1 else f"{k}*{name}", note, **{name: n})


def weighted(label: str, parts: Sequence[tuple[str, Cost]]) -> Cost:
    """Several counted pieces and their sum (a single piece stands alone)."""
    parts = [(name, cost) for name, cost in parts if cost]
    if len(parts) <= 1:
        return parts[0][1] if parts else ()
    steps = tuple(s for _, cost in parts for s in cost)
    return (*steps, total(label, [(name, last(cost)) for name, cost in parts]))


def minus(label: str, counted: Sequence[tuple[str, Cost]], why: str) -> Cost:
    """A defect that drops what the rule counts for some ops: those counts, then minus their sum."""
    counted = [(name, cost) for name, cost in counted if cost and last(cost)]
    if not counted:
        return nothing(label, why)
    steps = weighted(f"{label}: counted by the rule", counted)
    return (*steps, step(label, "-counted", note=why, counted=last(steps)))


def excess(label: str, written: Cost, rule: Cost, extra: str = "", **symbols: Any) -> Cost:
    """A defect that is the peer's formula as written minus the rule it means: both, then their difference."""
    text = f"{extra} + written - rule" if extra else "written - rule"
    return (*written, *rule, step(label, text, written=last(written), rule=last(rule), **symbols))


# aten ops ------------------------------------------------------------------------------------------------
def conv_count(op: OpEvent, label: str, per_mac: int = 1, bias: bool = False, note: str = "") -> Cost:
    """per_mac·MACs of aten.convolution (MACs per input pixel when transposed), + 1 per output for the bias."""
    c = args.conv(op)
    text = c.mac_formula if per_mac == 1 else f"{per_mac}*{c.mac_formula}"
    if bias and c.bias:
        text += f" + {c.outputs_formula}"
    return formula(label, text, note, **c.symbols)


def conv_has_bias(op: OpEvent) -> bool:
    """Whether aten.convolution got a bias tensor."""
    return op.args[2] is not None


def conv_transposed(op: OpEvent) -> bool:
    """Whether aten.convolution is a transposed convolution."""
    return bool(op.args[6]) if len(op.args) > 6 else False


def matmul_count(op: OpEvent, label: str, per_mac: int = 1, added: bool = False, note: str = "") -> Cost:
    """per_mac·MACs of mm / addmm / bmm / baddbmm / mv / dot, + the elements of the added matrix when `added`."""
    m = args.matmul(op)
    text = m.formula if per_mac == 1 else f"{per_mac}*{m.formula}"
    extra = {}
    if added and m.added is not None:
        text += " + n_added"
        extra = {"n_added": m.added.numel}
    return formula(label, text, note, **m.symbols, **extra)


def sdpa_count(op: OpEvent, label: str, per_mac: int = 1, note: str = "") -> Cost:
    """per_mac·(B·H·L·S·E + B·H·L·S·E_v): the two matmuls of attention."""
    a = args.attention(op)
    factor = "" if per_mac == 1 else f"{per_mac}*"
    return formula(label, f"{factor}B*H*L*S*(E + E_v)", note, **a.symbols)


def mha_count(op: OpEvent, label: str, per_mac: int = 1, scores: int = 0, attention: bool = True,
              note: str = "") -> Cost:
    """aten._native_multi_head_attention: per_mac·(projections + the attention matmuls) + scores·B·H·L·S."""
    a = args.multi_head(op)
    macs = "2*B*L*E*E + 2*B*S*E*E" + (" + 2*B*L*S*E" if attention else "")
    text = f"{per_mac}*({macs})" if per_mac != 1 else macs
    if scores:
        text += " + B*H*L*S" if scores == 1 else f" + {scores}*B*H*L*S"
    return formula(label, text, note, **a.symbols)


def is_pool_mean(op: OpEvent) -> bool:
    """aten.mean over the last 2 (or 3) axes with keepdim: what adaptive_avg_pool to size 1 dispatches to."""
    if op.op != "aten.mean" or len(op.args) < 3:
        return False
    dims = tuple(op.args[1]) if isinstance(op.args[1], (tuple, list)) else ()
    return dims in _POOL_MEAN_DIMS and bool(op.args[2])


def mha_need_weights(op: OpEvent) -> bool:
    """Whether the fused MHA op returned attention weights: the slow path then runs torch.bmm + softmax, else SDPA."""
    return bool(op.arg(10, "need_weights", True))


BATCH_NORM_OPS = names(*norm.BATCH_NORM)
ELEMENTWISE_ADD_MUL = names(*elementwise.ADD_MUL, aten.add_, aten.mul_)
UPSAMPLE_OPS = names(aten.upsample_nearest1d, aten.upsample_nearest2d, aten.upsample_nearest3d, *resample.LINEAR,
                     aten.upsample_bilinear2d, *resample.TRILINEAR, aten.upsample_bicubic2d)
MAX_POOL_OPS = names(*pool.MAX_POOL)
AVG_POOL_OPS = names(*pool.AVG_POOL)
ADAPTIVE_OPS = names(aten._adaptive_avg_pool2d, aten._adaptive_avg_pool3d, aten.adaptive_avg_pool1d, *pool.ADAPTIVE_MAX)
SDPA_OPS = names(*attention.SDPA)


def in_count(label: str, k: int = 1) -> OpCount:
    """k operations per element of the op's first argument."""
    def count(op: OpEvent) -> Cost:
        return per_element(label, k, op.args[0].numel)
    count.__doc__ = f"{k} per input element"
    return count


def out_count(label: str, k: int = 1) -> OpCount:
    """k operations per element of the op's first output."""
    def count(op: OpEvent) -> Cost:
        return per_element(label, k, op.outputs[0].numel, "out")
    count.__doc__ = f"{k} per output element"
    return count


# Shared wording of the rules tables, so that conventions that count alike are grouped in compare().
MAC = "1 per MAC, bias not counted"
MAC_BIAS = "1 per MAC + 1 per output for the bias"
FLOP2 = "2 per MAC, bias not counted"
FLOP2_BIAS = "2 per MAC + 1 per output for the bias"


_RNN_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_RNN_EXTRA = {"RNN": 1, "GRU": 7, "LSTM": 10}  # pointwise ops per hidden unit the hooks add per step
RNN_CLASSES = (nn.RNN, nn.GRU, nn.LSTM, nn.RNNCell, nn.GRUCell, nn.LSTMCell)


def rnn_hook_count(row: Row, label: str, two_per_weight: bool) -> Cost:
    """ptflops rnn_flops (one per weight) / calflops and DeepSpeed _rnn_flops (2·weights − G per matrix), per layer
    + gate pointwise ops + both biases, × x[0]·x[1] (× 2 if bidirectional); cells × batch."""
    name = row.call.module_type
    kind = name.removesuffix("Cell")
    cell = name.endswith("Cell")
    h, g = attr(row, "hidden_size"), _RNN_GATES[kind]
    weights = "(2*G*H*I - G*H + 2*G*H*H - G*H)" if two_per_weight else "(G*H*I + G*H*H)"
    bias = " + 2*G*H" if attr(row, "bias", True) else ""
    layers = []
    for layer in range(1 if cell else attr(row, "num_layers", 1)):
        i = attr(row, "input_size") if layer == 0 else h * (2 if attr(row, "bidirectional", False) else 1)
        layers.append((f"layer {layer}", formula(f"{label} per step, layer {layer}", f"{weights} + X*H{bias}",
                                                 "X: gate pointwise ops per hidden unit", G=g, H=h, I=i,
                                                 X=_RNN_EXTRA[kind])))
    per_step = weighted(f"{label} per step", layers)
    if cell:
        return (*per_step, step(label, "per_step*N", per_step=last(per_step), N=x(row).shape[0]))
    dirs = 2 if attr(row, "bidirectional", False) else 1
    return (*per_step, step(label, "per_step*x0*x1*D", per_step=last(per_step), x0=x(row).shape[0],
                            x1=x(row).shape[1], D=dirs, note="x0·x1: the input's first two sizes, D directions"))


MHA_OP = "aten._native_multi_head_attention"
MHA_CLASS = qualname(nn.MultiheadAttention)
