"""Receptive-field rules of layout and mixing ops: views, permutes, slices, cat, reductions, products."""

from __future__ import annotations

from typing import Any

from nbcount.rules.fields import LOST, MIX, Field, Flow, Mapping, broadcast, field_rule, generic, norm_dim, view_mapping
from nbcount.types import OpEvent, TensorMeta

_VIEWS = ("aten.view", "aten._unsafe_view", "aten.reshape", "aten._reshape_alias", "aten.view_as", "aten.flatten",
          "aten.unflatten", "aten.squeeze", "aten.squeeze_", "aten.unsqueeze", "aten.unsqueeze_", "aten.alias",
          "aten.detach", "aten.detach_", "aten.clone", "aten.contiguous", "aten._to_copy", "aten.to",
          "aten.lift_fresh", "aten.lift_fresh_copy", "aten.view_copy", "aten._unsafe_view_copy", "aten.view_as_real",
          "aten.view_as_complex", "aten.real", "aten.imag", "aten.as_strided")


@field_rule(*_VIEWS)
def view(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """A reshape keeps a dim's positions when the dim survives whole; merged dims keep each element's field."""
    x, out = op.args[0], op.outputs[0]
    f = flow.get(x)
    return (None,) if f is None else (flow.remap(f, x.shape, view_mapping(x.shape, out.shape)),)


@field_rule("aten.expand", "aten.expand_as", "aten.broadcast_to", "aten.expand_copy")
def expand(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """Expanding a size-1 dim repeats one field over every position."""
    x, out = op.args[0], op.outputs[0]
    f = flow.get(x)
    return (None,) if f is None else (broadcast(flow, [(x, f)], out.shape),)


@field_rule("aten.permute", "aten.transpose", "aten.transpose_", "aten.t", "aten.t_", "aten.swapaxes",
            "aten.movedim", "aten.permute_copy", "aten.transpose_copy")
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


@field_rule("aten.slice", "aten.slice_copy")
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


@field_rule("aten.select", "aten.select_copy")
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


@field_rule("aten.split", "aten.split_with_sizes", "aten.unsafe_split", "aten.unsafe_split_with_sizes",
            "aten.unbind", "aten.chunk", "aten.tensor_split", "aten.split_copy", "aten.unbind_copy")
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


@field_rule("aten.cat", "aten.concat", "aten.concatenate")
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


_REDUCTIONS = ("aten.sum", "aten.mean", "aten.prod", "aten.amax", "aten.amin", "aten.logsumexp", "aten.nansum",
               "aten.var", "aten.std", "aten.var_mean", "aten.std_mean", "aten.max", "aten.min", "aten.argmax",
               "aten.argmin", "aten.any", "aten.all", "aten.aminmax", "aten.median", "aten.mode", "aten.norm",
               "aten.linalg_vector_norm", "aten.count_nonzero")


@field_rule(*_REDUCTIONS)
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


@field_rule("aten._softmax", "aten._log_softmax", "aten._safe_softmax", "aten.softmax", "aten.log_softmax",
            "aten.cumsum", "aten.cumsum_", "aten.cumprod", "aten.logcumsumexp", "aten.sort", "aten.topk",
            "aten.argsort", "aten.cummax", "aten.cummin")
def alongnorm_dim(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
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


@field_rule("aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm", "aten.mv", "aten.addmv", "aten.dot", "aten.vdot")
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


for _name in ("aten._scaled_dot_product_flash_attention_for_cpu", "aten._scaled_dot_product_flash_attention",
              "aten._scaled_dot_product_efficient_attention", "aten._scaled_dot_product_cudnn_attention",
              "aten._scaled_dot_product_fused_attention_overrideable", "aten.scaled_dot_product_attention",
              "aten._native_multi_head_attention", "aten.index_put", "aten.index_put_", "aten.nonzero",
              "aten.masked_select", "aten.unique", "aten._unique2", "aten.im2col", "aten.col2im",
              "aten.fft_fftn", "aten._fft_r2c", "aten._fft_c2r", "aten._fft_c2c"):
    field_rule(_name)(mix_all)


@field_rule("aten.empty_like", "aten.zeros_like", "aten.ones_like", "aten.full_like", "aten.rand_like",
            "aten.randn_like", "aten.randint_like", "aten.new_empty", "aten.new_empty_strided", "aten.new_zeros",
            "aten.new_ones", "aten.new_full", "aten.fill_", "aten.zero_", "aten.normal_", "aten.uniform_",
            "aten.bernoulli_", "aten.sym_size", "aten.sym_stride", "aten.sym_numel", "aten.size", "prim.device")
def fresh(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """A new or overwritten tensor that does not depend on the input's values."""
    return (None,) * len(op.outputs)


@field_rule("aten.copy_", "aten.copy")
def copy(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """x.copy_(src): x now holds src (broadcast), whatever it held before."""
    src, out = op.args[1], op.outputs[0]
    f = flow.get(src)
    return (None,) if f is None else (broadcast(flow, [(src, f)], out.shape),)
