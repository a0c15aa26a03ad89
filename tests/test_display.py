"""The display layer: widget tabs and controls, static fallback, charts, exports, escaping.

Expected numbers are arithmetic over layer dimensions or sum(p.numel()); hostile module names check
that every string reaching HTML, LaTeX, Markdown or matplotlib is escaped.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from typing import Any

import pandas as pd
import pytest
import torch
from torch import nn

import nbcount
from nbcount import charts, display, export

XSS = "<img src=x onerror=alert(1)>"
TEX = "$\\input{x}$"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small() -> Any:
    """Conv(3→8, 3×3) + ReLU on 1×3×8×8: 224 params, 3·9·8·6·6 MACs."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    return model, nbcount.count(model, (1, 3, 8, 8))


@pytest.fixture(scope="module")
def hostile() -> Any:
    """A model whose module names are an HTML injection and a TeX file inclusion."""
    model = nn.Sequential()
    model.add_module(XSS, nn.Linear(4, 4))
    model.add_module(TEX, nn.Linear(4, 2))
    return nbcount.count(model, (1, 4))


def _no_raw(text: str) -> None:
    """No live HTML from a name, and no TeX command from a name inside math ($$ … $$)."""
    assert XSS not in text and "<img src=x" not in text
    for math in text.split("$$")[1::2]:
        assert "\\input{x}" not in math


# static exports --------------------------------------------------------------------------------------
def test_bundle_mimes_and_text(small: Any) -> None:
    model, report = small
    bundle = report._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/png", "text/markdown"}
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_MAGIC)
    params = sum(p.numel() for p in model.parameters())
    assert params == 8 * 3 * 9 + 8
    assert f"parameters (unique): {params:,}" in bundle["text/plain"]
    assert f"MACs: {3 * 9 * 8 * 6 * 6:,}" in bundle["text/plain"]
    assert "under the 'nbcount' convention" in bundle["text/plain"]
    assert "status: complete" in bundle["text/plain"]
    assert "data:image/png;base64," in bundle["text/html"]
    assert bundle["text/html"].count("<tr><td") == 3  # root, conv, relu


def test_hostile_names_escaped_everywhere(hostile: Any) -> None:
    bundle = export.mimebundle(hostile)
    _no_raw(bundle["text/html"])
    assert "&lt;img src=x onerror=alert(1)&gt;" in bundle["text/html"]
    assert "\\<img src=x onerror=alert\\(1\\)\\>" in bundle["text/markdown"]
    assert "\\$\\\\input\\{x\\}\\$" in bundle["text/markdown"]
    latex = hostile.to_latex()
    assert "\\$\\textbackslash{}input\\{x\\}\\$" in latex and "\\textless{}img" in latex
    assert "\\input{x}" not in latex
    view = display.widget(hostile)
    _no_raw(view.fallback()["text/html"])
    for html in (display.layers_html(hostile), display.diagnostics_html(hostile)):
        _no_raw(html)
    for layer in ("", XSS, TEX):
        _no_raw(display.derivation_html(hostile, layer, 0))


def test_csv_json_markdown_latex_roundtrip(small: Any) -> None:
    model, report = small
    frame = pd.read_csv(io.StringIO(report.to_csv()))
    assert list(frame.params) == [0, 8 * 3 * 9 + 8, 0]
    data = json.loads(report.to_json())
    assert data["totals"]["params"] == sum(p.numel() for p in model.parameters())
    assert data["totals"]["macs"] == 3 * 9 * 8 * 6 * 6
    assert data["convention"]["name"] == "nbcount" and data["status"] == "complete"
    assert [row["layer"] for row in data["rows"]] == ["", "0", "1"]
    md = report.to_markdown()
    assert f"| 0 \\(Conv2d\\) | Conv2d | \\(1, 8, 6, 6\\) | {224:,} |" in md  # a bare index names its type
    latex = report.to_latex()
    assert latex.count(r"\\") == 1 + 3 + 1 and "\\begin{tabular}{lllrrrr}" in latex  # header, rows, totals
    assert report.to_frame() is not report.table and report.to_frame().equals(report.table)


