"""A progress line for slow counts: after one second, ``counting model… 3 s`` under the cell, updated each
second, then ``counted in 4.2 s``. Quick counts print nothing."""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

DELAY_S = 1.0


class _Ticker:
    """Publishes and updates one display from a helper thread while the count runs on the main thread."""

    def __init__(self, what: str, delay: float) -> None:
        self.what, self.delay = what, delay
        self.start = time.perf_counter()
        self.stop = threading.Event()
        self.handle: Any = None
        self.lock = threading.Lock()
        context = contextvars.copy_context()  # ipykernel routes output by the cell's context
        self.thread = threading.Thread(target=context.run, args=(self._run,), daemon=True, name="nbcount-progress")

    def _show(self, text: str) -> None:
        from IPython.display import display

        with self.lock:
            if self.handle is None:
                self.handle = display({"text/plain": text}, raw=True, display_id=True)
            else:
                self.handle.update({"text/plain": text}, raw=True)

    def _run(self) -> None:
        if self.stop.wait(self.delay):
            return
        while not self.stop.is_set():
            self._show(f"{self.what}… {time.perf_counter() - self.start:.0f} s")
            self.stop.wait(1.0)

    def finish(self, ok: bool) -> None:
        self.stop.set()
        self.thread.join()
        if self.handle is not None:
            verb = "counted" if ok else "stopped"
            self._show(f"{self.what.replace('counting', verb, 1)} in {time.perf_counter() - self.start:.1f} s")


@contextlib.contextmanager
def progress(what: str, delay: float = DELAY_S) -> Iterator[None]:
    """Show ``what… N s`` if the body takes longer than `delay` seconds, and the time taken at the end."""
    ticker = _Ticker(what, delay)
    ticker.thread.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        ticker.finish(ok)
