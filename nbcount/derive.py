"""Worked derivations as data: a formula over named symbols, the numbers substituted, the value.

A rule computes each number *by* building a Step, so the value shown in the table and the
last line of its derivation are the same object. Formulas are small Python expressions over
the symbols (``nbcount.formula``: ``*``, ``/``, ``+``, ``-``, ``floor(...)``, ``max(...)``);
``nbcount.render`` writes them as text, LaTeX, Markdown and HTML.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nbcount import render
from nbcount.formula import FUNCTIONS, Number, evaluate
from nbcount.symbols import legend
from nbcount.types import Part, Term


@dataclass(frozen=True)
class Step:
    """One line of a derivation: ``label = formula = substituted = value``."""

    label: str
    formula: str
    symbols: tuple[tuple[str, Number], ...]
    value: Number
    term: Term | None = None  # the breakdown category this value contributes to, if any
    note: str = ""
    part: Part | None = None  # backward steps: the gradient this value computes (∂input or ∂weight)
    names: tuple[tuple[str, str], ...] = ()  # symbol -> the text shown for it (a part's dotted name)
    where: tuple[tuple[str, str], ...] = ()  # symbol -> its meaning, where it differs from nbcount.symbols

    @property
    def substituted(self) -> str:
        """The formula with each symbol replaced by its number."""
        return render.substituted(self)

    @property
    def shown_formula(self) -> str:
        """The formula as text: ``·`` for ``*``, ``⌊ ⌋``, parts by their names (``layer1.0 + layer1.1``)."""
        return render.shown_formula(self)

    def to_text(self) -> str:
        """``label = C_out·(C_in·K) + C_out = 8·(3·9) + 8 = 224``."""
        return render.step_text(self)

    def __str__(self) -> str:
        return self.to_text()

    def to_latex(self) -> str:
        """The step as one LaTeX equation line (symbols subscripted, ``\\cdot``, ``\\lfloor``)."""
        return render.step_latex(self)


def step(label: str, formula: str, *, term: Term | None = None, note: str = "", part: Part | None = None,
         where: dict[str, str] | None = None, **symbols: Any) -> Step:
    """Evaluate `formula` over `symbols` and keep every stage for display.

    `where` gives the meaning of a symbol that means something else here than in ``nbcount.symbols``
    (``H`` = attention heads rather than height).
    """
    meanings = tuple((k, v) for k, v in (where or {}).items() if k in symbols)
    return Step(label, formula, tuple(symbols.items()), evaluate(formula, symbols), term, note, part, (), meanings)


def given(label: str, value: Number, *, term: Term | None = None, note: str = "") -> Step:
    """A step that states a value without a formula (a sum carried over, a measured size)."""
    return Step(label, "", (), value, term, note)


def total(label: str, parts: Iterable[tuple[str, Number]], *, term: Term | None = None, note: str = "") -> Step:
    """The sum of named parts: ``label = a + b + c = 1 + 2 + 3 = 6``."""
    items = list(parts)
    if not items:
        return Step(label, "0", (), 0, term, note)
    names: list[str] = []
    for i, (name, _) in enumerate(items):
        symbol = _symbol_name(name, i)
        while symbol in names or keyword.iskeyword(symbol) or symbol in FUNCTIONS:  # repeated labels stay apart
            symbol = f"{symbol}_{i}"
        names.append(symbol)
    symbols = {n: v for n, (_, v) in zip(names, items)}
    shown = tuple((n, name) for n, (name, _) in zip(names, items))  # parts, not symbols: shown by their names
    return Step(label, " + ".join(names), tuple(symbols.items()), sum(symbols.values()), term, note, names=shown)


def _symbol_name(name: str, index: int) -> str:
    """An ASCII identifier for a part (its shown name is kept beside it: ``layer1.0``, ``MACs q·kᵀ``)."""
    clean = re.sub(r"\W", "_", name, flags=re.ASCII)
    if not clean or clean[0].isdigit():
        clean = f"x{index}_{clean}"
    return clean


@dataclass(frozen=True, repr=False)
class Derivation(render.ShownSteps):
    """A titled list of steps; `value` is the last step's value (the number in the table).

    Shown as text, LaTeX, Markdown and HTML by ``nbcount.render`` (``to_text()``, ``to_latex()``, ...).
    """

    subject: str
    steps: tuple[Step, ...]
    unit: str = ""

    @property
    def value(self) -> Number:
        """The value the derivation ends with."""
        return self.steps[-1].value if self.steps else 0

    @property
    def legend(self) -> tuple[tuple[str, str], ...]:
        """(symbol, meaning) of the symbols its steps define with ``where`` (see nbcount.symbols)."""
        return legend(self.steps, glossary=False)

    @property
    def blocks(self) -> list[render.Block]:
        """Its steps as one untitled block."""
        return [(None, self.steps)]
