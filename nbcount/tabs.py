"""The widget's tabs: each tab is one function of a Report, registered under its title.

A tab function returns a JSON payload whose ``kind`` the front end knows how to draw: ``summary``,
``layers``, ``charts``, ``derivation`` and ``conventions`` (nbcount's own), or the generic ``table``
(any :class:`nbcount.table.Table`, via :func:`table_payload`) and ``text``. A new tab is one function::

    @register_tab("Roofline", lazy=True)
    def roofline_tab(report, options):
        return table_payload(roofline_table(report))

``lazy`` tabs are built when first opened (the front end asks the kernel), so an expensive tab costs
nothing until someone looks at it. A lazy tab's own controls (the Roofline tab's hardware) ask again with
*choices*: the ViewOptions fields in :data:`TAB_CHOICES`, applied by :func:`chosen` before the tab is rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from nbcount.table import Column, Table

if TYPE_CHECKING:
    from nbcount.report import Report

TabBuilder = Callable[["Report", "ViewOptions"], dict[str, Any]]


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
    tab: str | None = None  # the tab to open first (None: Summary, or Derivation with `derive`)
    hardware: str = "H100-SXM"  # the Roofline tab's hardware (a preset of nbcount.hardware())
    hw_dtype: str | None = None  # the peak every matrix op runs at there (None: each op's own dtype)


#: ViewOptions fields a tab's controls may change from the front end (strings; '' means None).
TAB_CHOICES = ("hardware", "hw_dtype")


def chosen(options: ViewOptions, choices: Any) -> ViewOptions:
    """`options` with the front end's choices applied: only TAB_CHOICES with string values, the rest ignored."""
    if not isinstance(choices, dict):
        return options
    picked: dict[str, Any] = {key: value or None for key, value in choices.items()
                              if key in TAB_CHOICES and isinstance(value, str)}
    if picked.get("hardware", "") is None:
        del picked["hardware"]
    return replace(options, **picked)


@dataclass(frozen=True)
class Tab:
    """A registered tab: its title, the function that builds its payload, and whether it is built on demand."""

    title: str
    build: TabBuilder
    lazy: bool = False


_TABS: dict[str, Tab] = {}


def register_tab(title: str, *, lazy: bool = False) -> Callable[[TabBuilder], TabBuilder]:
    """Register `fn(report, options) -> payload` as the tab `title` (titles are unique; order of registration)."""
    def register(fn: TabBuilder) -> TabBuilder:
        if title in _TABS:
            raise ValueError(f"tab {title!r} registered twice")
        _TABS[title] = Tab(title, fn, lazy)
        return fn
    return register


def tabs() -> list[Tab]:
    """The registered tabs in order."""
    return list(_TABS.values())


def table_payload(table: Table) -> dict[str, Any]:
    """A generic table tab: header titles, numeric flags, text cells, label depths, totals row and note."""
    return {"kind": "table", "columns": [{"title": c.title, "numeric": c.numeric, "help": c.help}
                                         for c in table.columns],
            "rows": table.text_rows(), "depth": list(table.depth), "footer": table.footer_text(), "note": table.note}


def build(report: Report, options: ViewOptions, tab: Tab) -> dict[str, Any]:
    """A tab's payload, or a text payload saying why it could not be built (one tab never breaks the others)."""
    try:
        return tab.build(report, options)
    except Exception as error:
        return {"kind": "text", "text": f"The {tab.title} tab could not be built: {type(error).__name__}: {error}"}


# nbcount's own tabs ---------------------------------------------------------------------------------------
@register_tab("Summary")
def summary_tab(report: Report, options: ViewOptions) -> dict[str, Any]:
    """Totals with units, the convention, complete / lower bound, findings (drawn from the shared model)."""
    return {"kind": "summary"}


@register_tab("Layers")
def layers_tab(report: Report, options: ViewOptions) -> dict[str, Any]:
    """The layer tree with subtotals (drawn from the shared rows)."""
    return {"kind": "layers"}


@register_tab("Charts")
def charts_tab(report: Report, options: ViewOptions) -> dict[str, Any]:
    """Bar charts of parameters, FLOPs and activation memory (drawn from the shared rows)."""
    return {"kind": "charts", "top": options.top, "log": options.log}


@register_tab("Derivation")
def derivation_tab(report: Report, options: ViewOptions) -> dict[str, Any]:
    """Worked derivations, fetched from the kernel row by row."""
    return {"kind": "derivation"}


@register_tab("Conventions", lazy=True)
def conventions_tab(report: Report, options: ViewOptions) -> dict[str, Any]:
    """Every peer's count per layer, folded, with the reasons they differ."""
    from nbcount.matrix import conventions_payload

    return conventions_payload(report, options.compare)


@register_tab("Roofline", lazy=True)
def roofline_tab(report: Report, options: ViewOptions) -> dict[str, Any]:
    """Every layer on a hardware's roofline (compute- or memory-bound, its time); a decoder's serving view."""
    from nbcount.roofline_tab import roofline_payload

    return roofline_payload(report, options.hardware, options.hw_dtype)


DIAGNOSTIC_COLUMNS = (Column("kind", "finding"), Column("message", "what it means"),
                      Column("layers", "layers"), Column("count", "count", kind="count"))


@register_tab("Diagnostics")
def diagnostics_tab(report: Report, options: ViewOptions) -> dict[str, Any]:
    """Every diagnostic: what it is, in words, the layers it names and how many."""
    from nbcount.export import KIND_TITLES

    if not report.diagnostics:
        return {"kind": "text", "text": "No diagnostics: nothing shared, unused or uncounted, and no notes."}
    rows = tuple((KIND_TITLES.get(d.kind, d.kind.replace("_", " ")), d.message, ", ".join(d.layers) or "—", d.count)
                 for d in report.diagnostics)
    return table_payload(Table(DIAGNOSTIC_COLUMNS, rows, name="nbcount-diagnostics"))
