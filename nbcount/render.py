"""Derivations as text, LaTeX, Markdown and HTML: the rendering of Step, Derivation, Section and Explanation.

``nbcount.derive`` and ``nbcount.explain`` hold the data (steps, their symbols and values); everything that
writes them out lives here, over one escaping module (``nbcount.escape``). A derivation is a subject, a legend
(what the symbols mean) and blocks of steps: a Derivation is one untitled block, an Explanation one titled
block per section. Formulas are shown with ``·``, ``⌊ ⌋`` and subscripts; numbers with thousands separators.
:class:`Shown` gives a value with ``to_text()`` / ``to_html()`` its ``str``, ``repr`` and notebook display.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from nbcount import escape
from nbcount.formula import FUNCTIONS, SYMBOL, Number, replace_symbols
from nbcount.symbols import where_lines, where_text

if TYPE_CHECKING:
    from nbcount.derive import Step

Legend = Sequence[tuple[str, str]]
Block = tuple[str | None, Sequence["Step"]]  # (section title or None, its steps)


class Shown:
    """A value shown by its ``to_text()`` (str, repr, text/plain) and ``to_html()`` (text/html)."""

    def to_text(self) -> str:
        """Plain text (every displayable value has one)."""
        raise NotImplementedError

    def to_html(self) -> str:
        """Escaped HTML; by default the text, preformatted."""
        return pre_html(self.to_text())

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, str]:
        return {"text/plain": self.to_text(), "text/html": self.to_html()}


def pre_html(text: str) -> str:
    """Plain text as an escaped ``<pre>`` block, kept away from MathJax."""
    return f"<pre class='{escape.NO_MATH}'>{escape.html(text)}</pre>"


def text_bundle(text: str) -> dict[str, str]:
    """The notebook display of a value whose only view is text: text/plain and an escaped ``<pre>``."""
    return {"text/plain": text, "text/html": pre_html(text)}


# numbers and formulas --------------------------------------------------------------------------------------
def fmt(value: Number) -> str:
    """A number with thousands separators (ints) or up to 4 significant decimals (floats)."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.1f}"
    return f"{int(value):,}"


def latex_number(value: Number) -> str:
    """A number for math mode: ``{,}`` keeps the thousands separators from spacing out."""
    return fmt(value).replace(",", "{,}")


def latex_text(text: str) -> str:
    """Text inside math mode: ``\\text{...}`` with LaTeX's special characters escaped."""
    return r"\text{" + escape.latex(text) + "}"


def pretty(formula: str) -> str:
    """A formula as text: ``·`` for ``*``, ``^`` for ``**``, ``⌊ ⌋`` for floor."""
    text = formula.replace("**", "^").replace("*", "·").replace("//", "/")
    return _close_brackets(text.replace("floor(", "⌊"), {"⌊": "⌋"})


def latex_formula(formula: str, numbers: dict[str, str], names: dict[str, str] | None = None) -> str:
    """A formula in LaTeX: symbols subscripted (``C_{in}``), given numbers and names substituted, ``\\cdot``."""
    def symbol(m: re.Match[str]) -> str:
        name = m.group(0)
        if name in numbers:
            return numbers[name]
        if names and name in names:
            return latex_text(names[name])
        if name in FUNCTIONS:
            return name
        head, _, tail = name.partition("_")
        return f"{head}_{{{tail.replace('_', ',')}}}" if tail else head

    text = SYMBOL.sub(symbol, formula).replace("**", "^").replace("*", r" \cdot ")
    text = text.replace("floor(", "\\lfloor ").replace("ceil(", "\\lceil ")
    return _close_brackets(text, {"\\lfloor ": r"\rfloor", "\\lceil ": r"\rceil"})


def _close_brackets(text: str, openers: dict[str, str]) -> str:
    """Close each opener (``⌊``, ``\\lfloor``) at its matching ``)``; other parentheses stay parentheses."""
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        opener = next((o for o in openers if text.startswith(o, i)), None)
        if opener is not None:
            stack.append(openers[opener])
            out.append(opener)
            i += len(opener)
            continue
        ch = text[i]
        if ch == "(":
            stack.append(")")
        elif ch == ")":
            ch = stack.pop() if stack else ")"
        out.append(ch)
        i += 1
    return "".join(out)


def _dedupe(parts: Iterable[str]) -> list[str]:
    """Drop empty parts and a part equal to the one before (``x = x`` says nothing)."""
    out: list[str] = []
    for p in parts:
        if p and (not out or out[-1] != p):
            out.append(p)
    return out


# one step ---------------------------------------------------------------------------------------------------
def substituted(st: Step) -> str:
    """The formula with each symbol replaced by its number."""
    return replace_symbols(st.formula, {k: fmt(v) for k, v in st.symbols})


def shown_formula(st: Step) -> str:
    """The formula as text, the parts of a sum by their names (``layer1.0 + layer1.1``)."""
    text = pretty(st.formula)
    return replace_symbols(text, dict(st.names)) if st.names else text


def step_text(st: Step) -> str:
    """``label = C_out·(C_in·K) + C_out = 8·(3·9) + 8 = 224    (note)``."""
    parts = [st.label, shown_formula(st)]
    if st.symbols:
        parts.append(pretty(substituted(st)))
    parts.append(fmt(st.value))
    line = " = ".join(_dedupe(parts))
    return f"{line}    ({st.note})" if st.note else line


