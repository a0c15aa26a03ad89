"""Conventions as data: the registry, seed numbers, strict variants, compare() and the docs table.

Expected numbers are the seeds' (002, 003) or arithmetic over named dimensions; the real peers are
exercised in tests/test_peers.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nbcount
from nbcount import zoo
from nbcount.compare import TOTAL, compare, compare_memory, conventions_markdown, rules_table
from nbcount.convention import Convention, get_convention, register

NAMES = ("nbcount", "macs", "torch", "fvcore", "thop", "ptflops", "torchinfo", "torchscan", "calflops", "deepspeed",
         "paddle", "macs+bias")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "conventions.md"


def test_every_named_convention_is_listed_with_a_description_source_and_rules() -> None:
    listed = nbcount.conventions()
    assert tuple(listed) == NAMES
    for name in NAMES:
        convention = get_convention(name)
        assert listed[name] == convention.description and convention.description
        assert convention.source and convention.unit in ("FLOPs", "MACs")
        assert convention.rules, name
        for defect in convention.defects:
            assert defect.name and defect.description


def test_unknown_and_duplicate_names_are_errors() -> None:
    with pytest.raises(ValueError, match="known: .*thop"):
        get_convention("tohp")
    with pytest.raises(ValueError, match="registered twice"):
        register(Convention("thop", "again", "nowhere", "MACs"))


def test_strict_variants_by_name_or_flag() -> None:
    strict = get_convention("ptflops:strict")
    assert strict.strict and strict.name == "ptflops:strict"
    assert get_convention("ptflops", strict=True) == strict
    assert not get_convention("ptflops").strict


def test_count_takes_a_convention_and_the_table_holds_its_numbers() -> None:
    report = nbcount.count(zoo.lenet(), (1, 1, 28, 28), convention="thop")
    assert report.convention.name == "thop"
    # thop counts MACs: its column and headline say so, and no figure called flops holds them
    assert report.headline.unit == "MACs" and report.total_flops is None and "flops" not in report.table
    assert report.table["macs_thop"].sum() == report.headline.value
    assert report.table.loc[0, "macs_thop_incl"] == report.headline.value  # the root's inclusive figure
    # LeNet under thop: conv and linear MACs, bias dropped, ReLU and max-pool 0
    conv1 = 6 * 28 * 28 * (1 * 3 * 3)
    conv2 = 16 * 10 * 10 * (6 * 5 * 5)
    assert report.headline.value == conv1 + conv2 + 400 * 120 + 120 * 84 + 84 * 10
    # under a FLOP convention the column is flops; under nbcount's macs convention its numbers are the macs column
    assert report.recount("torch").table["flops"].sum() == report.recount("torch").headline.value
    macs = report.recount("macs").table
    assert "flops" not in macs and macs["macs"].sum() == report.recount("macs").headline.value


def test_paddle_reproduces_seed_002() -> None:
    report = nbcount.count(zoo.lenet(), (1, 1, 28, 28), convention="paddle")
    assert report.total_flops == 347_560
    per_layer = {r.layer: report.convention.row_value(r) for r in report.rows}
    assert [per_layer[p] for p in ("features.0", "features.3", "fc.0", "fc.1", "fc.2")] == [
        47_040, 241_600, 48_000, 10_080, 840]
    assert per_layer["features.1"] == per_layer["features.2"] == 0  # ReLU and max-pool: 0
    single = nbcount.count(nn.Conv2d(2, 4, 3, padding=1), (1, 2, 320, 320), convention="paddle")
    assert single.total_flops == 7_782_400


def test_the_former_name_seed003_still_counts_as_macs_plus_bias() -> None:
    assert get_convention("seed003") is get_convention("macs+bias")
    assert get_convention("seed003:strict").name == "macs+bias:strict"


def test_seed003_counts_alexnet_conv1_as_the_article() -> None:
    report = nbcount.count(zoo.alexnet(), (1, 3, 227, 227), convention="macs+bias")
    assert report.convention.row_value(report.row("features.0")) == 105_705_600
    assert report.convention.row_value(report.row("features.0")) == (11 * 11 * 3 + 1) * 55 * 55 * 96
    fc = report.row("classifier.1")
    assert report.convention.row_value(fc) == (256 * 6 * 6 + 1) * 4096


class _Attention(nn.Module):
    """q·kᵀ and p·v through F.scaled_dot_product_attention, and a projection through `@`."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 8))

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, q, q) @ self.w


def test_attention_matmuls_per_convention() -> None:
    b, h, seq, e = 2, 4, 5, 8
    report = nbcount.count(_Attention(), (b, h, seq, e))
    attention_macs = 2 * b * h * seq * seq * e
    projection_macs = b * h * seq * e * 8
    assert report.recount("torch").headline.value == 2 * (attention_macs + projection_macs)
    assert report.recount("deepspeed").headline.value == 2 * (attention_macs + projection_macs)
    assert report.recount("fvcore").headline.value == attention_macs + projection_macs
    # defects: CPU SDPA uncounted by FlopCounterMode, unpatched by calflops, unsupported by fvcore
    assert report.recount("torch:strict").headline.value == 2 * projection_macs
    assert report.recount("calflops:strict").headline.value == 2 * projection_macs
    assert report.recount("fvcore:strict").headline.value == projection_macs


def test_torch_strict_is_flop_counter_mode_on_cpu_attention() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    model, x = _Attention(), torch.randn(2, 4, 5, 8)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    assert nbcount.count(model, inputs=x, convention="torch:strict").total_flops == counter.get_total_flops()


