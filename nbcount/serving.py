"""Serving costs from the counted forward pass: attention layers found in the trace, and their KV-cache.

An attention site is a fused ``scaled_dot_product_attention`` op, or the math path's softmax between a
q·kᵀ product and a p·v product. What a decoder caches per token is the key (and value) before it is
broadcast to the query heads (GQA / MQA) and after rotary embedding: the smallest tensor on the path from
the attention's key back to the projection that made it (a matmul). Its width per token is H_kv·d.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import torch

from nbcount.derive import Derivation, given, step
from nbcount.training import tensor_metas
from nbcount.types import OpEvent, TensorMeta

if TYPE_CHECKING:
    from nbcount.report import Report

_SDPA = ("aten._scaled_dot_product_flash_attention_for_cpu", "aten._scaled_dot_product_flash_attention",
         "aten._scaled_dot_product_efficient_attention", "aten._scaled_dot_product_cudnn_attention",
         "aten._scaled_dot_product_fused_attention_overrideable", "aten.scaled_dot_product_attention")
_SOFTMAX = ("aten._softmax", "aten._safe_softmax", "aten.softmax")
_PRODUCTS = ("aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm", "aten.linear", "aten.convolution", "aten.matmul")
_PASS = ("aten.view", "aten._unsafe_view", "aten.reshape", "aten.transpose", "aten.permute", "aten.expand",
         "aten.clone", "aten.contiguous", "aten._to_copy", "aten.mul", "aten.div", "aten.add", "aten.where",
         "aten.masked_fill", "aten.native_dropout", "aten.dropout", "aten.squeeze", "aten.unsqueeze", "aten.t")


@dataclass(frozen=True)
class AttentionSite:
    """One attention computation: its layer, shapes, and the key / value widths a cache stores per token."""

    layer: str
    heads: int
    head_dim: int
    kv_len: int
    k_width: int  # elements per token of the cached key (H_kv·d)
    v_width: int  # elements per token of the cached value
    itemsize: int

    @property
    def kv_heads(self) -> int:
        """Key / value heads (fewer than `heads` under GQA / MQA)."""
        return self.k_width // self.head_dim


class _Graph:
    """Producers and consumers of every tensor of the forward pass."""

    def __init__(self, report: Report):
        self.producer: dict[int, OpEvent] = {}
        self.consumers: dict[int, list[OpEvent]] = {}
        self.sites: list[tuple[str, OpEvent]] = []
        for row in report.rows:
            for op in row.call.ops:
                for t in op.outputs:
                    self.producer.setdefault(t.tid, op)
                for t in tensor_metas(op.args):
                    self.consumers.setdefault(t.tid, []).append(op)
                if op.op in _SDPA or op.op in _SOFTMAX or op.op == "aten._native_multi_head_attention":
                    self.sites.append((row.layer, op))

    def width(self, t: TensorMeta, count: int, limit: int = 64) -> int:
        """Elements per token of the smallest tensor from `t` back to the product that made it.

        Through a ``cat`` (a KV-cache appending this step's keys to the cached ones, or to transformers'
        empty placeholder) the walk follows the largest part, whose tokens are its share of the cat's."""
        tokens, current = Fraction(count), t
        best = t.numel / tokens
        for _ in range(limit):
            op = self.producer.get(current.tid)
            if op is None or op.op in _PRODUCTS:
                break
            args = [a for a in tensor_metas(op.args) if a.numel]
            if not args:
                break
            if op.op == "aten.cat" and len(current.shape) > 0:
                part = max(args, key=lambda a: a.numel)
                dim = _cat_dim(op, len(current.shape))
                if len(part.shape) == len(current.shape) and current.shape[dim]:
                    tokens = tokens * Fraction(part.shape[dim], current.shape[dim])
                current = part
            else:
                current = args[0]
            best = min(best, Fraction(current.numel) / tokens)
        return int(best)

    def follow(self, t: TensorMeta, forward: bool, limit: int = 16) -> OpEvent | None:
        """The first bmm reached from `t` through shape / scale / mask ops (downstream or upstream), every branch
        tried (a dtype cast whose result goes unused sits beside the real path in a bf16 math-path attention)."""
        frontier = [t]
        for _ in range(limit):
            following = []
            for current in frontier:
                ops = self.consumers.get(current.tid, []) if forward else [self.producer.get(current.tid)]
                for op in ops:
                    if op is None:
                        continue
                    if op.op in ("aten.bmm", "aten.baddbmm"):
                        return op
                    if op.op in _PASS and op.outputs:
                        following.append(op.outputs[0] if forward else tensor_metas(op.args)[0])
            if not following:
                return None
            frontier = following
        return None


def _cat_dim(op: OpEvent, ndim: int) -> int:
    dim = op.arg(1, "dim", 0)
    return int(dim) % ndim if isinstance(dim, int) else 0


def _sdpa_site(graph: _Graph, layer: str, op: OpEvent) -> AttentionSite:
    q, k, v = op.args[0], op.args[1], op.args[2]
    heads, head_dim = q.shape[-3], q.shape[-1]
    tokens = k.numel // (k.shape[-3] * k.shape[-1]) if len(k.shape) >= 3 else k.shape[0]
    return AttentionSite(layer, heads, head_dim, k.shape[-2], graph.width(k, tokens), graph.width(v, tokens),
                         k.itemsize)


