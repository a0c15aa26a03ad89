"""Attention kernels: scaled_dot_product_attention's fused forms and MultiheadAttention's fast path.

All counts are dense: a causal mask does not halve them (the math path computes every score,
and this matches FlopCounterMode); GQA/MQA key/value heads are broadcast to the query heads.
"""

from __future__ import annotations

from typing import Any

from nbcount.derive import Step, step
from nbcount.rules import Cost, op_rule
from nbcount.types import OpEvent, Term

_MAC = Term.MAC.value
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
    return [
        step("scale q", scale, term=Term.ELEMENTWISE.value, where=where, B=b, L=lq, **width,
             **({} if fused else {"H": h}), note="q·(1/√(E/H))" if fused else "q·(1/√E_h)"),
        step("MACs q·kᵀ", f"B*H*L*S*{head}", term=_MAC, where=where, B=b, H=h, L=lq, S=s, **width),
        step("softmax ops", "5*B*H*L*S", term=Term.SOFTMAX.value, where=where, B=b, H=h, L=lq, S=s),
        step("MACs p·v", f"B*H*L*S*{value}", term=_MAC, where=where, B=b, H=h, L=lq, S=s, **v_width),
    ]


@op_rule("aten._scaled_dot_product_flash_attention_for_cpu", "aten._scaled_dot_product_flash_attention",
         "aten._scaled_dot_product_efficient_attention", "aten._scaled_dot_product_cudnn_attention",
         "aten._scaled_dot_product_fused_attention_overrideable", "aten.scaled_dot_product_attention")
def sdpa(op: OpEvent) -> Cost:
    """q (B,H,L,E_h), k (B,H_kv,S,E_h), v (B,H_kv,S,E_v): MACs = B·H·L·S·E_h + B·H·L·S·E_v; softmax 5·B·H·L·S."""
    q, k, v = op.args[0], op.args[1], op.args[2]
    *batch, h, lq, e = q.shape
    b = 1
    for d in batch:
        b *= d
    steps = _attention_core(b, h, lq, k.shape[-2], e, v.shape[-1])
    takes_mask = op.op in ("aten.scaled_dot_product_attention", "aten._scaled_dot_product_efficient_attention")
    mask = op.arg(3, "attn_mask") if takes_mask else op.kwarg("attn_mask")
    if mask is not None and hasattr(mask, "shape"):
        steps.insert(2, step("mask adds", "B*H*L*S", term=Term.ELEMENTWISE.value, where=_SDPA, B=b, H=h, L=lq,
                             S=k.shape[-2]))
    return tuple(steps)


@op_rule("aten._native_multi_head_attention")
def native_multi_head_attention(op: OpEvent) -> Cost:
    """nn.MultiheadAttention's fused path: in-projections + attention + out-projection.

    MACs = B·L·E·E (q) + 2·B·S·E·E (k, v) + 2·B·L·S·E (scores, values) + B·L·E·E (out);
    bias adds = B·L·E + 2·B·S·E + B·L·E.
    """
    query, key, value = op.args[0], op.args[1], op.args[2]
    embed, heads = int(op.args[3]), int(op.args[4])
    b, lq = _batch_and_length(query)
    s = _batch_and_length(key)[1]
    has_qkv_bias, has_out_bias = op.args[6] is not None, op.args[8] is not None
    w = _MHA
    steps = [step("MACs in-proj q", "B*L*E*E", term=_MAC, where=w, B=b, L=lq, E=embed),
             step("MACs in-proj k, v", "2*B*S*E*E", term=_MAC, where=w, B=b, S=s, E=embed)]
    if has_qkv_bias:
        steps.append(step("bias adds in-proj", "B*L*E + 2*B*S*E", term=Term.BIAS.value, where=w, B=b, L=lq, S=s,
                          E=embed))
    steps += _attention_core(b, heads, lq, s, embed // heads, embed // heads, fused=True)
    need_weights = bool(op.arg(10, "need_weights", True))
    average = bool(op.arg(11, "average_attn_weights", True))
    if need_weights and average:
        steps.append(step("average weights over heads", "B*H*L*S", term=Term.REDUCTION.value, where=w,
                          B=b, H=heads, L=lq, S=s))
    steps.append(step("MACs out-proj", "B*L*E*E", term=_MAC, where=w, B=b, L=lq, E=embed))
    if has_out_bias:
        steps.append(step("bias adds out-proj", "B*L*E", term=Term.BIAS.value, where=w, B=b, L=lq, E=embed))
    _ = value
    return tuple(steps)


def _batch_and_length(t: object) -> tuple[int, int]:
    shape = t.shape  # type: ignore[attr-defined]
    return (shape[0], shape[1]) if len(shape) == 3 else (1, shape[0])
