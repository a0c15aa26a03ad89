"""nbcount.diff(a, b): two reports side by side, with the ratio of every number and the reason behind it.

Two models (ResNet-50 vs MobileNetV2): totals, the same numbers per layer kind (``Conv2d 3×3 depthwise``,
``Conv2d 1×1``, ``Linear``, …) and per stage, then *why* they differ, read from the kinds: which kind
accounts for the difference, and what each costs per output element (a depthwise 3×3 reads 1 input channel,
not C_in). Two single layers (a 1×1 conv vs a Linear over H·W rows): each number with both derivations, and
the equivalence or the factor between them explained. Every view is a function of the two reports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nbcount import escape
from nbcount.formula import Number
from nbcount.render import Shown, fmt

if TYPE_CHECKING:
    import pandas as pd

    from nbcount.report import Report, Row

Line = tuple[str, Number, Number]  # (item, a, b)


@dataclass(frozen=True)
class Table:
    """One section of a diff: a title, column headers and (item, values) rows."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[Any, ...]], ...]

    def to_frame(self) -> pd.DataFrame:
        """The section as a DataFrame indexed by item."""
        import pandas as pd

        return pd.DataFrame([values for _, values in self.rows], columns=list(self.columns),
                            index=pd.Index([item for item, _ in self.rows], name=self.title))


def side_by_side(title: str, names: tuple[str, str], lines: Sequence[Line]) -> Table:
    """(item, a, b) lines as a table with the ratio b / a."""
    return Table(title, (*names, f"{names[1]} / {names[0]}"),
                 tuple((item, (x, y, _ratio(x, y))) for item, x, y in lines))


@dataclass(frozen=True, repr=False)
class ReportDiff(Shown):
    """Two reports compared: tables (totals, per layer kind, per stage) and the reasons in words."""

    names: tuple[str, str]
    tables: tuple[Table, ...]
    why: tuple[str, ...]
    derivations: tuple[tuple[str, str, str], ...] = ()  # layer vs layer: (number, a's derivation, b's)

    def __getitem__(self, title: str) -> Table:
        for t in self.tables:
            if t.title == title:
                return t
        raise KeyError(f"no table {title!r}; tables: {', '.join(t.title for t in self.tables)}")

    def ratio(self, item: str, table: str = "totals") -> float | None:
        """b / a of one line of a side-by-side table (None where a is 0)."""
        return dict(self[table].rows)[item][2]

    def to_frame(self, table: str = "totals") -> pd.DataFrame:
        """One table as a DataFrame (``"totals"``, ``"per layer kind"``, a stage table, ``"layer"``)."""
        return self[table].to_frame()

    def to_text(self) -> str:
        """Aligned plain text: each table, then the derivations and the reasons."""
        lines = [f"{self.names[0]} vs {self.names[1]}"]
        for t in self.tables:
            width = max([len(item) for item, _ in t.rows] + [12])
            lines += ["", f"  {t.title}", "    " + " " * width + "".join(f"  {c:>16}" for c in t.columns)]
            lines += ["    " + f"{item:<{width}}" + "".join(f"  {_cell(v):>16}" for v in values)
                      for item, values in t.rows]
        for number, left, right in self.derivations:
            lines += ["", f"  {number}", f"    {self.names[0]}: {left}", f"    {self.names[1]}: {right}"]
        lines += ["", "  why", *(f"    - {reason}" for reason in self.why)]
        return "\n".join(lines)

    def to_html(self) -> str:
        """Escaped HTML tables, the derivations and the reasons as a list."""
        a, b = (escape.html(n) for n in self.names)
        parts = [f"<div class='nbcount-diff {escape.NO_MATH}'><p><b>{a} vs {b}</b></p>"]
        for t in self.tables:
            head = "".join(f"<th>{escape.html(c)}</th>" for c in t.columns)
            body = "".join(f"<tr><td>{escape.html(item)}</td>" + "".join(f"<td>{escape.html(_cell(v))}</td>"
                                                                        for v in values) + "</tr>"
                           for item, values in t.rows)
            parts.append(f"<p><i>{escape.html(t.title)}</i></p><table><tr><th></th>{head}</tr>{body}</table>")
        for number, left, right in self.derivations:
            parts.append(f"<p><i>{escape.html(number)}</i></p><ul><li>{a}: {escape.html(left)}</li>"
                         f"<li>{b}: {escape.html(right)}</li></ul>")
        parts.append("<p><i>why</i></p><ul>" + "".join(f"<li>{escape.html(r)}</li>" for r in self.why) + "</ul>")
        return "".join(parts) + "</div>"


