"""Embeddings: a lookup does no arithmetic; a bag sums (or averages) the rows it looks up; ∂W scatters adds."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nbcount.derive import step
from nbcount.rules.registry import Cost, check, expects, ignore, kind, op_rule
from nbcount.types import OpEvent, Part, Term

aten = torch.ops.aten
_BAG_MODES = {0: "sum", 1: "mean", 2: "max"}

ignore("a table lookup: copies one row per id, no arithmetic", aten.embedding)


@op_rule(aten._embedding_bag, aten._embedding_bag_forward_only)
def embedding_bag(op: OpEvent) -> Cost:
    """EmbeddingBag: each bag reduces its rows: sum (n_ids − bags)·D adds; mean also bags·D divides; max compares.

    With per_sample_weights, each looked-up row is first scaled: n_ids·D multiplies more.
    """
    weight, ids, offsets = op.args[0], op.args[1], op.args[2]
    mode = _BAG_MODES.get(int(op.arg(4, "mode", 0)), "sum")
    d, n_ids = weight.shape[1], ids.numel
    bags = op.outputs[0].shape[0]
    label = "comparisons" if mode == "max" else "adds"
    steps = [step(f"bag {label}", "(n_ids - bags)*D", term=Term.REDUCTION, n_ids=n_ids, bags=bags, D=d,
                  note=f"mode={mode}: each bag of k rows reduced with k − 1 {label}")]
    if mode == "mean":
        steps.append(step("bag means", "bags*D", term=Term.REDUCTION, bags=bags, D=d))
    if op.arg(6, "per_sample_weights") is not None:
        steps.insert(0, step("weight multiplies", "n_ids*D", term=Term.ELEMENTWISE, n_ids=n_ids, D=d))
    del offsets
    return tuple(steps)


@op_rule(aten.embedding_dense_backward)
def embedding_backward(op: OpEvent) -> Cost:
    """∂W: each ∂y row is added into the row of its token: n adds (n = ∂y elements)."""
    return (step("∂W scatter adds", "n", term=Term.ELEMENTWISE, part=Part.WEIGHT, n=op.args[0].numel),)


@check(aten.embedding, aten._embedding_bag, aten._embedding_bag_forward_only)
def ids_in_range(func: object, values: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Ids given as real values must index the table: the CPU kernel raises IndexError otherwise."""
    weight, ids = values[0], values[1]
    if not isinstance(ids, torch.Tensor) or ids.device.type == "meta" or _is_fake(ids) or not ids.numel():
        return
    from torch.utils._python_dispatch import _disable_current_modes

    with _disable_current_modes():  # real values: read them outside the fake mode that runs the count
        low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= weight.shape[0]:
        raise IndexError("index out of range in self")


def _is_fake(t: torch.Tensor) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(t, FakeTensor)


kind("embedding", nn.Embedding, nn.EmbeddingBag)


@expects(nn.Embedding, nn.EmbeddingBag)
def embedding_input(m: Any) -> str:
    """Embedding expects integer ids in [0, num_embeddings)."""
    return (f"integer token ids (any shape, dtype torch.long or torch.int) with values in "
            f"[0, num_embeddings={m.num_embeddings})")
