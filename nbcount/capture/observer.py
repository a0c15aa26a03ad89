"""Observers: the parts that watch one run. The module-call tracker is always the first; others compose.

A run calls, in order: ``start`` (before anything runs), ``enter`` / ``leave`` around every module call,
``op`` after every aten op (forward, and whatever an observer runs after it), ``after_forward`` with the
model's output (inside every observer's ``context``), and ``finish`` on the Trace, which an observer may
extend (training adds the backward pass). Every method is optional.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import nn

from nbcount.types import Trace

if TYPE_CHECKING:
    from nbcount.capture.book import TensorBook
    from nbcount.capture.standin import StandIn
    from nbcount.capture.tracker import CallTracker


@dataclass
class Run:
    """What observers share: the stand-in being run, the tensor book and the module-call tracker."""

    standin: StandIn
    book: TensorBook
    tracker: CallTracker
    execution: str  # "meta", "fake" or "real"
    inputs: tuple[tuple[Any, ...], dict[str, Any]]  # what the stand-in is called with (fakes or copies)


class Observer:
    """Watches one run; override what you need."""

    phase = "forward"  # what the observer is doing now; names the pass in an error message

    def start(self, run: Run) -> None:
        """Before the forward: the stand-in exists, nothing has run."""

    def enter(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A module call begins (after the tracker pushed its frame)."""

    def leave(self, module: nn.Module, output: Any) -> None:
        """A module call ends (after the tracker popped its frame)."""

    def op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """An aten op ran and returned `out`."""

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """Entered around the forward and ``after_forward``."""
        return contextlib.nullcontext()

    def after_forward(self, output: Any) -> None:
        """The forward returned `output`; run more (a loss, a backward pass) here."""

    def finish(self, trace: Trace) -> Trace:
        """The run's Trace, extended with what this observer saw."""
        return trace


def overrides(observer: Observer, name: str) -> bool:
    """Whether `observer` defines method `name` itself (the run skips the base class's no-ops)."""
    return getattr(type(observer), name) is not getattr(Observer, name)
