"""The interactive view: an anywidget whose front end (``static/widget/``, shipped in the package) draws
the Report's compact model, and answers the front end's requests for derivations and lazy tabs.

Displaying it publishes two outputs: the static fallback (escaped totals, the layer table, a chart
image) and then the widget. A live front end hides the fallback once the widget is drawn; nbconvert,
GitHub and nbviewer without the widget's JavaScript show the fallback, with or without saved widget state.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbcount import tabs
from nbcount.subtotals import figures
from nbcount.tabs import ViewOptions
from nbcount.widget_data import FORMAT, derivation_payload, rows_model, summary_model

if TYPE_CHECKING:
    from nbcount.report import Report

STATIC = Path(__file__).resolve().parent / "static" / "widget"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"


@cache
def asset(name: str) -> str:
    """The front end's JavaScript ('widget.js': the parts in static/widget/*.js joined in name order into one ES
    module) or CSS ('widget.css'), with comment lines and indentation dropped: it is saved with each widget."""
    suffix = Path(name).suffix
    parts = sorted(STATIC.glob(f"*{suffix}"))
    text = "\n".join(part.read_text(encoding="utf-8") for part in parts)
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith(("//", "/*", "*")))


def focus_row(report: Report, options: ViewOptions, flops: Sequence[int] | None = None) -> int | None:
    """The row the Derivation tab opens on: the one asked for, else the most expensive leaf (None: the totals)."""
    if options.derive is not None:
        layer, call = options.derive
        if layer is None:
            return None
        return report.rows.index(report.row(layer, call))
    if not report.rows:
        return None
    own = list(flops) if flops is not None else [report.convention.row_value(r) for r in report.rows]
    leaves = [k for k, r in enumerate(report.rows) if r.call.is_leaf] or list(range(len(report.rows)))
    return max(leaves, key=lambda k: (own[k], report.rows[k].params))


def first_tab(options: ViewOptions) -> str:
    """The tab shown first: the one asked for, the Derivation tab with --derive, else Summary."""
    if options.tab:
        return options.tab
    return "Derivation" if options.derive is not None else "Summary"


def widget_model(report: Report, options: ViewOptions, key: str = "") -> dict[str, Any]:
    """Everything the front end draws before any request: summary, rows, eager tabs, the focus derivation."""
    sums = figures(report)
    focus = focus_row(report, options, sums.headline)
    derivations = {}
    if options.derive is not None or focus is not None:  # one row's derivation: kept in saved notebooks
        derivations[str(-1 if focus is None else focus)] = derivation_payload(report, focus)
    return {
        "format": FORMAT, "key": key, "summary": summary_model(report, options.units, sums),
        "rows": rows_model(report, sums),
        "tabs": [{"title": t.title, "lazy": t.lazy, "payload": None if t.lazy else tabs.build(report, options, t)}
                 for t in tabs.tabs()],
        "open": first_tab(options), "depth": options.depth, "focus": -1 if focus is None else focus,
        "derivations": derivations,
    }


def require(module: str, package: str | None = None) -> Any:
    """Import a front-end package (anywidget, ipywidgets), or say how to get it and what works without it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:  # pragma: no cover - exercised only without the package
        raise ImportError(f"nbcount's interactive view needs {module} (`pip install {package or module}`). Without "
                          "it, display the Report itself for a static table, or use report.to_markdown() / "
                          "report.table.") from error


@lru_cache(maxsize=1)
def widget_class() -> type:
    """The anywidget class (made on first use, so importing nbcount never imports the widget stack)."""
    anywidget = require("anywidget")
    import traitlets

    class ReportWidget(anywidget.AnyWidget):  # type: ignore[misc, name-defined]
        """nbcount's report view: tabs drawn in the browser from `model`; derivations on request."""

        _esm = asset("widget.js")
        _css = asset("widget.css")
        model = traitlets.Dict().tag(sync=True)

        def __init__(self, report: Report, options: ViewOptions, **kwargs: Any) -> None:
            key = secrets.token_hex(6)
            super().__init__(model=widget_model(report, options, key), **kwargs)
            self.report, self.options, self.key = report, options, key
            self.on_msg(self._answer)

        def _answer(self, _widget: Any, content: Any, _buffers: Any) -> None:
            """Reply to the front end: a derivation of one row, or a lazy tab's payload."""
            if not isinstance(content, dict):
                return
            if content.get("type") == "derive":
                row = content.get("row")
                index = None if row in (None, -1) else int(row)
                self.send({"type": "derivation", "payload": derivation_payload(self.report, index)})
            elif content.get("type") == "tab":
                found = [t for t in tabs.tabs() if t.title == content.get("title")]
                choices = content.get("choices") if isinstance(content.get("choices"), dict) else {}
                options = tabs.chosen(self.options, choices)
                payload = tabs.build(self.report, options, found[0]) if found else {
                    "kind": "text", "text": f"no tab {content.get('title')!r}"}
                self.send({"type": "tab", "title": content.get("title"), "choices": choices, "payload": payload})

        def fallback(self) -> dict[str, Any]:
            """The static bundle published before the widget (text/html marked for the front end to hide)."""
            return static_fallback(self.report, self.options, self.key)

        def _ipython_display_(self, **kwargs: Any) -> None:
            from IPython.display import publish_display_data

            publish_display_data(self.fallback())
            publish_display_data(self._repr_mimebundle_())

        def _repr_mimebundle_(self, **kwargs: Any) -> Any:
            bundle = super()._repr_mimebundle_(**kwargs)
            data = bundle[0] if isinstance(bundle, tuple) else bundle
            return {VIEW_MIME: data[VIEW_MIME], "text/plain": f"<nbcount widget: {self.report!r}>"}

    return ReportWidget


def static_fallback(report: Report, options: ViewOptions, key: str = "") -> dict[str, Any]:
    """text/html (totals, findings, table, chart) and text/plain of a report, for frontends without the widget."""
    from nbcount import export
    from nbcount.charts import chart_png

    png = chart_png(report, top=options.top, log=options.log)
    html = export.report_html(report, options.depth, options.columns, options.units, png)
    marker = f"nbcount-fallback nbcount-key-{re.sub(r'[^0-9a-f]', '', key)}" if key else "nbcount-fallback"
    html = html.replace("<div class='nbcount-report'>", f"<div class='nbcount-report {marker}'>", 1)
    text = export.to_text(report, options.depth, options.columns, options.units, max_rows=export.STATIC_ROWS)
    return {"text/plain": text, "text/html": html}


def widget(report: Report, options: ViewOptions | None = None, **kwargs: Any) -> Any:
    """The interactive view of `report` (an anywidget); display it, or return it as a cell's last value."""
    return widget_class()(report, options or ViewOptions(**kwargs))
