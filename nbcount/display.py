"""The ipywidgets view of a Report (Summary, Layers, Charts, Derivation, Conventions, Diagnostics tabs).

Nothing here counts: every number comes from the Report. The widget's mime bundle also carries the
static fallback (escaped HTML, PNG chart, plain text) for frontends without a widget manager.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from nbcount import export
from nbcount.charts import chart_png, row_label

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler

    from nbcount.report import Report

TAB_TITLES = ("Summary", "Layers", "Charts", "Derivation", "Conventions", "Diagnostics")
BAR_COLUMNS = ("params", "macs", "flops", "output_bytes")
_IGNORE_MATH = "tex2jax_ignore mathjax_ignore"


@dataclass(frozen=True)
class ViewOptions:
    """How a Report is shown: table depth and columns, number units, chart size and scale, focus."""

    depth: int | None = None
    columns: tuple[str, ...] | None = None
    units: str = "both"
    top: int = 10
    log: bool = False
    derive: tuple[str | None, int] | None = None  # (layer, call) to open in the Derivation tab
    compare: tuple[str, ...] | None = None  # conventions for the Conventions tab (None: the default set)


def require_widgets() -> Any:
    """Import ipywidgets, or say how to get it."""
    try:
        import ipywidgets
    except ImportError as error:  # pragma: no cover - exercised only without ipywidgets
        raise ImportError("nbcount's interactive view needs ipywidgets>=8: `pip install ipywidgets` (and, in "
                          "JupyterLab < 4, jupyterlab_widgets). Without it, display the Report itself for a "
                          "static table, or use report.to_markdown() / report.table.") from error
    return ipywidgets


# pieces, each a pure function of the Report ------------------------------------------------------
def styled_table(report: Report, depth: int | None = None, columns: Sequence[str] | None = None) -> Styler:
    """The per-layer table as a pandas Styler: indented by depth, thousands separators, inline bars."""
    frame = export.select(report, depth, columns)
    wanted = export.check_columns(report, columns)
    shown = frame[wanted].copy()
    for name in wanted:
        if name == "layer":
            calls = report.table.loc[frame.index, "call"]
            shown[name] = [export.layer_label(layer, int(call)) for layer, call in zip(frame["layer"], calls)]
        elif name not in export.NUMERIC:
            shown[name] = [export.cell_text(v) for v in frame[name]]
    shown.columns = [export.column_title(report, c) for c in wanted]
    depths = frame["depth"].tolist()

    def indent(data: Any) -> Any:
        import pandas as pd

        css = pd.DataFrame("", index=data.index, columns=data.columns)
        if "layer" in wanted:
            css.iloc[:, wanted.index("layer")] = [f"padding-left: {0.3 + d}em; text-align: left" for d in depths]
        return css

    numeric = [export.column_title(report, c) for c in wanted if c in export.NUMERIC]
    bars = [export.column_title(report, c) for c in wanted if c in BAR_COLUMNS and frame[c].max() > 0]
    styler = shown.style.hide(axis="index").format(escape="html", thousands=",", precision=0)
    styler = styler.format_index(escape="html", axis=1)
    styler = styler.apply(indent, axis=None).set_table_attributes(f'class="nbcount-layers {_IGNORE_MATH}"')
    if bars and len(shown):
        styler = styler.bar(subset=bars, color="#c6dbef", vmin=0)
    if numeric:
        styler = styler.set_properties(subset=numeric, **{"text-align": "right"})
    return styler


def layers_html(report: Report, depth: int | None = None, columns: Sequence[str] | None = None) -> str:
    """The Styler's HTML, or the plain escaped table when jinja2 is missing."""
    try:
        return styled_table(report, depth, columns).to_html()
    except ImportError:
        return export.table_html(report, depth, columns)


