"""Named counting conventions: how a tool turns a cost breakdown into its headline number.

Each convention is data: per-term weights (how many of the tool's units one counted operation
is worth), the unit it prints, and the source file of the peer it mirrors. A convention may also
name per-module overrides for peers that count by module type rather than by operation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nbcount.types import Term

if TYPE_CHECKING:
    from nbcount.report import Row

ALL_TERMS = tuple(t.value for t in Term)


@dataclass(frozen=True)
class Convention:
    """How one tool counts: term weights, its unit, the source it mirrors, and its known defects."""

    name: str
    description: str
    source: str
    unit: str  # "FLOPs" or "MACs"
    weights: Mapping[str, int]
    notes: tuple[str, ...] = ()
    module_overrides: Mapping[str, Callable[[Row], int]] = field(default_factory=dict)

    def row_value(self, row: Row) -> int:
        """This tool's number for one table row."""
        for cls in row.call.classes:
            override = self.module_overrides.get(cls)
            if override is not None:
                return override(row)
        return sum(self.weights.get(term, 0) * n for term, n in row.breakdown.items())


NBCOUNT = Convention(
    name="nbcount",
    description="Every floating-point operation: 2 per multiply-accumulate plus bias, norm, activation, "
                "pooling, softmax, elementwise, reduction and interpolation operations.",
    source="nbcount/rules (each rule's docstring states its formula)",
    unit="FLOPs",
    weights={t: (2 if t == Term.MAC.value else 1) for t in ALL_TERMS},
)

MACS = Convention(
    name="macs",
    description="Multiply-accumulates of conv / linear / matmul / attention only, bias excluded.",
    source="nbcount/rules (terms tagged 'mac')",
    unit="MACs",
    weights={Term.MAC.value: 1},
)

_REGISTRY: dict[str, Convention] = {}


def register(convention: Convention) -> Convention:
    """Add a convention to the registry (names are unique)."""
    if convention.name in _REGISTRY:
        raise ValueError(f"convention {convention.name!r} registered twice")
    _REGISTRY[convention.name] = convention
    return convention


register(NBCOUNT)
register(MACS)


def get_convention(name: str | Convention) -> Convention:
    """The convention called `name`; a clear error listing the known names otherwise."""
    if isinstance(name, Convention):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown convention {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def conventions() -> dict[str, str]:
    """Every convention's name with its one-line description."""
    return {name: c.description for name, c in _REGISTRY.items()}
