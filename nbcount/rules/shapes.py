"""Output-shape derivations per module type: each rule's docstring is its formula.

``@shape_rule(nn.Conv2d)`` registers a pure function of the call (input shapes and hyper-parameters)
returning one step per output dimension. The caller (nbcount.explain) checks the steps against the
shape the forward pass produced and falls back to `observed` when they disagree, so a formula here can
explain a shape but never change it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from torch import nn

from nbcount.derive import Step, given, step
from nbcount.rules.registry import find_module_rule, shape_rule
from nbcount.rules.table import qualname
from nbcount.types import LayerCall, TensorMeta

ShapeRule = Callable[[LayerCall], tuple[Step, ...]]
_AXES = ("D", "H", "W")


def find_shape_rule(call: LayerCall) -> ShapeRule | None:
    """The rule of the most derived class of the call that has one."""
    return find_module_rule(call, "shape")


def dim_names(ndim: int) -> tuple[str, ...]:
    """Image layout: N, C, then the spatial axes (D, H, W) or L; N, F for 2-D; d0… otherwise."""
    if ndim == 2:
        return ("N", "F")
    if 3 <= ndim <= 5:
        return ("N", "C", *(_AXES[-(ndim - 2):] if ndim > 3 else ("L",)))
    return tuple(f"d{i}" for i in range(ndim))


# modules whose 3-D tensors are (N, C, L): channels first; any other 3-D tensor is a sequence (N, L, E)
_CHANNELS_FIRST = tuple(qualname(c) for c in (
    nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.batchnorm._NormBase,
    nn.GroupNorm, nn.Upsample, nn.modules.dropout._DropoutNd, nn.PixelShuffle, nn.LocalResponseNorm))


_ATTENTION_AXES = {"B": "batch (every leading dimension)", "H": "heads", "E_h": "query/key width per head"}


def dim_names_of(call: LayerCall, tensor: TensorMeta, index: int = 0) -> tuple[str, ...]:
    """The axis names of one of the call's tensors by its layout: (N, C, H, W) for images, (N, L, E) for a
    sequence ((L, N, E) where batch_first=False), (N, L, S) for attention weights, d0… where unknown."""
    ndim = len(tensor.shape)
    if ndim == 4 and not call.params_new and (any("scaled_dot_product" in op.op for op in call.ops) or {
            "aten.bmm", "aten._safe_softmax"} <= {op.op for op in call.ops}):
        return ("B", "H", "L", "E_h")  # q, k, v and the output of a bare attention call
    if index > 0:
        if "torch.nn.modules.activation.MultiheadAttention" in call.classes and ndim == 3:
            return ("N", "L", "S")
        return tuple(f"d{i}" for i in range(ndim))
    if ndim != 3 or any(c in _CHANNELS_FIRST for c in call.classes):
        return dim_names(ndim)
    return ("L", "N", "E") if call.attr("batch_first") is False else ("N", "L", "E")


def observed(call: LayerCall, note: str = "observed in the forward pass") -> tuple[Step, ...]:
    """Any module: the sizes the forward pass produced."""
    steps = []
    for k, t in enumerate(call.out_tensors):
        prefix = f"output {k} " if len(call.out_tensors) > 1 else ""
        names = dim_names_of(call, t, k)
        where = tuple((n, _ATTENTION_AXES[n]) for n in names if n in _ATTENTION_AXES) if names[:2] == ("B", "H") else ()
        steps += [replace(given(f"{prefix}{name}", size, note=note), where=where) for name, size in zip(names, t.shape)]
    return tuple(steps)


def _per_axis(value: Any, n: int, default: int = 0) -> list[Any]:
    if value is None or (isinstance(value, (tuple, list)) and not value):
        return [default] * n
    if isinstance(value, (tuple, list)):
        return list(value) * n if len(value) == 1 else list(value)
    return [value] * n


def _leading(call: LayerCall, channels: tuple[str, int] | None) -> list[Step]:
    x = call.in_tensors[0]
    spatial = len(call.out_tensors[0].shape) - (2 if channels else 1)
    lead = list(x.shape[: len(x.shape) - spatial - (1 if channels else 0)])
    steps = [given("N", n, note="batch, as the input") for n in lead]
    if channels:
        symbols: dict[str, Any] = {channels[0]: channels[1]}
        steps.append(step(channels[0], channels[0], **symbols))
    return steps


def _spatial(call: LayerCall, formula: str, params: dict[str, list[Any]], note: str = "") -> list[Step]:
    x, out = call.in_tensors[0], call.out_tensors[0]
    n = len(out.shape) - 2 if len(out.shape) > 2 else 1
    axes = _AXES[-n:] if n <= 3 else tuple(f"S{i}" for i in range(n))
    steps = []
    for i, axis in enumerate(axes):
        a = axis.lower()
        symbols: dict[str, Any] = {f"{axis}_in": x.shape[len(x.shape) - n + i]}
        symbols.update({f"{k}_{a}": v[i] for k, v in params.items()})
        text = re.sub(r"\b([A-Za-z]+)_x\b", rf"\1_{a}", formula.replace("X_in", f"{axis}_in"))
        steps.append(step(f"{axis}_out", text, note=note, **symbols))
    return steps


@shape_rule(nn.modules.conv._ConvNd)
def conv_shape(call: LayerCall) -> tuple[Step, ...]:
    """H_out = ⌊(H_in + 2p − d·(K − 1) − 1)/s⌋ + 1 per axis; transposed: (H_in − 1)·s − 2p + d·(K − 1) + op + 1."""
    n = len(call.attr("kernel_size"))
    k, s, d = (_per_axis(call.attr(a), n, 1) for a in ("kernel_size", "stride", "dilation"))
    padding = call.attr("padding")
    steps = _leading(call, ("C_out", call.attr("out_channels")))
    if padding == "same":
        x = call.in_tensors[0]
        same: list[Step] = []
        for i, a in enumerate(_AXES[-n:]):
            symbols: dict[str, Any] = {f"{a}_in": x.shape[-n + i]}
            same.append(step(f"{a}_out", f"{a}_in", note="padding='same'", **symbols))
        return tuple(steps + same)
    p = [0] * n if padding == "valid" else _per_axis(padding, n)
    if call.attr("transposed"):
        op = _per_axis(call.attr("output_padding"), n)
        formula = "(X_in - 1)*s_x - 2*p_x + d_x*(K_x - 1) + op_x + 1"
        return tuple(steps + _spatial(call, formula, {"s": s, "p": p, "d": d, "K": k, "op": op}))
    formula = "floor((X_in + 2*p_x - d_x*(K_x - 1) - 1)/s_x) + 1"
    return tuple(steps + _spatial(call, formula, {"p": p, "d": d, "K": k, "s": s}))


@shape_rule(nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)
def pool_shape(call: LayerCall) -> tuple[Step, ...]:
    """H_out = ⌊(H_in + 2p − d·(K − 1) − 1)/s⌋ + 1; ceil_mode: ⌈ ⌉, less one if the last window starts in padding."""
    n = len(call.out_tensors[0].shape) - 2
    k = _per_axis(call.attr("kernel_size"), n)
    s = _per_axis(call.attr("stride"), n) if call.attr("stride") else k
    p, d = _per_axis(call.attr("padding"), n), _per_axis(call.attr("dilation", 1), n, 1)
    rounding = "ceil" if call.attr("ceil_mode") else "floor"
    steps = _leading(call, None)
    ch = call.in_tensors[0].shape[-n - 1]
    steps.append(given("C", ch, note="pooling keeps the channels"))
    formula = f"{rounding}((X_in + 2*p_x - d_x*(K_x - 1) - 1)/s_x) + 1"
    spatial = _spatial(call, formula, {"p": p, "d": d, "K": k, "s": s})
    if rounding == "ceil":
        spatial = [_ceil_fix(st, call, i, n, s, p) for i, st in enumerate(spatial)]
    return tuple(steps + spatial)


def _ceil_fix(st: Step, call: LayerCall, i: int, n: int, s: list[int], p: list[int]) -> Step:
    size_in = call.in_tensors[0].shape[-n + i]
    if (int(st.value) - 1) * s[i] >= size_in + p[i]:
        return step(st.label, "out - 1", out=st.value, note="ceil_mode: the last window would start in the padding")
    return st


@shape_rule(nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
def adaptive_pool_shape(call: LayerCall) -> tuple[Step, ...]:
    """H_out = output_size (None keeps H_in): the windows adapt to the input."""
    out = call.out_tensors[0]
    n = len(out.shape) - 2
    sizes = _per_axis(call.attr("output_size"), n)
    x = call.in_tensors[0]
    steps = _leading(call, None) + [given("C", x.shape[-n - 1], note="pooling keeps the channels")]
    for i, axis in enumerate(_AXES[-n:]):
        if sizes[i] is None:
            kept: dict[str, Any] = {f"{axis}_in": x.shape[-n + i]}
            steps.append(step(f"{axis}_out", f"{axis}_in", note="output_size None", **kept))
        else:
            steps.append(given(f"{axis}_out", sizes[i], note="output_size"))
    return tuple(steps)


@shape_rule(nn.Linear, nn.LazyLinear, nn.Bilinear)
def linear_shape(call: LayerCall) -> tuple[Step, ...]:
    """(*, F_in) → (*, F_out) (Bilinear: (*, I_1), (*, I_2) → (*, O)): every leading dimension is kept."""
    names = dim_names_of(call, call.out_tensors[0])
    x = call.in_tensors[0]
    steps = [given(name, size, note="kept") for name, size in zip(names[:-1], x.shape[:-1])]
    out = "O" if "Bilinear" in call.module_type else "F_out"
    symbols: dict[str, Any] = {out: call.attr("out_features")}
    return tuple(steps + [step(out, out, **symbols)])


@shape_rule(nn.Embedding)
def embedding_shape(call: LayerCall) -> tuple[Step, ...]:
    """(N, L) token ids → (N, L, E): one E-vector per id."""
    x = call.in_tensors[0]
    names = ("N", "L") if len(x.shape) == 2 else ("L",) if len(x.shape) == 1 else tuple(f"d{i}" for i in
                                                                                         range(len(x.shape)))
    steps = [given(name, size, note="as the ids") for name, size in zip(names, x.shape)]
    return tuple(steps + [step("E", "E", E=call.attr("embedding_dim"))])


@shape_rule(nn.Flatten)
def flatten_shape(call: LayerCall) -> tuple[Step, ...]:
    """Dims start_dim … end_dim become one of size ∏ of them."""
    x = call.in_tensors[0]
    nd = len(x.shape)
    start, end = call.attr("start_dim", 1) % nd, call.attr("end_dim", -1) % nd
    names = dim_names(nd)
    steps = [given(names[i], x.shape[i], note="kept") for i in range(start)]
    merged: dict[str, Any] = {names[i]: x.shape[i] for i in range(start, end + 1)}
    steps.append(step("F", "*".join(merged), **merged))
    return tuple(steps + [given(names[i], x.shape[i], note="kept") for i in range(end + 1, nd)])


@shape_rule(nn.Upsample)
def upsample_shape(call: LayerCall) -> tuple[Step, ...]:
    """H_out = size, or ⌊H_in·scale_factor⌋."""
    out = call.out_tensors[0]
    n = len(out.shape) - 2
    steps = _leading(call, None) + [given("C", call.in_tensors[0].shape[1], note="kept")]
    if call.attr("size") is not None:
        sizes = _per_axis(call.attr("size"), n)
        return tuple(steps + [given(f"{a}_out", v, note="size") for a, v in zip(_AXES[-n:], sizes)])
    scale = _per_axis(call.attr("scale_factor"), n, 1)
    return tuple(steps + _spatial(call, "floor(X_in*f_x)", {"f": scale}))


@shape_rule(nn.PixelShuffle)
def pixel_shuffle_shape(call: LayerCall) -> tuple[Step, ...]:
    """(N, C·u², H, W) → (N, C, H·u, W·u) with u the upscale factor."""
    x = call.in_tensors[0]
    r = call.attr("upscale_factor")
    return (given("N", x.shape[0]), step("C_out", "C_in/u**2", C_in=x.shape[-3], u=r),
            step("H_out", "H_in*u", H_in=x.shape[-2], u=r), step("W_out", "W_in*u", W_in=x.shape[-1], u=r))


def same_shape(call: LayerCall) -> tuple[Step, ...]:
    """Output shape = input shape (activations, normalisation, dropout, residual blocks, self-attention)."""
    return observed(call, note="same as the input")


def shape_steps(call: LayerCall) -> tuple[tuple[Step, ...], bool]:
    """The derivation of the call's output shape and whether a formula (not just the observed sizes) gave it."""
    if not call.out_tensors:
        return (), False
    expected = [size for t in call.out_tensors for size in t.shape]
    rule = find_shape_rule(call)
    if rule is not None and len(call.out_tensors) == 1 and call.in_tensors:
        try:
            steps = rule(call)
            if [s.value for s in steps] == expected:
                return steps, True
        except (TypeError, ValueError, IndexError, ZeroDivisionError, KeyError):
            pass
    ins, outs = call.in_tensors, call.out_tensors
    if ins and len(outs) == 1 and ins[0].shape == outs[0].shape:
        return same_shape(call), True
    return observed(call), False


def numel_step(shape: Sequence[int], label: str = "elements", names: Sequence[str] | None = None) -> Step:
    """∏ of a shape's dims, as a step (axes named by `names`, else by the image layout)."""
    names = names or dim_names(len(shape))
    symbols: dict[str, Any] = {n: s for n, s in zip(names, shape)} or {"one": 1}
    where = {n: _ATTENTION_AXES[n] for n in names if n in _ATTENTION_AXES} if tuple(names[:2]) == ("B", "H") else {}
    return step(label, "*".join(symbols), where=where, **symbols) if len(symbols) > 1 else \
        given(label, math.prod(shape))