def derivations(report: Report, layer: str | None, call: int) -> list[Any]:
    """report.derive(...) when nbcount.explain exists, else the row's own recorded steps."""
    try:
        return [report.derive(layer, call)]
    except (ImportError, AttributeError):
        pass
    if layer is None:
        return []
    from nbcount.derive import Derivation

    row = report.row(layer, call)
    label = row_label(row)
    items = [Derivation(f"parameters of {label}", row.param_steps)]
    items += [Derivation(f"{source} in {label}", steps) for source, steps in row.costs]
    return items


def derivation_html(report: Report, layer: str | None, call: int = 0) -> str:
    """The derivation of one row as escaped HTML with display-math TeX for HTMLMath / MathJax."""
    try:
        items = derivations(report, layer, call)
    except KeyError as error:
        return f"<p>{html.escape(str(error))}</p>"
    if not items:
        return "<p>No derivation available for the totals (nbcount.explain is not installed).</p>"
    parts = []
    for item in items:
        subject = getattr(item, "subject", "")
        if subject:
            parts.append(f"<p class='{_IGNORE_MATH}'><b>{html.escape(str(subject))}</b></p>")
        if hasattr(item, "to_latex"):
            parts.append(f"<div class='nbcount-tex'>$${html.escape(item.to_latex())}$$</div>")
        else:
            parts.append(f"<pre class='{_IGNORE_MATH}'>{html.escape(str(item))}</pre>")
    return "<div class='nbcount-derivation'>" + "".join(parts) + "</div>"


def compare_html(report: Report, conventions: Sequence[str] | None = None) -> str:
    """report.compare(...) as an escaped HTML table, or why it is not available."""
    try:
        frame = report.compare(list(conventions) if conventions else None)
    except (ImportError, AttributeError):
        return "<p>The conventions comparison is not available in this version (nbcount.compare missing).</p>"
    except Exception as error:  # a comparison problem must not take the other tabs down
        return f"<p>Could not compare conventions: {html.escape(f'{type(error).__name__}: {error}')}</p>"
    numbers = {c: "{:,}".format for c in frame.columns if frame[c].dtype.kind in "iu"}
    return frame.to_html(escape=True, index=False, border=0, justify="left", formatters=numbers,
                         classes=["nbcount-compare", *_IGNORE_MATH.split()])


def diagnostics_html(report: Report) -> str:
    """Every diagnostic with its kind, layers and count, escaped."""
    if not report.diagnostics:
        return "<p>No diagnostics: nothing shared, unused or uncounted.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(d.kind)}</td><td style='text-align:left'>{html.escape(d.message)}</td>"
        f"<td style='text-align:left'>{html.escape(', '.join(d.layers))}</td><td>{d.count:,}</td></tr>"
        for d in report.diagnostics)
    return (f"<table class='nbcount-diagnostics {_IGNORE_MATH}'><thead><tr><th>kind</th><th>message</th>"
            f"<th>layers</th><th>count</th></tr></thead><tbody>{rows}</tbody></table>")


def default_focus(report: Report) -> tuple[str | None, int]:
    """The row the Derivation tab opens on: the most expensive row, else the root."""
    if not report.rows:
        return (None, 0)
    best = max(report.rows, key=lambda r: (report.convention.row_value(r), r.params))
    return (best.layer, best.call.call_index)


# the widget ---------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _report_tab_class() -> type:
    widgets = require_widgets()

    class ReportTab(widgets.Tab):  # type: ignore[misc, name-defined]
        """A Tab whose mime bundle also carries the static fallback."""

        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            bundle = super()._repr_mimebundle_(**kwargs) or {}
            fallback = static_bundle(self.nbcount_report, self.nbcount_options, self.nbcount_png)
            return {**fallback, **{k: v for k, v in bundle.items() if k != "text/plain"}}

    return ReportTab


def static_bundle(report: Report, options: ViewOptions, png: bytes | None = None) -> dict[str, Any]:
    """The fallback bundle (text/plain, text/html, image/png, text/markdown) for these options."""
    return export.mimebundle(report, options.depth, options.columns, options.units, options.top, options.log, png)


