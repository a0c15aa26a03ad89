"""Clear messages for what count() cannot do: a wrong object, wrong inputs, or a layer that failed.

A failure names the layer, what that layer type expects (``Linear expects (*, in_features=8)``), what it
was given, a hint when the cause is recognisable, and where in the user's code it was raised.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import os
import re
import threading
import traceback
import types
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from nbcount.types import LayerCall, TensorMeta, Trace


def expected_input(module: nn.Module) -> str | None:
    """``"Conv2d expects (N, C_in=3, H, W) or ..."`` for known layer types (the op table's ``expects``), else None."""
    from nbcount.rules import in_mro
    from nbcount.rules.table import mro_names

    found = in_mro(mro_names(type(module)), "expects")
    if found is None:
        return None
    try:
        return f"{type(module).__name__} expects {found[1](module)}"
    except Exception:  # a subclass without the usual attributes
        return None


def _tuple(values: Any) -> str:
    values = tuple(values)
    return f"({values[0]},)" if len(values) == 1 else "(" + ", ".join(str(v) for v in values) + ")"


def _given(tensors: tuple[TensorMeta, ...]) -> str:
    if not tensors:
        return "no tensors"
    return ", ".join(f"{_tuple(t.shape)} {t.dtype}" for t in tensors)


# --- the model itself -----------------------------------------------------------------------------------


def not_a_module(obj: Any) -> str:
    """Why ``obj`` cannot be counted, and what to pass instead."""
    name = type(obj).__name__
    if isinstance(obj, type) and issubclass(obj, nn.Module):
        return (f"count() got the class {obj.__name__}, not a model: instantiate it first, "
                f"e.g. count({obj.__name__}(...), input_size=...)")
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return ("count() got a dict of tensors, which looks like a state_dict: build the model, call "
                "model.load_state_dict(state_dict), then count(model, ...)")
    if isinstance(obj, types.ModuleType):
        return f"count() got the Python module {obj.__name__!r}, not a torch.nn.Module instance"
    if callable(obj):
        return (f"count() needs a torch.nn.Module, got the {name} {getattr(obj, '__name__', name)!r}: wrap it, "
                "e.g. class Net(nn.Module): def forward(self, x): return fn(x)")
    return f"count() needs a torch.nn.Module instance, got {name}"


def missing_forward(model: nn.Module) -> str | None:
    """The message for a module without a forward (ModuleList, ModuleDict, a bare nn.Module), else None."""
    forward = getattr(type(model), "forward", None)
    if forward is not getattr(nn.Module, "forward", None) or type(model).__call__ is not nn.Module.__call__:
        return None
    name = type(model).__name__
    if isinstance(model, (nn.ModuleList, nn.ModuleDict)):
        return (f"{name} is a container without a forward: count the model whose forward calls its layers, "
                f"or wrap them in order with nn.Sequential(*layers)")
    return f"{name} has no forward() method: define forward(self, ...) before counting"


# --- a failed forward pass ------------------------------------------------------------------------------

_OWN = (os.path.dirname(torch.__file__), os.path.dirname(os.path.abspath(__file__)))
_STDLIB = os.path.dirname(contextlib.__file__)


def _is_internal(path: str) -> bool:
    path = os.path.abspath(path)
    if path.startswith(_OWN):
        return True
    return path.startswith(_STDLIB) and "site-packages" not in path and "dist-packages" not in path


def user_frame(error: BaseException) -> str | None:
    """``file:line in function: code`` of the innermost traceback frame outside torch, nbcount and stdlib."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not _is_internal(f.filename)]
    if not frames:
        return None
    found = frames[-1]
    code = f": {found.line.strip()}" if found.line else ""
    return f"{found.filename}:{found.lineno} in {found.name}{code}"


def _forward_signature(module: nn.Module) -> str:
    try:
        signature = inspect.signature(module.forward)
    except (TypeError, ValueError):
        return "forward(...)"
    empty = inspect.Parameter.empty
    plain = [p.replace(annotation=empty) for p in signature.parameters.values()]
    return f"forward{signature.replace(parameters=plain, return_annotation=empty)}"


def _inputs_example(module: nn.Module) -> str:
    """``inputs=(x, mask)`` or ``inputs={'x': x, 'scale': scale}`` from the forward's required parameters."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return "inputs=(x, mask) or inputs={'x': x, 'mask': mask}"
    required = [p for p in params if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if any(p.kind is p.KEYWORD_ONLY for p in required):
        return "inputs={" + ", ".join(f"'{p.name}': {p.name}" for p in required) + "}"
    names = ", ".join(p.name for p in required)
    return f"inputs=({names},)" if len(required) == 1 else f"inputs=({names})"


def hint(module: nn.Module | None, call: LayerCall | None, cause: BaseException) -> str | None:
    """One actionable sentence for a recognisable cause, else None."""
    text = str(cause)
    given = call.in_tensors if call is not None else ()
    floats = any(t.dtype.startswith(("float", "bfloat", "complex")) for t in given)
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and (floats or "indices" in text):
        return ("embeddings look up integer token ids: count with an integer dtype, e.g. "
                "count(model, (1, 128), dtype=torch.long), or pass inputs=torch.randint(0, vocab, (1, 128))")
    if "index out of range" in text.lower() or "out of bounds" in text.lower():
        limit = getattr(module, "num_embeddings", None)
        bound = f" in [0, num_embeddings={limit})" if limit else " within the table's size"
        return f"some input index is out of range (too large, or negative): pass ids{bound}"
    if "Kernel size can't be greater" in text or "Output size is too small" in text:
        return "the input is too small for this layer's kernel: use a larger input_size (spatial dimensions)"
    if isinstance(cause, TypeError) and re.search(r"missing \d+ required (positional|keyword-only) argument", text):
        if module is None:
            return "the forward needs more arguments than were given: pass them all with inputs=(...) or inputs={...}"
        return (f"the forward needs more arguments than were given ({_forward_signature(module)}): pass all of "
                f"them, e.g. {_inputs_example(module)}")
    if isinstance(cause, TypeError) and re.search(r"takes \d+ positional arguments? but \d+ (were|was) given", text):
        signature = _forward_signature(module) if module is not None else "forward(...)"
        return f"too many inputs for {signature}: one input_size shape (or one tensor) per positional argument"
    if "numpy.ndarray" in text or "ndarray" in text:
        return "inputs must be torch tensors: convert NumPy arrays with torch.from_numpy(array)"
    if call is not None and not given and "must be Tensor" in text:
        return "no tensor reached this layer: pass inputs=tensor, a tuple of positional inputs, or a dict of keywords"
    if "same dtype" in text or "expected scalar type" in text.lower() or "dtype" in text and "mismatch" in text:
        weights = _param_dtype(module)
        suffix = f": the weights are {weights}, so pass dtype={weights}" if weights else ""
        return f"the inputs' dtype does not match the layer's{suffix}"
    if "same device" in text or "expected device" in text.lower() or "is not on the expected device" in text:
        return "inputs and model are on different devices: put them on the same device (or use input_size=)"
    if "DataDependent" in type(cause).__name__ or "data-dependent" in text:
        return ("this step needs real values (it reads a tensor's data), which execution='fake' does not have: "
                "use execution='auto' (falls back to real arithmetic) or execution='real'")
    if module is not None and isinstance(cause, NotImplementedError) and missing_forward(module):
        return missing_forward(module)
    return None


def _param_dtype(module: nn.Module | None) -> str | None:
    for p in module.parameters() if module is not None else ():
        return str(p.dtype)
    return None


def _failing_index(calls: tuple[LayerCall, ...], layer: str) -> int | None:
    for i in range(len(calls) - 1, -1, -1):
        if calls[i].path == layer:
            return i
    return None


def _unfinished(calls: tuple[LayerCall, ...], index: int | None) -> set[int]:
    """The failing call and the calls enclosing it."""
    chain: set[int] = set()
    while index is not None and index not in chain:
        chain.add(index)
        index = calls[index].parent
    return chain


def _label(call: LayerCall) -> str:
    return f"{call.path!r} ({call.module_type})" if call.path else f"(root) ({call.module_type})"


def failure_message(calls: tuple[LayerCall, ...], layer: str, cause: BaseException, model: nn.Module) -> str:
    """The CountError message: failing layer, expected vs given input, hint, code location, progress."""
    index = _failing_index(calls, layer) if calls else None
    call = calls[index] if index is not None else None
    module = dict(model.named_modules()).get(layer) if call is not None else model
    reason = f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
    where = f"layer {_label(call)}" if call is not None else "the model's forward, before any layer ran"
    lines = [f"forward pass failed in {where}: {reason}"]
    expected = expected_input(module) if module is not None and call is not None else None
    if expected:
        lines.append(f"  expected: {expected}")
    if call is not None:
        lines.append(f"  given:    {_given(call.in_tensors)}")
    tip = hint(module, call, cause)
    if tip:
        lines.append(f"  hint:     {tip}")
    location = user_frame(cause)
    if location:
        lines.append(f"  raised at {location}")
    unfinished = _unfinished(calls, index)
    done = [c for i, c in enumerate(calls) if i not in unfinished]
    if done:
        last = done[-1]
        lines.append(f"  last layer that finished: {_label(last)} → {_given(last.out_tensors)}")
    calls_counted = f"{len(done)} module call{'s were' if len(done) != 1 else ' was'} counted"
    lines.append(f"{calls_counted} before the failure; the partial report is on this "
                 "exception's .report attribute (e.report.table). The original exception is e.cause.")
    return "\n".join(lines)


# --- quiet logs -----------------------------------------------------------------------------------------


class _ThreadFilter(logging.Filter):
    def __init__(self, thread: int):
        super().__init__()
        self.thread = thread

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread


@contextlib.contextmanager
def quiet_fake_logs() -> Iterator[None]:
    """Silence FakeTensorMode's own error log (a raw traceback per failed op) on this thread only."""
    logger = logging.getLogger("torch._subclasses.fake_tensor")
    quiet = _ThreadFilter(threading.get_ident())
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


# --- models that need care before counting -----------------------------------------------------------


def materialisable(model: nn.Module) -> nn.Module:
    """The model, or a TypeError when it has lazy parameters (their first forward would change the model)."""
    lazy = [name for name, t in (*model.named_parameters(), *model.named_buffers()) if is_lazy(t)]
    if lazy:
        raise TypeError(f"{type(model).__name__} has lazy (uninitialized) parameters ({', '.join(lazy[:3])}"
                        f"{', ...' if len(lazy) > 3 else ''}): their first forward pass creates them, which counting "
                        "must not do to your model. Run one forward pass on an example input first "
                        "(model(x)), then count it.")
    return model


def with_model_notes(trace: Trace, model: nn.Module) -> Trace:
    """The trace with a note when the model is empty: no parameters and no tensor operation ran."""
    if any(True for _ in model.parameters()) or any(c.ops for c in trace.calls):
        return trace
    note = (f"{type(model).__name__} has no parameters and its forward ran no tensor operation: every count "
            "is 0 — is this the model you meant to count?")
    return dataclasses.replace(trace, notes=(*trace.notes, note))