def step_latex(st: Step) -> str:
    """The step as one LaTeX equation line (symbols subscripted, ``\\cdot``, ``\\lfloor``)."""
    parts = [latex_text(st.label), latex_formula(st.formula, {}, dict(st.names))]
    if st.symbols:
        parts.append(latex_formula(st.formula, {k: latex_number(v) for k, v in st.symbols}))
    parts.append(latex_number(st.value))
    line = " = ".join(_dedupe(parts))
    return line + r" \quad \text{(" + escape.latex(st.note) + ")}" if st.note else line


def step_markdown(st: Step) -> str:
    """``- label $= formula = numbers = value$ (note)``: names stay Markdown text, never inside the math."""
    numbers = [latex_formula(st.formula, {k: latex_number(v) for k, v in st.symbols})] if st.symbols else []
    numbers.append(latex_number(st.value))
    if st.names:  # a sum of named parts: the names as (escaped) text, the numbers as math
        head = f"- {escape.markdown(st.label)} = {escape.markdown(shown_formula(st))}"
    else:
        head = f"- {escape.markdown(st.label)}"
        numbers[:0] = [latex_formula(st.formula, {})] if st.formula else []
    line = f"{head} $= {' = '.join(_dedupe(numbers))}$"
    return f"{line} ({escape.markdown(st.note)})" if st.note else line


# blocks of steps: a Derivation is one untitled block, an Explanation one titled block per section ------------
def blocks_text(subject: str, legend: Legend, blocks: Sequence[Block]) -> str:
    """Plain text: the subject, what the symbols mean, then each block's title and steps (indented)."""
    lines = [subject, *where_lines(legend, "  ")]
    for title, steps in blocks:
        indent = "  " if title is None else "    "
        lines += ([] if title is None else [f"  {title}"]) + [indent + step_text(st) for st in steps]
    return "\n".join(lines)


def blocks_latex(legend: Legend, blocks: Sequence[Block]) -> str:
    """One LaTeX ``aligned`` block (math mode, for MathJax or a slide's ``\\[ … \\]``), titles in bold."""
    where = where_text(legend)
    rows = [r"&" + latex_text(where)] if where else []
    for title, steps in blocks:
        rows += [] if title is None else [r"&\textbf{" + escape.latex(title) + "}"]
        rows += [step_latex(st).replace(" = ", " &= ", 1) for st in steps]
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def blocks_markdown(subject: str, legend: Legend, blocks: Sequence[Block]) -> str:
    """Markdown for course notes: the subject in bold, the legend, each block's title in italics, a bullet a step."""
    lines = [f"**{escape.markdown(subject)}**"]
    where = where_text(legend)
    lines += ["", escape.markdown(where)] if where else []
    for title, steps in blocks:
        lines += [""] + ([] if title is None else [f"*{escape.markdown(title)}*", ""])
        lines += [step_markdown(st) for st in steps]
    return "\n".join(lines)


def blocks_html(subject: str, legend: Legend, blocks: Sequence[Block]) -> str:
    """Escaped HTML: names as plain text (kept from MathJax), each step as TeX for MathJax."""
    keep = f"<p class='{escape.NO_MATH}'>"
    parts = [f"<div class='nbcount-derivation'>{keep}<b>{escape.html(subject)}</b></p>"]
    where = where_text(legend)
    parts += [f"{keep}{escape.html(where)}</p>"] if where else []
    for title, steps in blocks:
        parts += [] if title is None else [f"{keep}<i>{escape.html(title)}</i></p>"]
        parts.append("<ul>" + "".join(f"<li>\\({escape.html(step_latex(st))}\\)</li>" for st in steps) + "</ul>")
    return "".join(parts) + "</div>"


class ShownSteps(Shown):
    """Text, LaTeX, Markdown and HTML of anything made of a subject, a legend and blocks of steps.

    ``nbcount.derive.Derivation`` (one untitled block) and ``nbcount.explanation.Explanation`` (a titled block per
    section) are shown through this class; they hold the data only.
    """

    subject: str

    @property
    def legend(self) -> tuple[tuple[str, str], ...]:
        """(symbol, meaning) of the symbols the steps use."""
        raise NotImplementedError

    @property
    def blocks(self) -> list[Block]:
        """The steps, in titled (or untitled) blocks."""
        raise NotImplementedError

    def to_text(self) -> str:
        """Plain text: the subject, what the symbols mean, one step per line."""
        return blocks_text(self.subject, self.legend, self.blocks)

    def to_latex(self) -> str:
        """A LaTeX ``aligned`` block (MathJax-ready)."""
        return blocks_latex(self.legend, self.blocks)

    def to_markdown(self) -> str:
        """Markdown: the subject in bold, what the symbols mean, each step a bullet of inline math."""
        return blocks_markdown(self.subject, self.legend, self.blocks)

    def to_html(self) -> str:
        """Escaped HTML with the steps as TeX lines for MathJax."""
        return blocks_html(self.subject, self.legend, self.blocks)

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, str]:
        return {**super()._repr_mimebundle_(include, exclude), "text/markdown": self.to_markdown()}
