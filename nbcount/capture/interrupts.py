"""Ctrl-C held back while a run sets up or tears down, delivered as soon as it is safe.

A KeyboardInterrupt that lands between entering a dispatch mode and leaving it would leave the mode on
torch's stack for the rest of the session. While ``deferred()`` is active (main thread only: signals only
reach it) SIGINT is recorded instead of raised; ``open()`` lets it through for the part that may take long
(the forward); the recorded interrupt is delivered, through the handler that was installed before, on exit.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


class Gate:
    """Holds SIGINT back, except inside ``open()``."""

    def __init__(self) -> None:
        self.previous: Any = None
        self.pending: FrameType | None | bool = False
        self.active = threading.current_thread() is threading.main_thread()

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self.pending = frame or True

    def _deliver(self) -> None:
        if self.pending is False:
            return
        frame = self.pending if isinstance(self.pending, FrameType) else None
        self.pending = False
        if callable(self.previous):
            self.previous(signal.SIGINT, frame)
        elif self.previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def open(self) -> Iterator[None]:
        """Within: Ctrl-C interrupts as usual (one held back so far is delivered first)."""
        if not self.active:
            yield
            return
        signal.signal(signal.SIGINT, self.previous)
        try:
            self._deliver()
            yield
        finally:
            signal.signal(signal.SIGINT, self._hold)


@contextlib.contextmanager
def deferred() -> Iterator[Gate]:
    """Within: SIGINT is held back (see Gate.open); on exit the handler is restored and a held Ctrl-C delivered."""
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
            if not _already_interrupted():
                gate._deliver()


def _already_interrupted() -> bool:
    """Whether a KeyboardInterrupt is already propagating (deliver no second one on top of it)."""
    import sys

    return isinstance(sys.exc_info()[1], KeyboardInterrupt)
