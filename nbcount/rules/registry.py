"""The registrars of the op table: one decorator per facet a family registers (see nbcount.rules).

Family modules import these from here; ``nbcount.rules`` re-exports them and loads every family.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nbcount.derive import Step
from nbcount.rules.table import (
    ClassOrOp,
    OpLike,
    in_mro,
    register,
    registrar,
)
from nbcount.types import LayerCall, OpEvent

Cost = tuple[Step, ...]
OpRule = Callable[[OpEvent], Cost]
ModuleRule = Callable[[LayerCall], Cost]
Check = Callable[[Any, tuple[Any, ...], dict[str, Any]], None]  # (op overload, args, kwargs): raise to refuse

op_rule = registrar("cost")
module_rule = registrar("cost")
param_rule = registrar("params")
field_rule = registrar("field")
shape_rule = registrar("shape")
expects = registrar("expects")
check = registrar("check")
stand_in = registrar("stand_in")


def ignore(reason: str, *ops: OpLike) -> None:
    """Declare ops that do no floating-point arithmetic, with the reason shown to users."""
    register(ops, "reason", reason)


def kind(name: str, *keys: ClassOrOp) -> None:
    """The layer kind (a row of the conventions' rules table) of ops and module classes."""
    register(keys, "kind", name)


def find_module_rule(call: LayerCall, facet: str = "cost") -> Callable[[LayerCall], Any] | None:
    """The `facet` rule of the most derived class of the call that has one."""
    found = in_mro(call.classes, facet)
    return found[1] if found is not None else None
