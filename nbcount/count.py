"""count(): model + inputs + convention → Report. Chooses how to run, then applies the rules."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from nbcount import capture, errors
from nbcount import execution as executions
from nbcount.conventions import Convention, get_convention
from nbcount.derive import Step, given
from nbcount.inputs import (
    InputError,
    InputSize,
    check_inputs,
    example_inputs,
    model_device,
    normalise_sizes,
    split_inputs,
)
from nbcount.report import Report, Row
from nbcount.rules import IGNORED_OPS, MODULE_RULES, OP_RULES, PARAM_RULES, find_module_rule
from nbcount.rules.params import generic_params
from nbcount.types import Diagnostic, LayerCall, Trace


class CountError(RuntimeError):
    """Counting failed; `report` holds the rows counted up to the failing layer."""

    def __init__(self, message: str, report: Report | None = None, layer: str = "",
                 cause: BaseException | None = None):
        super().__init__(message)
        self.report, self.layer, self.cause = report, layer, cause


def _make_inputs(input_size: InputSize | None, inputs: Any, dtype: torch.dtype | Sequence[torch.dtype],
                 device: torch.device) -> Any:
    """The caller's inputs as ``(args, kwargs)`` (the run copies or fakes them), or a function making example
    inputs inside the run's execution context (fakes there: no memory)."""
    if inputs is not None:
        return split_inputs(inputs, device)
    assert input_size is not None
    sizes = normalise_sizes(input_size)

    def make() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return example_inputs(sizes, dtype, device), {}
    return make


def _op_costs(call: LayerCall) -> tuple[list[tuple[str, tuple[Step, ...]]], list[str]]:
    rule = find_module_rule(MODULE_RULES, call)
    if rule is not None:
        try:
            return [(f"{call.module_type} rule", rule(call))], []
        except Exception as error:  # e.g. a call that failed before producing its output: say so, never zero
            return [], [f"{call.module_type} (rule failed: {type(error).__name__})"]
    costs, uncounted = [], []
    for op in call.ops:
        op_rule = OP_RULES.get(op.op)
        if op_rule is not None:
            try:
                costs.append((op.op, op_rule(op)))
            except Exception as error:  # a rule that cannot read this overload: say so, never zero
                uncounted.append(f"{op.op} (rule failed: {type(error).__name__})")
        elif op.op not in IGNORED_OPS:
            uncounted.append(op.op)
    return costs, uncounted


def _param_steps(call: LayerCall) -> tuple[Step, ...]:
    new = sum(p.numel for p in call.params_new)
    if not call.params_new:
        if call.params_shared:
            shared = sum(p.numel for p in call.params_shared)
            return (given("params (new)", 0, note=f"reuses {shared:,} parameters counted at an earlier call"),)
        return (given("params", 0),)
    rule = find_module_rule(PARAM_RULES, call) if not call.params_shared else None
    if rule is not None:
        try:
            steps = rule(call)
            if steps and steps[-1].value == new:
                return steps
        except Exception:  # a subclass with other attributes: fall back to the tensors themselves
            pass
    return generic_params(call)


def _row(call: LayerCall) -> Row:
    costs, uncounted = _op_costs(call)
    breakdown: dict[str, int] = {}
    for _, steps in costs:
        for s in steps:
            if s.term:
                breakdown[s.term] = breakdown.get(s.term, 0) + int(s.value)
    return Row(call, tuple(costs), breakdown, _param_steps(call), tuple(uncounted))


def _diagnostics(rows: Sequence[Row], trace: Trace, registered: dict[str, int]) -> tuple[Diagnostic, ...]:
    found: list[Diagnostic] = []
    uncounted: dict[str, list[str]] = {}
    for r in rows:
        for op in r.uncounted:
            uncounted.setdefault(op, []).append(r.layer or r.call.module_type)
    for op, layers in uncounted.items():
        found.append(Diagnostic("uncounted_op", f"{op} has no counting rule: ran {len(layers)}× and was not "
                                "counted, so the totals are a lower bound", tuple(dict.fromkeys(layers)),
                                len(layers)))
    for r in rows:
        if r.call.params_shared:
            n = sum(p.numel for p in r.call.params_shared)
            found.append(Diagnostic("shared_params", f"{r.layer or r.call.module_type} (call {r.call.call_index}) "
                                    f"reuses {n:,} parameters counted once at their first use",
                                    (r.layer,), n))
    for name in trace.unused_modules:
        n = sum(v for k, v in registered.items() if k.startswith(name + "."))
        found.append(Diagnostic("unused_module", f"{name} is registered but never called: its {n:,} "
                                "parameters are in total_params but not in used_params", (name,), n))
    found += [Diagnostic("note", note) for note in trace.notes]
    return tuple(found)


