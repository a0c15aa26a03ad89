"""The module-call tracker: a stack of module calls (path + call index) and the aten ops each one ran.

Each op is attributed to the innermost module call running when it was dispatched; a parameter an op reads
is counted at the first call that touches it, however it was reached. Calls from other threads are ignored.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nbcount.capture.attrs import class_names, forward_owner, hyperparams
from nbcount.capture.book import TensorBook
from nbcount.capture.observer import Observer
from nbcount.rules.quantized import packed_weights
from nbcount.types import BufferRef, LayerCall, OpEvent, ParamRef, TensorMeta, Trace


class CaptureError(RuntimeError):
    """The forward pass raised; `trace` holds the calls recorded up to the failure. `fake_limitation`: the
    failure may come from running without data (real arithmetic may succeed)."""

    def __init__(self, message: str, trace: Trace, layer: str, cause: BaseException, fake_limitation: bool = False):
        super().__init__(message)
        self.trace, self.layer, self.cause, self.fake_limitation = trace, layer, cause, fake_limitation


@dataclass
class Frame:
    """One module call while it runs: what it was given, the parameters it brought in, its ops."""

    module: nn.Module
    path: str
    call_index: int
    depth: int
    parent: int | None
    in_tensors: tuple[TensorMeta, ...]
    params_new: list[ParamRef]
    params_shared: list[ParamRef]
    buffers: list[BufferRef]
    ops: list[OpEvent] = field(default_factory=list)
    out_tensors: tuple[TensorMeta, ...] = ()
    done: bool = False
    op_start: int = 0
    op_end: int = -1


def buffer_ref(module: nn.Module, path: str, name: str, b: torch.Tensor) -> BufferRef:
    """A buffer as the table lists it: dotted name, shape, dtype, elements, bytes, whether the state_dict saves it."""
    return BufferRef(f"{path}.{name}" if path else name, tuple(b.shape), str(b.dtype).removeprefix("torch."),
                     b.numel(), b.numel() * b.element_size(), name not in module._non_persistent_buffers_set)


def registered_buffers(model: nn.Module) -> tuple[BufferRef, ...]:
    """Every buffer of the model once, by its first dotted name, with whether the state_dict saves it."""
    found: dict[int, BufferRef] = {}
    for prefix, module in model.named_modules():
        for name, b in module._buffers.items():
            if b is not None and id(b) not in found:
                found[id(b)] = buffer_ref(module, prefix, name, b)
    return tuple(found.values())


def _packed(model: nn.Module) -> dict[int, list[ParamRef]]:
    """id(module) -> the packed weights of its direct children (dynamically quantized layers keep their weights
    in C++ objects, read by the child's call: attributed to the call that runs it)."""
    packed: dict[int, list[ParamRef]] = {}
    for prefix, module in model.named_modules():
        for name, child in module.named_children():
            found = packed_weights(child, f"{prefix}.{name}" if prefix else name)
            if found:
                packed.setdefault(id(module), []).extend(found)
    return packed


def _param_names(model: nn.Module) -> dict[int, str]:
    """id(parameter) -> its first dotted name; safe for a module nested in itself."""
    names: dict[int, str] = {}
    for prefix, module in model.named_modules():
        for name, p in module._parameters.items():
            if p is not None:
                names.setdefault(id(p), f"{prefix}.{name}" if prefix else name)
    return names


class CallTracker(Observer):
    """Module calls as frames, ops attributed to the innermost one; builds the Trace."""

    def __init__(self, model: nn.Module, book: TensorBook):
        self.model, self.book = model, book
        self.thread = threading.get_ident()
        self.paths = {id(m): name for name, m in model.named_modules()}
        self.param_names = _param_names(model)
        self.packed = _packed(model)
        self.seen_params: set[int] = set()
        self.seen_packed: set[str] = set()
        self.seen_buffers: set[int] = set()
        self.frames: list[Frame] = []
        self.stack: list[int] = []
        self.counts: dict[str, int] = {}
        self.failed_frame: int | None = None
        self.failure: BaseException | None = None
        self.outer_error = sys.exc_info()[1]  # count() called inside an `except` block: not a failure
        self.op_names: dict[Any, tuple[str, bool]] = {}  # op -> (overload packet name, is_view)
        self.op_count = 0  # global op order, for the dataflow (receptive field)

    # parameters --------------------------------------------------------------
    def param_ref(self, p: torch.Tensor) -> ParamRef:
        """The parameter as a row lists it: dotted name, shape, elements, bytes, trainable."""
        return ParamRef(self.param_names.get(id(p), "?"), tuple(p.shape), p.numel(),
                        p.numel() * p.element_size(), bool(p.requires_grad))

    def touch_param(self, p: torch.Tensor) -> None:
        """A parameter read by an op: new to the innermost call unless seen before."""
        if id(p) in self.seen_params or not self.stack:
            return
        self.seen_params.add(id(p))
        self.frames[self.stack[-1]].params_new.append(self.param_ref(p))

    def convert(self, value: Any) -> Any:
        """An op argument with tensors as TensorMeta (parameters read are noted) and dtypes as names."""
        if isinstance(value, torch.Tensor):
            if id(value) in self.param_names:
                self.touch_param(value)
            return self.book.meta(value)
        if isinstance(value, (list, tuple)):
            return tuple(self.convert(v) for v in value)
        if isinstance(value, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
            return str(value)
        return value

    # module calls --------------------------------------------------------------
    def enter(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if threading.get_ident() != self.thread:
            return
        path = self.paths.get(id(module), "?")
        index = self.counts.get(path, 0)
        self.counts[path] = index + 1
        new: list[ParamRef] = []
        shared: list[ParamRef] = []
        for p in module._parameters.values():
            if p is None:
                continue
            (shared if id(p) in self.seen_params else new).append(self.param_ref(p))
            self.seen_params.add(id(p))
        for ref in self.packed.get(id(module), ()):  # a quantized layer's packed weights: read by its call
            (shared if ref.name in self.seen_packed else new).append(ref)
            self.seen_packed.add(ref.name)
        buffers = []
        for name, b in module._buffers.items():
            if b is not None and id(b) not in self.seen_buffers:
                self.seen_buffers.add(id(b))
                buffers.append(buffer_ref(module, path, name, b))
        parent = self.stack[-1] if self.stack else None
        inputs = tuple(self.book.tensors_in(args)) + tuple(self.book.tensors_in(kwargs))
        self.frames.append(Frame(module, path, index, len(self.stack), parent, inputs, new, shared, buffers,
                                 op_start=self.op_count))
        self.stack.append(len(self.frames) - 1)

    def leave(self, module: nn.Module, output: Any) -> None:
        if threading.get_ident() != self.thread or not self.stack:
            return
        frame_index = self.stack.pop()
        frame = self.frames[frame_index]
        error = sys.exc_info()[1]
        error = None if error is self.outer_error else error
        if error is not None and self.failure is not error:
            self.failure, self.failed_frame = error, frame_index
        frame.out_tensors = tuple(self.book.tensors_in(output))
        frame.done = error is None
        frame.op_end = self.op_count

    @property
    def current_layer(self) -> str:
        """The path of the innermost call running now ('' outside every call)."""
        return self.frames[self.stack[-1]].path if self.stack else ""

    @property
    def failed_layer(self) -> str:
        """The path of the innermost call that raised ('' when none did)."""
        return self.frames[self.failed_frame].path if self.failed_frame is not None else ""

    # ops -----------------------------------------------------------------------
    def event(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
              forward: bool = True) -> OpEvent:
        """The op as the Trace keeps it. A forward op is numbered in the global op order and its new outputs
        count as allocated (peak activation memory); another (backward) op is only described."""
        known = self.op_names.get(func)
        if known is None:
            known = self.op_names[func] = (str(func.overloadpacket), bool(getattr(func, "is_view", False)))
        name, is_view = known
        outs = out if isinstance(out, (tuple, list)) else (out,)
        record = self.book.allocate if forward and not is_view else self.book.meta
        outputs = tuple(record(o) for o in outs if isinstance(o, torch.Tensor))
        event = OpEvent(name, tuple(self.convert(a) for a in args),
                        tuple((k, self.convert(v)) for k, v in kwargs.items()), outputs, is_view,
                        self.op_count if forward else -1)
        self.op_count += forward
        return event

    def op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if self.stack:
            self.frames[self.stack[-1]].ops.append(self.event(func, args, kwargs, out))

    # the trace -------------------------------------------------------------------
    def trace(self, execution: str, inputs: tuple[TensorMeta, ...], outputs: tuple[TensorMeta, ...],
              notes: tuple[str, ...]) -> Trace:
        """Everything recorded so far, as a Trace."""
        calls = tuple(self._call(f) for f in self.frames)
        registered: dict[Any, ParamRef] = {}
        for name, p in self.model.named_parameters():
            registered[id(p)] = ParamRef(name, tuple(p.shape), p.numel(), p.numel() * p.element_size(),
                                         bool(p.requires_grad))
        for refs in self.packed.values():
            registered.update({ref.name: ref for ref in refs})
        return Trace(calls, tuple(registered.values()), _unused_modules(self.model, {c.path for c in calls}),
                     inputs, outputs, self.book.peak_bytes, execution, notes, registered_buffers(self.model))

    def _call(self, f: Frame) -> LayerCall:
        return LayerCall(
            path=f.path, call_index=f.call_index, module_type=type(f.module).__name__,
            classes=class_names(f.module), depth=f.depth, parent=f.parent, in_tensors=f.in_tensors,
            out_tensors=f.out_tensors, params_new=tuple(f.params_new), params_shared=tuple(f.params_shared),
            buffer_bytes=sum(b.nbytes for b in f.buffers), attrs=hyperparams(f.module), ops=tuple(f.ops),
            is_leaf=not any(True for _ in f.module.children()),
            op_span=(f.op_start, f.op_end if f.op_end >= 0 else self.op_count), buffers_new=tuple(f.buffers),
            forward_owner=forward_owner(f.module))


def _prefixes(path: str) -> list[str]:
    """'a.b.c' -> ['a', 'a.b', 'a.b.c'] (module names cannot contain dots)."""
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _unused_modules(model: nn.Module, called: set[str]) -> tuple[str, ...]:
    """The outermost modules with no call at or below them (linear in the number of modules)."""
    touched = {prefix for c in called for prefix in _prefixes(c)}
    unused = [name for name, _ in model.named_modules() if name and name not in touched]
    outer = set(unused)
    return tuple(n for n in unused if not any(p in outer for p in _prefixes(n)[:-1]))
