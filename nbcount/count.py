"""count(): model + inputs + convention → Report. Chooses how to run, then applies the rules."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from nbcount import capture, errors, lazy
from nbcount.conventions import Convention, get_convention
from nbcount.inputs import (
    InputError,
    InputSize,
    check_inputs,
    example_inputs,
    model_device,
    normalise_sizes,
    split_inputs,
)
from nbcount.preserve import preserved
from nbcount.report import Report
from nbcount.rows import report_from_trace
from nbcount.types import Trace


class CountError(RuntimeError):
    """Counting failed; `report` holds the rows counted up to the failing layer."""

    def __init__(self, message: str, report: Report | None = None, layer: str = "",
                 cause: BaseException | None = None):
        super().__init__(message)
        self.report, self.layer, self.cause = report, layer, cause


def _fake_mode() -> Any:
    from torch._subclasses.fake_tensor import FakeTensorMode

    return FakeTensorMode(allow_non_fake_inputs=True)


def _is_fake_limitation(error: BaseException) -> bool:
    """Errors that come from running without data (fake tensors), not from the model being wrong."""
    mod = type(error).__module__ or ""
    text = str(error)
    return (mod.startswith(("torch._subclasses", "torch.fx.experimental", "torch._dynamo"))
            or "data-dependent" in text or "FakeTensor" in text or "fake tensor" in text.lower()
            or "Cannot access data pointer" in text or "meta tensor" in text.lower()
            or isinstance(error, NotImplementedError))


def _make_inputs(model: nn.Module, input_size: InputSize | None, inputs: Any,
                 dtype: torch.dtype | Sequence[torch.dtype], device: torch.device) -> Any:
    def make() -> tuple[tuple[Any, ...], dict[str, Any]]:
        if inputs is not None:
            return split_inputs(inputs, device)
        assert input_size is not None
        return example_inputs(normalise_sizes(input_size), dtype, device), {}
    return make


def _trace(model: nn.Module, make: Any, device: torch.device, execution: str,
           run: Callable[..., Trace] = capture.run) -> Trace:
    if device.type == "meta":
        return run(model, make, "meta")
    if execution in ("auto", "fake"):
        try:
            with _fake_mode(), errors.quiet_fake_logs():
                return run(model, make, "fake")
        except capture.CaptureError as error:
            if execution == "fake" or not _is_fake_limitation(error.cause):
                raise
            note = f"counted with real arithmetic: running without data failed ({type(error.cause).__name__})"
            return run(model, make, "real", (note,))
    return run(model, make, "real")


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
        return lazy.count_lazy(count, model, input_size, inputs=inputs, dtype=dtype, convention=convention, mode=mode,
                               execution=execution, training=training, loss_fn=loss_fn)
    model = _check_model(model)
    mode = mode or ("train" if training else "eval")
    if (input_size is None) == (inputs is None):
        raise InputError("give exactly one of input_size=(1, 3, 224, 224) or inputs=tensor / tuple / dict")
    if mode not in ("eval", "train", "same"):
        raise ValueError(f"mode must be 'eval', 'train' or 'same', not {mode!r}")
    if execution not in ("auto", "fake", "real"):
        raise ValueError(f"execution must be 'auto', 'fake' or 'real', not {execution!r}")
    check_inputs(input_size, dtype)
    convention_obj = get_convention(convention)
    device = model_device(model)
    make = _make_inputs(model, input_size, inputs, dtype, device)
    options = {"input_size": input_size, "mode": mode, "execution": execution}
    with capture.frozen_gc(), preserved(model, mode), torch.no_grad():
        try:
            trace = errors.with_model_notes(_trace(model, make, device, execution, _runner(training, loss_fn)), model)
        except capture.CaptureError as error:
            partial = report_from_trace(error.trace, convention_obj, options)
            message = _failure_message(error, model)
            raise CountError(message, partial, error.layer, error.cause) from None  # no internal traceback
    again = functools.partial(count, model, convention=convention, mode=mode, execution=execution,
                              training=training, loss_fn=loss_fn)
    with capture.frozen_gc():  # thousands of rows: no full collection of the heap midway
        report = report_from_trace(trace, convention_obj, options)
    return replace(report, count_at=again)


def _runner(training: bool, loss_fn: Callable[[Any], torch.Tensor] | None) -> Callable[..., Trace]:
    """capture.run, or with training=True the capture that also runs the loss and the backward pass."""
    if not training:
        return capture.run
    from nbcount.training import run

    return functools.partial(run, loss_fn=loss_fn)


def _failure_message(error: capture.CaptureError, model: nn.Module) -> str:
    return errors.failure_message(error.trace.calls, error.layer, error.cause, model)


