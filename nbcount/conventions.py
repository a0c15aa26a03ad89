"""Named counting conventions: how a tool turns what ran into its headline number.

Each convention is data: per-term weights (how many of the tool's units one counted operation is
worth), or per-module / per-op formulas for peers that count by module type or by operator, the
unit it prints, the source file of the peer it mirrors, what it counts per layer kind (``rules``),
and its known defects. A convention mirrors the peer's *rules*; each defect (an accident of the
peer's implementation) is data too, and is added back only by the strict variant
(``get_convention("ptflops", strict=True)`` or the name ``"ptflops:strict"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from nbcount.types import OpEvent, Term

if TYPE_CHECKING:
    from nbcount.report import Row

ALL_TERMS = tuple(t.value for t in Term)
STRICT_SUFFIX = ":strict"

RowCount = Callable[["Row"], int]
OpCount = Callable[[OpEvent], int]


@dataclass(frozen=True)
class Defect:
    """A peer's accident: `delta(row)` is what the peer adds (or, negative, drops) beyond its own rule."""

    name: str
    description: str
    delta: RowCount


@dataclass(frozen=True)
class Convention:
    """How one tool counts: formulas, its unit, the source it mirrors, its per-kind rules and defects.

    A row's value comes from the first that applies: a module override (by exact type when
    `exact_type`, else through the MRO), the per-op formulas `op_counts` summed over the row's own
    aten ops, or the term weights applied to nbcount's breakdown.
    """

    name: str
    description: str
    source: str
    unit: str  # "FLOPs" or "MACs"
    weights: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    module_overrides: Mapping[str, RowCount] = field(default_factory=dict)
    exact_type: bool = False
    op_counts: Mapping[str, OpCount] | None = None
    defects: tuple[Defect, ...] = ()
    rules: Mapping[str, str] = field(default_factory=dict)  # layer kind -> what this tool counts for it
    strict: bool = False

    def override_for(self, row: Row) -> RowCount | None:
        """The module formula that counts this row, if any."""
        classes = row.call.classes[:1] if self.exact_type else row.call.classes
        for cls in classes:
            override = self.module_overrides.get(cls)
            if override is not None:
                return override
        return None

    def rule_value(self, row: Row) -> int:
        """This tool's number for one row under its rules (defects not applied)."""
        override = self.override_for(row)
        if override is not None:
            return int(override(row))
        if self.op_counts is not None:
            return int(sum(fn(op) for op in row.call.ops if (fn := self.op_counts.get(op.op)) is not None))
        return sum(self.weights.get(term, 0) * n for term, n in row.breakdown.items())

    def defect_deltas(self, row: Row) -> dict[str, int]:
        """Each defect's non-zero contribution to this row (what the real tool adds to its rule)."""
        found = {}
        for defect in self.defects:
            delta = int(defect.delta(row))
            if delta:
                found[defect.name] = delta
        return found

    def row_value(self, row: Row) -> int:
        """This tool's number for one table row (bug-for-bug when `strict`)."""
        value = self.rule_value(row)
        if self.strict:
            value += sum(self.defect_deltas(row).values())
        return value

    def rule_for(self, kind: str) -> str:
        """What this tool counts for a layer kind, in words."""
        return self.rules.get(kind, self.rules.get("*", "not counted (0)"))


NBCOUNT = Convention(
    name="nbcount",
    description="Every floating-point operation: 2 per multiply-accumulate plus bias, norm, activation, "
                "pooling, softmax, elementwise, reduction and interpolation operations.",
    source="nbcount/rules (each rule's docstring states its formula)",
    unit="FLOPs",
    weights={t: (2 if t == Term.MAC.value else 1) for t in ALL_TERMS},
    rules={
        "conv": "2 per MAC + 1 per output for the bias",
        "conv_transpose": "2 per MAC + 1 per output for the bias; MACs per input pixel",
        "linear": "2 per MAC + 1 per output for the bias", "matmul": "2 per MAC",
        "batchnorm": "eval: 2 per element (folded a·x + b); train: 5 + 2 affine per element",
        "layernorm": "5 per element + 2 affine", "groupnorm": "5 per element + 2 affine",
        "instancenorm": "5 per element + 2 affine",
        "relu": "1 per element", "relu6": "1 per element", "leaky_relu": "1 per element",
        "activation": "1 per element", "sigmoid": "1 per element", "tanh": "1 per element",
        "softmax": "5 per element", "maxpool": "∏K − 1 comparisons per output",
        "avgpool": "∏K per output", "adaptive_avgpool": "n_in + n_out", "adaptive_maxpool": "n_in − n_out",
        "upsample": "nearest 0; (bi/tri)linear 3 per lerp per output", "dropout": "eval 0; train 1 per element",
        "mha": "2 per MAC (projections, q·kᵀ, p·v) + bias + scale + 5 per score for softmax",
        "sdpa": "2 per MAC (q·kᵀ, p·v) + scale + 5 per score for softmax", "add_mul": "1 per output element",
        "embedding": "0 (a lookup)", "rnn": "2 per MAC + bias + gate activations + pointwise",
        "*": "every floating-point op of its own: 1 per pointwise output, 1 per reduced input (nbcount/rules)",
    },
)

MACS = Convention(
    name="macs",
    description="Multiply-accumulates of conv / linear / matmul / attention only, bias excluded.",
    source="nbcount/rules (terms tagged 'mac')",
    unit="MACs",
    weights={Term.MAC.value: 1},
    rules={"conv": "1 per MAC, bias not counted", "conv_transpose": "1 per MAC, bias not counted; MACs per input pixel",
           "linear": "1 per MAC, bias not counted",
           "matmul": "1 per MAC", "mha": "1 per MAC", "sdpa": "1 per MAC", "rnn": "1 per MAC",
           "*": "0 (not a multiply-accumulate)"},
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


def get_convention(name: str | Convention, strict: bool = False) -> Convention:
    """The convention called `name` (``"x:strict"`` or strict=True: its defects applied too)."""
    if isinstance(name, Convention):
        convention = name
    else:
        base = name.removesuffix(STRICT_SUFFIX)
        strict = strict or base != name
        try:
            convention = _REGISTRY[base]
        except KeyError:
            raise ValueError(f"unknown convention {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    if strict and not convention.strict:
        return replace(convention, name=convention.name + STRICT_SUFFIX, strict=True)
    return convention


ORDER = ("nbcount", "macs", "torch", "fvcore", "thop", "ptflops", "torchinfo", "torchscan", "calflops", "deepspeed",
         "paddle", "seed003")


def conventions() -> dict[str, str]:
    """Every convention's name with its one-line description (nbcount's, then the peers')."""
    rank = {name: i for i, name in enumerate(ORDER)}
    names = sorted(_REGISTRY, key=lambda n: (rank.get(n, len(ORDER)), n))
    return {name: _REGISTRY[name].description for name in names}


def _load_peers() -> None:
    from nbcount import peers  # noqa: F401  (registers the peer conventions)


_load_peers()
