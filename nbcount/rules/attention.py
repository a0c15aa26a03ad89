"""Attention kernels: scaled_dot_product_attention's fused forms and MultiheadAttention's fast path.

All counts are dense: a causal mask does not halve them (the math path computes every score,
and this matches FlopCounterMode); GQA/MQA key/value heads are broadcast to the query heads.
"""

from __future__ import annotations

from nbcount.derive import Step, step
from nbcount.rules import Cost, op_rule
from nbcount.types import OpEvent, Term

_MAC = Term.MAC.value


def _attention_core(b: int, h: int, lq: int, s: int, e: int, ev: int) -> list[Step]:
    return [
        step("scale q", "B*H*L*E", term=Term.ELEMENTWISE.value, B=b, H=h, L=lq, E=e, note="q·(1/√E)"),
        step("MACs q·kᵀ", "B*H*L*S*E", term=_MAC, B=b, H=h, L=lq, S=s, E=e),
        step("softmax ops", "5*B*H*L*S", term=Term.SOFTMAX.value, B=b, H=h, L=lq, S=s),
        step("MACs p·v", "B*H*L*S*E_v", term=_MAC, B=b, H=h, L=lq, S=s, E_v=ev),
    ]


@op_rule("aten._scaled_dot_product_flash_attention_for_cpu", "aten._scaled_dot_product_flash_attention",
         "aten._scaled_dot_product_efficient_attention", "aten._scaled_dot_product_cudnn_attention",
         "aten._scaled_dot_product_fused_attention_overrideable", "aten.scaled_dot_product_attention")
def sdpa(op: OpEvent) -> Cost:
    """q (B,H,L,E), k (B,H_kv,S,E), v (B,H_kv,S,E_v): MACs = B·H·L·S·E + B·H·L·S·E_v; softmax 5·B·H·L·S."""
    q, k, v = op.args[0], op.args[1], op.args[2]
    *batch, h, lq, e = q.shape
    b = 1
    for d in batch:
        b *= d
    steps = _attention_core(b, h, lq, k.shape[-2], e, v.shape[-1])
    takes_mask = op.op in ("aten.scaled_dot_product_attention", "aten._scaled_dot_product_efficient_attention")
    mask = op.arg(3, "attn_mask") if takes_mask else op.kwarg("attn_mask")
    if mask is not None and hasattr(mask, "shape"):
        steps.insert(2, step("mask adds", "B*H*L*S", term=Term.ELEMENTWISE.value, B=b, H=h, L=lq, S=k.shape[-2]))
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
    steps = [step("MACs in-proj q", "B*L*E*E", term=_MAC, B=b, L=lq, E=embed),
             step("MACs in-proj k, v", "2*B*S*E*E", term=_MAC, B=b, S=s, E=embed)]
    if has_qkv_bias:
        steps.append(step("bias adds in-proj", "B*L*E + 2*B*S*E", term=Term.BIAS.value, B=b, L=lq, S=s, E=embed))
    steps += _attention_core(b, heads, lq, s, embed // heads, embed // heads)
    need_weights = bool(op.arg(10, "need_weights", True))
    average = bool(op.arg(11, "average_attn_weights", True))
    if need_weights and average:
        steps.append(step("average weights over heads", "B*H*L*S", term=Term.REDUCTION.value,
                          B=b, H=heads, L=lq, S=s))
    steps.append(step("MACs out-proj", "B*L*E*E", term=_MAC, B=b, L=lq, E=embed))
    if has_out_bias:
        steps.append(step("bias adds out-proj", "B*L*E", term=Term.BIAS.value, B=b, L=lq, E=embed))
    _ = value
    return tuple(steps)


def _batch_and_length(t: object) -> tuple[int, int]:
    shape = t.shape  # type: ignore[attr-defined]
    return (shape[0], shape[1]) if len(shape) == 3 else (1, shape[0])
