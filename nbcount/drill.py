"""An interview drill: a question, the learner's answer typed in a widget, a check, then the derivation revealed.

``ask("How many parameters …?", nbcount.count(m, size).derive("")["params"])`` takes anything that carries a
derivation (a section of ``report.derive()`` or one of its steps, a Derivation, ``kv_cache_bytes(...)``, …):
its value is the answer key, its steps are what the reveal shows. ``check(text, expected)`` is the checking
logic on its own: numbers as written by people (``73,856``, ``1.05M``, ``2.4e8``, ``1.9 GiB``), shapes
(``(1, 64, 112, 112)``, ``64x112x112``), each accepted to the precision it was written with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nbcount import escape
from nbcount.derive import Derivation, Step
from nbcount.render import fmt

Expected = int | float | tuple[int, ...]

_SCALES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9, "t": 10**12,
           "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}
_UNITS = r"(?:params?|parameters?|macs?|flops?|bytes?|elements?|b\b)?"
_NUMBER = re.compile(r"^~?\s*([-+]?\d[\d,_ ]*(?:\.\d+)?(?:e[-+]?\d+)?)\s*(ki|mi|gi|ti|k|m|g|b|t)?\s*" + _UNITS + r"$")


@dataclass(frozen=True)
class Verdict:
    """The result of checking one answer: right or not, and what to tell the learner."""

    correct: bool
    message: str
    given: Expected | None = None


def parse_number(text: str) -> tuple[float, float] | None:
    """(value, tolerance) of a number as people write it; the tolerance is half a unit of its last digit."""
    found = _NUMBER.match(text.strip().lower().replace("×", "x"))
    if found is None:
        return None
    digits, suffix = found.group(1).replace(",", "").replace("_", "").replace(" ", ""), found.group(2) or ""
    scale = _SCALES[suffix]
    mantissa, _, exponent = digits.partition("e")
    decimals = len(mantissa.partition(".")[2])
    power = int(exponent) if exponent else 0
    value = float(digits) * scale
    if not suffix and not exponent and not decimals:
        return value, 0.5  # written out in full: exact
    return value, 0.5 * 10.0 ** (power - decimals) * scale


def parse_shape(text: str) -> tuple[int, ...] | None:
    """``(1, 64, 112, 112)``, ``[1, 64, 112, 112]``, ``1x64x112x112`` or ``64×112×112`` as a tuple."""
    body = text.strip().strip("()[]").replace("×", "x")
    parts = [p for p in re.split(r"\s*[x,]\s*|\s+", body) if p]
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def check(text: str, expected: Expected) -> Verdict:
    """Is `text` the answer `expected`? Numbers to the precision written; shapes exactly (the batch may be left out)."""
    if not text.strip():
        return Verdict(False, "Type an answer first (a number such as 73,856 or 1.05M, or a shape).")
    if isinstance(expected, tuple):
        return _check_shape(text, expected)
    parsed = parse_number(text)
    if parsed is None:
        return Verdict(False, f"Could not read {text!r} as a number: write 73,856, 73856, 1.05M or 2.4e8.")
    value, tolerance = parsed
    shown = text.strip()
    if abs(value - expected) <= tolerance:
        exact = "" if tolerance <= 0.5 else f", to the precision you wrote (exactly {fmt(expected)})"
        return Verdict(True, f"✓ Right: {shown}{exact}.", value)
    return Verdict(False, f"✗ Not quite: you said {shown}; the answer is {fmt(expected)}. {_hint(value, expected)}",
                   value)


def _check_shape(text: str, expected: tuple[int, ...]) -> Verdict:
    shape = parse_shape(text)
    if shape is None:
        return Verdict(False, f"Could not read {text!r} as a shape: write (1, 64, 112, 112) or 64x112x112.")
    if shape == expected:
        return Verdict(True, f"✓ Right: {expected}.", shape)
    if shape == expected[1:]:
        return Verdict(True, f"✓ Right: {expected} with the batch dimension in front.", shape)
    wrong = [k for k, (a, b) in enumerate(zip(shape, expected)) if a != b] if len(shape) == len(expected) else []
    where = f" (axis {', '.join(map(str, wrong))} differs)" if wrong else ""
    return Verdict(False, f"✗ Not quite: you said {shape}; the answer is {expected}{where}.", shape)


def _hint(value: float, expected: float) -> str:
    """A nudge for the classic slips: FLOPs vs MACs (×2), a missing bias, the wrong unit."""
    if not expected:
        return ""
    ratio = value / expected
    for factor, text in ((2, "2× the answer: FLOPs (2 per MAC) where MACs were asked, or the other way?"),
                         (0.5, "Half the answer: MACs where FLOPs (2 per MAC) were asked?"),
                         (1024, "1,024× off: KiB vs bytes?"), (1 / 1024, "1,024× off: KiB vs bytes?")):
        if abs(ratio - factor) < 0.01 * factor:
            return text
    if 0.9 < ratio < 1.0:
        return f"Short by {fmt(int(expected - value))}: a bias, a buffer or a term left out?"
    return f"Yours is {ratio:.3g}× the answer."


def _derivation(answer: Any) -> Derivation:
    if isinstance(answer, Step):
        return Derivation(answer.label, (answer,))
    found = getattr(answer, "derivation", answer)
    if not isinstance(found, Derivation):
        raise TypeError(f"ask() needs something that carries a derivation (a section of report.derive(), a "
                        f"Derivation, kv_cache_bytes(...)), not {type(answer).__name__}")
    return found


def _expected(answer: Any) -> Expected:
    value = getattr(answer, "value", None)
    if value is None or isinstance(value, dict):
        value = _derivation(answer).value
    return tuple(value) if isinstance(value, (tuple, list)) else value


class Question:
    """One drill question: the prompt, the answer key (a derivation's value) and, in a notebook, its widget."""

    def __init__(self, prompt: str, answer: Any, number: int | None = None):
        self.prompt, self.number = prompt, number
        self.derivation = _derivation(answer)
        self.expected = _expected(answer)
        self.verdict: Verdict | None = None
        self._widgets: dict[str, Any] = {}

    def check(self, text: str) -> Verdict:
        """Check an answer; in the widget this also reveals the derivation."""
        self.verdict = check(text, self.expected)
        if self._widgets:
            self._widgets["feedback"].value = escape.html(self.verdict.message)
            self._widgets["reveal"].selected_index = 0
        return self.verdict

    def answer(self, text: str) -> Verdict:
        """Type `text` into the widget and press Check (what a learner does; used to test the drill)."""
        box = self.widget()
        self._widgets["text"].value = text
        self._widgets["button"].click()
        _ = box
        assert self.verdict is not None
        return self.verdict

    @property
    def title(self) -> str:
        """``Q3. How many …?``."""
        return f"Q{self.number}. {self.prompt}" if self.number is not None else self.prompt

    def widget(self) -> Any:
        """Prompt, a text box, a Check button, the verdict, and the derivation folded until checked."""
        if "box" in self._widgets:
            return self._widgets["box"]
        from nbcount.display import require_widgets

        w = require_widgets()
        text = w.Text(placeholder="your answer: 73,856 · 1.05M · (1, 64, 112, 112)")
        button = w.Button(description="Check", button_style="primary")
        feedback = w.HTML("")
        math = w.HTMLMath(self.derivation.to_html())
        reveal = w.Accordion(children=[math], titles=("Show the derivation",), selected_index=None)
        reveal.add_class("nbcount-reveal")
        button.on_click(lambda _: self.check(text.value))
        box = w.VBox([w.HTML(f"<b>{escape.html(self.title)}</b>"), w.HBox([text, button]), feedback, reveal])
        box.add_class("nbcount-drill")
        self._widgets.update(text=text, button=button, feedback=feedback, reveal=reveal, box=box)
        return box

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        plain = f"{self.title}\n(answer it in a notebook's widget, or with question.check('your answer'))"
        try:
            bundle = dict(self.widget()._repr_mimebundle_(include=include, exclude=exclude) or {})
        except ImportError:
            bundle = {}
        bundle["text/plain"] = plain
        bundle.setdefault("text/html", f"<p><b>{escape.html(self.title)}</b></p>")
        return bundle

    def __repr__(self) -> str:
        return self.title


def ask(prompt: str, answer: Any, number: int | None = None) -> Question:
    """A drill question whose answer key is `answer`'s value and whose reveal is its derivation."""
    return Question(prompt, answer, number)
