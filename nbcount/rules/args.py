"""Typed readers of aten arguments, shared by the cost rules, the receptive-field rules and the peer formulas.

Each reader takes an OpEvent of its op family and returns a frozen record with the named dimensions the
formulas use, so that no module re-parses positional arguments on its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nbcount.types import OpEvent, TensorMeta

AXES = ("D", "H", "W")


def used(formula: str, symbols: dict[str, Any]) -> dict[str, Any]:
    """The symbols a formula names, in the order it names them."""
    names = dict.fromkeys(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", formula))
    return {name: symbols[name] for name in names if name in symbols}


def axis_names(n: int) -> tuple[str, ...]:
    """The names of n spatial axes: (W,), (H, W), (D, H, W), else S0, S1, …"""
    return AXES[-n:] if 0 < n <= 3 else tuple(f"S{i}" for i in range(n))


def per_axis(value: Any, n: int, default: int = 0) -> tuple[int, ...]:
    """An int-or-list hyper-parameter as one int per axis (a 1-list or an int is repeated)."""
    if value is None or (isinstance(value, (tuple, list)) and not value):
        return (default,) * n
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in (list(value) * n if len(value) == 1 else value))
    return (int(value),) * n


@dataclass(frozen=True)
class Matmul:
    """A matrix product (B batches of (M×K)·(K×N)) and the tensor addmm / baddbmm / addmv add to it."""

    batch: int
    m: int
    k: int
    n: int
    added: TensorMeta | None

    @property
    def macs(self) -> int:
        """B·M·K·N."""
        return self.batch * self.m * self.k * self.n

    @property
    def symbols(self) -> dict[str, int]:
        """B, M, K, N."""
        return {"B": self.batch, "M": self.m, "K": self.k, "N": self.n}

    @property
    def formula(self) -> str:
        """``B*M*K*N`` (``M*K*N`` without a batch)."""
        return "B*M*K*N" if self.batch > 1 else "M*K*N"


_ADDED = ("aten.addmm", "aten.baddbmm", "aten.addmv")


def matmul(op: OpEvent) -> Matmul:
    """mm, addmm, bmm, baddbmm, mv, addmv, dot, vdot."""
    added = op.args[0] if op.op in _ADDED else None
    a, b = (op.args[1], op.args[2]) if added is not None else (op.args[0], op.args[1])
    if len(a.shape) == 1:  # dot / vdot
        return Matmul(1, 1, a.shape[0], 1, None)
    if len(b.shape) == 1:  # mv / addmv
        return Matmul(1, a.shape[0], a.shape[1], 1, added)
    if len(a.shape) == 3:
        return Matmul(a.shape[0], a.shape[1], a.shape[2], b.shape[-1], added)
    return Matmul(1, a.shape[0], a.shape[1], b.shape[-1], added)


@dataclass(frozen=True)
class GroupedMatmul:
    """torch._grouped_mm: rows (or K, or columns) of one operand split into groups by `offs`, one matrix each."""

    layout: str  # "2d-3d", "3d-2d", "2d-2d" or "3d-3d" (mat_a, mat_b dims)
    groups: int
    m: int  # rows of the result (per group for 3d-3d)
    k: int  # the contracted dimension (its total over the groups for 2d-2d)
    n: int  # columns of the result (their total over the groups for 3d-2d)

    @property
    def macs(self) -> int:
        """M·K·N (G·M·K·N for a batch of groups): every row meets exactly one group's matrix."""
        return (self.groups if self.layout == "3d-3d" else 1) * self.m * self.k * self.n


def grouped_matmul(op: OpEvent) -> GroupedMatmul:
    """aten._grouped_mm(mat_a, mat_b, offs, bias, out_dtype)."""
    a, b = op.args[0], op.args[1]
    layout = f"{len(a.shape)}d-{len(b.shape)}d"
    if layout == "2d-3d":
        return GroupedMatmul(layout, b.shape[0], a.shape[0], a.shape[1], b.shape[2])
    if layout == "3d-2d":
        return GroupedMatmul(layout, a.shape[0], a.shape[1], a.shape[2], b.shape[1])
    if layout == "2d-2d":
        return GroupedMatmul(layout, op.outputs[0].shape[0], a.shape[0], a.shape[1], b.shape[1])
    return GroupedMatmul(layout, a.shape[0], a.shape[1], a.shape[2], b.shape[2])


