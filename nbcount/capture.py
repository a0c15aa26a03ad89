"""Run the model once and record what happened: module calls (hooks) and aten ops (dispatch mode).

Attribution only: nothing here counts. Each aten op is attributed to the innermost module call
running when it was dispatched. Hooks are per-module handles (removed in ``finally``) and ignore
other threads; the dispatch mode is thread-local.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from nbcount.preserve import before_write
from nbcount.rules.quantized import packed_weights
from nbcount.types import BufferRef, LayerCall, OpEvent, ParamRef, TensorMeta, Trace

HYPERPARAMS = (
    "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "output_padding",
    "padding_mode", "transposed", "in_features", "out_features", "in1_features", "in2_features", "num_features",
    "eps", "momentum", "affine", "track_running_stats", "normalized_shape", "elementwise_affine", "num_groups",
    "num_channels", "num_embeddings", "embedding_dim", "padding_idx", "mode", "input_size", "hidden_size",
    "num_layers", "bidirectional", "batch_first", "proj_size", "bias", "scale_factor", "size", "align_corners",
    "output_size", "ceil_mode", "count_include_pad", "divisor_override", "return_indices", "embed_dim",
    "num_heads", "kdim", "vdim", "dim", "negative_slope", "p", "approximate", "start_dim", "end_dim",
    "upscale_factor", "num_parameters", "beta", "threshold", "min_val", "max_val", "alpha", "lambd",
    "add_zero_attn",
)


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return True
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list, torch.Size)):
        return tuple(_plain(v) for v in value)
    return str(value)


def hyperparams(module: nn.Module) -> tuple[tuple[str, Any], ...]:
    """The module's configuration attributes as plain values (a tensor attribute becomes True)."""
    found = []
    for name in HYPERPARAMS:
        if name in module.__dict__ or name in module._parameters or name in module._buffers:
            found.append((name, _plain(getattr(module, name, None))))
    return tuple(found)


