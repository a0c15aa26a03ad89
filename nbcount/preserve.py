"""What a count may touch outside its stand-in, and how it is put back.

A count runs on a stand-in of the model (``nbcount.capture.standin``), so the user's model is only read.
Two things remain, and this module handles them:

- **modules that cannot be copied** (TorchScript children: their tensors and flags live in C++; or a
  whole model whose stand-in could not be built, the last resort) run live. ``Keeper`` snapshots them and
  restores them: attributes and what is inside them at every level (dicts, lists, sets, deques, the
  attributes of dataclasses and plain objects), the training flag of every module (C++ flags included),
  buffers and tensors held in attributes (copied before, written back after), parameters (copied on their
  first in-place write: ``before_write``, which the run calls before every op), ``.data`` swapped under a
  tensor, ``requires_grad``, ``.grad``.
- **the process**: ``process_state()`` puts back the global RNGs the forward drew from, and the grad mode.
  Torch's CPU generator is never drawn from (fake ops draw nothing; random ops of real execution draw from
  a private generator), so it is never touched. A forward calling Python's ``random`` or NumPy draws from
  those, so they are put back when they changed (as is CUDA's after real execution: its fused dropout takes
  no generator); a thread drawing from the same generator during such a count sees its draws repeated.
"""

from __future__ import annotations

import collections
import contextlib
import random
import sys
import threading
import types
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

_locks: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()
_CONTAINERS = (dict, list, set, collections.deque)
_DEPTH = 8
_TABLES = ("_parameters", "_buffers", "_modules")


def _module_lock(module: nn.Module) -> threading.RLock:
    """One re-entrant lock per live module: two counts that both run it live take turns."""
    with _locks_guard:
        lock = _locks.get(module)
        if lock is None:
            lock = _locks[module] = threading.RLock()
        return lock


def _tensor_key(t: Any) -> int | None:
    """Address of a real tensor's storage (None for meta, fake or storage-less tensors)."""
    if not isinstance(t, torch.Tensor) or t.device.type == "meta" or type(t).__name__ == "FakeTensor":
        return None
    try:
        return int(t.untyped_storage().data_ptr()) or None
    except Exception:  # sparse, nested, wrapper subclasses: nothing we can address
        return None


def _layout(t: torch.Tensor) -> tuple[Any, ...]:
    """What identifies the data under a tensor: swapping ``.data`` changes it."""
    if is_lazy(t):
        return ("lazy",)
    key = _tensor_key(t)
    return (t.dtype, t.device, tuple(t.shape), key, t.storage_offset() if key else 0)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality (NaN equals itself, -0.0 differs from 0.0)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    try:
        return torch.equal(a.detach().reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))
    except RuntimeError:  # dtypes without a byte view (quantized, ...): value equality
        return torch.equal(a, b)


def _written_args(func: Any, cache: dict[Any, tuple[tuple[int, str], ...]]) -> tuple[tuple[int, str], ...]:
    found = cache.get(func)
    if found is None:
        schema = getattr(func, "_schema", None)
        found = ()
        if schema is not None and schema.is_mutable:
            found = tuple((i, a.name) for i, a in enumerate(schema.arguments)
                          if a.alias_info is not None and a.alias_info.is_write)
        cache[func] = found
    return found


# containers, at every level ---------------------------------------------------------------------------
def _state(value: Any) -> Any:
    """What a snapshot keeps of `value`: a container itself, a plain object's ``__dict__``; else None."""
    if isinstance(value, _CONTAINERS):
        return value
    if isinstance(value, (nn.Module, torch.Tensor, type, types.FunctionType, types.ModuleType)):
        return None  # modules have their own snapshot; tensors their own restore
    state = getattr(value, "__dict__", None)
    return state if isinstance(state, dict) else None


def _snapshot(value: Any, tensors: list[torch.Tensor], depth: int = 0, seen: set[int] | None = None) -> Any:
    """``(container, items, [snapshots of the items])`` for a container or a plain object (dataclass,
    namespace) at any depth (to a limit), None for anything else; the tensors met go to `tensors`."""
    if isinstance(value, torch.Tensor):
        tensors.append(value)
    state = _state(value)
    seen = set() if seen is None else seen
    if state is None or depth > _DEPTH or id(state) in seen:
        return None
    seen.add(id(state))
    items = list(state.items()) if isinstance(state, dict) else list(state)
    inner = [_snapshot(v[1] if isinstance(state, dict) else v, tensors, depth + 1, seen) for v in items]
    return (state, items, inner)


def _restore(saved: Any) -> None:
    """Put a container (and what is inside it) back to the items it held, in place."""
    if saved is None:
        return
    state, items, inner = saved
    if isinstance(state, dict):
        now = list(state.items())
        if len(now) != len(items) or any(a[0] is not b[0] or a[1] is not b[1] for a, b in zip(now, items)):
            state.clear()
            state.update(items)
    elif len(state) != len(items) or any(a is not b for a, b in zip(state, items)):
        state.clear()
        state.extend(items) if not isinstance(state, set) else state.update(items)
    for child in inner:
        _restore(child)


def _snapshot_attrs(module: nn.Module, tensors: list[torch.Tensor]) -> dict[str, tuple[Any, Any]]:
    """Every attribute and what is inside it (a ScriptModule's tables are views of C++ state: kept as is)."""
    return {name: (value, _snapshot(value, tensors) if isinstance(value, dict) or name not in _TABLES else None)
            for name, value in module.__dict__.copy().items()}