@dataclass(frozen=True)
class Conv:
    """aten.convolution / _convolution / convolution_overrideable: input, weight, bias and the window."""

    x: TensorMeta
    weight: TensorMeta
    out: TensorMeta
    bias: bool
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    transposed: bool
    groups: int

    @property
    def axes(self) -> tuple[str, ...]:
        """Names of the spatial axes."""
        return axis_names(len(self.weight.shape) - 2)

    @property
    def kernel(self) -> tuple[int, ...]:
        """Kernel size per spatial axis."""
        return self.weight.shape[2:]

    @property
    def macs(self) -> int:
        """N·∏out·C_out·(C_in/g)·∏K; transposed: each input pixel scattered once, N·∏in·C_in·(C_out/g)·∏K."""
        positions = math.prod(self.x.shape[2:] if self.transposed else self.out.shape[2:])
        return self.x.shape[0] * positions * math.prod(self.weight.shape)

    @property
    def symbols(self) -> dict[str, int]:
        """Every named dimension: N, C_in, C_out, g, K_h …, H_in …, H_out …"""
        names = [a.lower() for a in self.axes]
        return {"N": self.x.shape[0], "C_in": self.x.shape[1], "C_out": self.out.shape[1], "g": self.groups,
                **{f"K_{a}": k for a, k in zip(names, self.kernel)},
                **{f"{a}_in": s for a, s in zip(self.axes, self.x.shape[2:])},
                **{f"{a}_out": s for a, s in zip(self.axes, self.out.shape[2:])}}

    @property
    def mac_formula(self) -> str:
        """``N*C_out*H_out*W_out*(C_in/g*K_h*K_w)``; transposed ``N*C_in*H_in*W_in*(C_out/g*K_h*K_w)``."""
        kernel = "*".join(f"K_{a.lower()}" for a in self.axes) or "1"
        if self.transposed:
            return f"N*C_in*{self.spatial('in')}*(C_out/g*{kernel})"
        return f"N*C_out*{self.spatial('out')}*(C_in/g*{kernel})"

    @property
    def outputs_formula(self) -> str:
        """``N*C_out*H_out*W_out``: the output elements (one bias add each)."""
        return f"N*C_out*{self.spatial('out')}"

    def spatial(self, side: str) -> str:
        """``H_out*W_out`` (or ``1`` without spatial axes)."""
        return "*".join(f"{a}_{side}" for a in self.axes) or "1"


def conv(op: OpEvent) -> Conv:
    """The convolution's arguments (stride, padding, dilation per axis)."""
    n = len(op.args[1].shape) - 2
    return Conv(op.args[0], op.args[1], op.outputs[0], op.args[2] is not None, per_axis(op.args[3], n, 1),
                per_axis(op.args[4], n), per_axis(op.args[5], n, 1), bool(op.args[6]), int(op.args[8]))


