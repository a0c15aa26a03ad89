"""The rendering layer: one escaping module, one row label, the table model and its formatters, and the
inclusive subtotals, checked against independent oracles (sum of p.numel() over a submodule, a real
FlopCounterMode run on the block alone, hand arithmetic over layer dimensions)."""

from __future__ import annotations

import csv
import io
from typing import Any

import oracles  # noqa: E402  (tests/ is on sys.path under pytest)
import pytest
import torch
from torch import nn

import nbcount
from nbcount import escape, formats, labels, zoo
from nbcount.subtotals import figures, repeated_runs, run_label
from nbcount.table import Column, Table, layer_table

HOSTILE = ["<img src=x onerror=alert(1)>", r"$\input{x}$", "a|b", "50%_&#~^", "`x` *y* [l](javascript:z)"]


# escaping ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", HOSTILE)
def test_escapes_leave_no_live_syntax(text: str) -> None:
    assert "<" not in escape.html(text) and ">" not in escape.html(text)
    md = escape.markdown(text)
    for ch in "<>|$`*[]()_":
        assert all(md[i - 1] == "\\" for i, c in enumerate(md) if c == ch)
    tex = escape.latex(text)
    assert "\\input{" not in tex and "$" not in tex.replace("\\$", "")
    assert escape.mathtext("$x$") == r"\$x\$"


def test_csv_cell_round_trips() -> None:
    values = ['plain', 'a,b', 'say "hi"', "two\nlines"]
    line = ",".join(escape.csv_cell(v) for v in values) + "\n"
    assert next(csv.reader(io.StringIO(line))) == values


# labels ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path, call, kind, label", [
    ("features.0", 0, "Conv2d", "features.0"), ("pool", 1, "MaxPool2d", "pool#1"), ("", 0, "Net", "(root)"),
    ("0", 0, "Conv2d", "0 (Conv2d)"), ("3", 2, "Linear", "3#2 (Linear)")])
def test_labels_round_trip(path: str, call: int, kind: str, label: str) -> None:
    assert labels.layer_label(path, call, kind) == label
    assert labels.parse_layer(label) == (path, call)


def test_repeat_pattern() -> None:
    assert labels.repeat_pattern("h.3.mlp.c_fc", frozenset({"h."})) == "h.*.mlp.c_fc"
    assert labels.repeat_pattern("enc.layer_3.mlp", frozenset({"enc.layer_"})) == "enc.layer_*.mlp"
    assert labels.repeat_pattern("3.conv", frozenset({""})) == "*.conv"
    assert labels.repeat_pattern("features.3", frozenset()) == "features.3"


# the table model and its formatters ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_table() -> Table:
    columns = (Column("layer", "layer", kind="label"), Column("type", "type"), Column("n", "params", "params", "count"))
    rows = (("(root)", "Net", 1234567), (HOSTILE[0], "Linear", 10), (HOSTILE[2], "Conv2d", 0))
    return Table(columns, rows, (0, 1, 1), note="3 rows", footer=("total", "", 1234577))


def test_text_aligns_and_indents(tiny_table: Table) -> None:
    lines = formats.to_text(tiny_table).splitlines()
    assert lines[0].split() == ["layer", "type", "params"]
    assert lines[1].endswith("1,234,567") and lines[2].startswith("  <img")
    assert len({len(line) for line in lines[1:3]}) == 1  # right-aligned numbers: same width
    assert lines[-2].startswith("total") and lines[-1] == "3 rows"


def test_html_markdown_latex_csv_escape_every_cell(tiny_table: Table) -> None:
    html = formats.to_html(tiny_table)
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<tr>") == 1 + 3 + 1 and "padding-left:1.3em" in html
    md = formats.to_markdown(tiny_table)
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert {line.count("|") - line.count("\\|") for line in rows} == {4}
    tex = formats.to_latex(tiny_table, comment="100% sure")
    assert tex.startswith("% 100\\% sure") and "\\textless{}img" in tex and "a|b" in tex
    parsed = list(csv.reader(io.StringIO(formats.to_csv(tiny_table))))
    assert parsed[2] == [HOSTILE[0], "Linear", "10"]


