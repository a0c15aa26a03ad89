"""The one op table: everything nbcount knows about each torch op and each module class, filled by one registrar.

An op entry is keyed by the op's overload packet name (``"aten.mm"``, as ``OpEvent.op`` spells it) and is
created only for a real op of the installed torch: ``resolve`` turns ``torch.ops.aten.mm``,
``torch.ops.aten.mm.default`` or the string ``"aten.mm"`` into that name, and an unknown op fails at import.
A class entry is keyed by the class's qualified name and looked up through the MRO (``in_mro``).

Facets of an op: ``cost`` (forward or backward arithmetic, as derivation steps), ``reason`` (it does no
arithmetic, and why), ``field`` (how it moves receptive fields), ``kind`` (the layer kind compare() groups
it under), ``check`` (refuses an invalid call on the fake path as the real kernel would). Facets of a class:
``cost`` (a whole-module rule), ``params``, ``shape``, ``expects`` (what input it takes, for error messages),
``kind``. Registering a facet twice is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

OpLike = str | torch._ops.OpOverloadPacket | torch._ops.OpOverload
ClassOrOp = OpLike | type
T = TypeVar("T")


class UnknownOp(ValueError):
    """A rule names an op that the installed torch does not have."""


@dataclass
class Entry:
    """What nbcount knows about one op or one module class; each facet is set at most once."""

    key: str
    family: str = ""  # the rules module that declared it (nbcount.rules.<family>)
    facets: dict[str, Any] = field(default_factory=dict)

    def get(self, facet: str) -> Any:
        """The value of a facet, or None."""
        return self.facets.get(facet)


OPS: dict[str, Entry] = {}
CLASSES: dict[str, Entry] = {}
EXCLUSIVE = {"cost": "reason", "reason": "cost"}  # an op either has arithmetic or has a reason it has none


def qualname(cls: type) -> str:
    """The key a class is registered under: ``module.QualName``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def resolve(op: OpLike) -> str:
    """``"aten.mm"`` for torch.ops.aten.mm, torch.ops.aten.mm.default or "aten.mm"; UnknownOp if torch has none."""
    if isinstance(op, torch._ops.OpOverload):
        return str(op.overloadpacket)
    if isinstance(op, torch._ops.OpOverloadPacket):
        return str(op)
    namespace, _, name = op.partition(".")
    if not name or "." in name:
        raise UnknownOp(f"{op!r} is not an op name like 'aten.mm'")
    try:
        getattr(getattr(torch.ops, namespace), name)
    except (AttributeError, RuntimeError):
        raise UnknownOp(f"{op} is not an op of torch {torch.__version__}") from None
    return f"{namespace}.{name}"


def names(*ops: OpLike) -> tuple[str, ...]:
    """The op names (``"aten.mm"``) of ops, validated: what OpEvent.op holds for them."""
    return tuple(resolve(op) for op in ops)


def packet(name: str) -> torch._ops.OpOverloadPacket:
    """The overload packet of an op name (``"aten.mm"`` -> torch.ops.aten.mm)."""
    namespace, _, op = name.partition(".")
    return getattr(getattr(torch.ops, namespace), op)


def exists(name: str) -> bool:
    """Whether the installed torch has the op (optional ops: torchvision's only once torchvision is imported)."""
    try:
        resolve(name)
    except UnknownOp:
        return False
    return True


def _family(fn: Any) -> str:
    module = getattr(fn, "__module__", "") or ""
    return module.rsplit(".", 1)[-1] if module.startswith("nbcount.rules") else module


def register(keys: Iterable[ClassOrOp], facet: str, value: Any, family: str = "") -> None:
    """The registrar: set `facet` of each op or class to `value` (twice, or cost with reason, is an error)."""
    for key in keys:
        table, name = (CLASSES, qualname(key)) if isinstance(key, type) else (OPS, resolve(key))
        entry = table.setdefault(name, Entry(name, family or _family(value)))
        clash = facet if facet in entry.facets else EXCLUSIVE.get(facet)
        if clash in entry.facets:
            raise ValueError(f"{facet} for {name} registered twice (it already has a {clash})")
        entry.facets[facet] = value


def registrar(facet: str) -> Callable[..., Callable[[T], T]]:
    """A decorator factory for one facet: ``@registrar("field")(aten.view, ...)`` registers the function."""
    def decorate(*keys: ClassOrOp) -> Callable[[T], T]:
        def register_fn(fn: T) -> T:
            register(keys, facet, fn)
            return fn
        return register_fn
    decorate.__doc__ = f"Register the {facet} facet of ops or classes."
    return decorate


def op_facet(name: str, facet: str) -> Any:
    """A facet of the op called `name`, or None."""
    entry = OPS.get(name)
    return entry.facets.get(facet) if entry is not None else None


def first_in_mro(classes: Sequence[str], table: Mapping[str, T]) -> T | None:
    """The value of the most derived class (qualified names, ``type(m).__mro__`` order) that `table` has."""
    for name in classes:
        found = table.get(name)
        if found is not None:
            return found
    return None


def in_mro(classes: Sequence[str], facet: str) -> tuple[str, Any] | None:
    """(class name, value) of the most derived class of `classes` whose entry has `facet` — the one MRO lookup."""
    for name in classes:
        entry = CLASSES.get(name)
        if entry is not None and facet in entry.facets:
            return name, entry.facets[facet]
    return None


def mro_names(cls: type) -> tuple[str, ...]:
    """The qualified names of ``cls.__mro__``, most derived first."""
    return tuple(qualname(c) for c in cls.__mro__)


def ops_with(facet: str) -> dict[str, Any]:
    """Every op name with this facet, and its value."""
    return {name: e.facets[facet] for name, e in OPS.items() if facet in e.facets}


def classes_with(facet: str) -> dict[str, Any]:
    """Every class name with this facet, and its value."""
    return {name: e.facets[facet] for name, e in CLASSES.items() if facet in e.facets}
