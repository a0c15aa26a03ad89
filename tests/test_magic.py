"""%netcount / %%netcount driven in-process (IPython's test shell): every option and every UsageError.

Expected numbers are arithmetic over the layers' dimensions or sum(p.numel()), never nbcount output.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from IPython.core.error import UsageError
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output
from torch import nn

VIEW = "application/vnd.jupyter.widget-view+json"
TITLES = ["Summary", "Layers", "Charts", "Derivation", "Conventions", "Roofline", "Diagnostics"]
FALLBACK = {"text/plain", "text/html", "image/png", "text/markdown"}


@pytest.fixture(scope="module")
def ip() -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.terminal.interactiveshell import TerminalInteractiveShell

    # another test may have made a plain InteractiveShell singleton (IPython.display does); start_ipython
    # needs the terminal one, so drop the plain instance first
    if InteractiveShell.initialized() and not isinstance(InteractiveShell.instance(), TerminalInteractiveShell):
        InteractiveShell.clear_instance()
    shell = start_ipython()
    shell.run_line_magic("load_ext", "nbcount")
    shell.run_cell("import torch\nfrom torch import nn")
    return shell


@pytest.fixture
def run(ip: Any) -> Any:
    """Run %netcount (cell=None) or %%netcount with default settings; return the captured outputs."""
    settings = next(c for c in ip.configurables if type(c).__name__ == "NetCount")
    for name in settings.trait_names(config=True):
        setattr(settings, name, settings.trait_defaults(name))

    def go(line: str, cell: str | None = None) -> Any:
        with capture_output() as captured:
            if cell is None:
                ip.run_line_magic("netcount", line)
            else:
                ip.run_cell_magic("netcount", line, cell)
        return captured

    return go


def tab_of(captured: Any) -> Any:
    """The widget displayed by the magic (looked up by its model id)."""
    from ipywidgets.widgets.widget import _instances

    views = [o.data[VIEW] for o in captured.outputs if VIEW in o.data]
    assert len(views) == 1
    return _instances[views[0]["model_id"]]


def conv_params(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_out * c_in * k * k + (c_out if bias else 0)


# which model a cell counts -----------------------------------------------------------------------------
def test_cell_counts_module_assigned_last(run: Any, ip: Any) -> None:
    run("-i 1,3,8,8 -o r -q", "net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())\nsize = 8")
    r = ip.user_ns["r"]
    assert r.total_params == conv_params(3, 8, 3) == sum(p.numel() for p in ip.user_ns["net"].parameters())
    assert r.total_macs == 3 * 3 * 3 * 8 * 6 * 6


def test_cell_last_expression_wins(run: Any, ip: Any) -> None:
    run("-i 1,4 -o r -q", "a = nn.Linear(4, 2)\nnn.Linear(4, 3)")
    assert ip.user_ns["r"].total_params == 4 * 3 + 3


def test_cell_later_assignment_wins(run: Any, ip: Any) -> None:
    run("-i 1,4 -o r -q", "a = nn.Linear(4, 2)\nb = nn.Linear(4, 5)\nn = 3")
    assert ip.user_ns["r"].total_params == 4 * 5 + 5


def test_cell_non_module_last_expression_falls_back(run: Any, ip: Any) -> None:
    run("-i 1,4 -o r -q", "b = nn.Linear(4, 6)\n1 + 1")
    assert ip.user_ns["r"].total_params == 4 * 6 + 6


def test_cell_ambiguous_assignment_lists_candidates(run: Any) -> None:
    with pytest.raises(UsageError, match=r"enc.*dec.*-m NAME"):
        run("-i 1,4", "enc, dec = nn.Linear(4, 2), nn.Linear(2, 4)")


def test_cell_ambiguous_without_assignment(run: Any) -> None:
    cell = "for i in range(2):\n    globals()[f'loop_{i}'] = nn.Linear(2, 2)"
    with pytest.raises(UsageError, match=r"loop_0.*loop_1"):
        run("-i 1,2", cell)


def test_cell_single_module_bound_indirectly(run: Any, ip: Any) -> None:
    run("-i 1,2 -o r -q", "globals()['indirect'] = nn.Linear(2, 7)")
    assert ip.user_ns["r"].total_params == 2 * 7 + 7


def test_cell_without_module_lists_namespace(run: Any, ip: Any) -> None:
    ip.user_ns["existing_net"] = nn.Linear(1, 1)
    with pytest.raises(UsageError, match=r"no nn.Module.*existing_net"):
        run("-i 1,4", "x = 3")


def test_cell_pick_with_m(run: Any, ip: Any) -> None:
    run("-m first -i 1,4 -o r -q", "first = nn.Linear(4, 2)\nsecond = nn.Linear(3, 5)")
    assert ip.user_ns["r"].total_params == 4 * 2 + 2


def test_cell_positional_name_is_m(run: Any, ip: Any) -> None:
    run("first -i 1,4 -o r -q", "first = nn.Linear(4, 9)\nsecond = nn.Linear(3, 5)")
    assert ip.user_ns["r"].total_params == 4 * 9 + 9


@pytest.mark.parametrize("cell, message", [("y = nn.Linear(1, 1)", "'missing' is not defined"),
                                           ("missing = 5", "is a int")])
def test_cell_m_errors(run: Any, ip: Any, cell: str, message: str) -> None:
    ip.user_ns.pop("missing", None)
    with pytest.raises(UsageError, match=message):
        run("-m missing -i 1,1", cell)


def test_cell_errors_propagate(run: Any) -> None:
    with pytest.raises(ZeroDivisionError):
        run("-i 1,1", "net = nn.Linear(1, 1)\n1 / 0")


# line mode -----------------------------------------------------------------------------------------
def test_line_counts_variable_and_expression(run: Any, ip: Any) -> None:
    ip.user_ns["holder"] = nn.Sequential(nn.Linear(5, 3))
    run("holder -i 1,5 -o r1 -q")
    run("holder[0] -i 1,5 -o r2 -q")
    assert ip.user_ns["r1"].total_params == ip.user_ns["r2"].total_params == 5 * 3 + 3


@pytest.mark.parametrize("line, message", [
    ("-i 1,4", "name the model"),
    ("undefined_thing -i 1,4", "is not defined"),
    ("not_a_model -i 1,4", "not a torch.nn.Module"),
    ("-m x -i 1,4", "-m NAME is for %%netcount"),
])
def test_line_errors(run: Any, ip: Any, line: str, message: str) -> None:
    ip.user_ns["not_a_model"] = [1, 2]
    with pytest.raises(UsageError, match=message):
        run(line)


# inputs, dtype, convention -----------------------------------------------------------------------------
def test_repeated_input_size_feeds_several_inputs(run: Any, ip: Any) -> None:
    run("-i 1,3 -i 1,4 -o r -q", "bil = nn.Bilinear(3, 4, 5)")
    r = ip.user_ns["r"]
    assert r.total_params == 5 * 3 * 4 + 5
    assert [tuple(s) for s in r.table.loc[0, "input_shape"]] == [(1, 3), (1, 4)]


@pytest.mark.parametrize("text", ["1x3", "(1, 3)", "[1,3]"])
def test_input_size_spellings(run: Any, ip: Any, text: str) -> None:
    ip.user_ns["lin3"] = nn.Linear(3, 2)
    run(f"lin3 -i '{text}' -o r -q")
    assert tuple(ip.user_ns["r"].table.loc[0, "input_shape"]) == (1, 3)


def test_inputs_tensor_tuple_and_dict(run: Any, ip: Any) -> None:
    ip.run_cell("class KW(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                "        self.l = nn.Linear(4, 2)\n    def forward(self, *, x):\n        return self.l(x)")
    ip.run_cell("t = torch.randn(2, 4); bil2 = nn.Bilinear(3, 4, 5); kw = KW()")
    run("kw --inputs \"{'x': t}\" -o r1 -q")
    run("bil2 --inputs '(torch.randn(1, 3), torch.randn(1, 4))' -o r2 -q")
    run("--inputs t -o r3 -q", "lin = nn.Linear(4, 6)")
    assert ip.user_ns["r1"].total_macs == 2 * 4 * 2
    assert ip.user_ns["r2"].total_params == 5 * 3 * 4 + 5
    assert ip.user_ns["r3"].total_macs == 2 * 4 * 6


def test_dtype_makes_integer_inputs(run: Any, ip: Any) -> None:
    ip.user_ns["emb"] = nn.Embedding(10, 4)
    run("emb -i 2,3 --dtype long -o r1 -q")
    run("emb -i 2,3 --dtype torch.int64 -o r2 -q")
    for name in ("r1", "r2"):
        r = ip.user_ns[name]
        assert tuple(r.table.loc[0, "output_shape"]) == (2, 3, 4)
        assert r.table.loc[0, "output_bytes"] == 2 * 3 * 4 * 4


def test_dtype_changes_bytes(run: Any, ip: Any) -> None:
    ip.user_ns["act"] = nn.ReLU()
    run("act -i 2,5 --dtype float64 -o r -q")
    assert ip.user_ns["r"].table.loc[0, "output_bytes"] == 2 * 5 * 8


def test_convention_option_and_config(run: Any, ip: Any) -> None:
    ip.user_ns["lin84"] = nn.Linear(8, 4)
    run("lin84 -i 1,8 -c macs -o r1 -q")
    assert ip.user_ns["r1"].convention.name == "macs"
    assert ip.user_ns["r1"].headline.value == 8 * 4 and ip.user_ns["r1"].headline.unit == "MACs"
    ip.run_line_magic("config", "NetCount.convention = 'macs'")
    run("lin84 -i 1,8 -o r2 -q")
    assert ip.user_ns["r2"].convention.name == "macs"
    run("lin84 --convention nbcount -i 1,8 -o r3 -q")
    assert ip.user_ns["r3"].total_flops == 2 * 8 * 4 + 4


@pytest.mark.parametrize("line, message", [
    ("lin84 -i 1,a", "integers"),
    ("lin84 -i 0,8", "positive"),
    ("lin84", "say what to feed"),
    ("lin84 -i 1,8 --inputs t", "not both"),
    ("lin84 -i 1,8 --dtype complexity", "not a torch dtype"),
    ("lin84 --inputs t --dtype float16", "keep their own dtype"),
    ("lin84 --inputs 'nope + 1'", "--inputs 'nope \\+ 1' failed: NameError"),
    ("lin84 -i 1,8 -c nonsense", "choose from .*nbcount.*macs"),
    ("lin84 -i 1,8 --compare nbcount,nonsense", "--compare: unknown 'nonsense'"),
    ("lin84 -i 1,8 --columns layer,bogus", "--columns: unknown 'bogus'"),
    ("lin84 -i 1,8 --depth -1", "--depth must be 0 or more"),
    ("lin84 -i 1,8 --depth two", "invalid int value"),
    ("lin84 -i 1,8 -o 1bad", "not a valid Python variable name"),
    ("lin84 -i 1,8 -o class", "not a valid Python variable name"),
    ("lin84 -i 1,8 --device warp9", "--device 'warp9'"),
    ("lin84 -i 1,8 --derive nowhere", "no such layer call; layers: .*Linear"),
    ("lin84 -i 1,8 --frobnicate", "unrecognized arguments"),
    ("lin84 -i 1,5", "forward pass failed"),
])
def test_usage_errors(run: Any, ip: Any, line: str, message: str) -> None:
    ip.user_ns["lin84"] = nn.Linear(8, 4)
    ip.user_ns["t"] = torch.randn(1, 8)
    with pytest.raises(UsageError, match=message):
        run(line)


# display options ------------------------------------------------------------------------------------
def test_default_display_is_fallback_then_widget(run: Any, ip: Any) -> None:
    ip.user_ns["seq"] = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    captured = run("seq -i 1,3,8,8")
    fallback, live = captured.outputs
    assert set(fallback.data) == {"text/plain", "text/html"} and "nbcount-fallback" in fallback.data["text/html"]
    assert set(live.data) == {VIEW, "text/plain"}
    assert "application/json" not in live.data
    view = tab_of(captured)
    assert [t["title"] for t in view.model["tabs"]] == TITLES
    assert view.model["summary"]["totals"]["params"] == conv_params(3, 8, 3)
    assert f"{conv_params(3, 8, 3):,}" in fallback.data["text/html"]


def test_quiet_shows_nothing(run: Any, ip: Any) -> None:
    ip.user_ns["seq"] = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    captured = run("seq -i 1,3,8,8 -q")
    assert captured.outputs == [] and captured.stdout == ""


def test_static_and_config_widget_off(run: Any, ip: Any) -> None:
    ip.user_ns["seq"] = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    for line, config in (("seq -i 1,3,8,8 --static", None), ("seq -i 1,3,8,8", "NetCount.widget = False")):
        if config:
            ip.run_line_magic("config", config)
        (output,) = run(line).outputs
        assert set(output.data) == FALLBACK
        assert output.data["image/png"]


def test_derive_layer_opens_derivation(run: Any, ip: Any) -> None:
    ip.user_ns["seq"] = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    captured = run("seq -i 1,3,8,8 --derive 0")
    data = tab_of(captured).model
    assert data["open"] == "Derivation" and data["focus"] == 1
    latex = data["derivations"]["1"]["latex"]
    assert f"{conv_params(3, 8, 3):,}".replace(",", "{,}") in latex
    shown = [o.data["text/plain"] for o in captured.outputs if VIEW not in o.data]
    assert shown and any(f"= {conv_params(3, 8, 3)}" in text for text in shown)


def test_derive_repeated_call_and_totals(run: Any, ip: Any) -> None:
    ip.run_cell("class Twice(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                "        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)\n"
                "    def forward(self, x):\n        return self.conv(self.conv(x))\ntwice = Twice()")
    data = tab_of(run("twice -i 1,1,6,6 --derive conv#1   # the second call")).model
    assert data["focus"] == 2 and data["derivations"]["2"]["label"] == "conv#1"
    data = tab_of(run("twice -i 1,1,6,6 --derive")).model
    assert data["focus"] == -1 and "-1" in data["derivations"]


def test_depth_and_columns(run: Any, ip: Any) -> None:
    ip.user_ns["nested"] = nn.Sequential(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), nn.Linear(4, 2))
    captured = run("nested -i 1,4 --depth 1 --columns layer,params_incl")
    assert tab_of(captured).model["depth"] == 1
    table = captured.outputs[0].data["text/html"].split("<table class='nbcount-table")[1]
    assert table.count("<tr>") == 1 + 3 + 1  # header, root + two depth-1 children, totals
    assert ">layer</th>" in table and ">params</th>" in table and ">MACs</th>" not in table


def test_config_depth_units_columns_top(run: Any, ip: Any) -> None:
    ip.user_ns["nested"] = nn.Sequential(nn.Sequential(nn.Linear(400, 400)), nn.Linear(400, 2))
    for line in ("NetCount.depth = 0", "NetCount.units = 'si'", "NetCount.columns = ['layer', 'macs']",
                 "NetCount.top = 1", "NetCount.log_scale = True"):
        ip.run_line_magic("config", line)
    captured = run("nested -i 1,400")
    text = captured.outputs[0].data["text/plain"]
    assert f"parameters (unique): {(400 * 400 + 400 + 400 * 2 + 2) / 1e3:.2f} k" in text
    data = tab_of(captured).model
    assert data["depth"] == 0
    charts = next(t["payload"] for t in data["tabs"] if t["title"] == "Charts")
    assert charts["top"] == 1 and charts["log"] is True


def test_compare_option(run: Any, ip: Any, monkeypatch: Any) -> None:
    ip.user_ns["lin84"] = nn.Linear(8, 4)
    view = tab_of(run("lin84 -i 1,8 --compare nbcount,macs"))
    assert view.options.compare == ("nbcount", "macs")
    sent: list[Any] = []
    monkeypatch.setattr(view, "send", lambda content, buffers=None: sent.append(content))
    view._answer(view, {"type": "tab", "title": "Conventions"}, [])
    assert [c["name"] for c in sent[0]["payload"]["columns"]] == ["nbcount", "macs"]
    assert tab_of(run("lin84 -i 1,8 --compare")).options.compare is not None


def test_device_meta_builds_without_memory(run: Any, ip: Any) -> None:
    run("-i 1,16 --device meta -o r -q", "big = nn.Linear(16, 32)")
    assert ip.user_ns["big"].weight.device.type == "meta"
    assert ip.user_ns["r"].total_params == 16 * 32 + 32
    ip.user_ns["cpu_net"] = nn.Linear(16, 32)
    run("cpu_net -i 1,16 --device meta -o r2 -q")
    assert ip.user_ns["cpu_net"].weight.device.type == "cpu"  # the user's model is not moved
    assert ip.user_ns["r2"].total_params == 16 * 32 + 32


def test_output_stores_report(run: Any, ip: Any) -> None:
    from nbcount import Report

    ip.user_ns["lin84"] = nn.Linear(8, 4)
    run("lin84 -i 1,8 --output stored -q")
    assert isinstance(ip.user_ns["stored"], Report)


def test_help_lists_every_option(ip: Any) -> None:
    doc = ip.find_line_magic("netcount").__doc__
    for option in ("-i SHAPE, --input-size SHAPE", "--inputs EXPR", "--dtype", "-c CONVENTION", "--derive",
                   "--depth", "--columns", "--device", "--compare", "-o NAME", "-q, --quiet", "-m NAME"):
        assert option in doc
    with capture_output() as captured:
        ip.run_line_magic("config", "NetCount")
    for trait in ("convention", "units", "depth", "columns", "top", "log_scale", "widget"):
        assert f"NetCount.{trait}" in captured.stdout
        assert f"NetCount.{trait} = " in doc  # %netcount? lists the settings too
    assert "::" not in doc and "Examples:" in doc and "%%netcount -i 1,3,32,32" in doc


# a good citizen: comments, lazy modules, short errors, partial reports, progress --------------------------
def test_trailing_comments_on_magic_lines(run: Any, ip: Any) -> None:
    run("-i 1,4 -o r -q   # count the cell's model", "m = nn.Linear(4, 3)")
    assert ip.user_ns["r"].total_params == 4 * 3 + 3
    run("m -i '1, 4' -o r2 -q # quoted '#' stays: '#'")
    assert ip.user_ns["r2"].total_params == 4 * 3 + 3


def test_lazy_modules_counted_without_touching_the_model(run: Any, ip: Any) -> None:
    from torch.nn.parameter import UninitializedParameter

    cell = "model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))"
    run("-i 1,3,32,32 -o r -q", cell)
    model = ip.user_ns["model"]
    expected = conv_params(3, 8, 3) + (8 * 30 * 30) * 10 + 10  # LazyLinear gets in_features = 8·30·30
    assert ip.user_ns["r"].total_params == expected
    assert isinstance(model[3].weight, UninitializedParameter) and type(model[3]).__name__ == "LazyLinear"
    assert model.training  # the mode is restored too
    assert any("lazy module 3 (LazyLinear)" in d.message for d in ip.user_ns["r"].diagnostics)


def test_failure_is_short_names_magic_options_and_keeps_partial_report(run: Any, ip: Any) -> None:
    ip.run_cell("class Tokens(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                "        self.proj = nn.Linear(4, 4)\n        self.emb = nn.Embedding(10, 4)\n"
                "    def forward(self, x):\n        return self.emb(self.proj(x))\ntokens = Tokens()")
    ip.user_ns.pop("partial", None)
    with pytest.raises(UsageError) as caught:
        run("tokens -i 1,4 -o partial")
    message = str(caught.value)
    assert "layer 'emb' (Embedding)" in message and "--dtype long" in message
    assert "dtype=torch.long" not in message and "e.report" not in message and "Traceback" not in message
    assert "the partial report is in partial (partial.table)" in message
    assert list(ip.user_ns["partial"].table["layer"]) == ["", "proj", "emb"]
    with pytest.raises(UsageError, match="add -o NAME to keep the partial report"):
        run("tokens -i 1,4")


def test_progress_line_for_slow_counts(ip: Any) -> None:
    import time

    from nbcount.progress import progress

    with capture_output() as captured:
        with progress("counting slow", delay=0.05):
            time.sleep(0.3)
    texts = [o.data["text/plain"] for o in captured.outputs]
    assert texts and texts[-1].startswith("counted slow in ")
    with capture_output() as quick:
        with progress("counting fast", delay=5):
            pass
    assert quick.outputs == []
