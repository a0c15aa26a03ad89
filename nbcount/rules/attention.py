"""Attention: scaled_dot_product_attention's kernels and MultiheadAttention's fused path, forward and backward.

All counts are dense: a causal mask does not halve them (the math path computes every score, and this
matches FlopCounterMode); GQA/MQA key/value heads are broadcast to the query heads.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nbcount.derive import Step, step
from nbcount.rules import args
from nbcount.rules.fields_layout import mix_all
from nbcount.rules.registry import Cost, expects, field_rule, kind, op_rule
from nbcount.types import OpEvent, Part, Term

aten = torch.ops.aten

SDPA = (aten._scaled_dot_product_flash_attention_for_cpu, aten._scaled_dot_product_flash_attention,
        aten._scaled_dot_product_efficient_attention, aten._scaled_dot_product_cudnn_attention,
        aten._scaled_dot_product_fused_attention_overrideable, aten.scaled_dot_product_attention)
SDPA_BACKWARD = (aten._scaled_dot_product_flash_attention_for_cpu_backward,
                 aten._scaled_dot_product_flash_attention_backward,
                 aten._scaled_dot_product_efficient_attention_backward,
                 aten._scaled_dot_product_cudnn_attention_backward,
                 aten._scaled_dot_product_fused_attention_overrideable_backward)
MHA = aten._native_multi_head_attention


# E_h: the width per head (E, the embedding width, is E_h·H); L: the queries' sequence length
_SDPA = {"B": "batch (every leading dimension)", "H": "heads", "S": "key/value length",
         "E_h": "query/key width per head", "E_v": "value width per head"}
_MHA = {"B": "batch", "H": "heads", "S": "key/value length"}


def _attention_core(b: int, h: int, lq: int, s: int, e: int, ev: int, fused: bool = False) -> list[Step]:
    """q·(1/√E_h), q·kᵀ, softmax, p·v; `fused`: nn.MultiheadAttention's, over its embedding E (E/H per head)."""
    where, head, value = (_MHA, "(E/H)", "(E/H)") if fused else (_SDPA, "E_h", "E_v")
    width: dict[str, Any] = {"E": e * h} if fused else {"E_h": e}
    v_width: dict[str, Any] = {"E": e * h} if fused else {"E_v": ev}
    scale = "B*L*E" if fused else "B*H*L*E_h"
    heads: dict[str, Any] = {} if fused else {"H": h}
    return [
        step("scale q", scale, term=Term.ELEMENTWISE, where=where, B=b, L=lq, **width,
             **heads, note="q·(1/√(E/H))" if fused else "q·(1/√E_h)"),
        step("MACs q·kᵀ", f"B*H*L*S*{head}", term=Term.MAC, where=where, B=b, H=h, L=lq, S=s, **width),
        step("softmax ops", "5*B*H*L*S", term=Term.SOFTMAX, where=where, B=b, H=h, L=lq, S=s),
        step("MACs p·v", f"B*H*L*S*{value}", term=Term.MAC, where=where, B=b, H=h, L=lq, S=s, **v_width),
    ]


@op_rule(*SDPA)
def sdpa(op: OpEvent) -> Cost:
    """q (B,H,L,E_h), k (B,H_kv,S,E_h), v (B,H_kv,S,E_v): MACs = B·H·L·S·E_h + B·H·L·S·E_v; softmax 5·B·H·L·S."""
    a = args.attention(op)
    steps = _attention_core(a.batch, a.heads, a.length, a.source, a.e, a.e_v)
    if a.mask:
        steps.insert(2, step("mask adds", "B*H*L*S", term=Term.ELEMENTWISE, where=_SDPA, B=a.batch, H=a.heads,
                             L=a.length, S=a.source))
    return tuple(steps)


