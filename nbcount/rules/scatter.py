"""Accumulating writes and histograms: index_add, scatter with a reduction, index_put(accumulate=True), fold, histc.

A plain write (scatter without reduce, index_put without accumulate) copies values: no arithmetic. With
accumulation every written element is combined with what is there: one operation per write.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from nbcount.derive import step
from nbcount.rules.fields_layout import mix_all
from nbcount.rules.registry import Cost, field_rule, op_rule
from nbcount.types import OpEvent, TensorMeta, Term

aten = torch.ops.aten


def _writes(label: str, n: int, what: str, **symbols: Any) -> Cost:
    return (step(label, what, term=Term.ELEMENTWISE, **symbols),) if n else ()


@op_rule(aten.index_add)
def index_add(op: OpEvent) -> Cost:
    """self[index] += alpha·source: n_src adds (and n_src multiplies when alpha ≠ 1)."""
    source, alpha = op.args[3], op.kwarg("alpha", op.arg(4, "alpha", 1))
    steps = [step("accumulating adds", "n_src", term=Term.ELEMENTWISE, n_src=source.numel)]
    if alpha not in (1, 1.0):
        steps.insert(0, step("alpha multiplies", "n_src", term=Term.ELEMENTWISE, n_src=source.numel))
    return tuple(steps)


def _indexed_writes(op: OpEvent) -> int:
    """Elements index_put writes: the broadcast index shape times the dimensions it does not index."""
    x, indices, values = op.args[0], op.args[1], op.args[2]
    index_shapes = [t.shape for t in indices if isinstance(t, TensorMeta)]
    if any(t.dtype == "bool" for t in indices if isinstance(t, TensorMeta)) or not index_shapes:
        return values.numel
    broadcast = torch.broadcast_shapes(*index_shapes)
    return max(math.prod(broadcast) * math.prod(x.shape[len(indices):]), values.numel)


@op_rule(aten.index_put)
def index_put(op: OpEvent) -> Cost:
    """accumulate=True: n_writes adds (x[idx] += v); accumulate=False: a write, no arithmetic."""
    if not op.arg(3, "accumulate", False):
        return ()
    return (step("accumulating adds", "n_writes", term=Term.ELEMENTWISE, n_writes=_indexed_writes(op)),)


@op_rule(aten.scatter)
def scatter(op: OpEvent) -> Cost:
    """reduce='add' / 'multiply': one op per index element; without reduce: a write, no arithmetic."""
    reduce = op.kwarg("reduce")
    if reduce is None:
        return ()
    return (step(f"scatter ({reduce}) ops", "n_index", term=Term.ELEMENTWISE, n_index=op.args[2].numel),)


@op_rule(aten.scatter_add)
def scatter_add(op: OpEvent) -> Cost:
    """One add per index element."""
    return (step("accumulating adds", "n_index", term=Term.ELEMENTWISE, n_index=op.args[2].numel),)


@op_rule(aten.scatter_reduce, aten.index_reduce)
def scatter_reduce(op: OpEvent) -> Cost:
    """sum / prod / amax / amin: one op per source element; mean adds one divide per output element."""
    source, reduce, x = op.args[3], op.args[4], op.args[0]
    steps = [step(f"scatter ({reduce}) ops", "n_src", term=Term.ELEMENTWISE, n_src=source.numel)]
    if reduce == "mean":
        steps.append(step("mean divides", "n_out", term=Term.ELEMENTWISE, n_out=x.numel))
    return tuple(steps)


@op_rule(aten.put)
def put(op: OpEvent) -> Cost:
    """accumulate=True: one add per source element; otherwise a write."""
    if not op.arg(3, "accumulate", False):
        return ()
    return (step("accumulating adds", "n_src", term=Term.ELEMENTWISE, n_src=op.args[2].numel),)


@op_rule(aten.col2im)
def col2im(op: OpEvent) -> Cost:
    """F.fold: every element of the columns (N, C·∏K, L) is added into its output position: n_in adds."""
    return (step("overlap adds", "n_in", term=Term.ELEMENTWISE, n_in=op.args[0].numel),)


@op_rule(aten.histc)
def histc(op: OpEvent) -> Cost:
    """One bin increment per input element: n_in (MoE routing counts tokens per expert this way).

    The count depends only on the input's size, so it is the same under fake or meta tensors as with real ones.
    """
    return (step("bin increments", "n_in", term=Term.REDUCTION, n_in=op.args[0].numel),)


@op_rule(aten.histogram, aten.bincount)
def histogram(op: OpEvent) -> Cost:
    """One increment per input element (a weighted add with weights): n_in."""
    return (step("bin increments", "n_in", term=Term.REDUCTION, n_in=op.args[0].numel),)


field_rule(aten.index_add, aten.scatter, aten.scatter_add, aten.scatter_reduce, aten.index_reduce, aten.put,
           aten.col2im, aten.histc, aten.histogram, aten.bincount)(mix_all)