@dataclass(frozen=True)
class Window:
    """A pooling op's window per spatial axis."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]


def spatial_dims(op: OpEvent) -> int:
    """Spatial axes of a pooling op: 1, 2 or 3 from its name (inputs may be unbatched)."""
    return int(op.op.split("pool")[1][0])


def pool_window(op: OpEvent) -> Window:
    """max_pool*, avg_pool*: kernel, stride (default: the kernel), padding, dilation (avg: 1)."""
    nd = spatial_dims(op)
    kernel = per_axis(op.arg(1, "kernel_size"), nd)
    stride = op.arg(2, "stride")
    dilation = op.arg(4, "dilation") if "max_pool" in op.op else 1
    return Window(kernel, per_axis(stride, nd) if stride else kernel, per_axis(op.arg(3, "padding"), nd),
                  per_axis(dilation, nd, 1))


@dataclass(frozen=True)
class Attention:
    """scaled_dot_product_attention: q (B, H, L, E), k (B, H_kv, S, E), v (B, H_kv, S, E_v), and its mask."""

    batch: int
    heads: int
    length: int  # L, query positions
    source: int  # S, key positions
    e: int
    e_v: int
    mask: bool

    @property
    def scores(self) -> int:
        """B·H·L·S."""
        return self.batch * self.heads * self.length * self.source

    @property
    def macs(self) -> int:
        """B·H·L·S·E (q·kᵀ) + B·H·L·S·E_v (p·v)."""
        return self.scores * (self.e + self.e_v)

    @property
    def symbols(self) -> dict[str, int]:
        """B, H, L, S, E, E_v."""
        return {"B": self.batch, "H": self.heads, "L": self.length, "S": self.source, "E": self.e, "E_v": self.e_v}


_MASKED = ("aten.scaled_dot_product_attention", "aten._scaled_dot_product_efficient_attention")


def attention(op: OpEvent, first: int = 0) -> Attention:
    """The SDPA family (forward, or backward with `first` = 1: ∂o comes first)."""
    q, k, v = op.args[first], op.args[first + 1], op.args[first + 2]
    *batch, h, lq, e = q.shape
    mask = op.arg(3, "attn_mask") if op.op in _MASKED else op.kwarg("attn_mask")
    return Attention(math.prod(batch), h, lq, k.shape[-2], e, v.shape[-1], isinstance(mask, TensorMeta))


@dataclass(frozen=True)
class MultiHead:
    """aten._native_multi_head_attention: nn.MultiheadAttention's fused path."""

    batch: int
    length: int  # L
    source: int  # S
    embed: int  # E
    heads: int
    qkv_bias: bool
    out_bias: bool
    need_weights: bool
    average: bool

    @property
    def projection_macs(self) -> int:
        """B·L·E·E (q) + 2·B·S·E·E (k, v) + B·L·E·E (out)."""
        return 2 * self.batch * self.length * self.embed ** 2 + 2 * self.batch * self.source * self.embed ** 2

    @property
    def attention_macs(self) -> int:
        """2·B·L·S·E (scores and values over all heads)."""
        return 2 * self.batch * self.length * self.source * self.embed

    @property
    def scores(self) -> int:
        """B·H·L·S."""
        return self.batch * self.heads * self.length * self.source

    @property
    def symbols(self) -> dict[str, int]:
        """B, L, S, E, H."""
        return {"B": self.batch, "L": self.length, "S": self.source, "E": self.embed, "H": self.heads}


def _batch_and_length(shape: Sequence[int]) -> tuple[int, int]:
    return (shape[0], shape[1]) if len(shape) == 3 else (1, shape[0])


def multi_head(op: OpEvent) -> MultiHead:
    """query, key, value, embed_dim, num_head, qkv_weight, qkv_bias, proj_weight, proj_bias, mask, need_weights, …"""
    b, lq = _batch_and_length(op.args[0].shape)
    return MultiHead(b, lq, _batch_and_length(op.args[1].shape)[1], int(op.args[3]), int(op.args[4]),
                     op.args[6] is not None, op.args[8] is not None, bool(op.arg(10, "need_weights", True)),
                     bool(op.arg(11, "average_attn_weights", True)))


_NO_TRAINING = ("aten._native_batch_norm_legit_no_training", "aten._batch_norm_no_update")
_LEGIT = ("aten._native_batch_norm_legit", "aten._native_batch_norm_legit_functional")


def batch_norm_training(op: OpEvent) -> bool:
    """Whether a batch-norm op normalised with batch statistics (training) rather than running ones."""
    if op.op in _NO_TRAINING:
        return False
    if op.op == "aten._batch_norm_with_update":
        return True
    if op.op in _LEGIT:
        running_mean = op.args[3] if len(op.args) > 3 else None
        return bool(op.args[5]) if running_mean is not None and len(op.args) > 5 else True
    return bool(op.arg(5, "training", True))


def numel(value: Any) -> int:
    """Elements of a tensor argument (0 for anything else)."""
    return value.numel if isinstance(value, TensorMeta) else 0
