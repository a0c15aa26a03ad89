"""Rows from a Trace: each module call's costs by the rules, its parameter derivation, and the findings.

``report_from_trace`` is the whole step from what capture saw to a Report: nothing here runs the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nbcount.convention import Convention, get_convention
from nbcount.derive import Step, given
from nbcount.report import Report, Row
from nbcount.rules import find_module_rule, in_mro
from nbcount.rules.classify import UNCOUNTED, classify
from nbcount.rules.params import generic_params, reuse_note
from nbcount.types import Diagnostic, LayerCall, Term, Trace


def module_rule(call: LayerCall) -> Any:
    """The whole-module cost rule of the call, when the forward that ran is the one the rule describes.

    A rule registered for a class describes that class's own forward: it applies when the forward that ran
    was defined by that class or inherited from one of its bases, not when a subclass overrides forward
    (its extra work would vanish inside the rule), nor when the call ran no op at all.
    """
    found = in_mro(call.classes, "cost")
    if found is None:
        return None
    name, rule = found
    owner = call.forward_owner or name
    return rule if owner in call.classes[call.classes.index(name):] else None


def op_costs(call: LayerCall) -> tuple[list[tuple[str, tuple[Step, ...]]], list[str]]:
    """The cost steps of a call's own ops (or its module rule), and the ops no rule counted."""
    rule = module_rule(call)
    if rule is not None:
        try:
            return [(f"{call.module_type} rule", rule(call))], []
        except Exception as error:  # e.g. a call that failed before producing its output: say so, never zero
            return [], [f"{call.module_type} (rule failed: {type(error).__name__})"]
    costs, uncounted = [], []
    for op in call.ops:
        treatment = classify(op.op)
        if treatment.how == UNCOUNTED:
            uncounted.append(op.op)
        elif treatment.rule is not None:
            try:
                steps = treatment.rule(op)
            except Exception as error:  # a rule that cannot read this overload: say so, never zero
                uncounted.append(f"{op.op} (rule failed: {type(error).__name__})")
                continue
            if steps:
                costs.append((op.op, steps))
    return costs, uncounted


def param_steps(call: LayerCall) -> tuple[Step, ...]:
    """The derivation of the parameters first used at this call (the module's rule, else per tensor)."""
    new = sum(p.numel for p in call.params_new)
    if call.params_shared and not call.params_new:
        return (given("params (new)", 0, note=reuse_note(call.params_shared)),)
    if not call.params_new and not call.is_leaf:
        return (given("params", 0),)
    rule = find_module_rule(call, "params") if not call.params_shared else None  # a rule also explains a 0
    if rule is not None:
        try:
            steps = rule(call)
            if steps and steps[-1].value == new:
                return steps
        except Exception:  # a subclass with other attributes: fall back to the tensors themselves
            pass
    return generic_params(call) if call.params_new else (given("params", 0),)


def build_row(call: LayerCall) -> Row:
    """One table row: the call's costs, their breakdown by term, its parameter steps and uncounted ops."""
    costs, uncounted = op_costs(call)
    return Row(call, tuple(costs), breakdown(costs), param_steps(call), tuple(uncounted))


def breakdown(costs: Sequence[tuple[str, Sequence[Step]]]) -> dict[str, int]:
    """Operations per term (MAC, add, ...) summed over the steps of a row's costs that carry a term."""
    out: dict[str, int] = {}
    for _, steps in costs:
        for s in steps:
            if s.term:
                term = str(s.term.value if isinstance(s.term, Term) else s.term)
                out[term] = out.get(term, 0) + int(s.value)
    return out


def used_param_names(rows: Sequence[Row]) -> set[str]:
    """Parameters some op of the forward pass read (through their module's call or functionally)."""
    return {p.name for r in rows for p in (*r.call.params_new, *r.call.params_shared)}


def unused_params(rows: Sequence[Row], trace: Trace) -> dict[str, int]:
    """Each module never called, with how many of its parameters no op read (0: all were read elsewhere)."""
    used = used_param_names(rows)
    return {name: sum(p.numel for p in trace.registered_params if p.name.startswith(name + ".") and p.name not in used)
            for name in trace.unused_modules}


def _uncounted(rows: Sequence[Row]) -> list[Diagnostic]:
    layers_of: dict[str, list[str]] = {}
    for r in rows:
        for op in r.uncounted:
            layers_of.setdefault(op, []).append(r.layer or r.call.module_type)
    found = []
    for op, layers in layers_of.items():
        what = f"{op} could not be counted" if "(" in op else f"{op} has no counting rule"
        found.append(Diagnostic("uncounted_op", f"{what}: ran {len(layers)}× and was not counted, so the totals "
                                "are a lower bound", tuple(dict.fromkeys(layers)), len(layers)))
    return found


def _unused(rows: Sequence[Row], trace: Trace) -> list[Diagnostic]:
    """Modules never called: one finding per module holding unread parameters, one line for all the others."""
    found, quiet = [], []
    has_params = {p.name.rsplit(".", 1)[0] for p in trace.registered_params}
    for name, n in unused_params(rows, trace).items():
        if n:
            found.append(Diagnostic("unused_module", f"{name} is registered but never called: its {n:,} parameters "
                                    "are in total_params but not in used_params", (name,), n))
        elif not any(p == name or p.startswith(name + ".") for p in has_params):
            quiet.append(name)
    if quiet:
        shown = ", ".join(quiet[:5]) + (f" and {len(quiet) - 5} more" if len(quiet) > 5 else "")
        found.append(Diagnostic("unused_module", f"{len(quiet)} module(s) without parameters were never called "
                                f"(nothing is missing from the counts): {shown}", tuple(quiet), 0))
    return found


def diagnostics(rows: Sequence[Row], trace: Trace) -> tuple[Diagnostic, ...]:
    """Findings: uncounted ops, shared parameters, unused modules, and the trace's notes."""
    found = _uncounted(rows)
    for r in rows:
        if r.call.params_shared:
            n = sum(p.numel for p in r.call.params_shared)
            found.append(Diagnostic("shared_params", f"{r.layer or r.call.module_type} (call {r.call.call_index}) "
                                    f"reuses {n:,} parameters counted once at their first use",
                                    (r.layer,), n))
    found += _unused(rows, trace)
    found += [Diagnostic("note", note) for note in trace.notes]
    return tuple(found)


def report_from_trace(trace: Trace, convention: str | Convention = "nbcount",
                      options: dict[str, Any] | None = None) -> Report:
    """Apply the rules to a Trace and assemble the Report."""
    rows = tuple(build_row(call) for call in trace.calls)
    return Report(rows, trace, get_convention(convention), diagnostics(rows, trace), options or {})
