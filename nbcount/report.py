"""Report: a finished value — the rows, totals, diagnostics and the analyses count() ran — that every view reads.

A Report imports nothing above it. Its convenience methods (``r.derive()``, ``r.table``, ``r.roofline()``, ...)
are thin delegations to the views that implement them, looked up in ``VIEWS`` — a table the views fill when
``nbcount`` is imported (``nbcount/views.py``). A Report keeps only a *weak* reference to the model it counted
(it never keeps a model alive, and it pickles without it): views that count the same model again (scaling, the
serving view) use it while the model lives, or take the model as an argument.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from nbcount.convention import Convention, get_convention
from nbcount.derive import Step
from nbcount.types import Diagnostic, LayerCall, Term, Trace

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from torch import nn

    from nbcount.checkpoint import DerivedBytes
    from nbcount.explanation import Explanation
    from nbcount.receptive import FieldMap
    from nbcount.roofline import Roofline
    from nbcount.scaling import ScalingFit
    from nbcount.serving_roofline import ServingRoofline
    from nbcount.training_costs import TrainingCosts
    from nbcount.training_memory import MemoryBreakdown

MB = 2**20

#: name -> the function of a Report behind ``Report.<name>`` (filled by nbcount.views on import)
VIEWS: dict[str, Callable[..., Any]] = {}


def _view(name: str) -> Callable[..., Any]:
    found = VIEWS.get(name)
    if found is None:  # only when nbcount.views was not imported (nbcount's __init__ always imports it)
        raise RuntimeError(f"no view registered for Report.{name}: import nbcount first")
    return found


@dataclass(frozen=True)
class Row:
    """One module call with its counted costs; `costs` keeps each op's derivation steps."""

    call: LayerCall
    costs: tuple[tuple[str, tuple[Step, ...]], ...]  # (source: aten op or module rule, steps)
    breakdown: dict[str, int]
    param_steps: tuple[Step, ...]
    uncounted: tuple[str, ...]

    @property
    def layer(self) -> str:
        """Dotted path of the module ('' for the root)."""
        return self.call.path

    @property
    def params(self) -> int:
        """Parameters first counted at this call (0 for shared / repeated calls)."""
        return sum(p.numel for p in self.call.params_new)

    @property
    def macs(self) -> int:
        """Multiply-accumulates in this call (not in its child module calls)."""
        return self.breakdown.get(Term.MAC.value, 0)

    @property
    def output_bytes(self) -> int:
        """Bytes of the call's output tensors, by their real dtype."""
        return sum(t.nbytes for t in self.call.out_tensors)


def tally_uncounted(rows: Iterable[Any]) -> dict[str, int]:
    """How often each op without a rule ran, over rows that have an ``uncounted`` tuple."""
    out: dict[str, int] = {}
    for r in rows:
        for op in r.uncounted:
            out[op] = out.get(op, 0) + 1
    return out


@dataclass(frozen=True)
class Headline:
    """A convention's number with its own name and unit: ``4,089,184,256 MACs (fvcore)``."""

    value: int
    unit: str  # "FLOPs" or "MACs"
    convention: str

    def __int__(self) -> int:
        return self.value

    def __str__(self) -> str:
        return f"{self.value:,} {self.unit} ({self.convention})"


