"""The math path of attention named in a derivation: which batched product is q·kᵀ and which is p·v.

On the meta device, in training, or with a mask, ``scaled_dot_product_attention`` runs as bmm → softmax →
bmm; each bmm's rule counts B·M·K·P. Within a row, the bmm whose output reaches a softmax (through views,
scaling and masking) is q·kᵀ (M = L queries, K = E_h, P = S keys), the bmm that reads the softmax's output
is p·v (K = S, P = E_v). Only the labels and the symbols' meanings change; the numbers are the rule's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from nbcount.derive import Step, step
from nbcount.types import OpEvent

if TYPE_CHECKING:
    from nbcount.report import Row

_SOFTMAX = ("aten._softmax", "aten._safe_softmax", "aten.softmax")
_PRODUCT = ("aten.bmm", "aten.baddbmm")
_PASS = ("aten.view", "aten._unsafe_view", "aten.reshape", "aten.expand", "aten.clone", "aten.mul", "aten.div",
         "aten.add", "aten.where", "aten.masked_fill", "aten.transpose", "aten.contiguous", "aten._to_copy")
_WHERE = {"BH": "batch × heads (the batch of the products)", "S": "key/value length",
          "E_h": "query/key width per head", "E_v": "value width per head"}
# (M, K, P) of the product as attention's symbols: q (BH, L, E_h)·kᵀ (BH, E_h, S); p (BH, L, S)·v (BH, S, E_v)
ROLES = {"q·kᵀ": ("L", "E_h", "S"), "p·v": ("L", "S", "E_v")}


def _inputs(op: OpEvent) -> list[int]:
    return [a.tid for a in op.args if hasattr(a, "tid")]


def attention_roles(ops: tuple[OpEvent, ...]) -> dict[int, str]:
    """seq of each bmm that is q·kᵀ or p·v, found through the row's own dataflow."""
    producer = {t.tid: op for op in ops for t in op.outputs}
    consumers: dict[int, list[OpEvent]] = {}
    for op in ops:
        for tid in _inputs(op):
            consumers.setdefault(tid, []).append(op)
    roles: dict[int, str] = {}
    for op in (o for o in ops if o.op in _SOFTMAX and o.outputs):
        back = producer.get(_inputs(op)[0]) if _inputs(op) else None
        for _ in range(16):  # upstream to the product that made the scores
            if back is None or back.op in _PRODUCT or back.op not in _PASS:
                break
            back = producer.get(_inputs(back)[0]) if _inputs(back) else None
        if back is not None and back.op in _PRODUCT:
            roles[back.seq] = "q·kᵀ"
        frontier = [op.outputs[0].tid]
        for _ in range(16):  # downstream to the product that weighs the values
            nxt = [c for tid in frontier for c in consumers.get(tid, [])]
            product = next((c for c in nxt if c.op in _PRODUCT), None)
            if product is not None:
                roles[product.seq] = "p·v"
                break
            frontier = [c.outputs[0].tid for c in nxt if c.op in _PASS and c.outputs]
    return roles


def cost_steps(row: Row) -> list[Step]:
    """Every step of the row's own costs, with attention's batched products named by their role."""
    roles = attention_roles(row.call.ops) if any(op.op in _SOFTMAX for op in row.call.ops) else {}
    if not roles:
        return [s for _, cost in row.costs for s in cost]
    steps: list[Step] = []
    ops = iter(row.call.ops)
    for source, cost in row.costs:
        op = next((o for o in ops if o.op == source), None)  # costs follow the ops with a rule, in order
        role = roles.get(op.seq) if op is not None else None
        steps += [_named(s, role) if role is not None and s.term == "mac" else s for s in cost]
    return steps


def _named(st: Step, role: str) -> Step:
    """``MACs = B·M·K·P`` of a bmm as ``MACs q·kᵀ = BH·L·S·E_h`` (the same numbers, attention's symbols)."""
    values = dict(st.symbols)
    m, k, p = ROLES[role]
    if not {"B", "M", "K", "P"} <= set(values):
        return replace(st, label=f"MACs {role}")
    symbols: dict[str, Any] = {"BH": values["B"], m: values["M"], k: values["K"], p: values["P"]}
    formula = "BH*L*S*E_h" if role == "q·kᵀ" else "BH*L*S*E_v"
    where = {key: text for key, text in _WHERE.items() if key in symbols}
    return step(f"MACs {role}", formula, term=st.term, note=st.note, where=where, **symbols)
