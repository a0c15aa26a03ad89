"""How every op is treated: its declared rule, else its kind from torch's own metadata, else "uncounted".

Order of questions for an op name (the first answer wins):
1. a family declared it (``op_rule`` / ``ignore``);
2. torch's schema says it is a view (``is_view``, tag ``inplace_view``): no arithmetic;
3. it is the in-place form of a known op (``aten.add_`` of ``aten.add``): treated as that op; a list form
   (``aten._foreach_mul``) is its op applied to each tensor of the list;
4. tag ``view_copy``: a copy of a view, no arithmetic;
5. tag ``pointwise``: one operation per output element (none when the result is bool: a comparison);
6. tag ``reduction``: one operation per input element;
7. tags ``data_dependent_output`` / ``dynamic_output_shape``: selects elements by value, no arithmetic;
8. tag ``nondeterministic_seeded``: draws random numbers, no arithmetic counted;
9. no tensor argument in any schema (an ``out=`` buffer aside): creates a tensor, no arithmetic;
10. torch has a decomposition for it (torch._decomp, or the CompositeImplicitAutograd kernel that autograd
    normally runs, as for aten.linear under torch.inference_mode): counted as the ops it decomposes into;
11. anything else is uncounted: named in the report, and the totals become a lower bound.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from nbcount.derive import Step, step
from nbcount.rules.table import OPS, exists, packet
from nbcount.types import OpEvent, TensorMeta, Term

Cost = tuple[Step, ...]
RULE, NONE, UNCOUNTED = "rule", "no arithmetic", "uncounted"


@dataclass(frozen=True)
class Treatment:
    """How nbcount counts one op: `how` (rule, no arithmetic, uncounted), why, and on what basis."""

    op: str
    how: str
    why: str
    basis: str  # "declared in <family>", "in-place form of aten.x", "tag pointwise", "decomposition", …
    rule: Any = None  # OpEvent -> Cost when how == RULE


def _doc(fn: Any) -> str:
    lines = (getattr(fn, "__doc__", None) or "").strip().splitlines()
    return lines[0] if lines else getattr(fn, "__name__", "rule")


def base_name(name: str) -> str | None:
    """``aten.add`` for the in-place ``aten.add_`` (when torch has both), else None."""
    if not name.endswith("_") or name.endswith("__"):
        return None
    base = name[:-1]
    return base if exists(base) else None


def facet(name: str, key: str) -> Any:
    """A facet of the op, or of the op whose in-place form it is."""
    for candidate in (name, base_name(name)):
        entry = OPS.get(candidate) if candidate else None
        if entry is not None and key in entry.facets:
            return entry.facets[key]
    return None


def _overloads(name: str) -> list[Any]:
    try:
        pk = packet(name)
    except (AttributeError, RuntimeError):
        return []
    found = []
    for overload in pk.overloads():
        try:
            found.append(getattr(pk, overload))
        except (AttributeError, RuntimeError):  # a listed overload that this build does not register
            continue
    return found


def _declared(name: str) -> Treatment | None:
    entry = OPS.get(name)
    if entry is None:
        return None
    basis = f"declared in rules/{entry.family}.py"
    if "cost" in entry.facets:
        return Treatment(name, RULE, _doc(entry.facets["cost"]), basis, entry.facets["cost"])
    if "reason" in entry.facets:
        return Treatment(name, NONE, entry.facets["reason"], basis)
    return None


def _tags(overloads: list[Any]) -> set[str]:
    return {t.name for o in overloads for t in o.tags}


def _takes_tensors(overloads: list[Any]) -> bool:
    """Whether some overload reads a tensor (an ``out=`` buffer it only writes does not count)."""
    return any("Tensor" in str(a.type) and not a.is_out for o in overloads for a in o._schema.arguments)


def _view(name: str, overloads: list[Any]) -> Treatment | None:
    if any(o.is_view for o in overloads) or "inplace_view" in _tags(overloads):
        return Treatment(name, NONE, "a view or in-place shape change: no arithmetic", "schema: view")
    return None


def _from_metadata(name: str, overloads: list[Any]) -> Treatment | None:
    tags = _tags(overloads)
    if "view_copy" in tags:
        return Treatment(name, NONE, "copies a view of its input: no arithmetic", "tag view_copy")
    if "pointwise" in tags:
        return Treatment(name, RULE, _doc(pointwise), "tag pointwise", pointwise)
    if "reduction" in tags:
        return Treatment(name, RULE, _doc(reduction), "tag reduction", reduction)
    if tags & {"data_dependent_output", "dynamic_output_shape"}:
        return Treatment(name, NONE, "selects elements by their values: no arithmetic", "tag data_dependent_output")
    if "nondeterministic_seeded" in tags:
        return Treatment(name, NONE, "draws random numbers: no arithmetic counted", "tag nondeterministic_seeded")
    if overloads and not _takes_tensors(overloads):
        return Treatment(name, NONE, "creates a tensor from sizes or scalars: no arithmetic", "schema: no tensor input")
    return None


def _foreach(name: str) -> Treatment | None:
    """``aten._foreach_mul``: the op ``aten.mul`` applied to each tensor of a list (optimizers, grad clipping)."""
    namespace, _, op = name.partition(".")
    if namespace != "aten" or not op.startswith("_foreach_"):
        return None
    inner = classify("aten." + op.removeprefix("_foreach_").rstrip("_"))
    basis = f"a list form of {inner.op}"
    if inner.how == NONE:
        return Treatment(name, NONE, inner.why, basis)
    if inner.rule in (pointwise, reduction) or inner.basis.startswith("declared in rules/elementwise"):
        return Treatment(name, RULE, _doc(foreach), basis, foreach)
    return None


def foreach(op: OpEvent) -> Cost:
    """1 operation per element of each tensor of the list (the list form of a pointwise op or reduction)."""
    listed = op.args[0] if op.args and isinstance(op.args[0], tuple) else ()
    tensors = [t for t in listed if isinstance(t, TensorMeta)]
    if not tensors:
        return ()
    term = Term.REDUCTION if op.op.endswith(("norm", "max", "powsum")) else Term.ELEMENTWISE
    return (step("elementwise ops", "n", term=term, n=sum(t.numel for t in tensors),
                 note=f"n: the elements of the {len(tensors)} tensors of the list"),)


def _has_decomposition(overloads: list[Any]) -> bool:
    """A decomposition in torch._decomp, or a CompositeImplicitAutograd kernel (what autograd decomposes the op
    into: such an op reaches nbcount only when autograd is skipped, e.g. under torch.inference_mode)."""
    from torch._decomp import decomposition_table

    return any(o in decomposition_table or _implicit(o) for o in overloads)


def _implicit(overload: Any) -> bool:
    try:
        return bool(overload.has_kernel_for_dispatch_key(torch._C.DispatchKey.CompositeImplicitAutograd))
    except RuntimeError:
        return False


@functools.cache
def classify(name: str) -> Treatment:
    """How the op called `name` is counted (cached: the table does not change after import)."""
    overloads = _overloads(name)
    found = _declared(name) or _view(name, overloads)
    if found is not None:
        return found
    base = base_name(name)
    if base is not None:
        inner = classify(base)
        if inner.how != UNCOUNTED:
            return replace(inner, op=name, basis=f"in-place form of {base} ({inner.basis})")
    found = _foreach(name) or _from_metadata(name, overloads)
    if found is not None:
        return found
    if _has_decomposition(overloads):
        return Treatment(name, RULE, _doc(decomposed), "torch decomposition", decomposed)
    return Treatment(name, UNCOUNTED, "no counting rule, and torch's metadata does not say what it computes",
                     "unknown")


def pointwise(op: OpEvent) -> Cost:
    """1 operation per output element (a pointwise op; none when the result is bool: a comparison)."""
    out = op.outputs[0] if op.outputs else None
    if out is None or out.dtype == "bool":
        return ()
    return (step("elementwise ops", "n_out", term=Term.ELEMENTWISE, n_out=out.numel),)


def reduction(op: OpEvent) -> Cost:
    """1 operation per input element (a reduction)."""
    x = op.args[0] if op.args and isinstance(op.args[0], TensorMeta) else None
    if x is None:
        return ()
    return (step("reduction ops", "n_in", term=Term.REDUCTION, n_in=x.numel),)


# decompositions ---------------------------------------------------------------------------------------------
_DEVICE = re.compile(r"^(cpu|cuda|meta|mps|xpu|hpu)(:\d+)?$")
MAX_DEPTH = 4


def _revive(value: Any) -> Any:
    """An OpEvent argument back as something an op accepts: TensorMeta -> an empty meta tensor of its shape."""
    if isinstance(value, TensorMeta):
        return torch.empty(value.shape, dtype=getattr(torch, value.dtype), device="meta")
    if isinstance(value, tuple):
        return [_revive(v) for v in value]
    if isinstance(value, str):
        if _DEVICE.match(value):
            return torch.device("meta")
        if value.startswith("torch."):
            found = getattr(torch, value.removeprefix("torch."), None)
            return found if found is not None else value
    return value


def _signature(value: Any) -> Any:
    if isinstance(value, TensorMeta):
        return ("T", value.shape, value.dtype)
    if isinstance(value, tuple):
        return tuple(_signature(v) for v in value)
    return value if isinstance(value, (int, float, bool, str, type(None))) else repr(value)


class _Expand(TorchDispatchMode):
    """Records the ops a decomposition of `target` runs (on meta tensors), as OpEvents."""

    def __init__(self, target: Any):
        super().__init__()
        self.target = target
        self.events: list[OpEvent] = []
        self.ids: dict[int, int] = {}
        self.alive: list[torch.Tensor] = []

    def meta(self, t: torch.Tensor) -> TensorMeta:
        if id(t) not in self.ids:
            self.alive.append(t)  # an id stays this tensor's while the expansion runs
        tid = self.ids.setdefault(id(t), len(self.ids))
        return TensorMeta(tuple(t.shape), str(t.dtype).removeprefix("torch."), t.element_size(), tid)

    def convert(self, v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return self.meta(v)
        if isinstance(v, (list, tuple)):
            return tuple(self.convert(x) for x in v)
        return str(v) if isinstance(v, (torch.dtype, torch.device, torch.memory_format, torch.layout)) else v

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        from torch._decomp import decomposition_table

        kwargs = kwargs or {}
        if func.overloadpacket is self.target:
            decomposition = decomposition_table.get(func)
            with self:
                out = decomposition(*args, **kwargs) if decomposition is not None else func.decompose(*args, **kwargs)
            if out is NotImplemented:
                raise NotImplementedError(f"{func} has no decomposition")
            return out
        out = func(*args, **kwargs)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        self.events.append(OpEvent(str(func.overloadpacket), self.convert(tuple(args)),
                                   tuple((k, self.convert(v)) for k, v in kwargs.items()),
                                   tuple(self.meta(t) for t in outs if isinstance(t, torch.Tensor))))
        return out


_EXPANDED: dict[Any, tuple[OpEvent, ...] | None] = {}  # (op, shapes and dtypes of its arguments) -> inner ops


def _expanded(op: OpEvent) -> tuple[OpEvent, ...] | None:
    key = (op.op, _signature(op.args), _signature(op.kwargs))
    if key not in _EXPANDED:
        mode = _Expand(packet(op.op))
        try:
            with mode:
                packet(op.op)(*_revive(op.args), **{k: _revive(v) for k, v in op.kwargs})
            _EXPANDED[key] = tuple(mode.events)
        except Exception:  # data-dependent, or no decomposition for this overload: not countable this way
            _EXPANDED[key] = None
    return _EXPANDED[key]


def decomposed(op: OpEvent, depth: int = 0) -> Cost:
    """The ops torch decomposes it into, each counted by its own rule."""
    events = _expanded(op)
    if events is None or depth >= MAX_DEPTH:
        raise NotImplementedError(f"{op.op} could not be decomposed for these arguments")
    steps: list[Step] = []
    for inner in events:
        treatment = classify(inner.op)
        if treatment.how == UNCOUNTED or inner.op == op.op:
            raise NotImplementedError(f"{op.op} decomposes into {inner.op}, which has no rule")
        if treatment.rule is None:
            continue
        cost = decomposed(inner, depth + 1) if treatment.rule is decomposed else treatment.rule(inner)
        steps += [replace(s, label=f"{inner.op.removeprefix('aten.')}: {s.label}") for s in cost]
    return tuple(steps)
