"""The widget's Roofline tab: a Report on one hardware's roofline, as the JSON the front end draws.

Rows of ``report.roofline(hardware, dtype)`` that repeat (``h.0.mlp.c_fc`` … ``h.11.mlp.c_fc``) are folded into
one row and one dot (``h.*.mlp.c_fc ×12``: FLOPs, bytes and time summed), the slowest first; the front end draws
the table, the log-log chart (roofs per peak, one dot per row, area ∝ time) and, on a click, the row's worked
derivation. A decoder counted on token ids also gets the serving view (prefill vs one decode step, tokens/s).
Every string is data: the front end writes it with ``textContent``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbcount import labels
from nbcount.machines import PEAK_KEYS, PRESETS
from nbcount.roofline import roofline
from nbcount.roofline_derive import derive_layer, derive_rows
from nbcount.subtotals import repeated_parents
from nbcount.traffic import ASSUMPTION, FLOPS_NOTE, PEAKS_NOTE
from nbcount.widget_data import ints, step_payload

if TYPE_CHECKING:
    from nbcount.derive import Derivation
    from nbcount.report import Report
    from nbcount.roofline import LayerRoofline, Roofline
    from nbcount.serving_roofline import ServingRoofline

#: Folded rows listed in the tab's table (with their derivations); the chart draws every folded row.
TABLE_ROWS = 25
STEPS, FORMULA_CHARS = 40, 300  # a derivation in the tab: at most this many steps, formulas this long
HARDWARE_CHOICES = (*(p.name for p in PRESETS), "this CPU")


@dataclass(frozen=True)
class Group:
    """Rows of the roofline folded into one line of the table and one dot of the chart."""

    label: str
    members: tuple[LayerRoofline, ...]

    @property
    def flops(self) -> int:
        """Real FLOPs of its rows."""
        return sum(lay.flops for lay in self.members)

    @property
    def bytes(self) -> int:
        """Bytes its rows move (no fusion)."""
        return sum(lay.bytes for lay in self.members)

    @property
    def time_s(self) -> float:
        """Roofline time of its rows, one after another."""
        return sum(lay.time_s for lay in self.members)

    def record(self, view: Roofline, total_s: float) -> dict[str, Any]:
        """The table's line: label, type, peak, FLOPs, bytes, intensity, bound, time, share, row and count."""
        first = self.members[0]
        return {"label": self.label, "type": first.module_type, "dtype": first.dtype, "n": len(self.members),
                "row": first.index, "flops": ints([self.flops])[0], "bytes": ints([self.bytes])[0],
                "intensity": self.flops / self.bytes if self.bytes else 0.0, "bound": first.bound,
                "time_s": self.time_s, "share": self.time_s / total_s if total_s else 0.0}


def groups(view: Roofline) -> list[Group]:
    """The rows that compute or move bytes, repeated ones folded (same pattern, type, peak and side), slowest first."""
    report = view.report
    repeated = repeated_parents(report)
    found: dict[tuple[str, str, str, str], list[LayerRoofline]] = {}
    for lay in view.moving:
        key = (labels.repeat_pattern(lay.layer, repeated), lay.module_type, lay.dtype, lay.bound)
        found.setdefault(key, []).append(lay)
    out = []
    for (pattern, _, _, _), members in found.items():
        one = len(members) == 1
        label = labels.row_label(report.rows[members[0].index]) if one else f"{pattern or '(root)'} ×{len(members)}"
        out.append(Group(label, tuple(members)))
    return sorted(out, key=lambda g: -g.time_s)


def _derivation(view: Roofline, group: Group) -> Derivation:
    if len(group.members) == 1:
        return derive_layer(view, group.members[0])
    return derive_rows(view, list(group.members), group.label)


def derivation_payload(derivation: Derivation) -> dict[str, Any]:
    """A derivation as the Derivation tab draws one section: title and [label, formula, numbers, value, note].

    A row of thousands of ops (a root calling F.relu 2,000 times) keeps its first and last steps, and sums over
    many parts are shortened, so the tab stays light; the Python object has every step.
    """
    steps = [step_payload(s) for s in derivation.steps]
    if len(steps) > STEPS:
        hidden = len(steps) - STEPS
        steps = [*steps[:STEPS - 6], ["…", "", "", f"{hidden:,} more steps", "roofline.derive(layer) has them all"],
                 *steps[-6:]]
    for line in steps:
        line[1:3] = [text if len(text) <= FORMULA_CHARS else text[:FORMULA_CHARS - 20] + " + … (shortened)"
                     for text in line[1:3]]
    return {"title": derivation.subject, "steps": steps}


