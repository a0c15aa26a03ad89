"""Named counting conventions: how a tool turns what ran into its headline number.

Each convention is data: per-term weights (how many of the tool's units one counted operation is
worth), or per-module / per-op formulas for peers that count by module type or by operator, the
unit it prints, the source file of the peer it mirrors, what it counts per layer kind (``rules``),
and its known defects. Every formula returns derivation steps — the peer's own formula with the
numbers substituted — and a row's number is the last step of its derivation (``row_steps``), as for
nbcount's own counts. A convention mirrors the peer's *rules*; each defect (an accident of the
peer's implementation) is data too, and is added back only by the strict variant
(``get_convention("ptflops", strict=True)`` or the name ``"ptflops:strict"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nbcount.derive import Step, step, total
from nbcount.rules.table import first_in_mro
from nbcount.types import OpEvent, Term

if TYPE_CHECKING:
    from nbcount.report import Row

ALL_TERMS = tuple(t.value for t in Term)
STRICT_SUFFIX = ":strict"

Cost = tuple[Step, ...]
RowCount = Callable[["Row"], Cost]  # the steps of a row's count under a peer's formula; the last is the count
OpCount = Callable[[OpEvent], Cost]  # the same for one aten op


def _relabelled(steps: Cost, label: str) -> Cost:
    """The steps with the last one called `label` (the number a derivation ends with is the convention's)."""
    if steps and steps[-1].label != label:
        return (*steps[:-1], replace(steps[-1], label=label))
    return steps


def last(steps: Cost) -> int:
    """The number a derivation ends with."""
    return int(steps[-1].value) if steps else 0


@dataclass(frozen=True)
class Defect:
    """A peer's accident: `delta(row)` ends with what the peer adds (or, negative, drops) beyond its own rule."""

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

    @property
    def label(self) -> str:
        """``FLOPs (nbcount)``: the unit and the convention, the label of a row's last step."""
        return f"{self.unit} ({self.name})"

    @property
    def column(self) -> str:
        """The key of this convention's column in ``report.table``, named by its unit: ``flops`` for a convention
        that counts FLOPs, ``macs_<name>`` for one that counts MACs (``macs_fvcore``), ``macs`` for nbcount's own
        MAC convention, whose numbers are the ``macs`` column. A figure called flops is always FLOPs."""
        if self.unit == "FLOPs":
            return "flops"
        if self.name.removesuffix(STRICT_SUFFIX) == "macs":
            return "macs"
        return "macs_" + self.name.replace(STRICT_SUFFIX, "_strict").replace("+", "_")

    @property
    def rule_label(self) -> str:
        """``MACs (ptflops)``: the label of the peer's rule, before a strict variant adds its defects."""
        return f"{self.unit} ({self.name.removesuffix(STRICT_SUFFIX)})"

    def override_for(self, row: Row) -> RowCount | None:
        """The module formula that counts this row, if any."""
        classes = row.call.classes[:1] if self.exact_type else row.call.classes
        return first_in_mro(classes, self.module_overrides)

    def rule_steps(self, row: Row) -> Cost:
        """The derivation of this tool's number for one row under its rules (defects not applied); its last step
        is labelled with the convention (``FLOPs (calflops)``)."""
        override = self.override_for(row)
        if override is not None:
            steps = override(row)
        elif self.op_counts is not None:
            steps = self._op_steps(row)
        else:
            steps = self._weighted_steps(row)
        return _relabelled(steps, self.rule_label)

    def _op_steps(self, row: Row) -> Cost:
        assert self.op_counts is not None
        per_op = [(op.op, fn(op)) for op in row.call.ops if (fn := self.op_counts.get(op.op)) is not None]
        per_op = [(name, steps) for name, steps in per_op if steps]
        if not per_op:
            return (step(self.label, "0", note=f"{self.name} counts none of this layer's own ops"),)
        steps = tuple(s for _, cost in per_op for s in cost)
        if len(per_op) == 1:
            return steps
        return (*steps, total(self.label, [(name.removeprefix("aten."), last(cost)) for name, cost in per_op]))

    def _weighted_steps(self, row: Row) -> Cost:
        weights = self.weights
        terms: dict[str, Any] = {t: n for t, n in row.breakdown.items() if n and weights.get(t, 0)}
        if not terms:
            return (step(self.label, "0", note="nothing this convention counts in the layer's own ops"),)
        steps: list[Step] = []
        for term in terms:
            parts = [s for _, cost in row.costs for s in cost if s.term == term]
            steps += parts
            if len(parts) > 1:
                steps.append(total(term, [(s.label, s.value) for s in parts]))
        formula = " + ".join(t if weights[t] == 1 else f"{weights[t]}*{t}" for t in terms)
        return (*steps, step(self.label, formula, **terms))

    def rule_value(self, row: Row) -> int:
        """This tool's number for one row under its rules (defects not applied)."""
        if self.override_for(row) is None and self.op_counts is None:  # the common case, without building steps
            return sum(self.weights.get(term, 0) * n for term, n in row.breakdown.items())
        return last(self.rule_steps(row))

    def defect_steps(self, row: Row) -> list[tuple[Defect, Cost]]:
        """Each defect that changes this row, with the derivation of what the real tool adds."""
        found = []
        for defect in self.defects:
            steps = defect.delta(row)
            if last(steps):
                found.append((defect, steps))
        return found

    def defect_deltas(self, row: Row) -> dict[str, int]:
        """Each defect's non-zero contribution to this row (what the real tool adds to its rule)."""
        return {defect.name: last(steps) for defect, steps in self.defect_steps(row)}

    def row_steps(self, row: Row) -> Cost:
        """The derivation of this tool's number for one table row (its defects added when `strict`)."""
        steps = self.rule_steps(row)
        defects = self.defect_steps(row) if self.strict else []
        if not defects:
            return _relabelled(steps, self.label)
        added = [s for _, cost in defects for s in cost]
        parts = [("rule", last(steps)), *((defect.name, last(cost)) for defect, cost in defects)]
        return (*steps, *added, total(self.label, parts, note="its rule plus the defects of the real tool"))

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


#: former names still accepted: "seed003" was named after the seed document, not after what it counts
ALIASES = {"seed003": "macs+bias"}


def get_convention(name: str | Convention, strict: bool = False) -> Convention:
    """The convention called `name` (``"x:strict"`` or strict=True: its defects applied too)."""
    if isinstance(name, Convention):
        convention = name
    else:
        base = name.removesuffix(STRICT_SUFFIX)
        strict = strict or base != name
        try:
            convention = _REGISTRY[ALIASES.get(base, base)]
        except KeyError:
            raise ValueError(f"unknown convention {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    if strict and not convention.strict:
        return replace(convention, name=convention.name + STRICT_SUFFIX, strict=True)
    return convention


ORDER = ("nbcount", "macs", "torch", "fvcore", "thop", "ptflops", "torchinfo", "torchscan", "calflops", "deepspeed",
         "paddle", "macs+bias")


def conventions() -> dict[str, str]:
    """Every convention's name with its one-line description (nbcount's, then the peers')."""
    rank = {name: i for i, name in enumerate(ORDER)}
    names = sorted(_REGISTRY, key=lambda n: (rank.get(n, len(ORDER)), n))
    return {name: _REGISTRY[name].description for name in names}

