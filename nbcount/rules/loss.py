"""Losses a forward pass may compute (a language model called with labels, a training step's loss).

Per element: the pointwise formula's operations, then the reduction (reduction=mean: one add per element
and one divide; sum: one add per element; none: no reduction).
"""

from __future__ import annotations

import torch

from nbcount.derive import Step, step
from nbcount.rules.registry import Cost, OpRule, op_rule
from nbcount.types import OpEvent, Part, Term

aten = torch.ops.aten
_REDUCTION = {0: "none", 1: "mean", 2: "sum"}


def _reduce(reduction: int, n: int) -> list[Step]:
    name = _REDUCTION.get(int(reduction), "mean")
    if name == "none":
        return []
    steps = [step(f"{name} adds", "n", term=Term.REDUCTION, n=n)]
    if name == "mean":
        steps.append(step("mean divide", "1", term=Term.REDUCTION))
    return steps


@op_rule(aten.nll_loss_forward, aten.nll_loss2d_forward)
def nll_loss(op: OpEvent) -> Cost:
    """−log p of each target class, picked (no arithmetic), weighted (n multiplies if weight) and reduced."""
    target, weight = op.args[1], op.arg(2, "weight")
    n = target.numel
    steps = [step("class-weight multiplies", "n", term=Term.ELEMENTWISE, n=n)] if weight is not None else []
    return tuple(steps + _reduce(op.arg(3, "reduction", 1), n))


@op_rule(aten.nll_loss_backward, aten.nll_loss2d_backward)
def nll_loss_backward(op: OpEvent) -> Cost:
    """∂x: −∂y (scaled by 1/n for mean) written at each target: n ops."""
    return (step("∂x ops", "n", term=Term.ELEMENTWISE, part=Part.INPUT, n=op.args[2].numel),)


def _pointwise_loss(per_element: int, formula: str) -> OpRule:
    def rule(op: OpEvent) -> Cost:
        n = op.args[0].numel
        steps = [step("loss ops", f"{per_element}*n", term=Term.ELEMENTWISE, n=n, note=formula)]
        return tuple(steps + _reduce(op.arg(2, "reduction", 1), n))

    rule.__doc__ = f"{formula}: {per_element} ops per element, then the reduction"
    return rule


op_rule(aten.mse_loss)(_pointwise_loss(2, "(x − y)²"))
op_rule(aten.l1_loss)(_pointwise_loss(2, "|x − y|"))
op_rule(aten.smooth_l1_loss, aten.huber_loss)(_pointwise_loss(4, "|d| < β ? d²/2β : |d| − β/2, d = x − y"))
op_rule(aten.binary_cross_entropy)(_pointwise_loss(6, "−(y·log x + (1 − y)·log(1 − x))"))
op_rule(aten.soft_margin_loss)(_pointwise_loss(4, "log(1 + exp(−y·x))"))


@op_rule(aten.binary_cross_entropy_with_logits)
def bce_with_logits(op: OpEvent) -> Cost:
    """(1 − y)·x + log(1 + exp(−x)) (stable form): 7 ops per element, then the reduction."""
    n = op.args[0].numel
    steps = [step("loss ops", "7*n", term=Term.ELEMENTWISE, n=n)]
    return tuple(steps + _reduce(op.arg(4, "reduction", 1), n))
