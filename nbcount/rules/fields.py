"""How each aten op moves receptive fields: one registered rule per op, and the conservative default.

A rule receives the op and the `Flow` (the fields of the live tensors) and returns one field per output.
Ops without a rule are elementwise when their output has the broadcast shape of their inputs (ReLU, add,
batch norm with its statistics taken as constants); any other shape change mixes every position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from nbcount.rules.classify import facet
from nbcount.rules.receptive import (
    Axis,
    Field,
    compose,
    lose,
    merge,
    mix,
)
from nbcount.types import OpEvent, TensorMeta

LOST, MIX = "lost", "mix"
Mapping = dict[int, Any]  # input dim -> output dim, LOST (a view merged it) or MIX (every position read)
FieldRule = Callable[[OpEvent, "Flow"], tuple["Field | None", ...]]


class Flow:
    """The fields of the live tensors while the ops are replayed."""

    def __init__(self, extents: tuple[int, ...]):
        self.extents = extents
        self.fields: dict[int, Field] = {}

    def get(self, t: Any) -> Field | None:
        """The field of a tensor argument (None: it does not depend on the input)."""
        return self.fields.get(t.tid) if isinstance(t, TensorMeta) else None

    def remap(self, field: Field, shape: tuple[int, ...], mapping: Mapping) -> Field:
        """Move each tracked axis to its new dim; LOST keeps each element's field, MIX unites them."""
        out = []
        mixes = MIX in mapping.values()
        for ax, extent in zip(field, self.extents):
            dim = ax.dim
            target = mapping.get(dim, LOST) if dim is not None else (MIX if mixes else None)
            if target == MIX:
                out.append(mix(ax, shape[dim] if dim is not None else 1, extent))
            elif target == LOST and dim is not None:
                out.append(lose(ax, shape[dim]))
            else:
                out.append(ax if target is None else replace(ax, dim=int(target)))
        return tuple(out)

    def unite(self, fields: list[Field], n_of: Callable[[Axis], int]) -> Field | None:
        """Elementwise union of fields already in the output's dims."""
        if not fields:
            return None
        return tuple(merge([f[i] for f in fields], n_of(fields[0][i]), extent)
                     for i, extent in enumerate(self.extents))

    def windowed(self, field: Field, shape: tuple[int, ...], per_dim: dict[int, tuple[Any, ...]],
                 mixed: tuple[int, ...] = ()) -> Field:
        """Apply taps per dim: per_dim[d] = (taps, A, B, naive growth or None); dims in `mixed` are read whole."""
        moves = any(not _is_identity(spec) for spec in per_dim.values())
        out = []
        for ax, extent in zip(field, self.extents):
            if not ax.tracked:
                out.append(replace(mix(ax, 1, extent), exact=False) if moves and not ax.whole else ax)
            elif ax.dim in per_dim:
                taps, a, b, grow = per_dim[ax.dim]
                out.append(compose(ax, taps, a, b, None if grow is None else ax.naive + grow))
            elif ax.dim in mixed:
                out.append(mix(ax, shape[ax.dim], extent))
            else:
                out.append(ax)
        return tuple(out)


def _is_identity(spec: tuple[Any, ...]) -> bool:
    taps, a, b, _ = spec
    return a == 1 and b == 1 and list(taps(0)) == [0]


def tensors(value: Any) -> list[TensorMeta]:
    if isinstance(value, TensorMeta):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in tensors(v)]
    return []


def apply(op: OpEvent, flow: Flow) -> tuple[Field | None, ...] | None:
    """Run one op's rule; None when no argument depends on the input."""
    args = [t for v in (*op.args, *(v for _, v in op.kwargs)) for t in tensors(v)]
    rule = facet(op.op, "field")
    if not any(t.tid in flow.fields for t in args) and rule is None:
        return None
    rule = rule or generic
    try:
        return rule(op, flow)
    except Exception:  # an overload this rule cannot read: the conservative answer, never a crash
        return generic(op, flow, force_mix=True)


def generic(op: OpEvent, flow: Flow, force_mix: bool = False) -> tuple[Field | None, ...]:
    """Elementwise when the output has the broadcast shape of the inputs; otherwise every position is mixed."""
    args = [t for v in (*op.args, *(v for _, v in op.kwargs)) for t in tensors(v)]
    fielded = [(t, f) for t in args if (f := flow.get(t)) is not None]
    out: list[Field | None] = []
    for o in op.outputs:
        if not fielded:
            out.append(None)
        elif not force_mix and all(_broadcasts(t.shape, o.shape) for t, _ in fielded):
            out.append(broadcast(flow, fielded, o.shape))
        else:
            mixed = [flow.remap(f, t.shape, {d: MIX for d in range(len(t.shape))}) for t, f in fielded]
            out.append(flow.unite(mixed, lambda ax: 1))
    return tuple(out)


def _broadcasts(shape: tuple[int, ...], out: tuple[int, ...]) -> bool:
    if len(shape) > len(out):
        return False
    return all(s in (1, o) for s, o in zip(shape[::-1], out[::-1]))


def broadcast(flow: Flow, fielded: list[tuple[TensorMeta, Field]], out: tuple[int, ...]) -> Field | None:
    """The union of broadcast inputs: a size-1 dim stretched over many positions is the same field for all."""
    moved = []
    for t, f in fielded:
        off = len(out) - len(t.shape)
        mapping: Mapping = {d: (LOST if s == 1 and out[d + off] != 1 else d + off) for d, s in enumerate(t.shape)}
        moved.append(flow.remap(f, t.shape, mapping))
    return flow.unite(moved, lambda ax: out[ax.dim] if ax.dim is not None else 1)


def view_mapping(shape_in: tuple[int, ...], shape_out: tuple[int, ...]) -> Mapping:
    """Dims a reshape keeps as they are (same size, alone in their group); the others are LOST."""
    ins = [d for d, s in enumerate(shape_in) if s != 1]
    outs = [d for d, s in enumerate(shape_out) if s != 1]
    mapping: Mapping = {}
    i = j = 0
    while i < len(ins) and j < len(outs):
        gi, gj = [ins[i]], [outs[j]]
        pi, pj = shape_in[ins[i]], shape_out[outs[j]]
        while pi != pj and i + len(gi) <= len(ins) and j + len(gj) <= len(outs):
            if pi < pj and i + len(gi) < len(ins):
                gi.append(ins[i + len(gi)])
                pi *= shape_in[gi[-1]]
            elif j + len(gj) < len(outs):
                gj.append(outs[j + len(gj)])
                pj *= shape_out[gj[-1]]
            else:
                break
        if len(gi) == 1 and len(gj) == 1 and pi == pj:
            mapping[gi[0]] = gj[0]
        i, j = i + len(gi), j + len(gj)
    return mapping


def at(value: Any, i: int, default: int = 0) -> int:
    if value is None or (isinstance(value, (tuple, list)) and not value):
        return default
    if isinstance(value, (tuple, list)):
        return int(value[i] if i < len(value) else value[-1])
    return int(value)


def norm_dim(d: Any, ndim: int) -> int:
    return int(d) % ndim if ndim else 0

