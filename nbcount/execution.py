"""How a count runs: without data where possible, with real arithmetic where it must — always on a stand-in.

``auto`` runs the stand-in on fake tensors. It is trusted only when it succeeds and no op failed on the way:
an op that failed without data (raised inside torch's fake / meta kernels), even one the forward caught
itself, makes the count run again with real arithmetic, on a stand-in holding copies of the model's values,
and the report says so. A model built on ``meta`` runs fake over meta (no values exist, so no second try).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import torch
from torch import nn

from nbcount import capture
from nbcount.capture.run import Inputs
from nbcount.types import Trace

EXECUTIONS = ("auto", "fake", "real")
MakeObservers = Callable[[], Sequence[capture.Observer]]


def _where(layer: str) -> str:
    return f"in {layer!r}" if layer else "in the model's own forward"


def _cause(error: capture.CaptureError) -> str:
    lines = str(error.cause).strip().splitlines()
    return f"{type(error.cause).__name__}: {lines[0]}" if lines else type(error.cause).__name__


def _real_note(error: capture.CaptureError, caught: bool) -> str:
    told = (", and your forward caught that error itself, so the run without data followed the branch taken on "
            "failure" if caught else "")
    return (f"counted with real arithmetic: an op failed without data {_where(error.layer)} ({_cause(error)})"
            f"{told}; the forward ran again on a stand-in holding copies of your model's parameter and buffer "
            "values, so data-dependent branches follow those values")


def _caught_note(error: capture.CaptureError, execution: str) -> str:
    why = ("a model on the meta device has no values to compute with" if execution == "meta"
           else "execution='fake' was asked for; count with execution='auto' or 'real' to follow the real branch")
    return (f"warning: an op needed real values {_where(error.layer)} ({type(error.cause).__name__}) and your "
            f"forward caught the error itself: this count follows the branch your code takes on that error ({why})")


def trace(model: nn.Module, inputs: Inputs | Callable[[], Inputs], device: torch.device, execution: str, mode: str,
          observers: MakeObservers) -> Trace:
    """Run the stand-in as `execution` asks ("auto", "fake" or "real") and return the Trace."""
    def attempt(how: str, notes: tuple[str, ...] = ()) -> Trace:
        return capture.run(model, inputs, execution=how, observers=observers(), mode=mode, notes=notes)

    if device.type == "meta" or execution in ("auto", "fake"):
        how = "meta" if device.type == "meta" else "fake"
        try:
            return attempt(how)
        except capture.CaughtLimitation as caught:
            if how == "meta" or execution == "fake":
                return _with_note(caught.trace, _caught_note(caught, how))
            note = _real_note(caught, caught=True)
        except capture.CaptureError as error:
            if how == "meta" or execution == "fake" or not error.fake_limitation:
                raise
            note = _real_note(error, caught=False)
        return attempt("real", (note,))
    return attempt("real")


def _with_note(trace: Trace, note: str) -> Trace:
    return replace(trace, notes=(*trace.notes, note))
