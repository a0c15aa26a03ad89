"""How a count grows with the input: count at a few sizes, fit the exact polynomial, check it on the rest.

Counts are integer polynomials of the sequence length (a transformer: a·L + b·L²) or of the resolution
when every stride divides it. The fit is exact rational arithmetic through the fewest points that
reproduce every other counted size; a size it was not fitted on is a check, never a tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import torch

from nbcount.again import count_at
from nbcount.derive import Derivation, Step, given, step
from nbcount.render import fmt

if TYPE_CHECKING:
    from torch import nn

    from nbcount.report import Report
    from nbcount.types import TensorMeta

_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def fit_polynomial(xs: list[int], ys: list[int]) -> tuple[Fraction, ...] | None:
    """Coefficients c_0..c_d of the lowest-degree polynomial through every (x, y), or None (needs one spare point)."""
    for degree in range(len(xs) - 1):
        coefficients = _solve([[Fraction(x) ** p for p in range(degree + 1)] for x in xs[:degree + 1]],
                              [Fraction(y) for y in ys[:degree + 1]])
        if all(_evaluate(coefficients, x) == y for x, y in zip(xs, ys)):
            while len(coefficients) > 1 and coefficients[-1] == 0:
                coefficients = coefficients[:-1]
            return tuple(coefficients)
    return None


def _solve(matrix: list[list[Fraction]], rhs: list[Fraction]) -> list[Fraction]:
    """Gauss-Jordan elimination over the rationals (a Vandermonde system with distinct x is invertible)."""
    n = len(rhs)
    rows = [row[:] + [b] for row, b in zip(matrix, rhs)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        rows[col] = [v / rows[col][col] for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col])]
    return [rows[i][n] for i in range(n)]


def _evaluate(coefficients: tuple[Fraction, ...] | list[Fraction], x: int | Fraction) -> Fraction:
    return sum((c * Fraction(x) ** p for p, c in enumerate(coefficients)), Fraction(0))


@dataclass(frozen=True)
class ScalingFit:
    """count(x) = Σ c_p·x^p, fitted exactly on counted sizes; callable, with a derivation and a chart."""

    variable: str
    description: str
    sizes: tuple[int, ...]
    counts: tuple[int, ...]
    coefficients: tuple[Fraction, ...]
    unit: str

    def __call__(self, x: int) -> int | Fraction:
        """The fitted count at size `x` (an int whenever the count is whole)."""
        value = _evaluate(self.coefficients, x)
        return int(value) if value.denominator == 1 else value

    @property
    def degree(self) -> int:
        """Highest power of the size with a non-zero coefficient."""
        return len(self.coefficients) - 1

    def term(self, power: int, x: int) -> Fraction:
        """The contribution c_p·x^p of one power at size `x`."""
        return self.coefficients[power] * Fraction(x) ** power

    @property
    def formula(self) -> str:
        """``FLOPs(L) = 4,096·L² + 1,234,567·L`` with the exact coefficients."""
        parts = []
        for p in range(self.degree, -1, -1):
            c = self.coefficients[p]
            if c == 0:
                continue
            number = fmt(int(c)) if c.denominator == 1 else f"{c.numerator:,}/{c.denominator:,}"
            power = "" if p == 0 else self.variable + (str(p).translate(_SUPERSCRIPTS) if p > 1 else "")
            parts.append(f"{number}·{power}" if power else number)
        return f"{self.unit}({self.variable}) = " + (" + ".join(parts) or "0")

    def crossover(self) -> int | None:
        """Smallest size at which the top power's term is at least all the others together (None: never)."""
        if self.degree < 1 or self.coefficients[-1] <= 0:
            return None
        def top_wins(x: int) -> bool:
            return self.term(self.degree, x) >= sum(self.term(p, x) for p in range(self.degree))
        high = 1
        while not top_wins(high):  # double until the top term wins, then bisect back
            high *= 2
            if high > 2**62:
                return None
        low = high // 2  # 0, or a size where the top term still lost
        while low + 1 < high:
            mid = (low + high) // 2
            low, high = (low, mid) if top_wins(mid) else (mid, high)
        return high

    @property
    def derivation(self) -> Derivation:
        """Each counted size recomputed from the exact coefficients, and the crossover."""
        q = math.lcm(*(c.denominator for c in self.coefficients))
        powers = [p for p in range(self.degree, -1, -1) if self.coefficients[p] != 0]
        v = self.variable
        poly = " + ".join(f"c_{p}*{v}**{p}" if p > 1 else f"c_{p}*{v}" if p == 1 else "c_0" for p in powers) or "0"
        formula = f"({poly})//q" if q > 1 else poly
        symbols: dict[str, Any] = {f"c_{p}": int(self.coefficients[p] * q) for p in powers}
        if q > 1:
            symbols["q"] = q
        where = {v: self.description, **{f"c_{p}": f"the exact coefficient of {v}^{p}" for p in powers}}
        if q > 1:
            where["q"] = "the coefficients' common denominator"
        steps: list[Step] = []
        for x, counted in zip(self.sizes, self.counts):
            s = step(f"{self.unit}({v}={x:,})", formula, where=where, **{**symbols, v: x})
            steps.append(replace(s, note="counted: the same" if s.value == counted else f"counted {counted:,}"))
        cross = self.crossover()
        if cross is not None and self.degree >= 2:
            steps.append(given(f"{v} where the {v}^{self.degree} term dominates", cross,
                               note=f"from here on c_{self.degree}·{v}^{self.degree} ≥ all lower terms together"))
        subject = (f"{self.formula}: exact through {self.degree + 1} of the {len(self.sizes)} counted sizes "
                   f"({self.description}), checked on the others")
        return Derivation(subject, tuple(steps), self.unit)

    def chart(self, upto: int | None = None) -> Any:
        """matplotlib figure: counted sizes, the fit, each power's term, and the crossover."""
        import matplotlib.pyplot as plt

        cross = self.crossover()
        top = upto or max(max(self.sizes), 2 * (cross or 0))
        xs = list(range(1, top + 1, max(1, top // 200)))
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(xs, [float(_evaluate(self.coefficients, x)) for x in xs], label=self.formula)
        for p in range(self.degree + 1):
            if self.coefficients[p] != 0 and p > 0:
                ax.plot(xs, [float(self.term(p, x)) for x in xs], "--", label=f"{self.variable}^{p} term")
        ax.plot(self.sizes, self.counts, "o", label="counted")
        if cross is not None and self.degree >= 2:
            ax.axvline(cross, color="grey", linestyle=":", label=f"{self.variable} = {cross:,}")
        ax.set_xlabel(self.description)
        ax.set_ylabel(self.unit)
        ax.legend(fontsize=7)
        fig.tight_layout()
        plt.close(fig)
        return fig

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.derivation._repr_mimebundle_(include, exclude)

    def __str__(self) -> str:
        return self.derivation.to_text()


_DESCRIPTIONS = {"L": "sequence length", "R": "resolution (every spatial axis)", "S": "key/value length",
                 "N": "batch", "H": "height", "W": "width", "D": "depth", "E": "embedding width", "C": "channels"}


def _axis_names(report: Report, index: int, t: TensorMeta) -> tuple[str, ...]:
    """The input's axes as the model's own call sees them: (N, L) ids, (N, L, E) or (L, N, E), (N, C, H, W)."""
    from nbcount.rules.shapes import dim_names_of

    if not t.dtype.startswith(("float", "bfloat", "complex")):
        ids = {1: ("L",), 2: ("N", "L")}
        return ids.get(len(t.shape)) or dim_names_of(report.rows[0].call, t)
    return dim_names_of(report.rows[0].call, t, 0) if report.rows else tuple(f"d{k}" for k in range(len(t.shape)))


def _spatial(names: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(k for k, n in enumerate(names) if n in ("D", "H", "W")) if "C" in names else ()


def varied_axes(report: Report, axis: Any = None) -> tuple[dict[int, tuple[int, ...]], str, str]:
    """Which axes of which inputs vary together: the named axis (``"L"``, ``"R"`` = every spatial axis) or a
    position of the first input, in every input that has it at the same size (q, k, v of self-attention)."""
    inputs = report.trace.input_tensors
    names = [_axis_names(report, k, t) for k, t in enumerate(inputs)]
    if axis is None:
        spatial = _spatial(names[0])
        axis = "R" if len(spatial) > 1 else "L" if "L" in names[0] else len(inputs[0].shape) - 1
    if isinstance(axis, str):
        wanted = {"R": ("D", "H", "W")}.get(axis, (axis,))
        first = [k for k, n in enumerate(names[0]) if n in wanted]
        if not first:
            raise ValueError(f"the first input {inputs[0].shape} has no axis {axis!r}: its axes are "
                             f"{', '.join(names[0])} (give axis= one of them, 'R' for every spatial axis, or a "
                             "position)")
        size = inputs[0].shape[first[0]]
        chosen = {k: tuple(a for a, n in enumerate(names[k]) if n in wanted and t.shape[a] == size)
                  for k, t in enumerate(inputs)}
        variable, description = axis, _DESCRIPTIONS.get(axis, f"axis {axis}")
    else:
        positions = (axis,) if isinstance(axis, int) else tuple(axis)
        size = inputs[0].shape[positions[0]]
        chosen = {0: positions}
        chosen.update({k: tuple(a for a in positions if a < len(t.shape) and t.shape[a] == size and
                                len(t.shape) == len(inputs[0].shape)) for k, t in enumerate(inputs) if k})
        variable, description = "n", f"size of axis {', '.join(map(str, positions))}"
    chosen = {k: v for k, v in chosen.items() if v}
    if len(chosen) > 1:
        description += f" of inputs {', '.join(str(k) for k in chosen)} together"
    return chosen, variable, description


def _default_sizes(base: int, spatial: bool) -> list[int]:
    unit = 1
    while spatial and unit < 32 and base % (unit * 2) == 0:
        unit *= 2
    sizes = sorted({max(unit, (base * k // 6) // unit * unit) for k in range(1, 7)})
    return sizes if len(sizes) >= 4 else list(range(max(1, base - 5), max(base, 6) + 1))


def scaling(report: Report, sizes: Any = None, axis: Any = None, convention: str | None = None,
            model: nn.Module | None = None) -> ScalingFit:
    """Count the model (`model`, by default the one `report` counted) as `report` counted it, at several sizes of
    one axis (every input that has it), and fit the exact polynomial of the count in the size.

    axis: a name of the input's layout (``"L"``, ``"H"``, ``"R"`` for every spatial axis) or a position of the
    first input; by default L for sequences and R for images.
    """
    if not report.trace.input_tensors:
        raise ValueError("scaling needs a report made by nbcount.count() from input tensors")
    again = count_at(report, model)
    dtypes = [getattr(torch, t.dtype) for t in report.trace.input_tensors]
    chosen, variable, description = varied_axes(report, axis)
    first = report.trace.input_tensors[0]
    base = first.shape[chosen[0][0]]
    sizes = sorted(set(sizes)) if sizes is not None else _default_sizes(base, len(chosen[0]) > 1)
    counts = []
    for size in sizes:
        shapes = [list(t.shape) for t in report.trace.input_tensors]
        for k, axes in chosen.items():
            for a in axes:
                shapes[k][a] = size
        counted = again([tuple(s) for s in shapes], dtypes)
        counts.append(_quantity(counted, convention))
    coefficients = fit_polynomial(sizes, counts)
    if coefficients is None:
        raise ValueError(f"the counts at {sizes} are not one polynomial of degree < {len(sizes) - 1}: a stride or "
                         "a floor changes the shape arithmetic between them; use sizes that every stride divides")
    unit = (report.convention if convention is None else report.recount(convention).convention).unit
    return ScalingFit(variable, description, tuple(sizes), tuple(counts), coefficients, unit)


def _quantity(report: Report, convention: str | None) -> int:
    """The training step's count when the report counted one, else the forward count."""
    if report.training is not None:
        value = report.training.flops(convention)
        if value is None:
            raise ValueError(f"the {convention} convention counts the forward pass only: no training step to fit")
        return int(value)
    return (report.recount(convention) if convention else report).headline.value
