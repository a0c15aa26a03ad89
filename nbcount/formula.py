"""The small expression language of derivations: symbols, a few functions, and safe evaluation.

A formula is a Python expression over named symbols (``C_out*(C_in*K) + C_out``) with ``+ - * / // **``,
parentheses and the functions in :data:`FUNCTIONS`. ``nbcount.derive`` evaluates formulas;
``nbcount.render`` writes them as text, LaTeX and Markdown. Both read the language from here.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any

Number = int | float

#: The functions a formula may call (nothing else is reachable from a formula).
FUNCTIONS: dict[str, Callable[..., Any]] = {"floor": math.floor, "ceil": math.ceil, "max": max, "min": min,
                                            "prod": math.prod}
#: A symbol (or function name) inside a formula.
SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.lru_cache(maxsize=4096)
def _compiled(formula: str) -> Any:
    """Each formula is compiled once (a rule evaluates the same few formulas for every layer)."""
    return compile(formula, "<formula>", "eval")


def evaluate(formula: str, symbols: dict[str, Number]) -> Number:
    """The value of `formula` over `symbols` (an integral float comes back as an int)."""
    value = eval(_compiled(formula), {"__builtins__": {}}, {**FUNCTIONS, **symbols})  # noqa: S307 - our formulas
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def replace_symbols(formula: str, shown: dict[str, str]) -> str:
    """`formula` with each symbol that `shown` names replaced by its text (numbers, names, LaTeX)."""
    return SYMBOL.sub(lambda m: shown.get(m.group(0), m.group(0)), formula)
