"""Receptive-field rules of windowed ops: convolution, pooling, upsampling, pixel shuffle, padding."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from nbcount.rules.fields import MIX, Field, Flow, at, field_rule
from nbcount.rules.receptive import conv_taps, ratio_period, resample_taps, transposed_taps, window_taps
from nbcount.types import OpEvent

CONV_OPS = ("aten.convolution", "aten._convolution", "aten.convolution_overrideable", "aten.mkldnn_convolution")
MAX_POOL_OPS = ("aten.max_pool1d", "aten.max_pool2d", "aten.max_pool3d", "aten.max_pool1d_with_indices",
                "aten.max_pool2d_with_indices", "aten.max_pool3d_with_indices")
AVG_POOL_OPS = ("aten.avg_pool1d", "aten.avg_pool2d", "aten.avg_pool3d")


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
    """The window of a convolution / pooling op (None for any other op)."""
    x = op.args[0]
    if op.op in CONV_OPS:
        nd = len(op.args[1].shape) - 2
        kind = "transposed" if op.arg(6, "transposed", False) else "conv"
        kernel, stride, padding, dilation = op.args[1].shape[2:], op.arg(3, "stride"), op.arg(4, "padding"), \
            op.arg(5, "dilation")
    elif op.op in MAX_POOL_OPS or op.op in AVG_POOL_OPS:
        nd, kind = int(op.op.split("pool")[1][0]), "pool"
        kernel, stride, padding = op.arg(1, "kernel_size"), op.arg(2, "stride"), op.arg(3, "padding")
        dilation = op.arg(4, "dilation") if op.op in MAX_POOL_OPS else 1
    else:
        return None
    ks = tuple(at(kernel, i) for i in range(nd))
    return Window(kind, len(x.shape) - nd, ks, tuple(at(stride, i, ks[i]) for i in range(nd)),
                  tuple(at(padding, i) for i in range(nd)), tuple(at(dilation, i, 1) for i in range(nd)))


@field_rule(*CONV_OPS, *MAX_POOL_OPS, *AVG_POOL_OPS)
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


@field_rule("aten._adaptive_avg_pool2d", "aten._adaptive_avg_pool3d", "aten.adaptive_avg_pool1d",
            "aten.adaptive_avg_pool2d", "aten.adaptive_avg_pool3d", "aten.adaptive_max_pool1d",
            "aten.adaptive_max_pool2d", "aten.adaptive_max_pool3d")
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


@field_rule(*{f"aten.{p}{n}d" for ps in _RESAMPLE.values() for p in ps for n in (1, 2, 3)} | {
    "aten._upsample_bilinear2d_aa", "aten._upsample_bicubic2d_aa"})
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


@field_rule("aten.pixel_shuffle", "aten.pixel_unshuffle")
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


@field_rule("aten.constant_pad_nd", "aten.reflection_pad1d", "aten.reflection_pad2d", "aten.reflection_pad3d",
            "aten.replication_pad1d", "aten.replication_pad2d", "aten.replication_pad3d", "aten._pad_circular")
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


