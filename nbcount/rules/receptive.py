"""Receptive-field algebra: where in the input each position of a tensor looks, per spatial axis.

Along one input axis, position o of tensor dim `dim` sees the input pixels
``spans[o mod P] + (o div P)·D`` (P the period, D the step: the jump is D/P). An op that reads the
input positions taps(o), with taps(o + A) = taps(o) + B, gives the hull of those positions' fields;
for a convolution or pooling, taps(o) = {o·s − p + t·d : t < k}, hence r' = r + (k − 1)·d·j, j' = j·s.
Upsampling and transposed convolution make P > 1, and the field then depends on the output position.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

MAX_PERIOD = 4096
Span = tuple[int, int]
Taps = Callable[[int], Iterable[int]]


@dataclass(frozen=True)
class Axis:
    """The receptive field along one input axis of one tensor."""

    dim: int | None  # the tensor dim whose position selects the field; None: not tracked per position
    period: int  # P: the pattern of spans repeats every P positions ...
    step: int  # D: ... shifted by D input pixels (the jump is D/P)
    spans: tuple[Span | None, ...]  # (lo, hi) per phase; untracked: (hull of every element's field,)
    size: int  # the largest field over positions (the number in the table)
    whole: bool = False  # the op mixed every position: the field is the whole input
    exact: bool = True  # False where the positions were guessed (a layout nbcount cannot follow)
    naive: int = 1  # the seed-003 recurrence r + (k − 1)·s with the layer's own stride (a classic mistake)

    @property
    def tracked(self) -> bool:
        """Whether the field is known per position along `dim`."""
        return self.dim is not None

    @property
    def jump(self) -> Fraction:
        """Input pixels between neighbouring positions (the product of strides so far)."""
        return Fraction(self.step, self.period)

    def span(self, x: int) -> Span | None:
        """The input interval seen by position x (any integer: padding positions extrapolate)."""
        m, q = divmod(x, self.period)
        s = self.spans[q]
        return None if s is None else (s[0] + m * self.step, s[1] + m * self.step)

    @property
    def sizes(self) -> tuple[int, ...]:
        """The field size at each phase (0 where a phase sees no input)."""
        return tuple(0 if s is None else s[1] - s[0] + 1 for s in self.spans)

    @property
    def varies(self) -> bool:
        """Whether the field size depends on the output position."""
        return self.tracked and len(set(self.sizes)) > 1

    @property
    def start(self) -> Fraction | None:
        """Centre of the field of the first position (None when untracked or empty)."""
        s = self.spans[0] if self.tracked else None
        return None if s is None else Fraction(s[0] + s[1], 2)


Field = tuple[Axis, ...]


def identity(dim: int) -> Axis:
    """The input itself: position o sees pixel o."""
    return Axis(dim, 1, 1, ((0, 0),), 1)


def hull(spans: Iterable[Span | None]) -> Span | None:
    """The smallest interval holding every span (None if there is none)."""
    real = [s for s in spans if s is not None]
    return (min(s[0] for s in real), max(s[1] for s in real)) if real else None


def _size(spans: Sequence[Span | None]) -> int:
    return max((s[1] - s[0] + 1 for s in spans if s is not None), default=0)


def _reduced(period: int, step: int, spans: tuple[Span | None, ...]) -> tuple[int, int, tuple[Span | None, ...]]:
    """The shortest period that describes the same fields."""
    for p in range(1, period):
        if period % p or (step * p) % period:
            continue
        shift = step * p // period
        if all(_shifted(spans[q], shift) == spans[q + p] for q in range(period - p)):
            return p, shift, spans[:p]
    return period, step, spans


def _shifted(s: Span | None, d: int) -> Span | None:
    return None if s is None else (s[0] + d, s[1] + d)


def positions_hull(ax: Axis, n: int) -> Span | None:
    """The union of the fields of positions 0 … n−1."""
    if not ax.tracked:
        return ax.spans[0]
    first = range(min(n, ax.period))
    last = range(max(n - ax.period, 0), n)
    return hull([ax.span(x) for x in (*first, *last)])


def lose(ax: Axis, n: int) -> Axis:
    """A view merged this dim with others: each element keeps its field, positions are no longer known."""
    if not ax.tracked:
        return ax
    sizes = [s for q, s in enumerate(ax.sizes) if q < max(n, 1)]
    return Axis(None, 1, 0, (positions_hull(ax, n),), max(sizes, default=0), ax.whole, ax.exact, ax.naive)


def mix(ax: Axis, n: int, extent: int) -> Axis:
    """Every output reads all n positions: the field is their union, clipped to the input."""
    h = positions_hull(ax, n) if ax.tracked else ax.spans[0]
    if h is None:
        return Axis(None, 1, 0, (None,), 0, exact=ax.exact)
    clip = (max(h[0], 0), min(h[1], extent - 1))
    size = max(clip[1] - clip[0] + 1, 0)
    return Axis(None, 1, 0, (clip,), size, size >= extent, ax.exact, extent if size >= extent else size)


def compose(ax: Axis, taps: Taps, a: int, b: int, naive: int | None = None) -> Axis:
    """The field of an op whose output o reads positions taps(o), with taps(o + a) = taps(o) + b."""
    assert ax.tracked and a > 0 and b > 0
    n = ax.period // math.gcd(b, ax.period)
    period, step = a * n, b * n // ax.period * ax.step
    if period > MAX_PERIOD:
        return replace(lose(ax, period), exact=False)
    spans = tuple(hull(ax.span(x) for x in taps(q)) for q in range(period))
    period, step, spans = _reduced(period, step, spans)
    return Axis(ax.dim, period, step, spans, _size(spans), ax.whole, ax.exact, ax.naive if naive is None else naive)


def merge(axes: Sequence[Axis], n: int, extent: int) -> Axis:
    """An output that reads one element of each input (add, mul, cat): the union of their fields."""
    if len(axes) == 1:
        return axes[0]
    naive = max(a.naive for a in axes)
    exact = all(a.exact for a in axes)
    whole = [a for a in axes if a.whole]
    if whole:
        return replace(whole[0], naive=naive, exact=exact)
    dims = {a.dim for a in axes}
    jumps = {a.jump for a in axes}
    if len(dims) == 1 and None not in dims and len(jumps) == 1:
        period = math.lcm(*(a.period for a in axes))
        if period <= MAX_PERIOD:
            step = int(jumps.pop() * period)
            spans = tuple(hull(a.span(q) for a in axes) for q in range(period))
            p, d, spans = _reduced(period, step, spans)
            return Axis(axes[0].dim, p, d, spans, _size(spans), False, exact, naive)
    lost = [lose(a, n) for a in axes]
    sizes = {a.size for a in lost}
    h = hull(a.spans[0] for a in lost)
    return Axis(None, 1, 0, (h,), max(sizes), False, exact and len(sizes) == 1, naive)


def conv_taps(k: int, s: int, p: int, d: int) -> Taps:
    """Convolution / pooling: output o reads o·s − p + t·d for t < k."""
    return lambda o: [o * s - p + t * d for t in range(k)]


def transposed_taps(k: int, s: int, p: int, d: int) -> Taps:
    """Transposed convolution: output o receives input i wherever o = i·s − p + t·d."""
    return lambda o: [(o + p - t * d) // s for t in range(k) if (o + p - t * d) % s == 0]


def window_taps(ratio: Fraction) -> Taps:
    """Adaptive pooling: output o reads ⌊o·in/out⌋ … ⌈(o + 1)·in/out⌉ − 1."""
    return lambda o: range(math.floor(o * ratio), math.ceil((o + 1) * ratio))


def resample_taps(mode: str, ratio: Fraction, align_corners: bool) -> Taps:
    """Upsampling: nearest reads ⌊o·r⌋; linear reads ⌊x⌋ and ⌊x⌋ + 1 (x = r·(o + ½) − ½); cubic 4 points."""
    def taps(o: int) -> list[int]:
        if mode == "nearest":
            return [math.floor(o * ratio)]
        if mode == "nearest_exact":
            return [math.floor((o + Fraction(1, 2)) * ratio)]
        x = o * ratio if align_corners else (o + Fraction(1, 2)) * ratio - Fraction(1, 2)
        i = math.floor(x)
        if x == i:
            return [i]
        return [i - 1, i, i + 1, i + 2] if mode == "cubic" else [i, i + 1]
    return taps


def ratio_period(ratio: Fraction) -> tuple[int, int]:
    """(A, B) with taps(o + A) = taps(o) + B for a resampling ratio B/A."""
    return ratio.denominator, ratio.numerator


def as_number(value: Fraction | None) -> int | float | None:
    """A Fraction as an int when whole, else a float."""
    if value is None:
        return None
    return int(value) if value.denominator == 1 else float(value)