def _dots(view: Roofline, found: list[Group]) -> dict[str, Any]:
    """Chart points (column arrays): intensity, attained FLOP/s, time, side, table rank; rows with no FLOPs apart."""
    drawn = [(k, g) for k, g in enumerate(found) if g.flops and g.bytes and g.time_s]
    hidden = [g for g in found if not (g.flops and g.bytes and g.time_s)]
    return {"intensity": [g.flops / g.bytes for _, g in drawn], "flops_per_s": [g.flops / g.time_s for _, g in drawn],
            "time_s": [g.time_s for _, g in drawn], "memory": [g.members[0].bound == "memory" for _, g in drawn],
            "rank": [k for k, _ in drawn], "label": [g.label for _, g in drawn],
            "hidden": {"n": sum(len(g.members) for g in hidden), "time_s": sum(g.time_s for g in hidden)}}


def _roofs(view: Roofline) -> list[dict[str, Any]]:
    """One roof per distinct peak (``fp32 / vector`` share one): its peak, its ridge point and the keys it serves."""
    roofs: dict[float, list[str]] = {}
    for key, peak in view.peaks.items():
        roofs.setdefault(peak.flops_per_s, []).append(key)
    return [{"keys": " / ".join(keys), "flops_per_s": value, "ridge": value / view.hardware.bandwidth_bytes_per_s}
            for value, keys in sorted(roofs.items())]


def _summary(view: Roofline) -> dict[str, Any]:
    report = view.report
    return {"model": report.rows[0].call.module_type if report.rows else "model",
            "total_time_s": view.total_time_s, "fused_time_s": view.fused_time_s,
            "memory_bound_share": view.memory_bound_share, "flops": ints([view.total_flops])[0],
            "bytes": ints([view.total_bytes])[0], "bandwidth": view.hardware.bandwidth_bytes_per_s,
            "rows": len(view.moving), "notes": [f"FLOPs: {FLOPS_NOTE}; {PEAKS_NOTE}.", f"Bytes: {ASSUMPTION}."],
            "source": view.hardware.source}


def serving_payload(report: Report, hardware: str) -> dict[str, Any] | None:
    """Prefill vs one decode step on `hardware` for a decoder; None for other models; the reason if it fails."""
    from nbcount.serving_roofline import decoder_problem, serving_if_decoder

    if decoder_problem(report) is not None:
        return None
    if report.counted is None or report.counted() is None:
        return {"error": "prefill vs decode counts the model again at the prompt's and one token's length, and this "
                         "report no longer reaches it (a report holds its model weakly): keep the model in a "
                         "variable (model = …; nbcount.count(model, …)) or call r.serving_roofline(model)"}
    serving, why_not = serving_if_decoder(report, [hardware])
    if serving is None:
        return {"error": why_not}
    return {"prompt_len": serving.prompt_len, "context_len": serving.context_len, "batch": serving.batch,
            "phases": [_phase(serving, p.phase) for p in serving.phases]}


def _phase(serving: ServingRoofline, phase: str) -> dict[str, Any]:
    cost = serving.phase(phase)
    record = cost.record()
    record.pop("hardware")
    record["derivation"] = derivation_payload(serving.derive(phase))
    return record


def dtype_choices(view: Roofline) -> list[str]:
    """The peak columns this hardware lists (the forced-dtype menu)."""
    return [key for key in PEAK_KEYS if view.hardware.peak(key).key == key]


def roofline_payload(report: Report, hardware: str = "H100-SXM", dtype: str | None = None) -> dict[str, Any]:
    """The Roofline tab: choices, summary, roofs, the slowest folded rows with derivations, chart points, serving."""
    view = roofline(report, hardware, dtype or None)
    found = groups(view)
    total_s = view.total_time_s
    rows = [{**g.record(view, total_s), "derivation": derivation_payload(_derivation(view, g))}
            for g in found[:TABLE_ROWS]]
    rest = found[TABLE_ROWS:]
    others = {"n": sum(len(g.members) for g in rest), "flops": sum(g.flops for g in rest),
              "bytes": sum(g.bytes for g in rest), "time_s": sum(g.time_s for g in rest)} if rest else None
    return {"kind": "roofline", "hardware": view.hardware.name, "dtype": view.dtype or "",
            "choices": {"hardware": list(HARDWARE_CHOICES), "dtype": dtype_choices(view)},
            "summary": _summary(view), "roofs": _roofs(view), "rows": rows, "others": others,
            "total": {"derivation": derivation_payload(derive_rows(view, list(view.layers), "the whole model"))},
            "dots": _dots(view, found), "serving": serving_payload(report, view.hardware.name),
            "text": view.to_text()}