def _layers_tab(w: Any, report: Report, options: ViewOptions) -> Any:
    max_depth = int(report.table["depth"].max()) if len(report.table) else 0
    start = max_depth if options.depth is None else min(options.depth, max_depth)
    control = w.IntSlider(value=start, min=0, max=max(max_depth, 1), description="depth",
                          continuous_update=False)
    table = w.HTML(layers_html(report, start, options.columns))
    table.add_class("nbcount-layers-table")
    control.observe(lambda change: setattr(table, "value", layers_html(report, change["new"], options.columns)),
                    names="value")
    return w.VBox([control, table])


def _charts_tab(w: Any, report: Report, options: ViewOptions, png: bytes) -> Any:
    from IPython.display import Image

    out = w.Output()
    out.add_class("nbcount-charts")
    out.append_display_data(Image(data=png, format="png"))
    top = w.BoundedIntText(value=options.top, min=1, max=100, description="top N")
    log = w.Checkbox(value=options.log, description="log scale")

    def redraw(_change: Any = None) -> None:
        out.outputs = ()
        out.append_display_data(Image(data=chart_png(report, top=top.value, log=log.value), format="png"))

    top.observe(redraw, names="value")
    log.observe(redraw, names="value")
    return w.VBox([w.HBox([top, log]), out])


def _derivation_tab(w: Any, report: Report, options: ViewOptions) -> Any:
    choices: list[tuple[str, Any]] = [("(totals)", (None, 0))]
    choices += [(f"{row_label(r)} — {r.call.module_type}", (r.layer, r.call.call_index)) for r in report.rows]
    focus = options.derive if options.derive is not None else default_focus(report)
    values = [v for _, v in choices]
    if focus not in values:
        focus = values[1] if len(values) > 1 else values[0]
    picker = w.Dropdown(options=choices, value=focus, description="layer")
    math = w.HTMLMath(derivation_html(report, *focus))
    math.add_class("nbcount-derivation-math")
    picker.observe(lambda change: setattr(math, "value", derivation_html(report, *change["new"])), names="value")
    return w.VBox([picker, math])


def widget(report: Report, options: ViewOptions | None = None, **kwargs: Any) -> Any:
    """The tabbed ipywidgets view of `report` (its mime bundle includes the static fallback)."""
    w = require_widgets()
    options = options or ViewOptions(**kwargs)
    png = chart_png(report, top=options.top, log=options.log)
    summary = w.HTML(export.summary_html(report, options.units) + export.findings_html(report))
    children = [
        summary,
        _layers_tab(w, report, options),
        _charts_tab(w, report, options, png),
        _derivation_tab(w, report, options),
        w.HTML(compare_html(report, options.compare)),
        w.HTML(diagnostics_html(report)),
    ]
    tab = _report_tab_class()(children=children, titles=TAB_TITLES)
    tab.add_class("nbcount-widget")
    tab.nbcount_report, tab.nbcount_options, tab.nbcount_png = report, options, png
    if options.derive is not None:
        tab.selected_index = TAB_TITLES.index("Derivation")
    return tab


def reveal(report: Report, layer: str | None = None, call: int = 0, title: str = "Show the derivation") -> Any:
    """A folded Accordion holding the derivation of one row: an answer revealed on demand."""
    w = require_widgets()
    math = w.HTMLMath(derivation_html(report, layer, call))
    math.add_class("nbcount-derivation-math")
    folded = w.Accordion(children=[math], titles=(title,), selected_index=None)
    folded.add_class("nbcount-reveal")
    return folded


def show(report: Report, options: ViewOptions | None = None, *, static: bool = False) -> None:
    """Display the widget (with its fallback), or only the static bundle when `static` or no ipywidgets."""
    from IPython.display import display

    options = options or ViewOptions()
    try:
        if not static:
            display(widget(report, options))
            return
    except ImportError:
        pass
    display(static_bundle(report, options), raw=True)
