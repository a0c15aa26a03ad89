"""Fake plumbing: how the stand-in's ops run — without data (fake tensors) or with real arithmetic on copies.

``execution="fake"``: the stand-in's tensors are FakeTensors of the live tensors' shape, dtype, device and
stride (a model built on ``meta`` runs fake over meta, so library code that checks for fake tensors takes
its fake path). ``execution="real"``: the stand-in's tensors are copies of the live values, and random
ops draw from a private generator (seed 0), never from torch's global one.

An error that escapes an op while running without data is remembered (``op_errors``): running without data
is trusted only when it succeeds, and when the forward caught such an error itself (``try: n = x.item()
except ...``) the count must not follow the branch the failure took.
"""

from __future__ import annotations

import contextlib
import dis
import os
from typing import Any

import torch
from torch import nn

from nbcount.capture.fake_mode import load_fake_mode
from nbcount.errors import quiet_fake_logs

_MHA = torch.ops.aten._native_multi_head_attention.default  # nn.MultiheadAttention's fused path
# Where torch's fake and meta kernels live: an error raised in one of these comes from running without data.
_TORCH = os.path.dirname(torch.__file__)
_KERNEL_DIRS = tuple(os.path.join(_TORCH, d) for d in ("_subclasses", "_meta_registrations.py", "_prims",
                                                        "_prims_common", "_refs", "_decomp", "_library",
                                                        os.path.join("fx", "experimental")))
_FAKE_CLASS_MODULES = ("torch._subclasses", "torch.fx.experimental", "torch._dynamo", "torch._guards")


def _chain(error: BaseException) -> list[BaseException]:
    """The error and the errors it was raised from or while handling."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not e for e in found):
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _raised_in_kernel(error: BaseException) -> bool:
    """Whether the traceback passes through torch's fake / meta kernels."""
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(_KERNEL_DIRS):
            return True
        tb = tb.tb_next
    return False


def _raised_by_torch_c(error: BaseException) -> bool:
    """A plain RuntimeError raised by a C function (``.numpy()`` of a fake tensor), not by a Python ``raise``."""
    if type(error) is not RuntimeError or error.__traceback__ is None:
        return False
    tb = error.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code.co_code
    opname = dis.opname[code[tb.tb_lasti]] if tb.tb_lasti < len(code) else ""
    return opname not in ("RAISE_VARARGS", "RERAISE")


def is_fake_limitation(error: BaseException) -> bool:
    """Whether `error` (or an error it came from) may be a limit of running without data, judged by where it
    was raised: torch's fake / meta kernels, fake-tensor error classes, or torch's C code refusing a tensor
    without data. (A run also counts every error that escaped an op on fake tensors: ``op_errors``.)"""
    for e in _chain(error):
        if type(e).__module__.startswith(_FAKE_CLASS_MODULES):
            return True
        if _raised_in_kernel(e) or _raised_by_torch_c(e):
            return True
    return False


