"""Normalisation layers, at the aten level (BatchNorm, LayerNorm, GroupNorm, InstanceNorm).

With running statistics (BatchNorm in eval) the normalisation folds into y = a·x + b per channel:
2 ops per element. With statistics computed from the batch: mean (1), centre (1), square and
accumulate (2), scale by 1/σ (1) = 5 ops per element, plus 2 for the affine γ·x̂ + β.
RMSNorm decomposes into pointwise ops and reductions, counted by their own rules.
"""

from __future__ import annotations

from nbcount.derive import step
from nbcount.rules import Cost, op_rule
from nbcount.types import OpEvent, Term

_NORM = Term.NORM.value


def _normalise(n: int, affine: bool, batch_stats: bool) -> Cost:
    steps = []
    if batch_stats:
        steps.append(step("normalise (batch statistics)", "5*n", term=_NORM, n=n,
                          note="mean, centre, square, accumulate, scale"))
    else:
        steps.append(step("normalise (running statistics)", "2*n", term=_NORM, n=n, note="y = a·x + b folded"))
        return tuple(steps)
    if affine:
        steps.append(step("affine γ·x̂ + β", "2*n", term=_NORM, n=n))
    return tuple(steps)


@op_rule("aten.native_batch_norm", "aten._native_batch_norm_legit", "aten._native_batch_norm_legit_functional",
         "aten.batch_norm", "aten.cudnn_batch_norm", "aten.miopen_batch_norm", "aten._batch_norm_with_update",
         "aten._batch_norm_no_update", "aten._native_batch_norm_legit_no_training")
def batch_norm(op: OpEvent) -> Cost:
    """Eval: 2·n (folded scale and shift); training: 5·n + 2·n if affine."""
    x, weight = op.args[0], op.arg(1, "weight")
    training = _batch_norm_training(op)
    return _normalise(x.numel, weight is not None, batch_stats=training)


def _batch_norm_training(op: OpEvent) -> bool:
    if op.op == "aten._native_batch_norm_legit_no_training" or op.op == "aten._batch_norm_no_update":
        return False
    if op.op == "aten._batch_norm_with_update":
        return True
    if op.op in ("aten._native_batch_norm_legit", "aten._native_batch_norm_legit_functional"):
        running_mean = op.args[3] if len(op.args) > 3 else None
        return bool(op.args[5]) if running_mean is not None and len(op.args) > 5 else True
    return bool(op.arg(5, "training", True))


@op_rule("aten.native_layer_norm", "aten.layer_norm")
def layer_norm(op: OpEvent) -> Cost:
    """5·n statistics and normalisation, + 2·n for γ·x̂ + β when elementwise-affine."""
    return _normalise(op.args[0].numel, op.arg(2, "weight") is not None, batch_stats=True)


@op_rule("aten.native_group_norm", "aten.group_norm")
def group_norm(op: OpEvent) -> Cost:
    """5·n statistics and normalisation, + 2·n for γ·x̂ + β when affine."""
    return _normalise(op.args[0].numel, op.arg(1, "weight") is not None, batch_stats=True)


@op_rule("aten._fused_rms_norm", "aten.rms_norm")
def rms_norm(op: OpEvent) -> Cost:
    """RMSNorm: square and accumulate (2), scale by 1/rms (1) = 3·n, + n for the weight."""
    n = op.args[0].numel
    steps = [step("normalise (RMS)", "3*n", term=_NORM, n=n)]
    if op.arg(2, "weight") is not None:
        steps.append(step("weight γ·x̂", "n", term=_NORM, n=n))
    return tuple(steps)
