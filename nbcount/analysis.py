"""The analysis passes count() runs once over a Trace: rows and findings, memory figures, receptive fields and
the training step — assembled into a finished Report."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nbcount.convention import Convention
from nbcount.memory import memory_figures
from nbcount.receptive import FieldMap, receptive_fields
from nbcount.report import Report
from nbcount.rows import report_from_trace
from nbcount.training import TrainingTrace
from nbcount.training_costs import TrainingCosts
from nbcount.types import Diagnostic, Trace


def analyse(trace: Trace, convention: str | Convention = "nbcount", options: dict[str, Any] | None = None,
            partial: bool = False) -> Report:
    """The Report of a Trace. `partial`: the trace of a forward pass that failed (its rows are kept; an analysis
    that cannot run on a partial trace is left empty rather than hiding the failure)."""
    report = report_from_trace(trace, convention, options)
    fields: FieldMap | None = None
    try:
        fields = receptive_fields(report) or None
    except Exception as error:
        if not partial:
            raise
        report = _noted(report, f"receptive field not traced on a partial count ({error})")
    memory = memory_figures(report) if report.rows or not partial else {}
    report = replace(report, memory=memory, receptive_field=fields)
    return _with_training(report)


def recount(report: Report, convention: Convention) -> Report:
    """The same rows under another convention; the training step (whose totals depend on it) follows."""
    return _with_training(replace(report, convention=convention, training=None))


def _with_training(report: Report) -> Report:
    if not isinstance(report.trace, TrainingTrace):
        return report
    return replace(report, training=TrainingCosts(report))


def _noted(report: Report, note: str) -> Report:
    return replace(report, diagnostics=(*report.diagnostics, Diagnostic("note", note)))