def _ratio(a: Number, b: Number) -> float | None:
    return b / a if a else None


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):  # a ratio
        return f"{value:.3g}×" if value < 1000 else f"{value:,.0f}×"
    return fmt(value) if isinstance(value, (int, float)) else str(value)


# --- layer kinds ------------------------------------------------------------------------------------------

def layer_kind(row: Row) -> str:
    """``Conv2d 3×3 depthwise``, ``Conv2d 1×1``, ``Conv2d 7×7 /2``, ``Linear``, or the module type."""
    call = row.call
    kernel = call.attr("kernel_size")
    if kernel is None or call.attr("in_channels") is None:
        return call.module_type
    text = f"{call.module_type} {'×'.join(str(k) for k in kernel)}"
    groups, c_in = int(call.attr("groups") or 1), int(call.attr("in_channels"))
    if groups > 1:
        text += " depthwise" if groups == c_in else f" grouped (g={groups})"
    stride = call.attr("stride")
    if stride and any(s != 1 for s in stride):
        text += " /" + "×".join(str(s) for s in stride) if len(set(stride)) > 1 else f" /{stride[0]}"
    return text


def _by_kind(report: Report) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for row in report.rows:
        kind = layer_kind(row) if row.call.is_leaf else f"{row.call.module_type} (own ops)"
        sums = out.setdefault(kind, {"params": 0, "macs": 0, "flops": 0, "calls": 0})
        sums["params"] += row.params
        sums["macs"] += row.macs
        sums["flops"] += report.convention.row_value(row)
        sums["calls"] += 1
    return {k: v for k, v in out.items() if v["params"] or v["macs"] or v["flops"]}


def _per_element(report: Report, kind: str) -> float | None:
    """MACs per output element of one kind (C_in/g·K_h·K_w for a conv), averaged over its calls."""
    macs = elements = 0
    for row in report.rows:
        if row.call.is_leaf and layer_kind(row) == kind and row.call.out_tensors:
            macs += row.macs
            elements += row.call.out_tensors[0].numel
    return macs / elements if elements else None


# --- model vs model ---------------------------------------------------------------------------------------

def _totals(a: Report, b: Report) -> tuple[Line, ...]:
    flops = f"{a.convention.unit} ({a.convention.name})"
    lines: list[Line] = [("params", a.total_params, b.total_params), ("MACs", a.total_macs, b.total_macs)]
    if b.convention.name == a.convention.name:
        lines.append((flops, a.headline.value, b.headline.value))
    lines += [("param bytes", a.memory["param_bytes"], b.memory["param_bytes"]),
              ("peak activation bytes", a.memory["peak_activation_bytes"], b.memory["peak_activation_bytes"]),
              ("MACs per parameter", round(a.total_macs / max(a.total_params, 1), 1),
               round(b.total_macs / max(b.total_params, 1), 1)),
              ("layer calls", len(a.rows), len(b.rows))]
    return tuple(lines)


def stage_table(report: Report, name: str) -> Table:
    """The calls the model's forward makes directly, with their parameters, MACs and share of the MACs."""
    from nbcount.explain_totals import stages

    rows = []
    for row, inside in stages(report):
        params = sum(report.rows[k].params for k in inside)
        macs = sum(report.rows[k].macs for k in inside)
        if params or macs:
            label = row.layer + (f" (call {row.call.call_index})" if row.call.call_index else "")
            rows.append((label, (params, macs, f"{100 * macs / max(report.total_macs, 1):.1f}%")))
    return Table(f"stages of {name}", ("params", "MACs", "share of MACs"), tuple(rows))


def _kind_why(a: Report, b: Report, names: tuple[str, str]) -> list[str]:
    kinds_a, kinds_b = _by_kind(a), _by_kind(b)
    reasons = []
    delta = {k: kinds_b.get(k, {}).get("macs", 0) - kinds_a.get(k, {}).get("macs", 0) for k in {*kinds_a, *kinds_b}}
    ranked = sorted(delta, key=lambda k: -abs(delta[k]))[:3]
    for kind in ranked:
        if not delta[kind]:
            continue
        x, y = kinds_a.get(kind, {}).get("macs", 0), kinds_b.get(kind, {}).get("macs", 0)
        share = [f"{n}: {fmt(v)} MACs ({100 * v / max(r.total_macs, 1):.0f}% of its total)"
                 for n, v, r in ((names[0], x, a), (names[1], y, b)) if v]
        reasons.append(f"{kind} accounts for {fmt(abs(delta[kind]))} of the MACs difference — " + "; ".join(share))
    for report, name in ((a, names[0]), (b, names[1])):
        kinds = _by_kind(report)
        for kind in kinds:
            if "depthwise" in kind and (per := _per_element(report, kind)) is not None:
                reasons.append(f"{name} uses depthwise convolutions ({kind}): each output channel reads only its "
                               f"own input channel (C_in/g = 1), so they cost {per:g} MACs per output element where a "
                               "dense convolution costs C_in·K_h·K_w; the 1×1 convolutions beside them mix the "
                               "channels")
                break
    return reasons


