"""Worked derivations: a formula over named symbols, the numbers substituted, the value.

A rule computes each number *by* building a Step, so the value shown in the table and the
last line of its derivation are the same object. Formulas are small Python expressions over
the symbols (``*``, ``/``, ``+``, ``-``, ``floor(...)``, ``max(...)``); they are rendered
with ``·``, ``⌊ ⌋`` and subscripts for text, LaTeX and Markdown.
"""

from __future__ import annotations

import functools
import html
import keyword
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nbcount.types import Part, Term

Number = int | float

_SAFE_FUNCS = {"floor": math.floor, "ceil": math.ceil, "max": max, "min": min, "prod": math.prod}
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def fmt(value: Number) -> str:
    """A number with thousands separators (ints) or up to 4 significant decimals (floats)."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.1f}"
    return f"{int(value):,}"


@functools.lru_cache(maxsize=4096)
def _compiled(formula: str) -> Any:
    """Each formula is compiled once (a rule evaluates the same few formulas for every layer)."""
    return compile(formula, "<formula>", "eval")


def _evaluate(formula: str, symbols: dict[str, Number]) -> Number:
    value = eval(_compiled(formula), {"__builtins__": {}}, {**_SAFE_FUNCS, **symbols})  # noqa: S307 - our formulas
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _replace_symbols(formula: str, render: dict[str, str]) -> str:
    return _SYMBOL.sub(lambda m: render.get(m.group(0), m.group(0)), formula)


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
        return _replace_symbols(self.formula, {k: fmt(v) for k, v in self.symbols})

    @property
    def shown_formula(self) -> str:
        """The formula as text: ``·`` for ``*``, ``⌊ ⌋``, parts by their names (``layer1.0 + layer1.1``)."""
        text = _pretty(self.formula)
        return _replace_symbols(text, dict(self.names)) if self.names else text

    def to_text(self) -> str:
        """``label = C_out·(C_in·K) + C_out = 8·(3·9) + 8 = 224``."""
        parts = [self.label, self.shown_formula]
        if self.symbols:
            parts.append(_pretty(self.substituted))
        parts.append(fmt(self.value))
        line = " = ".join(_dedupe(parts))
        return f"{line}    ({self.note})" if self.note else line

    def __str__(self) -> str:
        return self.to_text()

    def to_latex(self) -> str:
        """The step as one LaTeX equation line (symbols subscripted, ``\\cdot``, ``\\lfloor``)."""
        parts = [_latex_text(self.label), _latex(self.formula, {}, dict(self.names))]
        if self.symbols:
            parts.append(_latex(self.formula, {k: _latex_number(v) for k, v in self.symbols}))
        parts.append(_latex_number(self.value))
        line = " = ".join(_dedupe(parts))
        if self.note:
            line += r" \quad \text{(" + _latex_escape(self.note) + ")}"
        return line


def step(label: str, formula: str, *, term: Term | None = None, note: str = "", part: Part | None = None,
         where: dict[str, str] | None = None, **symbols: Any) -> Step:
    """Evaluate `formula` over `symbols` and keep every stage for display.

    `where` gives the meaning of a symbol that means something else here than in ``nbcount.symbols``
    (``H`` = attention heads rather than height).
    """
    meanings = tuple((k, v) for k, v in (where or {}).items() if k in symbols)
    return Step(label, formula, tuple(symbols.items()), _evaluate(formula, symbols), term, note, part, (), meanings)


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
        while symbol in names or keyword.iskeyword(symbol) or symbol in _SAFE_FUNCS:  # repeated labels stay apart
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


@dataclass(frozen=True)
class Derivation:
    """A titled list of steps; `value` is the last step's value (the number in the table)."""

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
        from nbcount.symbols import legend

        return legend(self.steps, glossary=False)

    def to_text(self) -> str:
        """Plain text: the subject, what the symbols mean, one step per line."""
        from nbcount.symbols import where_lines

        lines = [self.subject, *where_lines(self.legend, "  ")] + ["  " + s.to_text() for s in self.steps]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()

    def to_latex(self) -> str:
        """A LaTeX ``aligned`` block (MathJax-ready)."""
        from nbcount.symbols import where_text

        where = where_text(self.legend)
        rows = [r"&" + _latex_text(where)] if where else []
        rows += [s.to_latex().replace(" = ", " &= ", 1) for s in self.steps]
        body = " \\\\\n".join(rows)
        return "\\begin{aligned}\n" + body + "\n\\end{aligned}"

    def to_markdown(self) -> str:
        """Markdown: the subject in bold, what the symbols mean, each step as a bullet with inline math."""
        from nbcount.symbols import where_text

        lines = [f"**{_md_escape(self.subject)}**", ""]
        where = where_text(self.legend)
        lines += [_md_escape(where), ""] if where else []
        lines += [markdown_step(s) for s in self.steps]
        return "\n".join(lines)

    def to_html(self) -> str:
        """Escaped HTML with the steps as a list of TeX lines for MathJax."""
        from nbcount.symbols import where_text

        where = where_text(self.legend)
        legend = f"<p class='tex2jax_ignore mathjax_ignore'>{html.escape(where)}</p>" if where else ""
        items = "".join(f"<li>\\({html.escape(s.to_latex())}\\)</li>" for s in self.steps)
        return f"<div class='nbcount-derivation'><b>{html.escape(self.subject)}</b>{legend}<ul>{items}</ul></div>"

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, str]:
        return {"text/plain": self.to_text(), "text/html": self.to_html(), "text/markdown": self.to_markdown()}


