"""The stand-in: a copy of the user's model that a count runs instead of the model itself.

Same module classes, same Python attributes, every parameter and buffer replaced by a substitute (a fake
tensor of the same shape, dtype, device, stride and requires_grad; or, for real arithmetic, a copy) — so
the user's objects are read and never written. The copy is memo-mapped like ``copy.deepcopy``: each object
is copied once, so tied weights stay tied, a module shared by two parents stays shared and a module nested
in itself is copied once. No tensor data is copied on the fake path.

What is copied: modules, tensors, torch generators (their state), the built-in containers and their
subclasses (dict, list, tuple, set, deque, named tuples), dataclasses and plain Python objects (their
``__dict__`` / slots), bound methods, partials and functions whose closure holds the model's modules or
tensors (an instance ``forward = lambda x: ...``, a hook closing over its layer: re-bound to the copies).
What is shared: immutable values, other functions, classes; and, named in ``shared``, synchronisation
objects and what cannot be copied (C++ objects).
A module that cannot be copied (TorchScript: its tensors live in C++) runs live, named in ``live``;
its caller protects it with ``nbcount.preserve``. Distributed wrappers' hooks (FSDP) are left out of the
stand-in: its parameters stand in at their full (unsharded) shape.
"""

from __future__ import annotations

import collections
import enum
import functools
import logging
import threading
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

Substitute = Callable[[torch.Tensor], torch.Tensor]

_ATOMS = (type(None), bool, int, float, complex, str, bytes, type, types.BuiltinFunctionType,
          types.BuiltinMethodType, types.ModuleType, types.CodeType, torch.dtype, torch.device, torch.layout,
          torch.memory_format, torch.Size, torch.finfo, torch.iinfo, range, slice, enum.Enum, property,
          logging.Logger, logging.Handler, weakref.ref, type(Ellipsis), type(NotImplemented))
# synchronisation objects: shared (a copied lock would not lock), and named in the diagnostics
_SHARED = (type(threading.Lock()), type(threading.RLock()), threading.Condition, threading.Event,
           threading.Semaphore, threading.Thread)
_ATOM_TYPES = frozenset(t for t in _ATOMS if t not in (type, enum.Enum))  # exact types: a set lookup
_MODULE_HOOKS = frozenset({"_backward_pre_hooks", "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
                           "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
                           "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
                           "_load_state_dict_post_hooks", "_non_persistent_buffers_set"})
_MODULE_TABLES = frozenset({"_parameters", "_buffers", "_modules"})
_PLAIN = (dict, collections.OrderedDict)


@dataclass
class StandIn:
    """The copy of a model; ``copy`` maps further values (the inputs) with the same memo."""

    module: nn.Module
    live: list[tuple[str, nn.Module, str]] = field(default_factory=list)  # (path, live module, why)
    shared: list[tuple[str, str]] = field(default_factory=list)  # (where, type name): not copied
    dropped_hooks: list[tuple[str, str]] = field(default_factory=list)  # (module path, hook owner type)
    copier: _Copier | None = field(default=None, repr=False)

    def copy(self, value: Any) -> Any:
        """`value` with every tensor substituted and every container copied (inputs, caches). Integer and bool
        tensors the caller gave keep their values (as copies): ids, masks and lengths decide what a forward
        may do (an id past an embedding's table is refused, as a real forward refuses it)."""
        assert self.copier is not None, "a StandIn is made by build() or live()"
        self.copier.keep_values = True
        try:
            return self.copier.value(value, "inputs")
        finally:
            self.copier.keep_values = False

    def close(self) -> None:
        """Forget the originals the copy memo keeps alive (the user's model among them) once the run is over:
        the StandIn and its copier refer to each other, so without this the model would live until the next
        garbage collection rather than until the user lets it go."""
        if self.copier is not None:
            self.copier.memo.clear()
            self.copier.keep.clear()
            self.copier = None

    def notes(self) -> tuple[str, ...]:
        """Sentences for the diagnostics: what ran live, what was shared, which hooks were left out."""
        found = []
        for path, module, why in self.live:
            found.append(f"{path or '(root)'} ({type(module).__name__}) ran on your live model, not on the "
                         f"stand-in: {why}; nbcount snapshotted it and put it back afterwards")
        if self.shared:
            listed = ", ".join(f"{where} ({kind})" for where, kind in self.shared[:4])
            more = f" and {len(self.shared) - 4} more" if len(self.shared) > 4 else ""
            found.append(f"shared with your model, not copied (nbcount cannot copy these objects; the count "
                         f"only reads them unless your forward writes to them): {listed}{more}")
        owners: dict[str, list[str]] = {}
        for path, owner in self.dropped_hooks:
            paths = owners.setdefault(owner, [])
            if (path or "(root)") not in paths:
                paths.append(path or "(root)")
        for owner, paths in owners.items():
            listed = ", ".join(paths[:4]) + (f" and {len(paths) - 4} more" if len(paths) > 4 else "")
            found.append(f"the {owner} hooks of {listed} were not run on the stand-in: it holds every parameter "
                         "at its full, unsharded shape, so the count is the whole model's")
        return tuple(found)