def test_csv_to_path(small: Any, tmp_path: Any) -> None:
    _, report = small
    path = tmp_path / "table.csv"
    assert report.to_csv(path) is None
    assert pd.read_csv(path).shape[0] == 3


def test_human_units() -> None:
    assert export.human(11_038_081) == "11,038,081 (11.04 M)"
    assert export.human(11_038_081, "raw") == "11,038,081"
    assert export.human(11_038_081, "si") == "11.04 M"
    assert export.human(999) == "999"
    with pytest.raises(ValueError):
        export.human(1, "bogus")


# charts -------------------------------------------------------------------------------------------------
def test_top_n_folds_others_and_png(monkeypatch: Any) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    sizes = list(range(1, 13))
    model = nn.Sequential(*[nn.Linear(n, 1) for n in sizes])  # Linear(n, 1): n + 1 params, input n each
    model.forward = lambda x: [layer(torch.zeros(1, layer.in_features)) for layer in model][-1]  # type: ignore
    report = nbcount.count(model, (1, 1))
    bars = charts.top_bars(report, "params", top=3)
    assert bars.labels[:3] == ("11 (Linear)", "10 (Linear)", "9 (Linear)")  # never a bare index
    assert bars.values == (13, 12, 11, sum(n + 1 for n in sizes[:9]))
    assert bars.labels[3] == "others (9 bars)"
    by_type = charts.top_bars(report, "params", group="type")
    assert by_type.labels == ("Linear ×12",) and by_type.values == (sum(n + 1 for n in sizes),)
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    for log in (False, True):
        assert charts.chart_png(report, top=3, log=log).startswith(PNG_MAGIC)
    assert plt.get_fignums() == before


def test_chart_survives_hostile_names(hostile: Any) -> None:
    assert charts.chart_png(hostile).startswith(PNG_MAGIC)
    assert TEX in charts.top_bars(hostile, "params").labels


# the widget ---------------------------------------------------------------------------------------------
def test_widget_model_rows_and_tabs(small: Any) -> None:
    model, report = small
    view = display.widget(report)
    data = view.model
    assert [t["title"] for t in data["tabs"]] == list(display.TAB_TITLES)
    assert display.TAB_TITLES[:4] == ("Summary", "Layers", "Charts", "Derivation")
    rows = data["rows"]
    assert rows["parent"] == [-1, 0, 0] and rows["path"] == ["", ".0", ".1"]
    assert rows["params"] == [0, 8 * 3 * 9 + 8, 0]
    assert rows["macs"] == [0, 3 * 9 * 8 * 6 * 6, 0]
    assert rows["incl"] == [[0, 8 * 3 * 9 + 8, 3 * 9 * 8 * 6 * 6, report.total_flops]]  # the root's subtotal
    assert [rows["types"][i] for i in rows["type"]] == ["Sequential", "Conv2d", "ReLU"]
    summary = data["summary"]
    assert summary["totals"]["params"] == sum(p.numel() for p in model.parameters())
    assert summary["convention"]["name"] == "nbcount" and summary["status"] == "complete"
    conventions = next(t for t in data["tabs"] if t["title"] == "Conventions")
    assert conventions["lazy"] and conventions["payload"] is None  # built when first opened
    focus = data["derivations"][str(data["focus"])]
    assert data["focus"] == 1 and focus["label"] == "0 (Conv2d)"  # the most expensive leaf
    assert "\\begin{aligned}" in focus["latex"] and any(step[3] == "224" for s in focus["sections"]
                                                        for step in s["steps"])


