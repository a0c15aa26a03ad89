"""count(): model + inputs + convention → Report. Chooses how to run, then applies the rules."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from nbcount import capture, errors, lazy
from nbcount import execution as executions
from nbcount.analysis import analyse
from nbcount.convention import Convention, get_convention
from nbcount.inputs import (
    InputError,
    InputSize,
    check_inputs,
    example_inputs,
    model_device,
    normalise_sizes,
    split_inputs,
)
from nbcount.report import Report


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
    if lazy.has_lazy(model):  # counted on a materialised meta copy: the user's lazy model stays untouched
        counted = lazy.count_lazy(count, model, input_size, inputs=inputs, dtype=dtype, convention=convention,
                                  mode=mode, execution=execution, training=training, loss_fn=loss_fn)
        return replace(counted, counted=weakref.ref(model))
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
    options = {"input_size": input_size, "mode": mode, "execution": execution, "training": training}
    with capture.frozen_gc():
        try:
            trace = executions.trace(model, made, device, execution, mode, _observers(training, loss_fn))
            trace = errors.with_model_notes(trace, model)
        except capture.CaptureError as error:
            partial = analyse(error.trace, convention_obj, options, partial=True)
            message = _failure_message(error, model)
            raise CountError(message, partial, error.layer, error.cause) from None  # no internal traceback
    with capture.frozen_gc():  # thousands of rows: no full collection of the heap midway
        return replace(analyse(trace, convention_obj, options), counted=weakref.ref(model))


def _observers(training: bool, loss_fn: Callable[[Any], torch.Tensor] | None) -> executions.MakeObservers:
    """What watches the run besides the module-call tracker: with training=True, the backward pass."""
    if not training:
        return lambda: ()
    from nbcount.training import Backward

    return lambda: (Backward(loss_fn),)


def _failure_message(error: capture.CaptureError, model: nn.Module) -> str:
    return errors.failure_message(error.trace.calls, error.layer, error.cause, model)


