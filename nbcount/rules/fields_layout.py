"""Receptive-field rules of layout and mixing ops: views, permutes, slices, cat, reductions, products.

A library: the op family modules register these functions against their ops (``field_rule``).
"""

from __future__ import annotations

from typing import Any

from nbcount.rules.fields import LOST, MIX, Field, Flow, Mapping, broadcast, generic, norm_dim, view_mapping
from nbcount.types import OpEvent, TensorMeta


def view(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """A reshape keeps a dim's positions when the dim survives whole; merged dims keep each element's field."""
    x, out = op.args[0], op.outputs[0]
    f = flow.get(x)
    return (None,) if f is None else (flow.remap(f, x.shape, view_mapping(x.shape, out.shape)),)


def expand(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """Expanding a size-1 dim repeats one field over every position."""
    x, out = op.args[0], op.outputs[0]
    f = flow.get(x)
    return (None,) if f is None else (broadcast(flow, [(x, f)], out.shape),)


def permute(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """Permuted dims carry their positions along."""
    x = op.args[0]
    f = flow.get(x)
    if f is None:
        return (None,)
    n = len(x.shape)
    order = list(range(n))
    if op.op in ("aten.permute", "aten.permute_copy"):
        order = [norm_dim(d, n) for d in op.arg(1, "dims")]
    elif op.op == "aten.movedim":
        src, dst = op.args[1], op.args[2]
        src, dst = ([src], [dst]) if isinstance(src, int) else (list(src), list(dst))
        rest = [d for d in range(n) if d not in {norm_dim(s, n) for s in src}]
        order = [-1] * n
        for s_, d_ in zip(src, dst):
            order[norm_dim(d_, n)] = norm_dim(s_, n)
        it = iter(rest)
        order = [o if o >= 0 else next(it) for o in order]
    elif n >= 2:
        two_d = op.op in ("aten.t", "aten.t_")
        a, b = (0, 1) if two_d else (norm_dim(op.arg(1, "dim0", 0), n), norm_dim(op.arg(2, "dim1", 1), n))
        order[a], order[b] = order[b], order[a]
    return (flow.remap(f, x.shape, {src: dst for dst, src in enumerate(order)}),)


def slice_(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """x[start::step] on a dim: output o reads start + o·step."""
    x = op.args[0]
    f = flow.get(x)
    if f is None:
        return (None,)
    d = norm_dim(op.arg(1, "dim", 0), len(x.shape))
    n = x.shape[d]
    start, step = op.arg(2, "start", None), int(op.arg(4, "step", 1) or 1)
    start = 0 if start is None else int(start)
    start = min(max(start + n if start < 0 else start, 0), n)
    if start == 0 and step == 1:
        return (f,)
    return (flow.windowed(f, x.shape, {d: ((lambda o: [start + o * step]), 1, step, None)}),)


def select(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """x.select(dim, i): the dim disappears and every element keeps position i's field."""
    x = op.args[0]
    f = flow.get(x)
    if f is None:
        return (None,)
    n = len(x.shape)
    d = norm_dim(op.arg(1, "dim", 0), n)
    index = int(op.arg(2, "index", 0)) % max(x.shape[d], 1)
    picked = flow.windowed(f, x.shape, {d: ((lambda o: [index + o]), 1, 1, None)})
    return (flow.remap(picked, x.shape, {k: (LOST if k == d else k - (k > d)) for k in range(n)}),)


def split(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """Pieces along a dim: piece i starts at the sum of the earlier pieces' lengths."""
    x = op.args[0]
    f = flow.get(x)
    if f is None:
        return (None,) * len(op.outputs)
    n = len(x.shape)
    unbind = op.op.startswith("aten.unbind")
    d = norm_dim(op.arg(1 if unbind else 2, "dim", 0), n)
    out, offset = [], 0
    for o in op.outputs:
        piece = flow.windowed(f, x.shape, {d: ((lambda p, off=offset: [off + p]), 1, 1, None)}) if offset else f
        if unbind:
            piece = flow.remap(piece, x.shape, {k: (LOST if k == d else k - (k > d)) for k in range(n)})
        out.append(piece)
        offset += 1 if unbind else o.shape[d]
    return tuple(out)


def cat(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """Concatenation: along channels, the union at each position; along a spatial dim, pieces side by side."""
    tensors = [t for t in op.args[0] if isinstance(t, TensorMeta) and t.numel]
    out = op.outputs[0]
    d = norm_dim(op.arg(1, "dim", 0), len(out.shape))
    fielded = [(t, f) for t in tensors if (f := flow.get(t)) is not None]
    if not fielded:
        return (None,)
    spatial = any(ax.tracked and ax.dim == d for _, f in fielded for ax in f)
    if spatial:
        moved = [flow.remap(f, t.shape, {k: (LOST if k == d else k) for k in range(len(t.shape))}) for t, f in fielded]
        return (flow.unite(moved, lambda ax: 1),)
    return (flow.unite([f for _, f in fielded], lambda ax: out.shape[ax.dim] if ax.dim is not None else 1),)


def reduction(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """A reduction reads every position of the reduced dims (global pooling covers the whole input)."""
    x = op.args[0]
    f = flow.get(x)
    if f is None:
        return (None,) * len(op.outputs)
    n = len(x.shape)
    dims = op.arg(2 if op.op in ("aten.norm", "aten.linalg_vector_norm") else 1, "dim", None)
    reduced = set(range(n)) if not isinstance(dims, (int, tuple, list)) or dims in ((), []) else \
        {norm_dim(d, n) for d in ([dims] if isinstance(dims, int) else dims)}
    out = []
    for o in op.outputs:
        keep = len(o.shape) == n
        mapping: Mapping = {}
        kept = 0
        for k in range(n):
            mapping[k] = MIX if k in reduced else (k if keep else kept)
            kept += k not in reduced
        out.append(flow.remap(f, x.shape, mapping))
    return tuple(out)


def along_dim(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """Softmax, cumulative sums and sorting read every position along their dim."""
    x = op.args[0]
    f = flow.get(x)
    if f is None:
        return (None,) * len(op.outputs)
    n = len(x.shape)
    d = norm_dim(op.arg(1 if op.op != "aten.topk" else 2, "dim", -1), n)
    field = flow.remap(f, x.shape, {k: (MIX if k == d else k) for k in range(n)})
    return (field,) * len(op.outputs)


def _contract(flow: Flow, pairs: list[tuple[Any, Mapping]], extra: list[Any], out: TensorMeta) -> Field | None:
    moved = [flow.remap(f, t.shape, m) for t, m in pairs if (f := flow.get(t)) is not None]
    added = [(t, f) for t in extra if (f := flow.get(t)) is not None]
    if added:
        b = broadcast(flow, added, out.shape)
        moved += [b] if b is not None else []
    return flow.unite(moved, lambda ax: out.shape[ax.dim] if ax.dim is not None else 1)


def matmul(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """A matrix product reads a whole row of A and a whole column of B: the contracted dim is mixed."""
    name = op.op.removeprefix("aten.")
    added = name.startswith("add") or name == "baddbmm"
    extra, (a, b) = ([op.args[0]], op.args[1:3]) if added else ([], op.args[0:2])
    out = op.outputs[0]
    batched = len(a.shape) == 3
    pairs: list[tuple[Any, Mapping]]
    if name in ("dot", "vdot"):
        pairs = [(a, {0: MIX}), (b, {0: MIX})]
    elif name.endswith("mv"):
        pairs = [(a, {0: 0, 1: MIX}), (b, {0: MIX})]
    elif batched:
        pairs = [(a, {0: 0, 1: 1, 2: MIX}), (b, {0: 0, 1: MIX, 2: 2})]
    else:
        pairs = [(a, {0: 0, 1: MIX}), (b, {0: MIX, 1: 1})]
    return (_contract(flow, pairs, extra, out),)


def mix_all(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """Attention and other global ops: every output reads every position of every input."""
    return generic(op, flow, force_mix=True)



def fresh(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """A new or overwritten tensor that does not depend on the input's values."""
    return (None,) * len(op.outputs)


def copy(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """x.copy_(src): x now holds src (broadcast), whatever it held before."""
    src, out = op.args[1], op.outputs[0]
    f = flow.get(src)
    return (None,) if f is None else (broadcast(flow, [(src, f)], out.shape),)