def _ratio_why(a: Report, b: Report, names: tuple[str, str]) -> list[str]:
    reasons = []
    if a.total_params and b.total_params:
        r = b.total_params / a.total_params
        reasons.append(f"{names[1]} has {r:.3g}× the parameters of {names[0]} "
                       f"({fmt(b.total_params)} vs {fmt(a.total_params)})")
    if a.total_macs and b.total_macs:
        ra, rb = a.total_macs / max(a.total_params, 1), b.total_macs / max(b.total_params, 1)
        reasons.append(f"{names[1]} does {b.total_macs / a.total_macs:.3g}× the MACs; each parameter is used "
                       f"{rb:,.1f} times per forward pass against {ra:,.1f} in {names[0]} (MACs per parameter: weight "
                       "reuse across positions, and the resolution each stage runs at)")
    return reasons


def compare_models(a: Report, b: Report, names: tuple[str, str]) -> ReportDiff:
    """Totals, per layer kind and per stage, with the reasons."""
    kinds_a, kinds_b = _by_kind(a), _by_kind(b)
    kind_lines: list[Line] = []
    order = sorted({*kinds_a, *kinds_b}, key=lambda k: -max(kinds_a.get(k, {}).get("macs", 0),
                                                            kinds_b.get(k, {}).get("macs", 0)))
    for kind in order:
        for key, label in (("params", "params"), ("macs", "MACs")):
            x, y = kinds_a.get(kind, {}).get(key, 0), kinds_b.get(kind, {}).get(key, 0)
            if x or y:
                kind_lines.append((f"{kind} {label}", x, y))
    tables = (side_by_side("totals", names, list(_totals(a, b))), side_by_side("per layer kind", names, kind_lines),
              stage_table(a, names[0]), stage_table(b, names[1]))
    return ReportDiff(names, tables, tuple(_ratio_why(a, b, names) + _kind_why(a, b, names)))


# --- layer vs layer ---------------------------------------------------------------------------------------

def single_layer(report: Report) -> Row | None:
    """The one row that carries the report's parameters and MACs, if a single layer does."""
    found = [r for r in report.rows if r.params or r.macs or r.call.params_shared]
    return found[0] if len(found) == 1 else None


def _conv_attrs(row: Row) -> dict[str, Any] | None:
    c = row.call
    if c.attr("kernel_size") is None or c.attr("in_channels") is None or c.attr("transposed"):
        return None
    return {"K": tuple(c.attr("kernel_size")), "s": tuple(c.attr("stride") or ()), "g": int(c.attr("groups") or 1),
            "C_in": int(c.attr("in_channels")), "C_out": int(c.attr("out_channels"))}


def _linear_attrs(row: Row) -> dict[str, int] | None:
    f_in, f_out = row.call.attr("in_features"), row.call.attr("out_features")
    return None if f_in is None or f_out is None else {"F_in": int(f_in), "F_out": int(f_out)}


def _positions(row: Row, channels_first: bool) -> int:
    """Output vectors: N·H·W for a conv (channels at axis 1), the rows M for a Linear (features last)."""
    out = row.call.out_tensors[0] if row.call.out_tensors else None
    if out is None or len(out.shape) < 2:
        return 1
    return out.numel // (out.shape[1] if channels_first else out.shape[-1])


def _pointwise_vs_linear(a: Row, b: Row) -> str | None:
    conv, lin = (_conv_attrs(a), _linear_attrs(b)) if _conv_attrs(a) else (_conv_attrs(b), _linear_attrs(a))
    if conv is None or lin is None or set(conv["K"]) != {1} or conv["g"] != 1 or set(conv["s"] or (1,)) != {1}:
        return None
    if (conv["C_in"], conv["C_out"]) != (lin["F_in"], lin["F_out"]):
        return None
    conv_row, lin_row = (a, b) if _conv_attrs(a) else (b, a)
    positions, rows = _positions(conv_row, True), _positions(lin_row, False)
    same = f"{fmt(positions)} positions = {fmt(rows)} rows" if positions == rows else \
        f"{fmt(positions)} positions vs {fmt(rows)} rows"
    return (f"a 1×1 convolution is a Linear applied at every position: its weight is a C_out × C_in matrix "
            f"({conv['C_out']} × {conv['C_in']}, plus C_out biases), exactly Linear({lin['F_in']}, {lin['F_out']})'s; "
            f"the conv multiplies it with the C_in-vector at each of the N·H·W positions, the Linear with each of "
            f"its M rows (N·H·W rows when the map is flattened to (N·H·W, C)): {same}, C_in·C_out MACs each")


