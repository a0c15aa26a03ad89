"""Pooling (max, average, adaptive) and upsampling / interpolation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nbcount.derive import step
from nbcount.rules import Cost, OpRule, ignore, op_rule
from nbcount.types import OpEvent, Term

_POOL = Term.POOL.value


def _window(kernel: int | Sequence[int], ndim: int) -> list[int]:
    ks = [kernel] * ndim if isinstance(kernel, int) else list(kernel)
    return ks * ndim if len(ks) == 1 else ks


def _spatial_dims(op: OpEvent) -> int:
    """Spatial axes of a pooling op: 1, 2 or 3 from the name (inputs may be unbatched)."""
    return int(op.op.split("pool")[1][0])


def _window_symbols(ks: list[int]) -> dict[str, Any]:
    names = ("K_d", "K_h", "K_w")[-len(ks):] if len(ks) <= 3 else [f"K_{i}" for i in range(len(ks))]
    return dict(zip(names, ks))


@op_rule("aten.max_pool1d", "aten.max_pool2d", "aten.max_pool3d", "aten.max_pool1d_with_indices",
         "aten.max_pool2d_with_indices", "aten.max_pool3d_with_indices")
def max_pool(op: OpEvent) -> Cost:
    """Comparisons = n_out·(∏K − 1): each output is the max of a ∏K window."""
    out = op.outputs[0]
    ks = _window_symbols(_window(op.arg(1, "kernel_size"), _spatial_dims(op)))
    return (step("comparisons", f"n_out*({'*'.join(ks)} - 1)", term=_POOL, n_out=out.numel, **ks),)


@op_rule("aten.avg_pool1d", "aten.avg_pool2d", "aten.avg_pool3d")
def avg_pool(op: OpEvent) -> Cost:
    """Adds and divide = n_out·∏K: ∏K − 1 additions and one division per output."""
    out = op.outputs[0]
    ks = _window_symbols(_window(op.arg(1, "kernel_size"), _spatial_dims(op)))
    return (step("pool ops", f"n_out*{'*'.join(ks)}", term=_POOL, n_out=out.numel, **ks),)


@op_rule("aten._adaptive_avg_pool2d", "aten._adaptive_avg_pool3d", "aten.adaptive_avg_pool1d",
         "aten.adaptive_avg_pool2d", "aten.adaptive_avg_pool3d")
def adaptive_avg_pool(op: OpEvent) -> Cost:
    """Adds and divide ≈ n_in + n_out: each input added once, each output divided once (exact if divisible)."""
    return (step("pool ops", "n_in + n_out", term=_POOL, n_in=op.args[0].numel, n_out=op.outputs[0].numel),)


@op_rule("aten.adaptive_max_pool1d", "aten.adaptive_max_pool2d", "aten.adaptive_max_pool3d")
def adaptive_max_pool(op: OpEvent) -> Cost:
    """Comparisons ≈ n_in − n_out (exact for divisible sizes)."""
    return (step("comparisons", "n_in - n_out", term=_POOL, n_in=op.args[0].numel, n_out=op.outputs[0].numel),)


ignore("nearest-neighbour upsampling copies values: no arithmetic",
       "aten.upsample_nearest1d", "aten.upsample_nearest2d", "aten.upsample_nearest3d",
       "aten._upsample_nearest_exact1d", "aten._upsample_nearest_exact2d", "aten._upsample_nearest_exact3d")


def _interpolation(points: int, name: str) -> OpRule:
    lerps = points - 1

    def rule(op: OpEvent) -> Cost:
        return (step("interpolation ops", "3*L*n_out", term=Term.INTERPOLATE.value, L=lerps,
                     n_out=op.outputs[0].numel, note=f"{lerps} lerps of 3 ops each per output ({name})"),)

    rule.__doc__ = f"{name}: {lerps} lerps per output, each a − w·(a − b) = 3 ops: 3·{lerps}·n_out"
    return rule


op_rule("aten.upsample_linear1d", "aten._upsample_linear1d")(_interpolation(2, "linear"))
op_rule("aten.upsample_bilinear2d", "aten._upsample_bilinear2d_aa")(_interpolation(4, "bilinear"))
op_rule("aten.upsample_trilinear3d")(_interpolation(8, "trilinear"))
op_rule("aten.grid_sampler_2d")(_interpolation(4, "bilinear grid sample"))


@op_rule("aten.upsample_bicubic2d", "aten._upsample_bicubic2d_aa")
def bicubic(op: OpEvent) -> Cost:
    """Bicubic: 4 cubic rows + 1 cubic column, each 4 multiplies + 3 adds = 35 ops per output."""
    return (step("interpolation ops", "35*n_out", term=Term.INTERPOLATE.value, n_out=op.outputs[0].numel),)


