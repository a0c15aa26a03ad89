"""Showing a Report in a notebook: the interactive widget (nbcount.widget), the static fallback, and the
small static pieces other views reuse (layer table, derivation and diagnostics as escaped HTML).

Nothing here counts: every number comes from the Report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nbcount import escape, export, formats, tabs
from nbcount.table import layer_table
from nbcount.tabs import ViewOptions

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler

    from nbcount.report import Report

__all__ = ["ViewOptions", "derivation_html", "diagnostics_html", "layers_html", "reveal", "show", "styled_table",
           "widget"]
TAB_TITLES = tuple(t.title for t in tabs.tabs())


def require_widgets() -> Any:
    """Import ipywidgets (for reveal()), or say how to get it."""
    from nbcount.widget import require

    return require("ipywidgets", "ipywidgets>=8")


# static pieces, each a pure function of the Report -----------------------------------------------------
def styled_table(report: Report, depth: int | None = None, columns: Sequence[str] | None = None) -> Styler:
    """The per-layer table as a pandas Styler: indented by depth, thousands separators, inline bars."""
    return formats.to_styler(layer_table(report, depth, columns))


def layers_html(report: Report, depth: int | None = None, columns: Sequence[str] | None = None) -> str:
    """The per-layer table as escaped HTML."""
    return formats.to_html(layer_table(report, depth, columns))


def derivations(report: Report, layer: str | None, call: int) -> list[Any]:
    """The worked derivation of one row (or of the totals when `layer` is None), as a one-item list."""
    return [report.derive(layer, call)]


def derivation_html(report: Report, layer: str | None, call: int = 0) -> str:
    """The derivation of one row as escaped HTML with display-math TeX for MathJax / HTMLMath."""
    try:
        items = derivations(report, layer, call)
    except KeyError as error:
        return f"<p>{escape.html(error)}</p>"
    parts = []
    for item in items:
        subject = getattr(item, "subject", "")
        if subject:
            parts.append(f"<p class='{escape.NO_MATH}'><b>{escape.html(subject)}</b></p>")
        parts.append(f"<div class='nbcount-tex'>$${escape.html(item.to_latex())}$$</div>")
    return "<div class='nbcount-derivation'>" + "".join(parts) + "</div>"


def diagnostics_html(report: Report) -> str:
    """Every diagnostic with its kind (in words), message, layers and count, escaped."""
    if not report.diagnostics:
        return "<p>No diagnostics: nothing shared, unused or uncounted.</p>"
    payload = tabs.diagnostics_tab(report, ViewOptions())
    head = "".join(f"<th>{escape.html(c['title'])}</th>" for c in payload["columns"])
    rows = "".join("<tr>" + "".join(f"<td style='text-align:left'>{escape.html(v)}</td>" for v in cells) + "</tr>"
                   for cells in payload["rows"])
    return (f"<table class='nbcount-diagnostics {escape.NO_MATH}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def default_focus(report: Report) -> tuple[str | None, int]:
    """The row the Derivation tab opens on: the most expensive row, else the totals."""
    from nbcount.widget import focus_row

    index = focus_row(report, ViewOptions())
    return (None, 0) if index is None else (report.rows[index].layer, report.rows[index].call.call_index)


# the interactive view ----------------------------------------------------------------------------------
def widget(report: Report, options: ViewOptions | None = None, **kwargs: Any) -> Any:
    """The interactive view of `report` (an anywidget; nbcount.widget); displaying it also shows the fallback."""
    from nbcount.widget import widget as make

    return make(report, options or ViewOptions(**kwargs))


def static_bundle(report: Report, options: ViewOptions, png: bytes | None = None) -> dict[str, Any]:
    """The fallback bundle (text/plain, text/html, image/png, text/markdown) for these options."""
    return export.mimebundle(report, options.depth, options.columns, options.units, options.top, options.log, png)


def reveal(report: Report, layer: str | None = None, call: int = 0, title: str = "Show the derivation") -> Any:
    """A folded Accordion holding the derivation of one row: an answer revealed on demand."""
    w = require_widgets()
    math = w.HTMLMath(derivation_html(report, layer, call))
    math.add_class("nbcount-derivation-math")
    folded = w.Accordion(children=[math], titles=(title,), selected_index=None)
    folded.add_class("nbcount-reveal")
    return folded


def show(report: Report, options: ViewOptions | None = None, *, static: bool = False) -> None:
    """Display the widget (with its fallback before it), or only the static bundle when `static` or no widgets."""
    from IPython.display import display

    options = options or ViewOptions()
    if not static:
        try:
            view = widget(report, options)
        except ImportError:
            pass
        else:
            display(view)
            return
    display(static_bundle(report, options), raw=True)