def _depthwise_vs_dense(a: Row, b: Row) -> str | None:
    x, y = _conv_attrs(a), _conv_attrs(b)
    if x is None or y is None or x["K"] != y["K"] or x["C_in"] != y["C_in"] or x["g"] == y["g"]:
        return None
    per_x, per_y = x["C_in"] // x["g"], y["C_in"] // y["g"]
    kind = "depthwise: " if 1 in (per_x, per_y) else "grouping: "
    return (f"{kind}each output channel reads C_in/g input channels, {per_x} in the first and {per_y} in the second, "
            f"so the weights and the MACs per output element (C_in/g·∏K each) differ by {per_y}/{per_x} for the same "
            "C_out; the biases (C_out each) are the rest of the parameter difference")


def _conv_vs_linear(a: Row, b: Row) -> str | None:
    if not ((_conv_attrs(a) and _linear_attrs(b)) or (_conv_attrs(b) and _linear_attrs(a))):
        return None
    return ("a convolution shares one small kernel over every position, so its parameters do not grow with the "
            "image; a Linear has one weight per (input, output) pair, so flattening an image into it multiplies "
            "the weights by H·W")


_LAYER_REASONS: tuple[Callable[[Row, Row], str | None], ...] = (_pointwise_vs_linear, _depthwise_vs_dense,
                                                                 _conv_vs_linear)


def _last_text(steps: tuple[Any, ...], term: str | None = None) -> str:
    chosen = [s for s in steps if term is None or s.term == term]
    return " + ".join(s.to_text() for s in chosen) if chosen else "0"


def compare_layers(a: Report, b: Report, row_a: Row, row_b: Row, names: tuple[str, str]) -> ReportDiff:
    """Each number of two single layers, both derivations, and why they agree or by how much they differ."""
    outputs = (row_a.call.out_tensors[0].numel if row_a.call.out_tensors else 0,
               row_b.call.out_tensors[0].numel if row_b.call.out_tensors else 0)
    lines: list[Line] = [("params", row_a.params, row_b.params), ("MACs", row_a.macs, row_b.macs),
             (f"{a.convention.unit} ({a.convention.name})", a.headline.value, b.headline.value),
             ("output elements", *outputs)]
    derivations = (("params", _last_text(row_a.param_steps[-1:]), _last_text(row_b.param_steps[-1:])),
                   ("MACs", _last_text(tuple(s for _, c in row_a.costs for s in c), "mac"),
                    _last_text(tuple(s for _, c in row_b.costs for s in c), "mac")))
    reasons = [r for rule in _LAYER_REASONS if (r := rule(row_a, row_b)) is not None][:1]
    for item, x, y in lines[:2]:
        reasons.append(f"{item}: equal ({fmt(x)})" if x == y else f"{item}: {names[1]} has {_cell(_ratio(x, y))} "
                       f"of {names[0]}'s ({fmt(y)} vs {fmt(x)})")
    return ReportDiff(names, (side_by_side("layer", names, lines),), tuple(reasons), derivations)


def diff(a: Report, b: Report, names: tuple[str, str] | None = None) -> ReportDiff:
    """Two reports side by side: two single layers number by number, or two models by totals, layer kind and stage.

    ``nbcount.diff(nbcount.count(resnet50, size), nbcount.count(mobilenet_v2, size))``; ``names`` label the
    columns (default: the models' class names).
    """
    from nbcount.report import Report

    if not isinstance(a, Report) or not isinstance(b, Report):
        raise TypeError("diff compares two reports: nbcount.diff(nbcount.count(model_a, size), "
                        "nbcount.count(model_b, size))")
    labels = names or _names(a, b)
    row_a, row_b = single_layer(a), single_layer(b)
    if row_a is not None and row_b is not None and row_a.call.is_leaf and row_b.call.is_leaf:
        return compare_layers(a, b, row_a, row_b, labels)
    return compare_models(a, b, labels)


def _names(a: Report, b: Report) -> tuple[str, str]:
    first = a.rows[0].call.module_type if a.rows else "a"
    second = b.rows[0].call.module_type if b.rows else "b"
    return (first, second) if first != second else (f"{first} (a)", f"{second} (b)")