def report_from_trace(trace: Trace, convention: str | Convention = "nbcount",
                      options: dict[str, Any] | None = None) -> Report:
    """Apply the rules to a Trace and assemble the Report."""
    rows = tuple(_row(call) for call in trace.calls)
    registered = {p.name: p.numel for p in trace.registered_params}
    return Report(rows, trace, get_convention(convention), _diagnostics(rows, trace, registered), options or {})


def _check_model(model: Any) -> nn.Module:
    original = getattr(model, "_orig_mod", None)  # torch.compile: count the original module
    if isinstance(original, nn.Module):
        model = original
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError("TorchScript modules cannot be counted: their forward runs without Python hooks. "
                        "Count the original nn.Module before torch.jit.script / trace.")
    if not isinstance(model, nn.Module):
        raise TypeError(errors.not_a_module(model))
    problem = errors.missing_forward(model)
    if problem:
        raise TypeError(problem)
    return errors.materialisable(model)


def count(model: nn.Module, input_size: InputSize | None = None, *, inputs: Any = None,
          dtype: torch.dtype | Sequence[torch.dtype] = torch.float32, convention: str | Convention = "nbcount",
          mode: str | None = None, execution: str = "auto", training: bool = False,
          loss_fn: Callable[[Any], torch.Tensor] | None = None) -> Report:
    """Count parameters, MACs, FLOPs, shapes and memory of `model` on `input_size` or `inputs`.

    mode: "eval" (default), "train" (default with training=True) or "same" — the training flag during
    counting (restored after).
    execution: "auto" (without arithmetic where possible, real otherwise), "fake", or "real".
    training: also run the backward pass of `loss_fn(output)` (default: the sum of the outputs) and count it
    per layer (report.training, report.backward_macs, report.training_memory()).
    """
    model = _check_model(model)
    mode = mode or ("train" if training else "eval")
    if (input_size is None) == (inputs is None):
        raise InputError("give exactly one of input_size=(1, 3, 224, 224) or inputs=tensor / tuple / dict")
    if mode not in ("eval", "train", "same"):
        raise ValueError(f"mode must be 'eval', 'train' or 'same', not {mode!r}")
    if execution not in executions.EXECUTIONS:
        raise ValueError(f"execution must be 'auto', 'fake' or 'real', not {execution!r}")
    check_inputs(input_size, dtype)
    convention_obj = get_convention(convention)
    device = model_device(model)
    made = _make_inputs(input_size, inputs, dtype, device)
    options = {"input_size": input_size, "mode": mode, "execution": execution}
    with capture.frozen_gc():
        try:
            trace = executions.trace(model, made, device, execution, mode, _observers(training, loss_fn))
            trace = errors.with_model_notes(trace, model)
        except capture.CaptureError as error:
            partial = report_from_trace(error.trace, convention_obj, options)
            message = _failure_message(error, model)
            raise CountError(message, partial, error.layer, error.cause) from None  # no internal traceback
    again = functools.partial(count, model, convention=convention, mode=mode, execution=execution,
                              training=training, loss_fn=loss_fn)
    with capture.frozen_gc():  # thousands of rows: no full collection of the heap midway
        report = report_from_trace(trace, convention_obj, options)
    return replace(report, count_at=again)


def _observers(training: bool, loss_fn: Callable[[Any], torch.Tensor] | None) -> executions.MakeObservers:
    """What watches the run besides the module-call tracker: with training=True, the backward pass."""
    if not training:
        return lambda: ()
    from nbcount.training import Backward

    return lambda: (Backward(loss_fn),)


def _failure_message(error: capture.CaptureError, model: nn.Module) -> str:
    return errors.failure_message(error.trace.calls, error.layer, error.cause, model)