def markdown_step(st: Step) -> str:
    """``- label $= formula = numbers = value$ (note)``: names stay Markdown text, never inside the math."""
    numbers = [_latex(st.formula, {k: _latex_number(v) for k, v in st.symbols})] if st.symbols else []
    numbers.append(_latex_number(st.value))
    if st.names:  # a sum of named parts: the names as (escaped) text, the numbers as math
        head = f"- {_md_escape(st.label)} = {_md_escape(st.shown_formula)}"
    else:
        head = f"- {_md_escape(st.label)}"
        numbers[:0] = [_latex(st.formula, {})] if st.formula else []
    line = f"{head} $= {' = '.join(_dedupe(numbers))}$"
    return f"{line} ({_md_escape(st.note)})" if st.note else line


def _dedupe(parts: list[str]) -> list[str]:
    out: list[str] = []
    for p in parts:
        if p and (not out or out[-1] != p):
            out.append(p)
    return out


def _pretty(formula: str) -> str:
    text = formula.replace("**", "^").replace("*", "·").replace("//", "/")
    text = re.sub(r"floor\(", "⌊", text)
    return _close_floors(text)


def _close_floors(text: str) -> str:
    out, stack = [], []
    for ch in text:
        if ch == "⌊":
            stack.append("floor")
            out.append(ch)
        elif ch == "(":
            stack.append("paren")
            out.append(ch)
        elif ch == ")":
            kind = stack.pop() if stack else "paren"
            out.append("⌋" if kind == "floor" else ")")
        else:
            out.append(ch)
    return "".join(out)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
                  "%": r"\%", "_": r"\_", "^": r"\^{}", "~": r"\~{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex_text(text: str) -> str:
    return r"\text{" + _latex_escape(text) + "}"


def _latex_number(value: Number) -> str:
    return fmt(value).replace(",", "{,}")


def _latex_symbol(name: str) -> str:
    head, _, tail = name.partition("_")
    return f"{head}_{{{tail.replace('_', ',')}}}" if tail else head


def _latex(formula: str, numbers: dict[str, str], names: dict[str, str] | None = None) -> str:
    def symbol(m: re.Match[str]) -> str:
        name = m.group(0)
        if name in numbers:
            return numbers[name]
        if names and name in names:
            return _latex_text(names[name])
        if name in _SAFE_FUNCS:
            return name
        return _latex_symbol(name)

    text = _SYMBOL.sub(symbol, formula)
    text = text.replace("**", "^").replace("*", r" \cdot ")
    text = text.replace("floor(", r"\lfloor(").replace("ceil(", r"\lceil(")
    return _close_latex_floors(text)


def _close_latex_floors(text: str) -> str:
    out, stack, i = [], [], 0
    while i < len(text):
        for opener, closer in ((r"\lfloor(", r"\rfloor"), (r"\lceil(", r"\rceil")):
            if text.startswith(opener, i):
                stack.append(closer)
                out.append(opener[:-1] + " ")
                i += len(opener)
                break
        else:
            ch = text[i]
            if ch == "(":
                stack.append(")")
            elif ch == ")":
                ch = stack.pop() if stack else ")"
            out.append(ch)
            i += 1
    return "".join(out)


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()#+\-!|<>$])", r"\\\1", text)
