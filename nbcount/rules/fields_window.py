"""Receptive-field rules of windowed ops: convolution, pooling, upsampling, pixel shuffle, padding.

A library: the op family modules register these functions against their ops (``field_rule``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from nbcount.rules import args
from nbcount.rules.fields import MIX, Field, Flow
from nbcount.rules.receptive import conv_taps, ratio_period, resample_taps, transposed_taps, window_taps
from nbcount.rules.table import op_facet
from nbcount.types import OpEvent


@dataclass(frozen=True)
class Window:
    """The sliding window of a convolution or pooling op, per spatial axis (first spatial dim `offset`)."""

    kind: str  # "conv", "transposed" or "pool"
    offset: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]


def window_of(op: OpEvent) -> Window | None:
    """The window of a convolution / pooling op (by the op's kind in the table; None for any other op)."""
    kind = op_facet(op.op, "kind")
    if kind == "conv":
        c = args.conv(op)
        return Window("transposed" if c.transposed else "conv", len(c.x.shape) - len(c.kernel), c.kernel, c.stride,
                      c.padding, c.dilation)
    if kind in ("maxpool", "avgpool"):
        w = args.pool_window(op)
        return Window("pool", len(op.args[0].shape) - len(w.kernel), w.kernel, w.stride, w.padding, w.dilation)
    return None


def window(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """Conv / pool: output o reads o·s − p + t·d (t < k): r' = r + (k − 1)·d·j, j' = j·s; transposed: j' = j/s."""
    x = op.args[0]
    f = flow.get(x)
    w = window_of(op)
    if f is None or w is None:
        return (None,) * len(op.outputs)
    per_dim: dict[int, tuple[Any, ...]] = {}
    for i, (k, s, p, d) in enumerate(zip(w.kernel, w.stride, w.padding, w.dilation)):
        if w.kind == "transposed":
            per_dim[w.offset + i] = (transposed_taps(k, s, p, d), s, 1, None)
        else:
            per_dim[w.offset + i] = (conv_taps(k, s, p, d), 1, s, (k - 1) * d * s)
    mixed = (w.offset - 1,) if w.kind != "pool" and w.offset else ()
    return (flow.windowed(f, x.shape, per_dim, mixed=mixed),) * len(op.outputs)


def adaptive_pool(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """Adaptive pooling: output o reads ⌊o·in/out⌋ … ⌈(o + 1)·in/out⌉ − 1 (output 1: the whole axis)."""
    x, out = op.args[0], op.outputs[0]
    f = flow.get(x)
    if f is None:
        return (None,) * len(op.outputs)
    off = len(x.shape) - int(op.op[-2])
    per_dim = {}
    for d in range(off, len(x.shape)):
        if out.shape[d] > 1 and x.shape[d] != out.shape[d]:
            ratio = Fraction(x.shape[d], out.shape[d])
            grow = (ratio.numerator - 1) * ratio.numerator if ratio.denominator == 1 else None
            per_dim[d] = (window_taps(ratio), *ratio_period(ratio), grow)
    whole = {d: (MIX if out.shape[d] == 1 and d >= off else d) for d in range(len(x.shape))}
    field = flow.windowed(flow.remap(f, x.shape, whole), x.shape, per_dim)
    return (field,) * len(op.outputs)


_RESAMPLE = {"nearest": ("upsample_nearest",), "nearest_exact": ("_upsample_nearest_exact",),
             "linear": ("upsample_linear", "upsample_bilinear", "upsample_trilinear", "_upsample_bilinear"),
             "cubic": ("upsample_bicubic", "_upsample_bicubic")}


def _resample_mode(name: str) -> str:
    short = name.removeprefix("aten.")
    for mode, prefixes in _RESAMPLE.items():
        if any(short.startswith(p) for p in prefixes):
            return mode
    raise KeyError(name)


def resample(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """Upsampling: nearest reads ⌊o·r⌋ (r = in/out), linear the two neighbours of r·(o + ½) − ½, cubic four."""
    x, out = op.args[0], op.outputs[0]
    f = flow.get(x)
    if f is None:
        return (None,)
    mode = _resample_mode(op.op)
    nd = len(out.shape) - 2
    linear = mode in ("linear", "cubic")
    align = bool(op.arg(2, "align_corners", False)) if linear else False
    scales = _scales(list(op.args[3 if linear else 2:]), nd)
    per_dim = {}
    for i in range(nd):
        d = 2 + i
        n_in, n_out = x.shape[d], out.shape[d]
        if align:
            ratio = Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)
        elif (scale := scales[i]) is not None and scale > 0:
            ratio = Fraction(1 / scale).limit_denominator(10_000)
        else:
            ratio = Fraction(n_in, n_out)
        if ratio == 0:
            continue
        a, b = ratio_period(ratio)
        per_dim[d] = (resample_taps(mode, ratio, align), a, b, None)
    return (flow.windowed(f, x.shape, per_dim),)


def _scales(rest: list[Any], nd: int) -> list[float | None]:
    if rest and isinstance(rest[0], (tuple, list)):
        return [float(s) if s else None for s in rest[0]]
    values = [float(s) if isinstance(s, (int, float)) and s else None for s in rest[:nd]]
    return values + [None] * (nd - len(values))


def pixel_shuffle(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """Pixel shuffle by r: output o reads ⌊o/r⌋; unshuffle: o·r … o·r + r − 1."""
    x = op.args[0]
    f = flow.get(x)
    if f is None:
        return (None,)
    r = int(op.args[1])
    n = len(x.shape)
    if op.op == "aten.pixel_shuffle":
        spec = (lambda o: [o // r], r, 1, None)
    else:
        spec = (lambda o: [o * r + t for t in range(r)], 1, r, None)
    return (flow.windowed(f, x.shape, {n - 2: spec, n - 1: spec}),)


def pad(op: OpEvent, flow: Flow) -> tuple[Field | None, ...]:
    """Padding by `left` on a dim: output o reads o − left (reflections only change the border)."""
    x = op.args[0]
    f = flow.get(x)
    if f is None:
        return (None,)
    pads = list(op.arg(1, "pad"))
    per_dim = {}
    for i in range(len(pads) // 2):
        left = int(pads[2 * i])
        per_dim[len(x.shape) - 1 - i] = ((lambda o, left=left: [o - left]), 1, 1, None)
    return (flow.windowed(f, x.shape, per_dim),)