def test_widget_answers_derivation_and_lazy_tab_requests(small: Any, monkeypatch: Any) -> None:
    _, report = small
    view = display.widget(report)
    sent: list[Any] = []
    monkeypatch.setattr(view, "send", lambda content, buffers=None: sent.append(content))
    view._answer(view, {"type": "derive", "row": 2}, [])
    view._answer(view, {"type": "derive", "row": -1}, [])
    view._answer(view, {"type": "tab", "title": "Conventions"}, [])
    view._answer(view, {"type": "tab", "title": "No such tab"}, [])
    relu, totals, conventions, missing = sent
    assert relu["payload"]["label"] == "1 (ReLU)" and relu["payload"]["row"] == 2
    assert totals["payload"]["row"] == -1 and totals["payload"]["sections"]
    matrix = conventions["payload"]
    assert matrix["kind"] == "conventions" and [c["name"] for c in matrix["columns"]][:2] == ["nbcount", "torch"]
    conv = next(r for r in matrix["rows"] if r["type"] == "Conv2d")
    torch_col = [c["name"] for c in matrix["columns"]].index("torch")
    assert conv["values"][torch_col] == 2 * 3 * 9 * 8 * 6 * 6  # FlopCounterMode's rule: 2 per MAC, no bias
    assert missing["payload"]["kind"] == "text"


def test_display_publishes_fallback_then_widget(small: Any) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()  # display() needs a shell to publish to
    _, report = small
    view = display.widget(report)
    with capture_output() as captured:
        view._ipython_display_()
    fallback, live = captured.outputs
    assert set(fallback.data) == {"text/plain", "text/html"}
    assert f"nbcount-fallback nbcount-key-{view.key}" in fallback.data["text/html"]
    assert "data:image/png;base64," in fallback.data["text/html"] and f"{224:,}" in fallback.data["text/plain"]
    assert set(live.data) == {"application/vnd.jupyter.widget-view+json", "text/plain"}
    assert live.data["application/vnd.jupyter.widget-view+json"]["model_id"] == view.model_id


def test_registered_tab_appears_in_the_widget(small: Any) -> None:
    from nbcount import tabs

    _, report = small

    @tabs.register_tab("Test rows")
    def count_rows(rep: Any, options: Any) -> dict[str, Any]:
        return {"kind": "text", "text": f"{len(rep.rows)} rows"}

    try:
        data = display.widget(report).model
        assert data["tabs"][-1] == {"title": "Test rows", "lazy": False, "payload": {"kind": "text", "text": "3 rows"}}
        with pytest.raises(ValueError, match="registered twice"):
            tabs.register_tab("Test rows")(count_rows)
    finally:
        tabs._TABS.pop("Test rows")


def test_front_end_ships_in_the_package() -> None:
    from nbcount import widget

    js, css = widget.asset("widget.js"), widget.asset("widget.css")
    assert "export default { render }" in js and "http" not in js.replace("http://www.w3.org/2000/svg", "")
    assert "innerHTML" not in js  # names are written as text, never as markup
    assert "--jp-layout-color1" in css and "--jp-ui-font-color1" in css  # follows JupyterLab's (dark) theme


def test_shared_and_unused_findings() -> None:
    from nbcount import zoo

    report = nbcount.count(zoo.unused_conv(), (1, 1, 8, 8))
    findings = display.widget(report).model["summary"]["findings"]
    kinds = [f[0] for f in findings]
    assert "unused module" in kinds and "shared parameters" in kinds
    assert any("conv2" in f[1] and "never called" in f[1] for f in findings)
    assert "never called" in display.diagnostics_html(report)


def test_reveal_is_folded(small: Any) -> None:
    _, report = small
    folded = display.reveal(report, "0", title="answer")
    assert folded.selected_index is None and folded.titles == ("answer",)
    assert "\\begin{aligned}" in folded.children[0].value


def test_chart_method(small: Any) -> None:
    _, report = small
    chart = report.chart("flops", log=True)
    assert chart._repr_mimebundle_()["image/png"] and chart.figure().axes
    with pytest.raises(ValueError, match="unknown metric"):
        report.chart("bogus")


def test_without_anywidget_falls_back(small: Any, monkeypatch: Any) -> None:
    from nbcount import widget

    _, report = small
    monkeypatch.setitem(sys.modules, "anywidget", None)
    widget.widget_class.cache_clear()
    try:
        with pytest.raises(ImportError, match="pip install anywidget"):
            display.widget(report)
        from IPython.utils.capture import capture_output

        with capture_output() as captured:
            display.show(report)
        assert set(captured.outputs[0].data) == {"text/plain", "text/html", "image/png", "text/markdown"}
    finally:
        widget.widget_class.cache_clear()
