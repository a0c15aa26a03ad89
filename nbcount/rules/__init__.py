"""The one registry of cost rules. A new layer's formula goes in the module of its family.

- ``@op_rule("aten.mm")``: cost of one aten op (an OpEvent) as derivation steps.
- ``@ignore("reason", "aten.view", ...)``: ops that do no arithmetic, with the reason.
- ``@module_rule(nn.LSTM)``: cost of a whole module call; the ops inside it are covered by it.
- ``@param_rule(nn.Conv2d)``: the derivation of a module's parameter count.

Registering a name twice is an error. Module rules resolve through ``type(m).__mro__``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from nbcount.derive import Step
from nbcount.types import LayerCall, OpEvent

Cost = tuple[Step, ...]
OpRule = Callable[[OpEvent], Cost]
ModuleRule = Callable[[LayerCall], Cost]

OP_RULES: dict[str, OpRule] = {}
IGNORED_OPS: dict[str, str] = {}
MODULE_RULES: dict[str, ModuleRule] = {}
PARAM_RULES: dict[str, ModuleRule] = {}

F = TypeVar("F", bound=Callable[..., Cost])


def qualname(cls: type) -> str:
    """The key a class is registered under: ``module.QualName``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _register(table: dict[str, F], keys: tuple[str, ...], fn: F) -> F:
    for key in keys:
        if key in table or key in IGNORED_OPS:
            raise ValueError(f"rule for {key} registered twice")
        table[key] = fn
    return fn


def op_rule(*ops: str) -> Callable[[OpRule], OpRule]:
    """Register the cost rule for aten overload packets such as ``"aten.mm"``."""
    return lambda fn: _register(OP_RULES, ops, fn)


def module_rule(*classes: type) -> Callable[[ModuleRule], ModuleRule]:
    """Register a whole-module cost rule; ops inside such a call are covered by it."""
    return lambda fn: _register(MODULE_RULES, tuple(qualname(c) for c in classes), fn)


def param_rule(*classes: type) -> Callable[[ModuleRule], ModuleRule]:
    """Register the parameter-count derivation of a module type."""
    return lambda fn: _register(PARAM_RULES, tuple(qualname(c) for c in classes), fn)


def ignore(reason: str, *ops: str) -> None:
    """Declare ops that do no floating-point arithmetic, with the reason shown to users."""
    for op in ops:
        if op in IGNORED_OPS or op in OP_RULES:
            raise ValueError(f"rule for {op} registered twice")
        IGNORED_OPS[op] = reason


def find_module_rule(table: dict[str, ModuleRule], call: LayerCall) -> ModuleRule | None:
    """The rule for the most derived class of the call's MRO that has one."""
    for name in call.classes:
        rule = table.get(name)
        if rule is not None:
            return rule
    return None


def _load_families() -> None:
    from nbcount.rules import (  # noqa: F401  (registration side effects)
        attention,
        backward,
        conv,
        elementwise,
        matmul,
        norm,
        params,
        pool,
        recurrent,
    )


_load_families()
