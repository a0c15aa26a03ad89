"""report.derive(): the worked derivation of every number of a row, of the totals and of the memory figures.

Each section ends with the number the table shows: parameters, output shape, MACs, FLOPs under the
report's convention, receptive field and memory. The steps are the ones the rules computed the numbers
with (nbcount.derive evaluates every formula), so a derivation and its table cell cannot disagree.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbcount.derive import (
    Derivation,
    Step,
    _dedupe,
    _latex,
    _latex_escape,
    _latex_number,
    _md_escape,
    fmt,
    given,
    step,
    total,
)
from nbcount.receptive import field_steps
from nbcount.rules.shapes import numel_step, shape_steps

if TYPE_CHECKING:
    from nbcount.report import Report, Row

_IGNORE = "tex2jax_ignore mathjax_ignore"


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


@dataclass(frozen=True)
class Explanation:
    """Every section of one row's (or the totals') derivation, renderable as text, LaTeX, Markdown and HTML."""

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

    def to_text(self) -> str:
        """Plain text for a terminal: the subject, then each section's steps."""
        lines = [self.subject]
        for s in self.sections:
            lines += [f"  {s.derivation.subject}"] + [f"    {st.to_text()}" for st in s.steps]
        return "\n".join(lines)

    def to_latex(self) -> str:
        """One ``aligned`` block (math mode, for MathJax / HTMLMath or a slide's ``\\[ … \\]``)."""
        rows = []
        for s in self.sections:
            rows.append(r"&\textbf{" + _latex_escape(s.derivation.subject) + "}")
            rows += [st.to_latex().replace(" = ", " &= ", 1) for st in s.steps]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

    def to_markdown(self) -> str:
        """Markdown for course notes: a heading per section, a bullet of inline math per step."""
        lines = [f"**{_md_escape(self.subject)}**"]
        for s in self.sections:
            lines += ["", f"*{_md_escape(s.derivation.subject)}*", ""]
            lines += [_markdown_step(st) for st in s.steps]
        return "\n".join(lines)

    def to_html(self) -> str:
        """Escaped HTML: names as plain text (ignored by MathJax), each step as TeX for MathJax."""
        parts = [f"<div class='nbcount-derivation'><p class='{_IGNORE}'><b>{html.escape(self.subject)}</b></p>"]
        for s in self.sections:
            parts.append(f"<p class='{_IGNORE}'><i>{html.escape(s.derivation.subject)}</i></p><ul>")
            parts += [f"<li>\\({html.escape(st.to_latex())}\\)</li>" for st in s.steps]
            parts.append("</ul>")
        return "".join(parts) + "</div>"

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, str]:
        return {"text/plain": self.to_text(), "text/html": self.to_html()}

    def __repr__(self) -> str:
        return self.to_text()


def _markdown_step(st: Step) -> str:
    """``- label $= formula = numbers = value$ (note)``: names stay Markdown text, never inside the math."""
    parts = [_latex(st.formula, {})] if st.formula else []
    if st.symbols:
        parts.append(_latex(st.formula, {k: _latex_number(v) for k, v in st.symbols}))
    parts.append(_latex_number(st.value))
    line = f"- {_md_escape(st.label)} $= {' = '.join(_dedupe(parts))}$"
    return f"{line} ({_md_escape(st.note)})" if st.note else line


def derive(report: Report, layer: str | None = None, call: int = 0) -> Explanation:
    """The derivation of one row (dotted path and call index), or of the totals when `layer` is None."""
    if layer is None:
        from nbcount.explain_totals import totals

        return totals(report)
    row = report.row(layer, call)
    index = report.rows.index(row)
    sections = [params_section(report, row), shape_section(row), macs_section(row), flops_section(report, row)]
    rf = rf_section(report, row, index)
    if rf is not None:
        sections.append(rf)
    sections.append(memory_section(row))
    return Explanation(f"Derivation of {row_label(row)}", tuple(sections))


def row_label(row: Row) -> str:
    """``features.0 (Conv2d)``, ``conv1 (Conv2d, call 1)``; the root shows its class."""
    extra = f", call {row.call.call_index}" if row.call.call_index else ""
    return f"{row.layer or '(model)'} ({row.call.module_type}{extra})"


def _section(key: str, title: str, steps: list[Step] | tuple[Step, ...], value: Any) -> Section:
    return Section(key, Derivation(title, tuple(steps)), value)


