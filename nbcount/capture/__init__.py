"""Capture: run a stand-in of the user's model once and record what happened. Attribution only: nothing
here counts.

- ``standin``: the copy of the model that runs (fake or copied tensors), so the user's objects are only read;
- ``fake``: the plumbing that runs each op without data, or with real arithmetic on the copies;
- ``book``: a stable identity and the metadata of every tensor, and live / peak bytes;
- ``tracker``: the module-call tracker, which attributes each aten op to the innermost module call;
- ``observer``: the protocol that lets more observers (training's backward pass) join a run;
- ``run``: puts them together: ``run(model, inputs, *, execution, observers=...) -> Trace``.
"""

from __future__ import annotations

from nbcount.capture.attrs import HYPERPARAMS, hyperparams, tensors_of
from nbcount.capture.book import TensorBook
from nbcount.capture.fake import is_fake_limitation
from nbcount.capture.observer import Observer, Run
from nbcount.capture.run import CaughtLimitation, frozen_gc, run
from nbcount.capture.tracker import CallTracker, CaptureError

__all__ = ["HYPERPARAMS", "CallTracker", "CaptureError", "CaughtLimitation", "Observer", "Run", "TensorBook",
           "frozen_gc", "hyperparams", "is_fake_limitation", "run", "tensors_of"]