class _Outputs:
    """Output metadata of an op by its inputs' metadata: a layer repeated a thousand times pays torch's fake
    dispatch once. Only ops whose outputs follow from metadata alone are kept: functional ops (fresh
    outputs, no aliasing, no mutation: the outputs' shape, stride, dtype and device), views of their first
    argument (a tensor on the same storage, as the fake mode makes it) and in-place ops that change no
    metadata (the output is the first argument). Skipped: fake tensors carrying a constant (fake
    mode computes with those), tensors of another kind, arguments that cannot be hashed."""

    FRESH, SELF, VIEW = 1, 2, 3

    def __init__(self, mode: Any, fake_type: Any):
        self.mode, self.fake_type = mode, fake_type
        self.kinds = _KINDS  # shared by every run: metadata in, metadata out (like torch's own fake cache)
        if len(_ENTRIES) > _MOST_ENTRIES:
            _ENTRIES.clear()
        self.entries = _ENTRIES
        probe = fake_type(mode, torch.empty(0, device="meta"), torch.device("cpu"))
        self.state = {k: v for k, v in probe.__dict__.items() if k != "_fake_device"}

    def kind(self, func: Any) -> int:
        found = self.kinds.get(func)
        if found is None:
            found = self.kinds[func] = _cache_kind(func)
        return found

    def key(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
        part = self._part
        try:
            key = (func, torch.get_default_dtype(), *[part(a) for a in args],
                   *[(k, part(v)) for k, v in kwargs.items()])
            hash(key)
        except (TypeError, _Uncacheable):
            return None
        return key

    def _part(self, a: Any) -> Any:  # a fake tensor's own attributes: typed Any
        if isinstance(a, torch.Tensor):
            fake: Any = a
            if fake.__class__ is not self.fake_type or fake.constant is not None or fake.fake_mode is not self.mode \
                    or fake.layout is not torch.strided:
                raise _Uncacheable
            return (fake.shape, fake.stride(), fake.dtype, fake.fake_device, fake.storage_offset())
        if isinstance(a, (list, tuple)):
            return (type(a), *(self._part(x) for x in a))
        return (type(a), a)

    def make(self, spec: tuple[Any, ...], requires_grad: bool = False) -> torch.Tensor:
        """A fresh fake tensor with `spec`'s metadata (what FakeTensor's constructor does, for this mode)."""
        shape, stride, dtype, device, offset = spec
        if torch._C._len_torch_dispatch_stack():  # a mode (the fake mode) would take the factory call
            with torch._C._DisableTorchDispatch():
                elem = torch.empty_strided(shape, stride, dtype=dtype, device="meta")
        else:
            elem = torch.empty_strided(shape, stride, dtype=dtype, device="meta")
        fake: Any = torch.Tensor._make_subclass(self.fake_type, elem, requires_grad, dispatch_device=True,
                                                device_for_backend_keys=device)
        torch._C._set_throw_on_mutable_data_ptr(fake)
        fake.__dict__.update(self.state)
        fake.__dict__["_fake_device"] = device
        return fake  # type: ignore[no-any-return]

    def view(self, spec: tuple[Any, ...], base: torch.Tensor) -> torch.Tensor:
        """A fake tensor with `spec`'s metadata on the storage of `base` (a view's output)."""
        fake = self.make(spec)
        shape, stride, _, _, offset = spec
        with torch._C._DisableTorchDispatch():
            torch.Tensor.set_(fake, base.untyped_storage(), offset, shape, stride)
        return fake

    def remember(self, key: tuple[Any, ...], kind: int, args: tuple[Any, ...], out: Any) -> None:
        if kind == self.SELF:
            if args and out is args[0]:
                self.entries[key] = self.SELF
            return
        if kind == self.VIEW:
            if out.__class__ is self.fake_type and out.constant is None:
                self.entries[key] = ("view", (out.shape, out.stride(), out.dtype, out.fake_device,
                                              out.storage_offset()))
            return
        outs: tuple[Any, ...] = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        if not all(o.__class__ is self.fake_type and o.constant is None and o.storage_offset() == 0
                   for o in outs):
            return
        specs = tuple((o.shape, o.stride(), o.dtype, o.fake_device, 0) for o in outs)
        self.entries[key] = (type(out) if isinstance(out, (tuple, list)) else None, specs)

    def recall(self, entry: Any, args: tuple[Any, ...]) -> Any:
        if entry == self.SELF:
            return args[0]
        if entry[0] == "view":
            return self.view(entry[1], args[0])
        container, specs = entry
        outs = [self.make(spec) for spec in specs]
        return outs[0] if container is None else container(outs)


_KINDS: dict[Any, int] = {}  # op -> FRESH, SELF, VIEW or 0 (never cached)
_ENTRIES: dict[tuple[Any, ...], Any] = {}  # key (op, default dtype, arguments' metadata) -> outputs' metadata
_MOST_ENTRIES = 200_000


class _Uncacheable(Exception):
    """An argument the output cache cannot key on."""


_NEVER = tuple(getattr(torch.Tag, t) for t in ("data_dependent_output", "dynamic_output_shape", "inplace_view")
               if hasattr(torch.Tag, t))


_METADATA_WRITES = ("requires_grad_", "_coalesced_", "retain_grad", "set_data", "lift_fresh")  # not in _NEVER


def _cache_kind(func: Any) -> int:
    schema = getattr(func, "_schema", None)
    name = getattr(func, "__name__", "")
    if schema is None or not schema.returns or any(t in func.tags for t in _NEVER) or name.startswith(
            _METADATA_WRITES):
        return 0
    if any(str(r.type) not in ("Tensor", "Tensor[]") for r in schema.returns):
        return 0
    if not schema.is_mutable:
        if all(r.alias_info is None for r in schema.returns):
            return _Outputs.FRESH
        first = schema.arguments[0] if schema.arguments else None
        view = func.is_view and len(schema.returns) == 1 and str(schema.returns[0].type) == "Tensor" \
            and first is not None and first.alias_info is not None
        return _Outputs.VIEW if view else 0
    first = schema.arguments[0] if schema.arguments else None
    inplace = torch.Tag.inplace in func.tags and len(schema.returns) == 1 and first is not None \
        and first.alias_info is not None and first.alias_info.is_write and schema.returns[0].alias_info is not None \
        and sum(1 for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write) == 1
    return _Outputs.SELF if inplace else 0


def _fake_device(device: torch.device) -> torch.device:
    """The device a FakeTensor reports: 'cuda' becomes 'cuda:0', as FakeTensor's constructor does."""
    from torch._subclasses.fake_tensor import FakeTensor

    return FakeTensor._normalize_fake_device(device)  # type: ignore[no-any-return]


def _is_dtensor(t: torch.Tensor) -> bool:
    """A distributed tensor (FSDP2's sharded parameters): it stands in as the full tensor it shards."""
    return type(t).__name__ == "DTensor" and type(t).__module__.startswith("torch.distributed")


def _contiguous(shape: torch.Size) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _with_generator(func: Any) -> Any:
    """The overload of `func` that takes ``generator=`` (``rand.default`` -> ``rand.generator``); None: not random."""
    schema = getattr(func, "_schema", None)
    if schema is None:
        return None
    names = [a.name for a in schema.arguments]
    if "generator" in names:
        return func
    packet = func.overloadpacket
    for overload in packet.overloads():
        other = [a for a in getattr(packet, overload)._schema.arguments]
        if any(a.name == "generator" and a.kwarg_only for a in other) and \
                [a.name for a in other if a.name != "generator"] == names:
            return getattr(packet, overload)
    return None


def _device_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.device:
    for a in args:
        if isinstance(a, torch.Tensor):
            return a.device
    device = kwargs.get("device")
    return torch.device(device) if device is not None else torch.device("cpu")


def _table_rules(func: Any) -> tuple[Any, Any]:
    """The op table's (check, stand_in) for an op run without data (either may be None)."""
    from nbcount.rules.classify import facet

    name = str(func.overloadpacket)
    return facet(name, "check"), facet(name, "stand_in")


class Plumbing:
    """Enters the execution context, makes the stand-in's tensors, runs each op."""

    def __init__(self, execution: str):
        if execution not in ("fake", "meta", "real"):
            raise ValueError(f"execution must be 'fake', 'meta' or 'real', not {execution!r}")
        self.execution = execution
        self.fake = execution != "real"
        self.mode: Any = None
        self.op_errors: list[tuple[BaseException, str]] = []  # (error, layer) of ops that failed without data
        self.generators: dict[torch.device, torch.Generator] = {}
        self.random_ops: dict[Any, Any] = {}  # op -> its overload taking a generator, or None
        self.table_rules: dict[Any, tuple[Any, Any]] = {}  # op -> the op table's (check, stand_in) without data
        self.devices: dict[torch.device, torch.device] = {}  # device -> the device a FakeTensor reports
        self.stack = contextlib.ExitStack()
        if self.fake:  # the stand-in's fakes are made before the mode is entered
            from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

            self.fake_type = FakeTensor
            load_fake_mode()
            self.mode = FakeTensorMode(allow_non_fake_inputs=True)
            self.outputs = _Outputs(self.mode, FakeTensor)

    def __enter__(self) -> Plumbing:
        if self.fake:
            self.stack.enter_context(quiet_fake_logs())
            self.stack.enter_context(self.mode)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stack.close()

    # tensors ---------------------------------------------------------------------
    def substitute(self, t: torch.Tensor) -> torch.Tensor:
        """The stand-in's tensor for live tensor `t`: a fake of its metadata, or a copy of its values."""
        new = self._fake(t) if self.fake else self._copy(t)
        if isinstance(t, nn.Parameter) and not isinstance(new, nn.Parameter):
            new._is_param = True  # type: ignore[attr-defined]  # isinstance(new, nn.Parameter), as for a fake
        return new

    def _fake(self, t: torch.Tensor) -> torch.Tensor:
        if t.__class__ is self.fake_type and t.fake_mode is self.mode:
            return t
        sharded = _is_dtensor(t)
        if sharded or (type(t) in (torch.Tensor, nn.Parameter) and t.layout == torch.strided and t._base is None
                and t.grad_fn is None and not t.is_quantized and not t.is_nested and not t.is_conj()
                and not t.is_neg() and not t.is_inference() and t.storage_offset() == 0):
            device = self.devices.get(t.device)
            if device is None:
                device = self.devices[t.device] = _fake_device(t.device)
            stride = _contiguous(t.shape) if sharded else t.stride()  # a DTensor: its full, global tensor
            return self.outputs.make((t.shape, stride, t.dtype, device, 0), t.requires_grad)
        return self.mode.fake_tensor_converter.from_real_tensor(self.mode, t)  # type: ignore[no-any-return]

    def _copy(self, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            data = (t.full_tensor() if _is_dtensor(t) else t).detach().clone()  # type: ignore[attr-defined]
        if isinstance(t, nn.Parameter):
            return nn.Parameter(data, requires_grad=t.requires_grad)
        return data.requires_grad_(t.requires_grad) if t.is_floating_point() or t.is_complex() else data

    # ops ---------------------------------------------------------------------------
    def device(self, t: torch.Tensor) -> torch.device:
        """``prim.device``: a fake tensor's device, as FakeTensorMode answers it outside a kernel."""
        if self.fake and t.__class__ is self.fake_type and not self.mode.in_kernel_invocation:
            return t.fake_device  # type: ignore[no-any-return]
        return torch.ops.prim.device.default(t)  # type: ignore[no-any-return]

    def execute(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run one op: fake, or real with random draws from a private generator."""
        if not self.fake:
            return self._random(func, args, kwargs)
        outputs = self.outputs
        kind = outputs.kind(func)
        key = outputs.key(func, args, kwargs) if kind else None
        entry = outputs.entries.get(key) if key is not None else None
        if entry is not None:
            out = outputs.recall(entry, args)
        else:
            out = self._without_data(func, args, kwargs)
            if key is not None:
                outputs.remember(key, kind, args, out)
        if func is _MHA and not (args[10] if len(args) > 10 else kwargs.get("need_weights", True)):
            out = (out[0], None)  # as the CPU kernel: no weights (the fake kernel gives an empty tensor)
        return out

    def _without_data(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """`func` on fakes, under the op table's rules for running without data: `check` refuses a call the real
        kernel would refuse (fake and meta kernels accept some), `stand_in` shapes a call the real kernel accepts
        but the fake kernel refuses (it returns NotImplemented to let the op run itself)."""
        rules = self.table_rules.get(func)
        if rules is None:
            rules = self.table_rules[func] = _table_rules(func)
        check, stand_in = rules
        if check is not None:
            check(func, args, kwargs)
        if stand_in is not None:
            out = stand_in(func, args, kwargs)
            if out is not NotImplemented:
                return out
        return func(*args, **kwargs)

    def _random(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """`func`, drawing from a private generator (seed 0) when it is random and was given none."""
        variant = self.random_ops.get(func, func)
        if variant is func:
            variant = self.random_ops[func] = _with_generator(func)
        if variant is None or kwargs.get("generator") is not None:
            return func(*args, **kwargs)
        device = _device_of(args, kwargs)
        generator = self.generators.get(device)
        if generator is None:
            generator = self.generators[device] = torch.Generator(device=device).manual_seed(0)
        return variant(*args, **{**kwargs, "generator": generator})