def _is_distributed_hook(hook: Any) -> bool:
    """A hook of a distributed wrapper (FSDP's state object): it would gather into the live parameters."""
    owner = getattr(hook, "__self__", None)
    return owner is not None and not isinstance(owner, nn.Module) and \
        type(owner).__module__.startswith("torch.distributed")


_KEPT_ELEMENTS = 1 << 22  # integer inputs up to 4M elements keep their values (ids, masks): cheap to copy


def _small_integers(t: torch.Tensor) -> bool:
    """A plain integer or bool tensor with values (not meta, not fake) small enough to copy."""
    return (type(t) is torch.Tensor and not t.is_floating_point() and not t.is_complex() and t.layout == torch.strided
            and t.device.type not in ("meta", "cuda") and t.numel() <= _KEPT_ELEMENTS
            and not hasattr(t, "fake_mode"))


class _Copier:
    """The memo-mapped copy: ``memo[id(original)] = copy``; originals are kept alive so ids stay unique."""

    def __init__(self, substitute: Substitute, standin: StandIn, model: nn.Module):
        self.substitute, self.standin = substitute, standin
        self.paths = {id(m): name for name, m in model.named_modules()}
        self.memo: dict[int, Any] = {}
        self.keep: list[Any] = []
        self.keep_values = False  # copying the caller's inputs: integer tensors keep their values

    def _remember(self, original: Any, copy: Any) -> Any:
        self.memo[id(original)] = copy
        self.keep.append(original)
        return copy

    def value(self, v: Any, where: str) -> Any:
        kind = type(v)
        if kind in _ATOM_TYPES:
            return v
        found = self.memo.get(id(v))
        if found is not None:
            return found
        if kind in _PLAIN and not v:  # the empty hook dicts of every module
            return self._remember(v, kind())
        if isinstance(v, _ATOMS):
            return v
        if isinstance(v, torch.Tensor):
            return self._remember(v, self.tensor(v))
        if isinstance(v, nn.Module):
            return self.module(v, where)
        if isinstance(v, torch.Generator):
            return self._remember(v, _generator_copy(v))
        if isinstance(v, (dict, list, tuple, set, frozenset, collections.deque)):
            return self.container(v, where)
        return self.instance(v, where)

    def tensor(self, t: torch.Tensor) -> torch.Tensor:
        if self.keep_values and _small_integers(t):
            from torch.utils._python_dispatch import _disable_current_modes

            with _disable_current_modes(), torch.no_grad():  # a real copy, outside the fake mode of the run
                return t.detach().clone()
        new = self.substitute(t)
        extra = getattr(t, "__dict__", None)
        if extra:
            for name, item in list(extra.items()):
                if name not in new.__dict__:
                    new.__dict__[name] = self.value(item, name)
        return new

    def module(self, m: nn.Module, where: str) -> nn.Module:
        path = self.paths.get(id(m), where)
        if isinstance(m, torch.jit.ScriptModule):
            self.standin.live.append((path, m, "a TorchScript module keeps its tensors and flags in C++"))
            return self._remember(m, m)  # type: ignore[no-any-return]
        new = object.__new__(type(m))
        self._remember(m, new)
        state = m.__dict__.copy()  # one C call: safe while another thread assigns attributes
        for name, item in state.items():
            kind = item.__class__
            if kind in _ATOM_TYPES:
                continue
            if name in _MODULE_HOOKS:  # nn.Module's own hook tables: the hooks themselves are shared
                if not item:
                    state[name] = kind()
                else:
                    state[name] = self._hooks(item, path)
            elif name in _MODULE_TABLES and kind is dict:  # parameters, buffers, children
                state[name] = {k: None if v is None else self.value(v, f"{path}.{k}" if path else k)
                               for k, v in item.items()}
            else:
                state[name] = self._attribute(item, f"{path}.{name}" if path else name)
        object.__setattr__(new, "__dict__", state)
        return new

    def _attribute(self, item: Any, where: str) -> Any:
        try:
            return self.value(item, where)
        except RecursionError:  # a structure too deep to copy (a long linked graph): read it in place
            self.standin.shared.append((where, type(item).__name__))
            return item

    def _hooks(self, hooks: Any, path: str) -> Any:
        """A copy of a hook table, each hook re-bound to the stand-in (`function`), without distributed
        wrappers' hooks (they would gather into the live model's parameters)."""
        if not isinstance(hooks, dict):
            return type(hooks)(hooks)  # the set of non-persistent buffer names
        kept = type(hooks)()
        for key, hook in hooks.items():
            if _is_distributed_hook(hook):
                self.standin.dropped_hooks.append((path, type(hook.__self__).__name__))
            else:
                kept[key] = self.value(hook, path) if callable(hook) else hook
        return kept

    def function(self, f: types.FunctionType, where: str) -> types.FunctionType:
        """`f` itself, or — when its closure holds the model's modules or tensors (``model.forward = lambda x:
        model.body(x)``, a hook closing over its layer) — a twin whose closure holds their stand-ins."""
        cells = f.__closure__ or ()
        if not any(isinstance(c.cell_contents, (nn.Module, torch.Tensor)) or id(c.cell_contents) in self.memo
                   for c in cells if _filled(c)):
            return f
        closure = tuple(types.CellType(self.value(c.cell_contents, where)) if _filled(c) and (
            isinstance(c.cell_contents, (nn.Module, torch.Tensor)) or id(c.cell_contents) in self.memo) else c
            for c in cells)
        twin = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__, closure)
        functools.update_wrapper(twin, f)
        twin.__kwdefaults__ = f.__kwdefaults__
        return self._remember(f, twin)  # type: ignore[no-any-return]

    def container(self, v: Any, where: str) -> Any:
        kind = type(v)
        if isinstance(v, dict):
            items = [(self.value(k, where), self.value(x, where)) for k, x in v.copy().items()]
            if kind is dict:
                return self._remember(v, dict(items))
            new = self._shell(v, where)
            if new is None:
                return v
            new.clear()
            new.update(items)
            return self._remember(v, new)
        values = [self.value(x, where) for x in (v.copy() if isinstance(v, (list, set, collections.deque)) else v)]
        if kind in (list, tuple, set, frozenset):
            return self._remember(v, kind(values))
        if isinstance(v, collections.deque):
            return self._remember(v, collections.deque(values, maxlen=v.maxlen))
        if isinstance(v, tuple):
            return self._remember(v, kind(*values) if hasattr(v, "_fields") else kind(values))
        new = self._shell(v, where)
        if new is None:
            return v
        new.clear()
        new.extend(values) if isinstance(new, list) else new.update(values)
        return self._remember(v, new)

    def _shell(self, v: Any, where: str) -> Any:
        """An empty instance of a container subclass with its own attributes copied; None when it cannot be made."""
        try:
            new = type(v).__new__(type(v))  # type: ignore[call-overload]
        except TypeError:
            self.standin.shared.append((where, type(v).__name__))
            return None
        for name, item in getattr(v, "__dict__", {}).copy().items():
            new.__dict__[name] = self.value(item, where)
        if isinstance(v, collections.defaultdict):
            new.default_factory = v.default_factory
        return new

    def instance(self, v: Any, where: str) -> Any:
        if isinstance(v, types.FunctionType):
            return self.function(v, where)
        if isinstance(v, _SHARED):
            self.standin.shared.append((where, type(v).__name__))
            return v
        if isinstance(v, types.MethodType):
            owner = self.value(v.__self__, where)
            return v if owner is v.__self__ else self._remember(v, types.MethodType(v.__func__, owner))
        if isinstance(v, functools.partial):
            return self._remember(v, functools.partial(self.value(v.func, where), *self.value(v.args, where),
                                                       **self.value(v.keywords, where)))
        if type(v).__module__ == "numpy" and hasattr(v, "copy"):
            return self._remember(v, v.copy())
        if type(v).__module__.startswith("torch.distributed"):  # process groups, FSDP state: infrastructure
            return v
        state = getattr(v, "__dict__", None)
        slots = [s for c in type(v).__mro__ for s in getattr(c, "__slots__", ()) if s not in ("__dict__",
                                                                                               "__weakref__")]
        if (state is None and not slots) or type(v).__module__.startswith("torch._C"):
            self.standin.shared.append((where, type(v).__name__))
            return v
        try:
            new = object.__new__(type(v))
        except TypeError:  # a C type's instance (its own __new__ is required)
            self.standin.shared.append((where, type(v).__name__))
            return v
        self._remember(v, new)
        for name, item in (state or {}).copy().items():
            new.__dict__[name] = self.value(item, where)
        for name in slots:
            if hasattr(v, name):
                object.__setattr__(new, name, self.value(getattr(v, name), where))
        return new


def _filled(cell: Any) -> bool:
    try:
        return cell.cell_contents is not _filled  # reads the cell (raises when not assigned yet)
    except ValueError:
        return False


def _generator_copy(g: torch.Generator) -> torch.Generator:
    """A generator in the same state as `g` (the model's own RNG does not advance)."""
    new = torch.Generator(device=g.device)
    new.set_state(g.get_state())
    return new


def build(model: nn.Module, substitute: Substitute) -> StandIn:
    """The stand-in of `model`: its module tree copied, every tensor replaced by ``substitute(tensor)``."""
    standin = StandIn(model)
    copier = _Copier(substitute, standin, model)
    standin.copier = copier
    standin.module = copier.value(model, "")
    return standin


def live(model: nn.Module, substitute: Substitute, why: str) -> StandIn:
    """The last resort: `model` itself runs (its caller snapshots and restores it); inputs are still copied."""
    standin = StandIn(model, live=[("", model, why)])
    standin.copier = _Copier(substitute, standin, model)
    standin.copier.memo.update({id(m): m for m in model.modules()})  # the model's own objects stay themselves
    return standin