def tensors_of(value: Any, depth: int = 0) -> list[torch.Tensor]:
    """The tensors inside nested tuples, lists, dicts and dataclasses, in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if depth > 6:
        return []
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif hasattr(value, "__dataclass_fields__"):
        items = [getattr(value, f) for f in value.__dataclass_fields__]
    else:
        return []
    return [t for v in items for t in tensors_of(v, depth + 1)]


def _class_names(module: nn.Module) -> tuple[str, ...]:
    return tuple(f"{c.__module__}.{c.__qualname__}" for c in type(module).__mro__)


def _forward_owner(module: nn.Module) -> str:
    """The class that defines the forward that runs (module rules describe their own class's forward only)."""
    if "forward" in module.__dict__:  # a forward set on the instance replaces every class's
        return "<instance>"
    owner = next((c for c in type(module).__mro__ if "forward" in c.__dict__), type(module))
    return f"{owner.__module__}.{owner.__qualname__}"


class CaptureError(RuntimeError):
    """The forward pass raised; `trace` holds the calls recorded up to the failure."""

    def __init__(self, message: str, trace: Trace, layer: str, cause: BaseException):
        super().__init__(message)
        self.trace, self.layer, self.cause = trace, layer, cause


@dataclass
class _Frame:
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


class _TensorIds:
    """tensor -> int by identity, without keeping tensors alive: WeakIdKeyDictionary's contract at a tenth
    of its lookup cost (a lookup makes no weak reference; only an insertion does)."""

    __slots__ = ("entries", "drop", "__weakref__")

    def __init__(self) -> None:
        self.entries: dict[int, tuple[weakref.KeyedRef, int]] = {}
        selfref = weakref.ref(self)

        def drop(ref: weakref.KeyedRef) -> None:  # the tensor died: its id() may be reused
            me = selfref()
            if me is not None and (entry := me.entries.get(ref.key)) is not None and entry[0] is ref:
                del me.entries[ref.key]

        self.drop = drop

    def get(self, t: Any, default: Any = None) -> Any:
        entry = self.entries.get(id(t))
        return entry[1] if entry is not None and entry[0]() is t else default

    def __contains__(self, t: Any) -> bool:
        return self.get(t) is not None

    def __setitem__(self, t: Any, value: int) -> None:
        key = id(t)
        self.entries[key] = (weakref.KeyedRef(t, self.drop, key), value)


class _Recorder:
    """The state shared by the hooks and the dispatch mode during one forward pass."""

    def __init__(self, model: nn.Module):
        self.thread = threading.get_ident()
        self.paths = {id(m): name for name, m in model.named_modules()}
        self.param_names: dict[int, str] = {}  # first name of each parameter; safe for a module nested in itself
        self.packed: dict[int, list[ParamRef]] = {}  # id(module) -> packed weights of its direct children
        for prefix, module in model.named_modules():
            for name, child in module.named_children():
                found = packed_weights(child, f"{prefix}.{name}" if prefix else name)
                if found:
                    self.packed.setdefault(id(module), []).extend(found)
            for name, p in module._parameters.items():
                if p is not None:
                    self.param_names.setdefault(id(p), f"{prefix}.{name}" if prefix else name)
        self.seen_params: set[int] = set()
        self.seen_packed: set[str] = set()
        self.seen_buffers: set[int] = set()
        self.frames: list[_Frame] = []
        self.stack: list[int] = []
        self.counts: dict[str, int] = {}
        self.ids = _TensorIds()
        self.dtype_names: dict[torch.dtype, str] = {}
        self.next_id = 0
        self.live_bytes = 0
        self.peak_bytes = 0
        self.failed_frame: int | None = None
        self.failure: BaseException | None = None
        self.outer_error = sys.exc_info()[1]  # count() called inside an `except` block: not a failure
        self.op_names: dict[Any, tuple[str, bool]] = {}  # op -> (overload packet name, is_view)
        self.op_count = 0  # global op order, for the dataflow (receptive field)
        self.on_meta = False  # running on meta tensors: the op table's checks stand in for the real kernels'
        self.manual_root: nn.Module | None = None  # a root whose __call__ bypasses hooks: entered by call_root

    # tensors -----------------------------------------------------------------
    def meta(self, t: torch.Tensor) -> TensorMeta:
        tid = self.ids.get(t)
        if tid is None:
            tid = self.next_id
            self.next_id += 1
            self.ids[t] = tid
        dtype = t.dtype
        name = self.dtype_names.get(dtype)
        if name is None:
            name = self.dtype_names[dtype] = str(dtype).removeprefix("torch.")
        return TensorMeta(tuple(t.shape), name, t.element_size(), tid)  # static shapes: the sizes are ints

    def convert(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            if id(value) in self.param_names:
                self.touch_param(value)
            return self.meta(value)
        if isinstance(value, (list, tuple)):
            return tuple(self.convert(v) for v in value)
        if isinstance(value, (torch.dtype, torch.device, torch.layout, torch.memory_format)):
            return str(value)
        return value

    def tensors_in(self, value: Any) -> list[TensorMeta]:
        return [self.meta(t) for t in tensors_of(value)]

    def track_allocation(self, t: torch.Tensor) -> None:
        if t in self.ids:
            return  # an alias of a tensor already seen (in-place op, view)
        nbytes = t.numel() * t.element_size()
        self.live_bytes += nbytes
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        weakref.finalize(t, self._release, nbytes)

    def _release(self, nbytes: int) -> None:
        self.live_bytes -= nbytes

    # parameters --------------------------------------------------------------
    def param_ref(self, p: torch.Tensor) -> ParamRef:
        return ParamRef(self.param_names.get(id(p), "?"), tuple(p.shape), p.numel(),
                        p.numel() * p.element_size(), bool(p.requires_grad))

    def touch_param(self, p: torch.Tensor) -> None:
        if id(p) in self.seen_params or not self.stack:
            return
        self.seen_params.add(id(p))
        self.frames[self.stack[-1]].params_new.append(self.param_ref(p))

    # module calls --------------------------------------------------------------
    def enter(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if threading.get_ident() != self.thread or module is self.manual_root:
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
                buffers.append(BufferRef(f"{path}.{name}" if path else name, tuple(b.shape),
                                         str(b.dtype).removeprefix("torch."), b.numel(), b.numel() * b.element_size(),
                                         name not in module._non_persistent_buffers_set))
        parent = self.stack[-1] if self.stack else None
        inputs = tuple(self.tensors_in(args)) + tuple(self.tensors_in(kwargs))
        self.frames.append(_Frame(module, path, index, len(self.stack), parent, inputs, new, shared, buffers,
                                  op_start=self.op_count))
        self.stack.append(len(self.frames) - 1)

    def leave(self, module: nn.Module, output: Any) -> None:
        if threading.get_ident() != self.thread or not self.stack or module is self.manual_root:
            return
        frame_index = self.stack.pop()
        frame = self.frames[frame_index]
        error = sys.exc_info()[1]
        error = None if error is self.outer_error else error
        if error is not None and self.failure is not error:
            self.failure, self.failed_frame = error, frame_index
        frame.out_tensors = tuple(self.tensors_in(output))
        frame.done = error is None
        frame.op_end = self.op_count

    def op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if not self.stack:
            return
        known = self.op_names.get(func)
        if known is None:
            known = self.op_names[func] = (str(func.overloadpacket), bool(getattr(func, "is_view", False)))
        name, is_view = known
        outs = out if isinstance(out, (tuple, list)) else (out,)
        tensors = [o for o in outs if isinstance(o, torch.Tensor)]
        if not is_view:
            for t in tensors:
                self.track_allocation(t)
        event = OpEvent(name, tuple(self.convert(a) for a in args),
                        tuple((k, self.convert(v)) for k, v in kwargs.items()),
                        tuple(self.meta(t) for t in tensors), is_view, self.op_count)
        self.op_count += 1
        self.frames[self.stack[-1]].ops.append(event)


@contextlib.contextmanager
def frozen_gc() -> Iterator[None]:
    """Within: the objects alive before the count (model, torch's modules) are out of the collector's way.

    A count allocates many small objects, and each full collection rescans the whole heap: ~20% of the
    time of a 2,000-layer count. Nothing is leaked: ``gc.unfreeze()`` hands them back afterwards.
    Skipped when the caller froze objects itself or disabled the collector.
    """
    if gc.get_freeze_count() or not gc.isenabled():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _active_fake_mode() -> Any:
    """The FakeTensorMode that count() entered around this capture, or None (meta / real execution)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    return next((m for m in _get_current_dispatch_mode_stack() if isinstance(m, FakeTensorMode)), None)


class _Faker:
    """Real tensors (the model's parameters and buffers) → fake copies, made once per tensor per count.

    FakeTensorMode converts them itself, but an op with a non-fake input bypasses its dispatch cache
    and re-runs the op's Python decomposition every time (BatchNorm, LayerNorm, addmm: ~3x the cost).
    Converting first gives cacheable ops. A plain dense tensor (a parameter, a buffer, an input) becomes
    ``FakeTensor(mode, empty_strided(same metadata on meta), device)``: the metadata torch's own converter
    produces (size, stride, dtype, device, requires_grad, dispatch keys), ~9x cheaper; anything else (a
    view, a subclass, sparse, quantized, conjugate, non-leaf) goes through the mode's converter. Both are
    registered in the converter's memo, so the mode maps a real tensor to the same fake copy.
    """

    def __init__(self, mode: Any):
        from torch._subclasses.fake_tensor import FakeTensor

        self.mode, self.fake_type = mode, FakeTensor
        self.converter = mode.fake_tensor_converter
        self.memo: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(real) -> (real kept alive, fake)

    def fake(self, t: torch.Tensor) -> torch.Tensor:
        found = self.memo.get(id(t))
        if found is not None:
            return found[1]
        if (type(t) in (torch.Tensor, nn.Parameter) and t.layout == torch.strided and t._base is None
                and t.grad_fn is None and not t.is_quantized and not t.is_nested and not t.is_conj()
                and not t.is_neg() and not t.is_inference() and t.storage_offset() == 0
                and t.device.type != "meta"):
            with torch._C._DisableTorchDispatch():  # a plain meta tensor, not one made by the fake mode
                meta = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta",
                                           requires_grad=t.requires_grad)
            fake = self.fake_type(self.mode, meta, t.device)
            self.converter.set_tensor_memo(t, fake)
        else:
            fake = self.converter.from_real_tensor(self.mode, t)
        self.memo[id(t)] = (t, fake)
        return fake

    def value(self, v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return v if isinstance(v, self.fake_type) else self.fake(v)
        if isinstance(v, (list, tuple)) and any(isinstance(x, torch.Tensor) for x in v):
            return type(v)(self.value(x) for x in v)
        return v


_MHA = torch.ops.aten._native_multi_head_attention.default  # nn.MultiheadAttention's fused path
_DEVICE = torch.ops.prim.device.default


def _without_data(func: Any) -> tuple[Any, Any]:
    """The op table's (check, stand_in) for this op when it runs without data (fake or meta tensors).

    check refuses a call the real kernel would refuse (fake and meta kernels accept some); stand_in shapes a
    call the real kernel accepts but the fake/meta kernel refuses (returns NotImplemented to run the op itself).
    """
    from nbcount.rules.classify import facet

    name = str(func.overloadpacket)
    return facet(name, "check"), facet(name, "stand_in")


class _OpMode(TorchDispatchMode):
    def __init__(self, recorder: _Recorder):
        super().__init__()
        self.recorder = recorder
        fake = _active_fake_mode()
        self.faker = _Faker(fake) if fake is not None else None
        self.without_data: dict[Any, tuple[Any, Any]] = {}

    def _run(self, func: Any, args: Any, kwargs: dict[str, Any], stand_in: Any) -> Any:
        if stand_in is not None:
            out = stand_in(func, args, kwargs)
            if out is not NotImplemented:
                return out
        return func(*args, **kwargs)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        if func is _DEVICE:  # FakeTensor.device asking the mode: not an op, and real execution never sees it
            return func(*args, **(kwargs or {}))
        kwargs = kwargs or {}
        check, stand_in = None, None
        if self.faker is not None or self.recorder.on_meta:
            rules = self.without_data.get(func)
            if rules is None:
                rules = self.without_data[func] = _without_data(func)
            check, stand_in = rules
        if check is not None:
            check(func, args, kwargs)
        before_write(func, args, kwargs)  # copy a model parameter this op is about to overwrite
        if self.faker is None:
            out = self._run(func, args, kwargs, stand_in)
        else:  # the recorder still sees the original tensors (parameter identity)
            value = self.faker.value
            out = self._run(func, [value(a) for a in args], {k: value(v) for k, v in kwargs.items()}, stand_in)
            if func is _MHA and not (args[10] if len(args) > 10 else kwargs.get("need_weights", True)):
                out = (out[0], None)  # as the CPU kernel: no weights (the fake kernel gives an empty tensor)
        self.recorder.op(func, args, kwargs, out)
        return out


def _attach(model: nn.Module, recorder: _Recorder, handles: list[Any]) -> None:
    """Register the recorder's hooks on every module, appending each handle as soon as it exists."""
    for module in {id(m): m for m in model.modules()}.values():
        handles.append(module.register_forward_pre_hook(
            lambda m, a, k: recorder.enter(m, a, k), with_kwargs=True))
        handles.append(module.register_forward_hook(
            lambda m, a, o: recorder.leave(m, o), always_call=True))


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


def _trace(model: nn.Module, recorder: _Recorder, execution: str, inputs: tuple[TensorMeta, ...],
           outputs: tuple[TensorMeta, ...], notes: tuple[str, ...]) -> Trace:
    calls = []
    for f in recorder.frames:
        calls.append(LayerCall(
            path=f.path, call_index=f.call_index, module_type=type(f.module).__name__,
            classes=_class_names(f.module), depth=f.depth, parent=f.parent, in_tensors=f.in_tensors,
            out_tensors=f.out_tensors, params_new=tuple(f.params_new), params_shared=tuple(f.params_shared),
            buffer_bytes=sum(b.nbytes for b in f.buffers), attrs=hyperparams(f.module), ops=tuple(f.ops),
            is_leaf=not any(True for _ in f.module.children()),
            op_span=(f.op_start, f.op_end if f.op_end >= 0 else recorder.op_count), buffers_new=tuple(f.buffers),
            forward_owner=_forward_owner(f.module)))
    registered: dict[Any, ParamRef] = {}
    for name, p in model.named_parameters():
        registered[id(p)] = ParamRef(name, tuple(p.shape), p.numel(), p.numel() * p.element_size(),
                                     bool(p.requires_grad))
    for refs in recorder.packed.values():
        registered.update({ref.name: ref for ref in refs})
    called = {c.path for c in calls}
    return Trace(tuple(calls), tuple(registered.values()), _unused_modules(model, called), inputs, outputs,
                 recorder.peak_bytes, execution, notes, registered_buffers(model))


def registered_buffers(model: nn.Module) -> tuple[BufferRef, ...]:
    """Every buffer of the model once, by its first dotted name, with whether the state_dict saves it."""
    found: dict[int, BufferRef] = {}
    for prefix, module in model.named_modules():
        for name, b in module._buffers.items():
            if b is not None and id(b) not in found:
                found[id(b)] = BufferRef(f"{prefix}.{name}" if prefix else name, tuple(b.shape),
                                         str(b.dtype).removeprefix("torch."), b.numel(), b.numel() * b.element_size(),
                                         name not in module._non_persistent_buffers_set)
    return tuple(found.values())


def call_root(model: nn.Module, recorder: _Recorder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``model(*args, **kwargs)``; a root whose class overrides ``__call__`` skips its own hooks, so its call is
    entered here (and its hooks, should the override reach them, are ignored): its own ops keep a row."""
    if type(model).__call__ is nn.Module.__call__:
        return model(*args, **kwargs)
    recorder.enter(model, args, kwargs)
    recorder.manual_root = model
    try:
        output = model(*args, **kwargs)
    except BaseException:
        recorder.manual_root = None
        recorder.leave(model, None)
        raise
    recorder.manual_root = None
    recorder.leave(model, output)
    return output


def run(model: nn.Module, make_inputs: Callable[[], tuple[tuple[Any, ...], dict[str, Any]]],
        execution: str, notes: tuple[str, ...] = ()) -> Trace:
    """Run ``model(*args, **kwargs)`` once under hooks and the op recorder; return the Trace.

    The caller chooses the execution context (meta, fake or real) and enters it around this call.
    On failure a CaptureError carries the partial Trace and the path of the failing layer.
    """
    recorder = _Recorder(model)
    recorder.on_meta = execution == "meta"
    args, kwargs = make_inputs()  # before any hook exists: a bad input leaves nothing behind
    for t in tensors_of((args, kwargs)):
        recorder.track_allocation(t)
    in_meta = tuple(recorder.tensors_in((args, kwargs)))
    handles: list[Any] = []
    try:
        _attach(model, recorder, handles)
        with _OpMode(recorder):
            output = call_root(model, recorder, args, kwargs)
        out_meta = tuple(recorder.tensors_in(output))
        del output
    except Exception as error:  # KeyboardInterrupt / SystemExit propagate as they are, after cleanup
        trace = _trace(model, recorder, execution, in_meta, (), notes)
        layer = recorder.frames[recorder.failed_frame].path if recorder.failed_frame is not None else ""
        raise CaptureError(str(error), trace, layer, error) from error
    finally:
        for h in handles:
            h.remove()
    return _trace(model, recorder, execution, in_meta, out_meta, notes)