@op_rule(MHA)
def native_multi_head_attention(op: OpEvent) -> Cost:
    """nn.MultiheadAttention's fused path: in-projections + attention + out-projection.

    MACs = B·L·E·E (q) + 2·B·S·E·E (k, v) + 2·B·L·S·E (scores, values) + B·L·E·E (out);
    bias adds = B·L·E + 2·B·S·E + B·L·E.
    """
    a = args.multi_head(op)
    b, lq, s, e = a.batch, a.length, a.source, a.embed
    w = _MHA
    steps = [step("MACs in-proj q", "B*L*E*E", term=Term.MAC, where=w, B=b, L=lq, E=e),
             step("MACs in-proj k, v", "2*B*S*E*E", term=Term.MAC, where=w, B=b, S=s, E=e)]
    if a.qkv_bias:
        steps.append(step("bias adds in-proj", "B*L*E + 2*B*S*E", term=Term.BIAS, where=w, B=b, L=lq, S=s, E=e))
    steps += _attention_core(b, a.heads, lq, s, e // a.heads, e // a.heads, fused=True)
    if a.need_weights and a.average:
        steps.append(step("average weights over heads", "B*H*L*S", term=Term.REDUCTION, where=w, B=b, H=a.heads,
                          L=lq, S=s))
    steps.append(step("MACs out-proj", "B*L*E*E", term=Term.MAC, where=w, B=b, L=lq, E=e))
    if a.out_bias:
        steps.append(step("bias adds out-proj", "B*L*E", term=Term.BIAS, where=w, B=b, L=lq, E=e))
    return tuple(steps)


def _attention_backward_core(b: int, h: int, lq: int, s: int, e: int, ev: int) -> list[Step]:
    return [
        step("MACs recompute q·kᵀ", "B*H*L*S*E", term=Term.MAC, B=b, H=h, L=lq, S=s, E=e,
             note="fused kernels keep only the log-sum-exp, not the probabilities"),
        step("recompute p", "2*B*H*L*S", term=Term.SOFTMAX, B=b, H=h, L=lq, S=s, note="subtract, exp"),
        step("MACs ∂x: ∂p = ∂o·vᵀ", "B*H*L*S*E_v", term=Term.MAC, part=Part.INPUT, B=b, H=h, L=lq, S=s, E_v=ev),
        step("MACs ∂x: ∂v = pᵀ·∂o", "B*H*L*S*E_v", term=Term.MAC, part=Part.INPUT, B=b, H=h, L=lq, S=s, E_v=ev),
        step("∂x: ∂s = p·(∂p − rowsum(∂o·o))", "2*B*H*L*E_v + 2*B*H*L*S", term=Term.SOFTMAX, part=Part.INPUT,
             B=b, H=h, L=lq, S=s, E_v=ev),
        step("MACs ∂x: ∂q = ∂s·k", "B*H*L*S*E", term=Term.MAC, part=Part.INPUT, B=b, H=h, L=lq, S=s, E=e),
        step("MACs ∂x: ∂k = ∂sᵀ·q", "B*H*L*S*E", term=Term.MAC, part=Part.INPUT, B=b, H=h, L=lq, S=s, E=e),
    ]


@op_rule(*SDPA_BACKWARD)
def sdpa_backward(op: OpEvent) -> Cost:
    """5 matmuls (q·kᵀ recomputed, ∂p, ∂v, ∂q, ∂k): MACs = 3·B·H·L·S·E + 2·B·H·L·S·E_v, as FlopCounterMode."""
    a = args.attention(op, first=1)
    return tuple(_attention_backward_core(a.batch, a.heads, a.length, a.source, a.e, a.e_v))


field_rule(*SDPA, MHA)(mix_all)
kind("sdpa", *SDPA)
kind("mha", MHA, nn.MultiheadAttention)


@expects(nn.MultiheadAttention)
def attention_input(m: Any) -> str:
    """MultiheadAttention expects query, key and value of width embed_dim, kdim, vdim."""
    e = m.embed_dim
    query = f"(N, L, E={e})" if m.batch_first else f"(L, N, E={e})"
    return (f"query {query} or (L, E={e}), key (…, kdim={m.kdim}), value (…, vdim={m.vdim}) — three inputs "
            f"(batch_first={m.batch_first})")


@expects(nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.TransformerEncoder, nn.TransformerDecoder)
def transformer_input(m: Any) -> str:
    """Transformer layers expect src (N, S, E) or (S, N, E)."""
    layer = m.layers[0] if hasattr(m, "layers") else m
    e, first = layer.self_attn.embed_dim, layer.self_attn.batch_first
    shape = f"(N, S, E={e})" if first else f"(S, N, E={e})"
    extra = " and memory of the same layout" if "Decoder" in type(m).__name__ else ""
    return f"src {shape} or (S, E={e}){extra} (batch_first={first})"