@dataclass(frozen=True)
class Report:
    """The result of count(): rows in call order, diagnostics, and the analyses run once (memory figures,
    receptive fields, the training step); totals are computed from them on first use."""

    rows: tuple[Row, ...]
    trace: Trace
    convention: Convention
    diagnostics: tuple[Diagnostic, ...]
    options: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)  # torchsummary's four figures + bytes by real dtype
    receptive_field: FieldMap | None = None  # row index -> its field (None without an image-like input)
    training: TrainingCosts | None = None  # the training step, when counted with training=True
    counted: weakref.ReferenceType[nn.Module] | None = field(default=None, compare=False, repr=False)

    def model(self) -> nn.Module:
        """The model this report counted, while it lives (a Report holds it weakly and pickles without it)."""
        found = self.counted() if self.counted is not None else None
        if found is None:
            raise LookupError("this report no longer reaches the model it counted (it was deleted, or the report "
                              "was unpickled): pass the model, e.g. r.scaling(model) or r.serving_roofline(model) "
                              "— or keep it in a variable (model = ...; nbcount.count(model, ...))")
        return found

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "counted": None}  # a weak reference does not pickle; the model is not data

    # totals ----------------------------------------------------------------------
    @cached_property
    def total_params(self) -> int:
        """Unique registered parameters (each tensor once)."""
        return sum(p.numel for p in self.trace.registered_params)

    @cached_property
    def used_params(self) -> int:
        """Unique parameters the forward pass touched."""
        return sum(r.params for r in self.rows)

    @cached_property
    def trainable_params(self) -> int:
        """Unique registered parameters with requires_grad."""
        return sum(p.numel for p in self.trace.registered_params if p.trainable)

    @cached_property
    def total_macs(self) -> int:
        """Multiply-accumulates nbcount counted (conv / linear / matmul / attention, bias excluded); the same
        under every convention — a convention's own number is `headline`."""
        return sum(r.macs for r in self.rows)

    @cached_property
    def headline(self) -> Headline:
        """The number this report's convention prints, in its own unit (FLOPs, or MACs for MAC-counting tools)."""
        value = sum(self.convention.row_value(r) for r in self.rows)
        return Headline(value, self.convention.unit, self.convention.name)

    @property
    def total_flops(self) -> int | None:
        """FLOPs under this report's convention; None under a convention that counts MACs (see `headline`)."""
        return self.headline.value if self.convention.unit == "FLOPs" else None

    @cached_property
    def breakdown(self) -> dict[str, int]:
        """Operations per term over the whole model."""
        out: dict[str, int] = {}
        for r in self.rows:
            for term, n in r.breakdown.items():
                out[term] = out.get(term, 0) + n
        return out

    @cached_property
    def uncounted_ops(self) -> dict[str, int]:
        """aten ops without a rule, with how often they ran."""
        return tally_uncounted(self.rows)

    @property
    def status(self) -> str:
        """'complete', or 'lower_bound' when some op could not be counted."""
        return "lower_bound" if self.uncounted_ops else "complete"

    @property
    def forward_macs(self) -> int:
        """Forward multiply-accumulates (total_macs)."""
        return self.total_macs

    @property
    def backward_macs(self) -> int | None:
        """Backward MACs (∂input + ∂weight) when counted with training=True, else None."""
        return self.training.backward_macs if self.training is not None else None

    # rows ------------------------------------------------------------------------
    def row(self, layer: str, call: int = 0) -> Row:
        """The row of `layer` (dotted path; '' or the class name for the root) at call index `call`."""
        for r in self.rows:
            if r.layer == layer and r.call.call_index == call:
                return r
        if self.rows and layer == self.rows[0].call.module_type:
            return self.rows[0]
        raise KeyError(f"no call {call} of layer {layer!r}; layers: {', '.join(r.layer for r in self.rows[:20])}")

    def recount(self, convention: str | Convention) -> Report:
        """The same count under another convention (the training step's totals follow it)."""
        return _view("recount")(self, get_convention(convention))  # type: ignore[no-any-return]

    # views: thin delegations (nbcount.views binds them) ----------------------------------------------
    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per module call in call order, with shapes, params, MACs, FLOPs and memory (nbcount.frame)."""
        return _view("table")(self)  # type: ignore[no-any-return]

    def to_frame(self) -> pd.DataFrame:
        """The table (a copy)."""
        return self.table.copy()

    def derive(self, layer: str | None = None, call: int = 0) -> Explanation:
        """The worked derivation of every number of one row (or of the totals when `layer` is None)."""
        return _view("derive")(self, layer, call)  # type: ignore[no-any-return]

    def compare(self, conventions: Any = None) -> pd.DataFrame:
        """One column per convention, per layer, with a column explaining each difference."""
        return _view("compare")(self, conventions)  # type: ignore[no-any-return]

    def to_csv(self, path: Any = None) -> str | None:
        """The table as CSV (to `path`, or returned)."""
        return _view("to_csv")(self, path)  # type: ignore[no-any-return]

    def to_markdown(self) -> str:
        """Totals and the table as Markdown (escaped)."""
        return _view("to_markdown")(self)  # type: ignore[no-any-return]

    def to_latex(self) -> str:
        """The table as a LaTeX tabular (escaped)."""
        return _view("to_latex")(self)  # type: ignore[no-any-return]

    def to_json(self) -> str:
        """Totals, rows and diagnostics as JSON."""
        return _view("to_json")(self)  # type: ignore[no-any-return]

    def show(self, **options: Any) -> Any:
        """The interactive widget (nbcount.widget): tabs for totals, the layer tree, charts, derivations."""
        return _view("show")(self, **options)

    def chart(self, metric: Any = ("params", "flops"), top: int = 10, log: bool = False,
              group: str | None = None) -> Figure:
        """Matplotlib bar charts of 'params', 'flops', 'macs' or 'activation' (nbcount.charts.chart)."""
        return _view("chart")(self, metric, top, log, group)  # type: ignore[no-any-return]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return _view("mimebundle")(self)  # type: ignore[no-any-return]

    # training, serving, hardware -------------------------------------------------------------------
    def training_memory(self, optimizer: str = "adam", precision: str = "mixed", shards: int = 1,
                        zero_stage: int = 0) -> MemoryBreakdown:
        """Bytes of parameters, gradients, optimizer state, master weights and activations per device."""
        return _view("training_memory")(self, optimizer, precision, shards, zero_stage)  # type: ignore[no-any-return]

    def kv_cache_bytes(self, seq_len: int, batch: int = 1, dtype: Any = None, **overrides: int) -> DerivedBytes:
        """Bytes of the key/value cache at `seq_len` tokens, from the model's attention layers."""
        return _view("kv_cache_bytes")(self, seq_len, batch, dtype, **overrides)  # type: ignore[no-any-return]

    def checkpoint_bytes(self, dtype: Any = None) -> DerivedBytes:
        """Bytes of the saved state_dict (parameters once, persistent buffers), at their dtypes or cast to `dtype`."""
        return _view("checkpoint_bytes")(self, dtype)  # type: ignore[no-any-return]

    def roofline(self, hardware: Any = "H100-SXM", dtype: Any = None) -> Roofline:
        """Each layer on `hardware`'s roofline: FLOPs, bytes moved, compute- or memory-bound, time."""
        return _view("roofline")(self, hardware, dtype)  # type: ignore[no-any-return]

    def scaling(self, model: nn.Module | None = None, sizes: Any = None, axis: Any = None,
                convention: str | None = None) -> ScalingFit:
        """Count `model` again at several sizes of one input axis, as this report counted it, and fit the exact
        polynomial of the count in the size (nbcount.scaling). `model`: by default the counted one while it
        lives (a report holds it weakly)."""
        return _view("scaling")(self, sizes, axis, convention, model)  # type: ignore[no-any-return]

    def serving_roofline(self, model: nn.Module | None = None,
                         hardware: Any = ("A100-SXM-80GB", "H100-SXM", "H200", "L4"),
                         prompt_len: int | None = None, context_len: int | None = None, batch: int | None = None,
                         kv_dtype: Any = None, n_kv_heads: int | None = None) -> ServingRoofline:
        """A decoder's prefill and one decode step (KV-cache read included) per hardware: bound, time, tokens/s
        (`model` — by default the counted one while it lives — is counted again at the prompt's and one
        token's length)."""
        return _view("serving_roofline")(self, hardware, prompt_len, context_len,  # type: ignore[no-any-return]
                                         batch, kv_dtype, n_kv_heads, model)

    def __repr__(self) -> str:
        return (f"<nbcount.Report {self.rows[0].call.module_type if self.rows else '?'}: "
                f"{self.total_params:,} params, {self.total_macs:,} MACs, {self.headline}, {self.status}>")