def test_styler_renders_escaped(tiny_table: Table) -> None:
    html = formats.to_styler(tiny_table).to_html()
    assert "&lt;img" in html and "<img src=x" not in html and "linear-gradient" in html


# inclusive subtotals against independent oracles ---------------------------------------------------------
@pytest.fixture(scope="module")
def gpt2() -> Any:
    model = zoo.gpt2()
    return model, nbcount.count(model, (1, 16), dtype=torch.long)


def test_inclusive_params_equal_submodule_numel(gpt2: Any) -> None:
    model, report = gpt2
    table = report.table.set_index("layer")
    for path in ("h.0", "h.0.attn", "h.5.mlp", "ln_f"):
        oracle = sum(p.numel() for p in model.get_submodule(path).parameters())
        assert table.loc[path, "params_incl"] == oracle
    assert table.loc["h.0", "params_incl"] == 7_087_872  # torchinfo's published per-block count
    root = report.table.iloc[0]
    assert root["params_incl"] == report.used_params == sum(p.numel() for p in model.parameters())
    assert root["macs_incl"] == report.total_macs and root["flops_incl"] == report.total_flops


def _flop_counter(module: nn.Module, *args: Any) -> int:
    return oracles.torch_flops(module, args)


def test_inclusive_flops_match_flop_counter_on_the_block_alone(gpt2: Any) -> None:
    """torch convention (FlopCounterMode's rules) inclusive figures of a block = FlopCounterMode run on that block."""
    model, report = gpt2
    as_torch = report.recount("torch").table.set_index("layer")
    x = torch.randn(1, 16, 768)
    mlp = model.get_submodule("h.0.mlp")
    assert as_torch.loc["h.0.mlp", "flops_incl"] == _flop_counter(mlp, x)
    assert 2 * as_torch.loc["h.0.mlp", "macs_incl"] == _flop_counter(mlp, x)


def test_inclusive_figures_of_a_cnn_block() -> None:
    model = zoo.resnet18().eval()
    report = nbcount.count(model, (1, 3, 64, 64)).recount("torch")
    table = report.table.set_index("layer")
    block = model.get_submodule("layer2.0")
    x = torch.randn(1, 64, 16, 16)
    assert table.loc["layer2.0", "flops_incl"] == _flop_counter(block, x)
    assert table.loc["layer2.0", "params_incl"] == sum(p.numel() for p in block.parameters())
    sums = figures(report)
    assert sums.headline_incl[0] == report.total_flops == sum(sums.headline)


def test_repeated_runs_fold_identical_blocks(gpt2: Any) -> None:
    _, report = gpt2
    runs = list(repeated_runs(report).values())
    blocks = [r for r in runs if report.rows[r[0]].layer == "h.0"]
    assert len(blocks) == 1 and len(blocks[0]) == 12
    assert run_label(report, blocks[0]) == "h.0–h.11 ×12"
    folded = layer_table(report, group=True)
    labels_shown = [row[0] for row in folded.rows]
    assert labels_shown == ["(root)", "wte", "wpe", "drop", "h.0–h.11 ×12", "ln_f", "lm_head"]
    index = labels_shown.index("h.0–h.11 ×12")
    params = folded.columns.index(next(c for c in folded.columns if c.key == "params_incl"))
    assert folded.rows[index][params] == 12 * 7_087_872


def test_large_tables_fit_a_row_budget() -> None:
    model = nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.ReLU()) for _ in range(40)])
    report = nbcount.count(model, (1, 8))
    full = layer_table(report)
    assert len(full.rows) == 1 + 40 * 3 and not full.note
    small = layer_table(report, max_rows=10)
    assert len(small.rows) <= 10 and "121 rows" in small.note
    assert small.footer is not None and small.footer[0] == "total"
