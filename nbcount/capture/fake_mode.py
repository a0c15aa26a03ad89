"""torch's first FakeTensorMode, built where it cannot pin the caller's frames."""

from __future__ import annotations

import threading

_LOADED = threading.Event()


def load_fake_mode() -> None:
    """Construct torch's first FakeTensorMode on a helper thread, once.

    The first one imports ~800 modules (torch._dynamo), and ``torch.fx.wrap`` keeps the frame that imports some
    of them, with every frame below it, alive for good. On the caller's stack that would pin count()'s frames,
    and the user's model with them, for the life of the process; on a fresh thread it pins only that thread's.
    """
    if _LOADED.is_set():
        return
    from torch._subclasses.fake_tensor import FakeTensorMode

    def load() -> None:
        try:
            FakeTensorMode(allow_non_fake_inputs=True)
        finally:
            _LOADED.set()
    helper = threading.Thread(target=load, name="nbcount-load-fake-mode", daemon=True)
    helper.start()
    helper.join()
