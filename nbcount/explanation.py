"""A worked explanation as data: sections (one number each, with its derivation) of one row or of the totals —
shared by the row derivations (nbcount.explain) and the totals' (nbcount.explain_totals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbcount import render
from nbcount.derive import Derivation, Step
from nbcount.symbols import legend

if TYPE_CHECKING:
    from nbcount.report import Report, Row


@dataclass(frozen=True)
class Section:
    """One number of a row (or of the totals): its key, its steps and the value the table shows."""

    key: str
    derivation: Derivation
    value: Any

    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps of the derivation."""
        return self.derivation.steps

    def step(self, label: str) -> Step:
        """The last step labelled `label` (``section.step("buffers")``)."""
        found = [s for s in self.steps if s.label == label]
        if not found:
            raise KeyError(f"no step {label!r}; steps: {', '.join(dict.fromkeys(s.label for s in self.steps))}")
        return found[-1]

    def __str__(self) -> str:
        return self.derivation.to_text()


@dataclass(frozen=True, repr=False)
class Explanation(render.ShownSteps):
    """Every section of one row's (or the totals') derivation; shown as text, LaTeX, Markdown and HTML by
    ``nbcount.render`` (a heading per section, then its steps)."""

    subject: str
    sections: tuple[Section, ...]

    def __getitem__(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"no section {key!r}; sections: {', '.join(s.key for s in self.sections)}")

    def __contains__(self, key: object) -> bool:
        return any(s.key == key for s in self.sections)

    @property
    def steps(self) -> tuple[Step, ...]:
        """Every step of every section, in order."""
        return tuple(s for section in self.sections for s in section.steps)

    @property
    def legend(self) -> tuple[tuple[str, str], ...]:
        """(symbol, meaning) for every symbol the sections use, each defined once (nbcount.symbols)."""
        return legend(self.steps)

    @property
    def blocks(self) -> list[render.Block]:
        """One block per section, titled by its derivation's subject."""
        return [(s.derivation.subject, s.steps) for s in self.sections]


def row_label(row: Row) -> str:
    """``features.0 (Conv2d)``, ``conv1 (Conv2d, call 1)``; the root: ``TinyNet (the whole model)``."""
    extra = f", call {row.call.call_index}" if row.call.call_index else ""
    if not row.layer:
        return f"{row.call.module_type} (the whole model{extra})"
    return f"{row.layer} ({row.call.module_type}{extra})"


def section(key: str, title: str, steps: list[Step] | tuple[Step, ...], value: Any) -> Section:
    """A Section titled `title` from its steps and the value the table shows."""
    return Section(key, Derivation(title, tuple(steps)), value)


def subtree(report: Report, index: int) -> list[int]:
    """The row index and every row called inside it."""
    inside = {index}
    for k in range(index + 1, len(report.rows)):
        if report.rows[k].call.parent in inside:
            inside.add(k)
    return sorted(inside)


def relative_name(name: str, prefix: str) -> str:
    """`name` relative to the layer `prefix` (``mlp.c_fc`` inside ``h.0``); the name itself outside it."""
    return name[len(prefix) + 1:] if prefix and name.startswith(prefix + ".") else name
