"""report.derive(): the worked derivation of every number of a row, of the totals and of the memory figures.

Each section ends with the number the table shows: parameters, output shape, MACs, FLOPs under the
report's convention, receptive field and memory. The steps are the ones the rules computed the numbers
with (nbcount.derive evaluates every formula), so a derivation and its table cell cannot disagree.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from nbcount.derive import Step, given, step, total
from nbcount.explain_attention import cost_steps
from nbcount.explain_totals import totals
from nbcount.explanation import Explanation, Section, relative_name, row_label, section, subtree
from nbcount.receptive import field_steps
from nbcount.render import fmt
from nbcount.rules.shapes import dim_names_of, numel_step, shape_steps

if TYPE_CHECKING:
    from nbcount.report import Report, Row


def derive(report: Report, layer: str | None = None, call: int = 0) -> Explanation:
    """The derivation of one row (dotted path and call index), or of the totals when `layer` is None."""
    if layer is None:
        return totals(report)
    row = report.row(layer, call)
    index = report.rows.index(row)
    sections = [params_section(report, row), shape_section(row), macs_section(row), flops_section(report, row)]
    rf = rf_section(report, row, index)
    if rf is not None:
        sections.append(rf)
    sections.append(memory_section(row))
    return Explanation(f"Derivation of {row_label(row)}", tuple(sections))


def params_section(report: Report, row: Row) -> Section:
    """params: the rule's formula for the tensors first used at this call (0 for a repeated call); a composite
    layer also shows its sub-layers' parameters, by its structure (TransformerEncoderLayer) or as a named sum."""
    steps = list(row.param_steps) or [given("params", 0)]
    if not row.call.is_leaf:
        inside = [report.rows[k] for k in subtree(report, report.rows.index(row))[1:]]
        inner = [(relative_name(r.layer, row.layer), r.params) for r in inside if r.params]
        if inner:
            note = "counted in their own rows, not here"
            parts = _composite_steps(row, inside, sum(n for _, n in inner))
            if parts:
                steps[:0] = [*parts[:-1], replace(parts[-1], label="params of its sub-layers", note=note)]
            else:
                steps.insert(0, total("params of its sub-layers", inner, note=note))
    return section("params", "Parameters", steps, row.params)


def _composite_steps(row: Row, inside: list[Row], expected: int) -> tuple[Step, ...]:
    """The structural rule of a composite layer, given its sub-layers' attributes and parameters, if it fits."""
    from nbcount.rules import find_module_rule

    rule = find_module_rule(row.call, "params")
    if rule is None:
        return ()
    attrs = row.call.attrs + tuple((f"{relative_name(r.layer, row.layer)}.{k}", v)
                                   for r in inside for k, v in r.call.attrs)
    params = row.call.params_new + tuple(p for r in inside for p in r.call.params_new)
    try:
        steps = rule(replace(row.call, attrs=attrs, params_new=params))
    except Exception:  # a subclass built differently: the named sum says it instead
        return ()
    return steps if steps and steps[-1].value == expected else ()


def shape_section(row: Row) -> Section:
    """The output shape, one step per dimension (a formula where the module type has one)."""
    steps, _ = shape_steps(row.call)
    shapes = tuple(t.shape for t in row.call.out_tensors)
    value = shapes[0] if len(shapes) == 1 else shapes
    return section("shape", "Output shape", steps or [given("outputs", 0, note="no tensor output")], value)


def macs_section(row: Row) -> Section:
    """MACs: the multiply-accumulate steps of the row's own ops, summed."""
    steps = [s for s in cost_steps(row) if s.term == "mac"]
    if len(steps) > 1:
        steps.append(total("MACs", [(s.label, s.value) for s in steps]))
    elif not steps:
        note = "no multiply-accumulate in its own ops" + ("" if row.call.is_leaf else " (sub-layers: their own rows)")
        steps = [given("MACs", 0, note=note)]
    return section("macs", "MACs", steps, row.macs)


def flops_section(report: Report, row: Row) -> Section:
    """The row's number under the report's convention: the convention's own formula as steps (its defects too,
    when strict), ending on the number the table shows."""
    convention = report.convention
    return section("flops", convention.label, convention.row_steps(row), convention.row_value(row))


def rf_section(report: Report, row: Row, index: int) -> Section | None:
    """The receptive field of the row's output (None when the model has no image-like input)."""
    fields = report.receptive_field
    if fields is None or (found := fields.get(index)) is None:
        return None
    steps = field_steps(fields, row.call, index)
    return section("rf", "Receptive field", steps, found.rf)


def _bytes_steps(label: str, tensors: list[tuple[str, int, int, str]], none: str) -> list[Step]:
    """One ``name bytes = numel·b`` step per tensor (name, numel, bytes, note), then their sum as `label`."""
    steps = [step(f"{name} bytes", "numel*b", numel=numel, b=nbytes // max(numel, 1), note=note)
             for name, numel, nbytes, note in tensors]
    if len(steps) > 1:
        return steps + [total(label, [(s.label, s.value) for s in steps])]
    if steps:
        return [replace(steps[0], label=label)]
    return [given(label, 0, note=none)]


def memory_section(row: Row) -> Section:
    """Bytes of the parameters first used here, of the buffers first seen here (each named), of the outputs."""
    call = row.call
    params = [(relative_name(r.name, call.path), r.numel, r.nbytes, "") for r in call.params_new]
    steps = _bytes_steps("param bytes", params, "no parameter first used at this call")
    buffers = [(relative_name(b.name, call.path), b.numel, b.nbytes, f"{b.dtype}, shape {fmt_shape(b.shape)}")
               for b in call.buffers_new]
    if len(buffers) > 1:
        steps.append(total("buffers", [(name, numel) for name, numel, _, _ in buffers],
                           note="elements: running statistics, masks, counters (not parameters: no gradient)"))
    elif buffers:
        steps.append(given("buffers", buffers[0][1], note=f"elements of {buffers[0][0]}"))
    steps += _bytes_steps("buffer bytes", buffers, "no buffer first seen at this call")
    outs = []
    shape_labels = [st.label for st in shape_steps(call)[0]]
    for k, t in enumerate(call.out_tensors):
        names = shape_labels if len(call.out_tensors) == 1 and len(shape_labels) == len(t.shape) and \
            len(set(shape_labels)) == len(t.shape) and all(n.isidentifier() for n in shape_labels) \
            else dim_names_of(call, t, k)
        elements = numel_step(t.shape, f"output {k} elements" if len(call.out_tensors) > 1 else "output elements",
                              names)
        outs.append(step(elements.label.replace("elements", "bytes"), "n*b", n=elements.value, b=t.itemsize,
                         note=f"{t.dtype}"))
        steps += [elements, outs[-1]]
    if len(outs) > 1:
        steps.append(total("output bytes", [(s.label, s.value) for s in outs]))
    elif outs:
        steps[-1] = replace(outs[0], label="output bytes")
    else:
        steps.append(given("output bytes", 0))
    value = {"param_bytes": sum(r.nbytes for r in call.params_new), "buffers": sum(b.numel for b in call.buffers_new),
             "buffer_bytes": call.buffer_bytes, "output_bytes": row.output_bytes}
    return section("memory", "Memory", steps, value)


def fmt_shape(shape: tuple[int, ...]) -> str:
    """``(1, 128, 32, 32)`` with thousands separators; ``(64,)``; ``()`` for a scalar."""
    return "(" + ", ".join(fmt(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
