"""Ctrl-C during a run: held back, then raised at a safe point.

Python raises KeyboardInterrupt at whatever bytecode runs when SIGINT arrives. During a count that may be
inside a callback torch's C++ makes into Python, where an exception aborts the whole process, or between
entering a dispatch mode and leaving it, which would leave the mode on torch's stack. So while
``deferred()`` is active (main thread only: signals only reach it) SIGINT is recorded instead of raised;
``Gate.check()`` raises it at safe points — the run calls it at every module call and every op, so a long
forward still stops promptly — and one that arrives after the last check is delivered on exit, through the
handler that was installed before (IPython's, the default KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


class Gate:
    """Holds SIGINT; ``check()`` delivers a held one."""

    def __init__(self) -> None:
        self.previous: Any = None
        self.pending = False
        self.frame: FrameType | None = None
        self.active = threading.current_thread() is threading.main_thread()

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self.pending, self.frame = True, frame

    def check(self) -> None:
        """Deliver a held Ctrl-C now (the caller is at a point where an exception unwinds cleanly)."""
        if not self.pending:
            return
        self.pending = False
        if callable(self.previous):
            self.previous(signal.SIGINT, self.frame)
        elif self.previous != signal.SIG_IGN:
            raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[Gate]:
    """Within: SIGINT is held (see Gate.check); on exit the handler is restored and a held Ctrl-C delivered."""
    gate = Gate()
    if gate.active:
        gate.previous = signal.getsignal(signal.SIGINT)
        gate.active = gate.previous is not None  # a handler installed outside Python cannot be put back
    if gate.active:
        try:
            signal.signal(signal.SIGINT, gate._hold)
        except ValueError:  # an embedded interpreter without signal support
            gate.active = False
    try:
        yield gate
    finally:
        if gate.active:
            signal.signal(signal.SIGINT, gate.previous)
            if not isinstance(sys.exc_info()[1], KeyboardInterrupt):  # not a second one on top of the first
                gate.check()