def _restore_attrs(module: nn.Module, saved: dict[str, tuple[Any, Any]]) -> None:
    attrs = module.__dict__
    for name in [n for n in attrs if n not in saved]:
        del attrs[name]
    for name, (value, inner) in saved.items():
        if attrs.get(name, _restore) is not value:
            attrs[name] = value
        _restore(inner)


class Keeper:
    """Everything counting may change on live modules; ``restore()`` puts it back."""

    def __init__(self, roots: Sequence[nn.Module]):
        self.modules = list({id(m): m for root in roots for m in root.modules()}.values())
        loose: list[torch.Tensor] = []  # tensors in plain attributes and containers, at any depth
        self.attrs = [(m, _snapshot_attrs(m, loose)) for m in self.modules]
        self.flags = [(m, m.training) for m in self.modules]  # read through the class: C++ flags too
        tensors = list(self._tensors())
        known = {id(t) for t, _ in tensors}
        tensors += [(t, False) for t in {id(t): t for t in loose if id(t) not in known}.values()]
        self.tensors = {id(t): (t, t.data, _layout(t), t.requires_grad) for t, _ in tensors}
        self.by_storage: dict[int, list[torch.Tensor]] = {}
        for t, is_param in tensors:
            key = _tensor_key(t)
            if key is not None and is_param:
                self.by_storage.setdefault(key, []).append(t)
        self.buffer_copies = {id(b): b.detach().clone() for b, is_param in tensors
                              if not is_param and _tensor_key(b) is not None}
        self.grads = [(t, t.grad) for t, is_param in tensors if is_param]
        self.param_copies: dict[int, torch.Tensor] = {}
        self.schema_cache: dict[Any, tuple[tuple[int, str], ...]] = {}

    def _tensors(self) -> Iterator[tuple[torch.Tensor, bool]]:
        seen: set[int] = set()
        for m in self.modules:
            for table, is_param in ((m._parameters, True), (m._buffers, False)):
                for t in list(table.values()):
                    if t is not None and id(t) not in seen:
                        seen.add(id(t))
                        yield t, is_param

    def before_write(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Copy a live parameter about to be written in place by ``func`` (once per parameter)."""
        if not self.by_storage:
            return
        for index, name in _written_args(func, self.schema_cache):
            value = args[index] if index < len(args) else kwargs.get(name)
            for t in value if isinstance(value, (list, tuple)) else (value,):
                key = _tensor_key(t)
                for param in self.by_storage.get(key, ()) if key is not None else ():
                    if id(param) not in self.param_copies:
                        from torch.utils._python_dispatch import _disable_current_modes

                        with _disable_current_modes(), torch.no_grad():
                            self.param_copies[id(param)] = param.detach().clone()

    def restore(self) -> None:
        """Put back attributes, containers, training flags, tensor data and values, gradients."""
        for module, saved in self.attrs:
            _restore_attrs(module, saved)
        for module, flag in self.flags:
            if module.training != flag:
                module.training = flag  # a ScriptModule forwards this to its C++ attribute
        with torch.no_grad():
            for key, (t, data, layout, requires_grad) in self.tensors.items():
                if _layout(t) != layout:
                    t.data = data
                if t.requires_grad != requires_grad and t.is_leaf:
                    t.requires_grad_(requires_grad)
                copy = self.buffer_copies.get(key, self.param_copies.get(key))
                if copy is not None and not _same_bits(t, copy):
                    t.copy_(copy)
            for t, grad in self.grads:
                if t.grad is not grad:
                    t.grad = grad


@contextlib.contextmanager
def kept(roots: Sequence[nn.Module]) -> Iterator[Keeper | None]:
    """Within: `roots` (live modules a count runs) may change; after: everything restored. None: no roots."""
    if not roots:
        yield None
        return
    with contextlib.ExitStack() as locks:
        for root in roots:
            locks.enter_context(_module_lock(root))
        keeper = Keeper(roots)
        try:
            yield keeper
        finally:
            keeper.restore()


# the process -----------------------------------------------------------------------------------------
def _rng_state(real: bool) -> dict[str, Any]:
    state: dict[str, Any] = {"random": random.getstate()}
    if real and torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()  # CUDA's fused dropout takes no generator
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        state["numpy"] = numpy.random.get_state()
    return state


def _changed(key: str, before: Any, after: Any) -> bool:
    if key == "cuda":
        return len(before) != len(after) or any(not torch.equal(a, b) for a, b in zip(before, after))
    if key == "numpy":
        return before[0] != after[0] or before[2:] != after[2:] or bool((before[1] != after[1]).any())
    return bool(before != after)


def _put_back(key: str, state: Any) -> None:
    if key == "cuda":
        torch.cuda.set_rng_state_all(state)
    elif key == "random":
        random.setstate(state)
    else:
        sys.modules["numpy"].random.set_state(state)


@contextlib.contextmanager
def process_state(real: bool) -> Iterator[None]:
    """Within: the forward may draw from global RNGs; after: each one that changed is put back (CUDA's only
    after real execution), and the grad mode is as before. An RNG that did not change is left alone."""
    before = _rng_state(real)
    grad_enabled = torch.is_grad_enabled()
    try:
        yield
    finally:
        torch.set_grad_enabled(grad_enabled)
        after = _rng_state(real)
        for key, state in before.items():
            if key in after and _changed(key, state, after[key]):
                _put_back(key, state)
