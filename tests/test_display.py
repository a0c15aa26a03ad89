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
    tab = display.widget(hostile)
    for html in (tab.children[0].value, tab.children[1].children[1].value, tab.children[5].value):
        _no_raw(html)
    picker, math = tab.children[3].children
    for value in [v for _, v in picker.options]:
        picker.value = value
        _no_raw(math.value)


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
    assert f"| 0 | Conv2d | \\(1, 8, 6, 6\\) | {224:,} |" in md
    latex = report.to_latex()
    assert latex.count(r"\\") == 1 + 3 and "\\begin{tabular}{lllrrrr}" in latex
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
    assert bars.labels[:3] == ("11", "10", "9")
    assert bars.values == (13, 12, 11, sum(n + 1 for n in sizes[:9]))
    assert bars.labels[3] == "others (9 layers)"
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    for log in (False, True):
        assert charts.chart_png(report, top=3, log=log).startswith(PNG_MAGIC)
    assert plt.get_fignums() == before


def test_chart_survives_hostile_names(hostile: Any) -> None:
    assert charts.chart_png(hostile).startswith(PNG_MAGIC)
    assert TEX in charts.top_bars(hostile, "params").labels


# the widget ---------------------------------------------------------------------------------------------
def test_widget_tabs_and_summary(small: Any) -> None:
    model, report = small
    tab = display.widget(report)
    assert tab.titles == display.TAB_TITLES
    summary = tab.children[0].value
    assert f"{sum(p.numel() for p in model.parameters()):,}" in summary
    assert "FLOPs under the &#x27;nbcount&#x27; convention" in summary and "complete" in summary
    bundle = tab._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/png", "text/markdown",
                           "application/vnd.jupyter.widget-view+json"}


def test_layers_depth_control(small: Any) -> None:
    _, report = small
    slider, table = display.widget(report).children[1].children
    assert slider.value == 1 and table.value.count("<tr>") == 1 + 3
    assert "linear-gradient" in table.value and f">{224:,}<" in table.value
    slider.value = 0
    assert table.value.count("<tr>") == 1 + 1


def test_charts_controls_redraw(small: Any) -> None:
    _, report = small
    controls, out = display.widget(report).children[2].children
    top, log = controls.children
    first = out.outputs[0]["data"]["image/png"]
    log.value = True
    assert len(out.outputs) == 1 and out.outputs[0]["data"]["image/png"] != first


def test_derivation_picker_typesets_tex(small: Any) -> None:
    _, report = small
    tab = display.widget(report, derive=("0", 0))
    assert tab.selected_index == 3
    picker, math = tab.children[3].children
    assert "$$" in math.value and "\\begin{aligned}" in math.value
    assert "224" in math.value
    tex = math.value.split("$$")[1]
    assert tex.count("{") == tex.count("}")
    picker.value = ("1", 0)
    assert "0" in math.value and math.value != display.derivation_html(report, "0", 0)


def test_reveal_is_folded(small: Any) -> None:
    _, report = small
    folded = display.reveal(report, "0", title="answer")
    assert folded.selected_index is None and folded.titles == ("answer",)
    assert "\\begin{aligned}" in folded.children[0].value


def test_shared_and_unused_findings() -> None:
    from nbcount import zoo

    report = nbcount.count(zoo.unused_conv(), (1, 1, 8, 8))
    tab = display.widget(report)
    summary, diagnostics = tab.children[0].value, tab.children[5].value
    assert "unused_module" in summary and "conv2" in summary and "shared_params" in summary
    assert "conv2" in diagnostics and "never called" in diagnostics


def test_without_ipywidgets_falls_back(small: Any, monkeypatch: Any) -> None:
    _, report = small
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    display._report_tab_class.cache_clear()
    try:
        with pytest.raises(ImportError, match="pip install ipywidgets"):
            display.widget(report)
        from IPython.utils.capture import capture_output

        with capture_output() as captured:
            display.show(report)
        assert set(captured.outputs[0].data) == {"text/plain", "text/html", "image/png", "text/markdown"}
    finally:
        display._report_tab_class.cache_clear()