def _math_site(graph: _Graph, layer: str, op: OpEvent, batch: int) -> AttentionSite | None:
    scores = graph.follow(op.args[0], forward=False)
    values = graph.follow(op.outputs[0], forward=True) if op.outputs else None
    if scores is None or values is None:
        return None
    q, k = scores.args[-2], scores.args[-1]
    v = values.args[-1]
    s = op.args[0]
    b, heads = (s.shape[0], s.shape[1]) if len(s.shape) == 4 else (batch, s.shape[0] // max(batch, 1))
    kv_len, head_dim = s.shape[-1], q.shape[-1]
    tokens = b * kv_len
    return AttentionSite(layer, heads, head_dim, kv_len, graph.width(k, tokens), graph.width(v, tokens),
                         k.itemsize)


def _mha_site(layer: str, op: OpEvent) -> AttentionSite:
    key, embed, heads = op.args[1], int(op.args[3]), int(op.args[4])
    kv_len = key.shape[1] if len(key.shape) == 3 else key.shape[0]
    return AttentionSite(layer, heads, embed // heads, kv_len, embed, embed, key.itemsize)


def attention_sites(report: Report) -> list[AttentionSite]:
    """Every attention computation of the counted forward pass, in call order."""
    graph = _Graph(report)
    inputs = report.trace.input_tensors
    batch = inputs[0].shape[0] if inputs and inputs[0].shape else 1
    sites = []
    for layer, op in graph.sites:
        if op.op in _SDPA:
            sites.append(_sdpa_site(graph, layer, op))
        elif op.op == "aten._native_multi_head_attention":
            sites.append(_mha_site(layer, op))
        elif (site := _math_site(graph, layer, op, batch)) is not None:
            sites.append(site)
    return sites


class DerivedBytes(int):
    """A byte count that carries its derivation (``.derivation``) and displays it."""

    derivation: Derivation

    def __new__(cls, derivation: Derivation) -> DerivedBytes:
        value = super().__new__(cls, int(derivation.value))
        value.derivation = derivation
        return value

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.derivation._repr_mimebundle_(include, exclude)


def _itemsize(dtype: Any, default: int) -> tuple[int, str]:
    if dtype is None:
        return default, "the counted keys' dtype"
    if isinstance(dtype, int):
        return dtype, f"{dtype} bytes"
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    return torch.empty((), dtype=dtype, device="meta").element_size(), str(dtype).removeprefix("torch.")


def layer_dtype(report: Report, layer: str) -> str | None:
    """The dtype of the first floating-point input of `layer`'s first call: what its K and V are stored in (a
    math-path attention may upcast K and V to fp32 for its products, as meta's SDPA does for bf16; a cache
    does not)."""
    for row in report.rows:
        if row.layer == layer:
            return next((t.dtype for t in row.call.in_tensors if t.is_floating), None)
    return None


def kv_cache_bytes(report: Report, seq_len: int, batch: int = 1, dtype: Any = None, *, n_layers: int | None = None,
                   n_kv_heads: int | None = None, head_dim: int | None = None) -> DerivedBytes:
    """K and V of every attention layer for `seq_len` tokens: 2·L·H_kv·d·T·B·bytes, found from the trace."""
    sites = attention_sites(report)
    if not sites and None in (n_layers, n_kv_heads, head_dim):
        raise ValueError("no attention found in the counted forward pass (scaled_dot_product_attention, or "
                         "softmax between two batched products): give n_layers=, n_kv_heads= and head_dim=")
    first = sites[0] if sites else None
    widths = {(s.k_width, s.v_width, s.head_dim) for s in sites}
    found = layer_dtype(report, first.layer) if dtype is None and first is not None else None
    b, dtype_name = _itemsize(dtype if found is None else found, first.itemsize if first else 2)
    dtype_name += ", the attention layer's input" if found is not None else ""
    layers = n_layers if n_layers is not None else len(sites)
    d = head_dim if head_dim is not None else (first.head_dim if first else 0)
    kv = n_kv_heads if n_kv_heads is not None else (first.kv_heads if first else 0)
    steps = [given("attention layers L", layers, note=_where(sites) if n_layers is None else "given"),
             given("query heads H", first.heads if first else kv)]
    uniform = len(widths) == 1 and first is not None and first.k_width == first.v_width == first.kv_heads * d
    if n_kv_heads is None and head_dim is None and not uniform:
        per_token = sum(s.k_width + s.v_width for s in sites) * (layers // max(len(sites), 1))
        steps += [given("K + V elements per token, all layers W", per_token, note="layers differ"),
                  given("tokens T", seq_len), given("batch B", batch), given("bytes per element b", b, note=dtype_name),
                  step("KV-cache bytes", "W*T*B*b", W=per_token, T=seq_len, B=batch, b=b)]
    else:
        gqa = f"{first.heads}/{kv} = {first.heads // kv} query heads share one K/V head" if first and kv and \
            first.heads != kv else "one K/V head per query head"
        steps += [given("KV heads H_kv", kv, note=gqa if n_kv_heads is None else "given"),
                  given("head dim d", d), given("tokens T", seq_len), given("batch B", batch),
                  given("bytes per element b", b, note=dtype_name),
                  step("KV-cache bytes", "2*L*H_kv*d*T*B*b", L=layers, H_kv=kv, d=d, T=seq_len, B=batch, b=b,
                       note="K and V, per layer, head, channel and token")]
    return DerivedBytes(Derivation(f"KV-cache at {seq_len:,} tokens", tuple(steps), "bytes"))


def _where(sites: list[AttentionSite]) -> str:
    names = [s.layer or "(root)" for s in sites]
    shown = ", ".join(names[:2]) + (f", … {names[-1]}" if len(names) > 2 else "")
    return f"found in the trace: {shown}"
