"""Upsampling, interpolation, grid sampling and pixel shuffle: forward, backward, receptive field, kinds."""

from __future__ import annotations

import torch
from torch import nn

from nbcount.derive import step
from nbcount.rules.fields_window import pixel_shuffle, resample
from nbcount.rules.registry import Cost, OpRule, expects, field_rule, ignore, kind, op_rule
from nbcount.types import OpEvent, Part, Term

aten = torch.ops.aten

NEAREST = (aten.upsample_nearest1d, aten.upsample_nearest2d, aten.upsample_nearest3d,
           aten._upsample_nearest_exact1d, aten._upsample_nearest_exact2d, aten._upsample_nearest_exact3d)
LINEAR = (aten.upsample_linear1d,)
BILINEAR = (aten.upsample_bilinear2d, aten._upsample_bilinear2d_aa)
TRILINEAR = (aten.upsample_trilinear3d,)
BICUBIC = (aten.upsample_bicubic2d, aten._upsample_bicubic2d_aa)

ignore("nearest-neighbour upsampling copies values: no arithmetic", *NEAREST)


def _interpolation(points: int, name: str) -> OpRule:
    lerps = points - 1

    def rule(op: OpEvent) -> Cost:
        return (step("interpolation ops", "3*L*n_out", term=Term.INTERPOLATE, L=lerps,
                     n_out=op.outputs[0].numel, note=f"{lerps} lerps of 3 ops each per output ({name})"),)

    rule.__doc__ = f"{name}: {lerps} lerps per output, each a − w·(a − b) = 3 ops: 3·{lerps}·n_out"
    return rule


op_rule(*LINEAR)(_interpolation(2, "linear"))
op_rule(*BILINEAR)(_interpolation(4, "bilinear"))
op_rule(*TRILINEAR)(_interpolation(8, "trilinear"))
op_rule(aten.grid_sampler_2d)(_interpolation(4, "bilinear grid sample"))
op_rule(aten.grid_sampler_3d)(_interpolation(8, "trilinear grid sample"))


@op_rule(*BICUBIC)
def bicubic(op: OpEvent) -> Cost:
    """Bicubic: 4 cubic rows + 1 cubic column, each 4 multiplies + 3 adds = 35 ops per output."""
    return (step("interpolation ops", "35*n_out", term=Term.INTERPOLATE, n_out=op.outputs[0].numel),)


@op_rule(aten.upsample_nearest1d_backward, aten.upsample_nearest2d_backward, aten.upsample_nearest3d_backward,
         aten._upsample_nearest_exact1d_backward, aten._upsample_nearest_exact2d_backward,
         aten._upsample_nearest_exact3d_backward)
def upsample_nearest_backward(op: OpEvent) -> Cost:
    """Each ∂y element is added to its source: n_out adds."""
    return (step("∂x adds", "n_out", term=Term.INTERPOLATE, part=Part.INPUT, n_out=op.args[0].numel),)


@op_rule(aten.upsample_linear1d_backward, aten.upsample_bilinear2d_backward, aten.upsample_trilinear3d_backward)
def upsample_linear_backward(op: OpEvent) -> Cost:
    """Each ∂y element is weighted and added to its P = 2^axes sources: 2·P·n_out."""
    axes = len(op.args[0].shape) - 2
    return (step("∂x ops", "2*P*n_out", term=Term.INTERPOLATE, part=Part.INPUT, P=2**axes,
                 n_out=op.args[0].numel),)


@op_rule(aten.upsample_bicubic2d_backward)
def upsample_bicubic_backward(op: OpEvent) -> Cost:
    """Each ∂y element is weighted and added to its 16 sources: 2·16·n_out."""
    return (step("∂x ops", "2*16*n_out", term=Term.INTERPOLATE, part=Part.INPUT, n_out=op.args[0].numel),)


field_rule(*NEAREST, *LINEAR, *BILINEAR, *TRILINEAR, *BICUBIC)(resample)
field_rule(aten.pixel_shuffle, aten.pixel_unshuffle)(pixel_shuffle)
kind("upsample", aten.upsample_nearest2d, aten.upsample_bilinear2d, nn.Upsample)


@expects(nn.PixelShuffle)
def pixel_shuffle_input(m: nn.PixelShuffle) -> str:
    """PixelShuffle expects channels divisible by r²."""
    r = m.upscale_factor
    return f"(*, C·{r * r}, H, W): channels divisible by upscale_factor²={r * r}"


@expects(nn.Upsample)
def upsample_input(m: nn.Upsample) -> str:
    """Upsample expects a batched 1-d, 2-d or 3-d input."""
    return "(N, C, L), (N, C, H, W) or (N, C, D, H, W)"