def subtree(report: Report, index: int) -> list[int]:
    """The row index and every row called inside it."""
    inside = {index}
    for k in range(index + 1, len(report.rows)):
        if report.rows[k].call.parent in inside:
            inside.add(k)
    return sorted(inside)


def params_section(report: Report, row: Row) -> Section:
    """params: the rule's formula for the tensors first used at this call (0 for a repeated call)."""
    steps = list(row.param_steps) or [given("params", 0)]
    if not row.call.is_leaf:
        index = report.rows.index(row)
        inner = [(report.rows[k].layer, report.rows[k].params) for k in subtree(report, index)[1:]]
        inner = [(_short(name, row.layer), n) for name, n in inner if n]
        if inner:
            steps.insert(0, total("params of its sub-layers", inner, note="counted in their own rows, not here"))
    return _section("params", "Parameters", steps, row.params)


def _short(name: str, prefix: str) -> str:
    return name[len(prefix) + 1:] if prefix and name.startswith(prefix + ".") else name


def shape_section(row: Row) -> Section:
    """The output shape, one step per dimension (a formula where the module type has one)."""
    steps, _ = shape_steps(row.call)
    shapes = tuple(t.shape for t in row.call.out_tensors)
    value = shapes[0] if len(shapes) == 1 else shapes
    return _section("shape", "Output shape", steps or [given("outputs", 0, note="no tensor output")], value)


def macs_section(row: Row) -> Section:
    """MACs: the multiply-accumulate steps of the row's own ops, summed."""
    steps = [s for _, cost in row.costs for s in cost if s.term == "mac"]
    if len(steps) > 1:
        steps.append(total("MACs", [(s.label, s.value) for s in steps]))
    elif not steps:
        note = "no multiply-accumulate in its own ops" + ("" if row.call.is_leaf else " (sub-layers: their own rows)")
        steps = [given("MACs", 0, note=note)]
    return _section("macs", "MACs", steps, row.macs)


def flops_section(report: Report, row: Row) -> Section:
    """The row's number under the report's convention: the convention's own formula as steps (its defects too,
    when strict), ending on the number the table shows."""
    convention = report.convention
    return _section("flops", convention.label, convention.row_steps(row), convention.row_value(row))


def rf_section(report: Report, row: Row, index: int) -> Section | None:
    """The receptive field of the row's output (None when the model has no image-like input)."""
    fields = report.receptive_field
    found = fields.get(index)
    if found is None:
        return None
    steps = field_steps(fields, row.call, index)  # type: ignore[arg-type]  # Report types it loosely
    return _section("rf", "Receptive field", steps, found.rf)


def memory_section(row: Row) -> Section:
    """Bytes of the parameters first used here, of the buffers first seen here, and of the output tensors."""
    steps: list[Step] = []
    refs = row.call.params_new
    for ref in refs:
        itemsize = ref.nbytes // max(ref.numel, 1)
        steps.append(step(f"{ref.name.rsplit('.', 1)[-1]} bytes", "numel*b", numel=ref.numel, b=itemsize))
    if len(refs) > 1:
        steps.append(total("param bytes", [(s.label, s.value) for s in steps[-len(refs):]]))
    elif refs:
        steps[-1] = Step("param bytes", steps[-1].formula, steps[-1].symbols, steps[-1].value)
    else:
        steps.append(given("param bytes", 0, note="no parameter first used at this call"))
    steps.append(given("buffer bytes", row.call.buffer_bytes, note="buffers (running statistics, …) first seen here"))
    outs = []
    for k, t in enumerate(row.call.out_tensors):
        elements = numel_step(t.shape, f"output {k} elements" if len(row.call.out_tensors) > 1 else "output elements")
        outs.append(step(elements.label.replace("elements", "bytes"), "n*b", n=elements.value, b=t.itemsize,
                         note=f"{t.dtype}"))
        steps += [elements, outs[-1]]
    if len(outs) > 1:
        steps.append(total("output bytes", [(s.label, s.value) for s in outs]))
    elif outs:
        steps[-1] = Step("output bytes", outs[0].formula, outs[0].symbols, outs[0].value, None, outs[0].note)
    else:
        steps.append(given("output bytes", 0))
    value = {"param_bytes": sum(r.nbytes for r in refs), "buffer_bytes": row.call.buffer_bytes,
             "output_bytes": row.output_bytes}
    return _section("memory", "Memory", steps, value)


def fmt_shape(shape: tuple[int, ...]) -> str:
    """``(1, 128, 32, 32)`` with thousands separators."""
    return "(" + ", ".join(fmt(d) for d in shape) + ")"
