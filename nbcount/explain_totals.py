"""report.derive() with no layer: the totals as sums over the model's stages, and the memory figures.

A stage is a call made directly by the model's forward (UNet's ``downs.0`` … ``final``, ResNet's
``conv1`` … ``fc``); its sum runs over every row inside it. Shared parameters appear once, at their
first use; unused modules are named and added to reach the registered total.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbcount.derive import Number, Step, given, step, total
from nbcount.explanation import Explanation, Section, relative_name, row_label, section, subtree
from nbcount.memory import torchsummary_steps
from nbcount.rules.params import reuse_note

if TYPE_CHECKING:
    from collections.abc import Callable

    from nbcount.report import Report, Row

Part = tuple[str, Number]


def totals(report: Report) -> Explanation:
    """Parameters, MACs, FLOPs under the report's convention and memory, each derived as a sum."""
    name = report.rows[0].call.module_type if report.rows else "(empty model)"
    sections = [params_total(report), sum_section(report, "macs", "MACs (total)", lambda r: r.macs,
                                                  report.total_macs)]
    convention = report.convention
    note = ""
    if report.status != "complete":
        note = f"a lower bound: {', '.join(sorted(report.uncounted_ops))} ran without a counting rule"
    flops = sum_section(report, "flops", f"{convention.unit} ({convention.name}, total)", convention.row_value,
                        report.headline.value, note)
    sections += [flops, memory_total(report)]
    return Explanation(f"Totals of {name}", tuple(sections))


def stages(report: Report) -> list[tuple[Row, list[int]]]:
    """Each call made directly by the model's forward, with the rows inside it."""
    return [(r, subtree(report, k)) for k, r in enumerate(report.rows) if r.call.parent == 0]


def _stage_sums(report: Report, value: Callable[[Row], Number], label: str) -> tuple[list[Step], list[Part]]:
    steps: list[Step] = []
    parts: list[Part] = []
    for row, inside in stages(report):
        items = [(_part_name(report.rows[k], row), value(report.rows[k])) for k in inside]
        items = [(n, v) for n, v in items if v]
        if not items:
            continue
        stage = row.layer + (f" (call {row.call.call_index})" if row.call.call_index else "")
        only = items[0][0] if items[0][0] != row.layer else ""
        steps.append(total(stage, items) if len(items) > 1 else given(stage, items[0][1], note=only))
        parts.append((stage, steps[-1].value))
    if report.rows and value(report.rows[0]):
        own = f"{report.rows[0].call.module_type}'s own ops"
        parts.insert(0, (own, value(report.rows[0])))
        steps.insert(0, given(own, value(report.rows[0]), note=f"{label} of the ops its forward runs itself"))
    return steps, parts


def _part_name(inner: Row, stage: Row) -> str:
    short = relative_name(inner.layer, stage.layer) or inner.call.module_type
    name = inner.layer if short[:1].isdigit() else short
    return name + (f" (call {inner.call.call_index})" if inner.call.call_index else "")


def sum_section(report: Report, key: str, label: str, value: Callable[[Row], Number], expected: Number,
                note: str = "") -> Section:
    """A total as the sum of its stages' sums."""
    steps, parts = _stage_sums(report, value, label)
    steps.append(total(label, parts, note=note) if parts else step(label, "0", note=note or "nothing counted"))
    return section(key, label, steps, expected)


def params_total(report: Report) -> Section:
    """Registered parameters = used (Σ stages, shared ones once) + unused modules' + other untouched ones."""
    steps, parts = _stage_sums(report, lambda r: r.params, "parameters")
    used = total("params used by the forward pass", parts) if parts else given("params used by the forward pass", 0)
    steps.append(used)
    for r in report.rows:
        if r.call.params_shared:
            steps.append(given(row_label(r), 0, note=reuse_note(r.call.params_shared)))
    from nbcount.rows import unused_params

    pieces: list[Part] = [("used", used.value)]
    for name, n in unused_params(report.rows, report.trace).items():
        if n:  # a module never called whose parameters were read elsewhere (MultiheadAttention's out_proj) adds none
            steps.append(given(f"{name} (never called)", n, note="registered but not used by the forward pass"))
            pieces.append((f"unused {name}", n))
    other = report.total_params - sum(v for _, v in pieces)
    if other:
        steps.append(given("other parameters never used", other, note="registered, never touched by the forward"))
        pieces.append(("other", other))
    if report.trainable_params != report.total_params:
        steps.append(given("trainable", report.trainable_params, note="requires_grad"))
    steps.append(total("params (registered, each tensor once)", pieces))
    return section("params", "Parameters (total)", steps, report.total_params)


def memory_total(report: Report) -> Section:
    """torchsummary's four figures (4 bytes per element, one sample, MB = 2^20 bytes), then real-dtype bytes."""
    figures = report.memory
    steps = [
        given("param bytes (real dtypes)", figures["param_bytes"]),
        given("buffer bytes", figures["buffer_bytes"]),
        given("peak activation bytes", figures["peak_activation_bytes"],
              note="largest sum of live tensors during the forward pass, from their lifetimes"),
        *torchsummary_steps(report),
    ]
    return section("memory", "Memory", steps, dict(figures))