def _differing(frame: Any, names: list[str]) -> Any:
    body = frame[frame["layer"] != TOTAL]
    return body[body[names].nunique(axis=1) > 1]


@pytest.mark.parametrize(("name", "size"), [("lenet", (1, 1, 28, 28)), ("resnet50", (1, 3, 64, 64))])
def test_compare_explains_every_difference(name: str, size: tuple[int, ...]) -> None:
    names = ["thop", "fvcore", "torchinfo", "torch"]
    report = nbcount.count(zoo.ZOO[name](), size)
    frame = report.compare(names)
    assert list(frame.columns) == ["layer", "call", "type", *names, "why"]
    differing = _differing(frame, names)
    assert len(differing) > 0
    for _, row in differing.iterrows():
        assert row["why"], row["layer"]
        for convention in names:
            assert f"{convention}" in row["why"], (row["layer"], convention, row["why"])
    agreeing = frame[(frame["layer"] != TOTAL) & (frame[names].nunique(axis=1) == 1)]
    assert all(why == "" or why.startswith("Defects: ") for why in agreeing["why"])
    total = frame[frame["layer"] == TOTAL].iloc[0]
    assert [total[n] for n in names] == [report.recount(n).headline.value for n in names]


def test_compare_names_the_reasons_of_the_issue() -> None:
    report = nbcount.count(zoo.resnet50(), (1, 3, 64, 64))
    frame = compare(report, ["ptflops", "thop", "fvcore"])
    bn = frame[frame["type"] == "BatchNorm2d"].iloc[0]["why"]
    assert "thop: 2 per element, 4 with affine" in bn and "fvcore: 2 per element" in bn
    conv = frame[frame["layer"] == "conv1"].iloc[0]
    assert conv["ptflops"] == conv["thop"]  # conv1 has no bias: they agree
    relu = frame[frame["layer"] == "relu"].iloc[0]["why"]
    assert "functional_counted_twice" in relu  # the real ptflops counts ReLU twice: said, not copied
    lenet = compare(nbcount.count(zoo.lenet(), (1, 1, 28, 28)), ["ptflops", "torchscan"])
    relu_agreeing = lenet[lenet["layer"] == "features.1"].iloc[0]
    assert relu_agreeing["ptflops"] == relu_agreeing["torchscan"]
    assert relu_agreeing["why"].startswith("Defects: ptflops (the real tool) counts +4,704")


def test_compare_strict_applies_the_defects() -> None:
    report = nbcount.count(zoo.lenet(), (1, 1, 28, 28))
    strict = compare(report, ["ptflops"], strict=True)
    assert strict.columns[3] == "ptflops:strict"
    assert strict[strict["layer"] == TOTAL].iloc[0]["ptflops:strict"] == report.recount("ptflops:strict").headline.value


def test_conventions_matrix_reads_the_reasons_as_data() -> None:
    """compare()'s why and the Conventions tab come from the same records: the tab folds repeated rows by their
    reasons, sums their numbers and the peers' defect amounts, and names no internal defect id."""
    from nbcount.compare import comparison
    from nbcount.matrix import conventions_payload

    names = ["ptflops", "thop", "fvcore"]
    report = nbcount.count(zoo.resnet50(), (1, 3, 64, 64))
    found = comparison(report, names)
    frame = compare(report, names)
    assert list(frame["why"])[:-1] == [line.reason.to_text() for line in found.lines]
    payload = conventions_payload(report, names)
    assert [sum(r["values"][j] for r in payload["rows"]) for j in range(len(names))] == \
        [report.recount(n).headline.value for n in names] == payload["total"]  # every row counted once
    folded = [r for r in payload["rows"] if r["n"] > 1]
    assert folded and sum(r["n"] for r in payload["rows"]) == len(found.lines)
    ptflops = get_convention("ptflops")
    real_defects = sum(sum(ptflops.defect_deltas(row).values()) for row in report.rows)
    sentences = [s for r in payload["rows"] for s in r["why"]["defects"]]
    amounts = [int(m.replace(",", "")) for s in sentences for m in re.findall(r"counts ([-+][\d,]+):", s)]
    assert real_defects and sum(amounts) == real_defects  # folded amounts are sums, not one row's
    ids = {d.name for name in names for d in get_convention(name).defects}
    assert not any(i in s for i in ids for s in sentences)
    relu = next(r for r in folded if r["type"] == "ReLU")
    assert relu["why"]["rules"] and all(tools and rule for tools, rule in relu["why"]["rules"])


def test_memory_matches_seed_001_torchsummary_figures() -> None:
    report = nbcount.count(zoo.dcgan_discriminator(), (1, 3, 64, 64))
    figures = compare_memory(report)["torchsummary"]
    assert [f"{figures[k]:.2f}" for k in ("input", "forward/backward", "params", "total")] == [
        "0.05", "4.63", "42.11", "46.78"]


def test_docs_table_is_generated_from_the_rules() -> None:
    """docs/conventions.md holds conventions_markdown(); NBCOUNT_REGEN_DOCS=1 rewrites its generated part."""
    begin, end = "<!-- generated:begin -->", "<!-- generated:end -->"
    text = DOCS.read_text(encoding="utf-8")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    table = conventions_markdown()
    if os.environ.get("NBCOUNT_REGEN_DOCS"):
        DOCS.write_text(f"{head}{begin}\n{table}\n{end}{tail}", encoding="utf-8")
        text = DOCS.read_text(encoding="utf-8")
    assert f"{begin}\n{table}\n{end}" in text
    for name in NAMES:
        assert f"`{name}`" in text and get_convention(name).source.split(":")[0] in text
    assert list(rules_table().columns) == list(NAMES)
