"""Leave the user's model and process exactly as they were: attributes, tensors, hooks, RNG, grad mode.

What a count may touch and how it is put back:
- every module's attributes (``training``, caches a forward assigns, hook / parameter / buffer dicts): a
  shallow snapshot of ``__dict__`` and of the dicts, lists and sets in it, restored in place and in order;
- buffers (BatchNorm running statistics, ``num_batches_tracked``): copied before, written back after;
- parameters: copied on their first in-place write (``before_write``, called by capture's dispatch mode),
  so a count never doubles the model's memory (views and ``.data`` writes included, by storage);
- ``.data`` swapped under a tensor: the original data is put back;
- ``.grad`` of every parameter (a training count runs a backward pass): the same object, or None, as before;
- the global RNG states (torch CPU, CUDA if initialised, Python ``random``, NumPy if imported) and grad mode.
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

_active = threading.local()
_MISSING = object()
_locks: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def _model_lock(model: nn.Module) -> threading.RLock:
    """One re-entrant lock per model: two threads counting the same model take turns (snapshots never interleave)."""
    with _locks_guard:
        lock = _locks.get(model)
        if lock is None:
            lock = _locks[model] = threading.RLock()
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


def _snapshot_dict(obj: Any) -> dict[str, tuple[Any, Any]]:
    """``name -> (value, shallow copy of its contents or None)`` for every attribute of ``obj``."""
    saved = {}
    for name, value in obj.__dict__.items():
        copy = None
        if isinstance(value, dict):
            copy = list(value.items())
        elif isinstance(value, (list, set)):
            copy = list(value)
        saved[name] = (value, copy)
    return saved


def _restore_container(value: Any, copy: list[Any]) -> None:
    if isinstance(value, dict):
        now = list(value.items())
        if len(now) != len(copy) or any(a[0] != b[0] or a[1] is not b[1] for a, b in zip(now, copy)):
            value.clear()
            value.update(copy)
    elif len(value) != len(copy) or any(a is not b for a, b in zip(value, copy)):
        value.clear()
        if isinstance(value, list):
            value.extend(copy)
        else:
            value.update(copy)


def _restore_dict(obj: Any, saved: dict[str, tuple[Any, Any]]) -> None:
    attrs = obj.__dict__
    for name in [n for n in attrs if n not in saved]:
        del attrs[name]
    for name, (value, copy) in saved.items():
        if attrs.get(name, _MISSING) is not value:
            attrs[name] = value
        if copy is not None:
            _restore_container(value, copy)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "random": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        state["numpy"] = numpy.random.get_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["random"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        sys.modules["numpy"].random.set_state(state["numpy"])


def _set_training(model: nn.Module, modules: list[nn.Module], training: bool) -> None:
    """``model.train(training)`` (custom overrides honoured); flag by flag for a module nested in itself."""
    try:
        model.train(training)
    except RecursionError:
        for m in modules:
            m.training = training


class Keeper:
    """Everything one count must put back; ``restore()`` does it."""

    def __init__(self, model: nn.Module):
        self.modules = list(model.modules())  # memoised: a module nested in itself appears once
        self.attrs = [(m, _snapshot_dict(m)) for m in self.modules]
        self.tensors: dict[int, tuple[torch.Tensor, torch.Tensor, tuple[Any, ...], bool]] = {}
        self.by_storage: dict[int, list[torch.Tensor]] = {}
        for t, is_param in self._model_tensors():
            self.tensors[id(t)] = (t, t.data, _layout(t), t.requires_grad)
            key = _tensor_key(t)
            if key is not None and is_param:
                self.by_storage.setdefault(key, []).append(t)
        self.buffer_copies = {id(b): b.detach().clone() for b, is_param in self._model_tensors()
                              if not is_param and _tensor_key(b) is not None}
        self.grads = [(t, t.grad) for t, is_param in self._model_tensors() if is_param]
        self.param_copies: dict[int, torch.Tensor] = {}
        self.schema_cache: dict[Any, tuple[tuple[int, str], ...]] = {}
        self.rng = _rng_state()
        self.grad_enabled = torch.is_grad_enabled()

    def _model_tensors(self) -> Iterator[tuple[torch.Tensor, bool]]:
        seen: set[int] = set()
        for m in self.modules:
            for table, is_param in ((m._parameters, True), (m._buffers, False)):
                for t in table.values():
                    if t is not None and id(t) not in seen:
                        seen.add(id(t))
                        yield t, is_param

    def before_write(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Copy a parameter about to be written in place by ``func`` (once per parameter)."""
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
        """Put back RNG, grad mode, attributes, tensor data, parameter and buffer values, gradients."""
        _set_rng_state(self.rng)
        torch.set_grad_enabled(self.grad_enabled)
        for module, saved in self.attrs:
            _restore_dict(module, saved)
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


def before_write(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Called by capture's dispatch mode before every op: protects the model being counted on this thread."""
    keeper = getattr(_active, "keeper", None)
    if keeper is not None:
        keeper.before_write(func, args, kwargs)


@contextlib.contextmanager
def preserved(model: nn.Module, mode: str) -> Iterator[Keeper]:
    """Within: the model in `mode` ("eval", "train" or "same"); after: everything restored."""
    with _model_lock(model):
        keeper = Keeper(model)
        outer = getattr(_active, "keeper", None)
        _active.keeper = keeper
        try:
            if mode in ("eval", "train"):
                _set_training(model, keeper.modules, mode == "train")
            yield keeper
        finally:
            _active.keeper = outer
            keeper.restore()
