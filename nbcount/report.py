"""Report: the rows, totals with their status, diagnostics and memory — what every view reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from nbcount.conventions import Convention, get_convention
from nbcount.derive import Step
from nbcount.types import Diagnostic, LayerCall, Term, Trace

if TYPE_CHECKING:
    import pandas as pd

MB = 2**20


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
class Report:
    """The result of count(): rows in call order, totals, diagnostics and memory figures."""

    rows: tuple[Row, ...]
    trace: Trace
    convention: Convention
    diagnostics: tuple[Diagnostic, ...]
    options: dict[str, Any] = field(default_factory=dict)
    count_at: Callable[..., Report] | None = field(default=None, repr=False, compare=False)  # same model, other size

    # totals --------------------------------------------------------------------
    @property
    def total_params(self) -> int:
        """Unique registered parameters (each tensor once)."""
        return sum(p.numel for p in self.trace.registered_params)

    @property
    def used_params(self) -> int:
        """Unique parameters the forward pass touched."""
        return sum(r.params for r in self.rows)

    @property
    def trainable_params(self) -> int:
        """Unique registered parameters with requires_grad."""
        return sum(p.numel for p in self.trace.registered_params if p.trainable)

    @property
    def total_macs(self) -> int:
        """Multiply-accumulates of conv / linear / matmul / attention, bias excluded."""
        return sum(r.macs for r in self.rows)

    @property
    def total_flops(self) -> int:
        """The headline number under this report's convention (FLOPs, or MACs for MAC-only tools)."""
        return sum(self.convention.row_value(r) for r in self.rows)

    @property
    def breakdown(self) -> dict[str, int]:
        """Operations per term over the whole model."""
        out: dict[str, int] = {}
        for r in self.rows:
            for term, n in r.breakdown.items():
                out[term] = out.get(term, 0) + n
        return out

    @property
    def uncounted_ops(self) -> dict[str, int]:
        """aten ops without a rule, with how often they ran."""
        return tally_uncounted(self.rows)

    @property
    def status(self) -> str:
        """'complete', or 'lower_bound' when some op could not be counted."""
        return "lower_bound" if self.uncounted_ops else "complete"

    @cached_property
    def memory(self) -> dict[str, float]:
        """torchsummary's four figures (MB = 2^20 bytes, 4 bytes per element) and dtype-aware bytes."""
        from nbcount.memory import memory_figures

        return memory_figures(self)

    # training and serving (nbcount.training_costs, training_memory, serving, scaling) ----------------
    @property
    def forward_macs(self) -> int:
        """Forward multiply-accumulates (total_macs)."""
        return self.total_macs

    @property
    def backward_macs(self) -> int | None:
        """Backward MACs (∂input + ∂weight) when counted with training=True, else None."""
        from nbcount.training import TrainingTrace

        return self.training.backward_macs if isinstance(self.trace, TrainingTrace) else None

    @cached_property
    def training(self) -> Any:
        """The training step: backward per layer, training FLOPs, saved activations (count with training=True)."""
        from nbcount.training_costs import TrainingCosts

        return TrainingCosts(self)

    def training_memory(self, optimizer: str = "adam", precision: str = "mixed", shards: int = 1,
                        zero_stage: int = 0) -> Any:
        """Bytes of parameters, gradients, optimizer state, master weights and activations per device."""
        from nbcount.training_memory import training_memory

        return training_memory(self, optimizer, precision, shards, zero_stage)

    def kv_cache_bytes(self, seq_len: int, batch: int = 1, dtype: Any = None, **overrides: int) -> Any:
        """Bytes of the key/value cache at `seq_len` tokens, from the model's attention layers."""
        from nbcount.serving import kv_cache_bytes

        return kv_cache_bytes(self, seq_len, batch, dtype, **overrides)

    def checkpoint_bytes(self, dtype: Any = None) -> Any:
        """Bytes of the saved state_dict (parameters once, persistent buffers), at their dtypes or cast to `dtype`."""
        from nbcount.checkpoint import checkpoint_bytes

        return checkpoint_bytes(self, dtype)

    def scaling(self, sizes: Any = None, axis: Any = None, convention: str | None = None) -> Any:
        """Count at several input sizes and fit the exact polynomial of the count in the size."""
        from nbcount.scaling import scaling

        return scaling(self, sizes, axis, convention)

    def roofline(self, hardware: Any = "H100-SXM", dtype: Any = None) -> Any:
        """Each layer on `hardware`'s roofline: FLOPs, bytes moved, compute- or memory-bound, time."""
        from nbcount.roofline import roofline

        return roofline(self, hardware, dtype)

    def serving_roofline(self, hardware: Any = ("A100-SXM-80GB", "H100-SXM", "H200", "L4"),
                         prompt_len: int | None = None, context_len: int | None = None, batch: int | None = None,
                         kv_dtype: Any = None, n_kv_heads: int | None = None) -> Any:
        """A decoder's prefill and one decode step (KV-cache read included) per hardware: bound, time, tokens/s."""
        from nbcount.serving_roofline import serving_roofline

        return serving_roofline(self, hardware, prompt_len, context_len, batch, kv_dtype, n_kv_heads)

    # rows ------------------------------------------------------------------------
    def row(self, layer: str, call: int = 0) -> Row:
        """The row of `layer` (dotted path; '' or the class name for the root) at call index `call`."""
        for r in self.rows:
            if r.layer == layer and r.call.call_index == call:
                return r
        if self.rows and layer == self.rows[0].call.module_type:
            return self.rows[0]
        raise KeyError(f"no call {call} of layer {layer!r}; layers: {', '.join(r.layer for r in self.rows[:20])}")

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per module call in call order, with shapes, params, MACs, FLOPs and memory."""
        from nbcount.frame import report_frame

        return report_frame(self)

    @cached_property
    def receptive_field(self) -> dict[int, Any]:
        """Receptive field per row index (size, jump, start per spatial axis), through the dataflow."""
        from nbcount.receptive import receptive_fields

        return receptive_fields(self)

    def derive(self, layer: str | None = None, call: int = 0) -> Any:
        """The worked derivation of every number of one row (or of the totals when `layer` is None)."""
        from nbcount.explain import derive

        return derive(self, layer, call)

    def compare(self, conventions: Any = None) -> pd.DataFrame:
        """One column per convention, per layer, with a column explaining each difference."""
        from nbcount.compare import compare

        return compare(self, conventions)

    def to_frame(self) -> pd.DataFrame:
        """The table (a copy)."""
        return self.table.copy()

    def to_csv(self, path: Any = None) -> str | None:
        """The table as CSV (to `path`, or returned)."""
        from nbcount.export import to_csv

        return to_csv(self, path)

    def to_markdown(self) -> str:
        """Totals and the table as Markdown (escaped)."""
        from nbcount.export import to_markdown

        return to_markdown(self)

    def to_latex(self) -> str:
        """The table as a LaTeX tabular (escaped)."""
        from nbcount.export import to_latex

        return to_latex(self)

    def to_json(self) -> str:
        """Totals, rows and diagnostics as JSON."""
        from nbcount.export import to_json

        return to_json(self)

    def show(self, **options: Any) -> Any:
        """The interactive widget (nbcount.widget): tabs for totals, the layer tree, charts, derivations."""
        from nbcount.display import widget

        return widget(self, **options)

    def chart(self, metric: Any = ("params", "flops"), top: int = 10, log: bool = False,
              group: str | None = None) -> Any:
        """Matplotlib bar charts of 'params', 'flops', 'macs' or 'activation' (nbcount.charts.chart)."""
        from nbcount.charts import chart

        return chart(self, metric, top, log, group)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from nbcount.export import mimebundle

        return mimebundle(self)

    def recount(self, convention: str | Convention) -> Report:
        """The same trace counted under another convention."""
        return replace(self, convention=get_convention(convention))

    def __repr__(self) -> str:
        return (f"<nbcount.Report {self.rows[0].call.module_type if self.rows else '?'}: "
                f"{self.total_params:,} params, {self.total_macs:,} MACs, "
                f"{self.total_flops:,} {self.convention.unit} ({self.convention.name}), {self.status}>")
