"""report.derive(): every number of every row (and of the totals) ends its derivation, and the seeds step by step.

Expected values are the seed documents' numbers or arithmetic over named dimensions; the derivations' last
values are compared with the table, which comes from the same rules. Golden files pin the text and LaTeX
renders: regenerate them with ``NBCOUNT_REGEN_GOLDEN=1 pytest tests/test_derive.py``.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import nbcount
from nbcount import zoo
from nbcount.rules.shapes import shape_steps

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("NBCOUNT_REGEN_GOLDEN") == "1"
SIZES = {"vgg16": (1, 3, 32, 32), "unet": (1, 1, 32, 32), "resnet18": (1, 3, 64, 64), "resnet50": (1, 3, 64, 64),
         "mobilenet_v2": (1, 3, 64, 64), "gpt2": (1, 16), "llama_tiny": (1, 16), "llama_7b": (1, 8),
         "two_convs": (1, 1, 16, 16), "shared_conv": (1, 1, 16, 16), "unused_conv": (1, 1, 16, 16)}


def _count(name: str, **kwargs: Any) -> nbcount.Report:
    size = SIZES.get(name, zoo.example_input_size(name))
    dtype = torch.long if name in zoo.TOKEN_MODELS else torch.float32
    if name == "llama_7b":
        with torch.device("meta"):
            return nbcount.count(zoo.ZOO[name](), size, dtype=dtype, **kwargs)
    return nbcount.count(zoo.ZOO[name](), size, dtype=dtype, **kwargs)


def _last(section: Any, label: str) -> Any:
    return [s.value for s in section.steps if s.label == label][-1]


# --- every row, every number -------------------------------------------------------------------------

def check_row(report: nbcount.Report, index: int, record: dict[str, Any]) -> None:
    """Each section of one row ends with the table's number."""
    row = report.rows[index]
    d = report.derive(row.layer, row.call.call_index)
    for key in ("params", "macs", "flops"):
        assert d[key].value == d[key].steps[-1].value == record[key], (row.layer, key)
    shapes = tuple(tuple(t.shape) for t in row.call.out_tensors)
    assert d["shape"].value == (shapes[0] if len(shapes) == 1 else shapes)
    assert [s.value for s in d["shape"].steps] == [n for s in shapes for n in s] or not shapes
    memory = d["memory"]
    assert _last(memory, "param bytes") == record["param_bytes"]
    assert _last(memory, "buffer bytes") == record["buffer_bytes"]
    assert _last(memory, "output bytes") == record["output_bytes"]
    if record["rf"] is None:
        assert "rf" not in d
    elif isinstance(record["rf"], int):
        assert d["rf"].value == d["rf"].steps[-1].value == record["rf"], row.layer
    else:
        names = report.receptive_field.names
        assert tuple(_last(d["rf"], f"r_{n}") for n in names) == record["rf"] == d["rf"].value


def check_totals(report: nbcount.Report) -> None:
    """The totals' sections end with the report's totals and memory figures."""
    d = report.derive()
    assert d["params"].steps[-1].value == report.total_params == d["params"].value
    assert d["macs"].steps[-1].value == report.total_macs
    assert d["flops"].steps[-1].value == report.total_flops
    memory = report.memory
    assert _last(d["memory"], "input (MB)") == pytest.approx(memory["input_mb"])
    assert _last(d["memory"], "forward/backward pass (MB)") == pytest.approx(memory["forward_backward_mb"])
    assert _last(d["memory"], "params (MB)") == pytest.approx(memory["params_mb"])
    assert d["memory"].steps[-1].value == pytest.approx(memory["total_mb"])


@pytest.mark.parametrize("name", [n for n in zoo.ZOO if n != "llama_70b"])
def test_every_row_has_a_derivation(name: str) -> None:
    """Parameters, shape, MACs, FLOPs, receptive field and memory of every row end with the table's value."""
    report = _count(name)
    for index, record in enumerate(report.table.to_dict("records")):
        check_row(report, index, record)
    check_totals(report)


@pytest.mark.parametrize("convention", ["paddle", "macs+bias", "fvcore", "ptflops:strict", "macs", "torchinfo"])
def test_every_convention_derives_the_table(convention: str) -> None:
    """Under a peer's convention (module / per-op formulas, defects) the FLOPs derivation ends with its number."""
    for name in ("lenet", "resnet18", "vit_b_16"):
        report = _count(name, convention=convention)
        for index, record in enumerate(report.table.to_dict("records")):
            row = report.rows[index]
            flops = report.derive(row.layer, row.call.call_index)["flops"]
            assert flops.steps[-1].value == record[report.convention.column] == flops.value
        assert report.derive()["flops"].steps[-1].value == report.headline.value


@pytest.mark.parametrize("name", ["lenet", "alexnet", "vgg16", "unet", "resnet50", "mobilenet_v2",
                                  "dcgan_discriminator"])
def test_formulas_not_fallbacks(name: str) -> None:
    """Convolutions, pools and linears get their shape formula, and a plain conv / pool its r, j, start formulas."""
    report = _count(name)
    kinds = (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.Linear)
    names = {f"{c.__module__}.{c.__qualname__}" for c in kinds}
    for index, row in enumerate(report.rows):
        if not names & set(row.call.classes):
            continue
        assert shape_steps(row.call)[1], row.layer
        field = report.receptive_field.get(index)
        conv_like = "Linear" not in row.call.module_type and "Transpose" not in row.call.module_type
        if field is not None and conv_like and all(a.tracked and a.period == 1 for a in field.axes):
            labels = {s.label for s in report.derive(row.layer, row.call.call_index)["rf"].steps}
            assert {"r", "j", "start"} <= labels or {"r_H", "j_H", "start_H"} <= labels, row.layer


# --- the seeds, step by step ----------------------------------------------------------------------------

def test_seed000_unet_stage_sums() -> None:
    """Each stage sums its convs (K·K·C_in·C_out + C_out) and BNs (2·C): 7,765,442 with BN, 7,759,554 without."""
    def stage(c_in: int, c: int, bn: bool) -> int:
        return 3 * 3 * c_in * c + c + 3 * 3 * c * c + c + (2 * c + 2 * c if bn else 0)

    for bn, expected in ((True, 7_765_442), (False, 7_759_554)):
        params = nbcount.count(zoo.unet(bn=bn), (1, 1, 32, 32)).derive()["params"]
        steps = {s.label: s.value for s in params.steps}
        filters = [32, 64, 128, 256, 512]
        for k, (c_in, c) in enumerate(zip([1, *filters], filters)):
            assert steps[f"downs.{k}"] == stage(c_in, c, bn)
        for k, c in enumerate(reversed(filters[:-1])):
            up = 2 * c * c * 2 * 2 + c  # ConvTranspose2d(2c → c, k=2): C_in·C_out·K·K + C_out
            assert steps[f"ups.{k}"] == up + stage(2 * c, c, bn)
        assert steps["final"] == 32 * 2 + 2
        assert params.steps[-1].value == expected == params.value


def test_seed001_dcgan_steps() -> None:
    """128·(4·4·3) + 128 = 6,272; BN 256·2 = 512; Linear 1024·4·4·1 + 1 = 16,385; torchsummary's MB figures."""
    report = _count("dcgan_discriminator")
    conv1 = report.derive("conv1")
    step = conv1["params"].steps[-1]
    assert dict(step.symbols) == {"C_out": 128, "C_in": 3, "g": 1, "K_h": 4, "K_w": 4}
    assert step.value == 128 * (4 * 4 * 3) + 128 == 6_272
    h_out = [s for s in conv1["shape"].steps if s.label == "H_out"][0]
    assert h_out.value == (64 + 2 * 1 - 1 * (4 - 1) - 1) // 2 + 1 == 32
    assert "⌊(H_in + 2·p_h - d_h·(K_h - 1) - 1)/s_h⌋ + 1" in h_out.to_text()
    assert report.derive("conv2_bn")["params"].value == 256 * 2 == 512
    assert report.derive("linear")["params"].value == 1024 * 4 * 4 * 1 + 1 == 16_385
    memory = {s.label: s.value for s in report.derive()["memory"].steps}
    assert [round(memory[k], 2) for k in ("input (MB)", "forward/backward pass (MB)", "params (MB)",
                                          "estimated total (MB)")] == [0.05, 4.63, 42.11, 46.78]


def test_seed002_lenet_paddle_flops() -> None:
    """paddle: conv (C_in·K·K + 1)·C_out·H·W, linear N_in·N_out: 47,040 + 241,600 + 48,000 + 10,080 + 840."""
    report = _count("lenet", convention="paddle")
    expected = {"features.0": (1 * 3 * 3 + 1) * 6 * 28 * 28, "features.3": (6 * 5 * 5 + 1) * 16 * 10 * 10,
                "fc.0": 400 * 120, "fc.1": 120 * 84, "fc.2": 84 * 10}
    assert list(expected.values()) == [47_040, 241_600, 48_000, 10_080, 840]
    for layer, flops in expected.items():
        assert report.derive(layer)["flops"].steps[-1].value == flops
    params = {"features.0": 60, "features.3": 2_416, "fc.0": 48_120, "fc.1": 10_164, "fc.2": 850}
    assert all(report.derive(layer)["params"].value == n for layer, n in params.items())
    totals = report.derive()
    assert totals["flops"].steps[-1].value == 347_560 and totals["params"].value == 61_610


def test_seed003_alexnet_conv1() -> None:
    """(11·11·3 + 1)·55·55·96 = 105,705,600 FLOPs (the article's convention) and 96·11·11·3 + 96 = 34,944 params."""
    report = _count("alexnet", convention="macs+bias")
    conv1 = report.derive("features.0")
    assert conv1["flops"].steps[-1].value == (11 * 11 * 3 + 1) * 55 * 55 * 96 == 105_705_600
    assert conv1["params"].value == 96 * 11 * 11 * 3 + 96 == 34_944
    assert [s.value for s in conv1["shape"].steps][2:] == [(227 - 11) // 4 + 1] * 2 == [55, 55]


def test_seed004_sharing_and_unused() -> None:
    """Two convs: 18. One conv called twice: 9, the second call adds 0. conv2 never called: 9 used + 9 unused."""
    assert _count("two_convs").derive()["params"].value == 2 * 3 * 3 == 18
    shared = _count("shared_conv")
    second = shared.derive("conv1", 1)["params"].steps[-1]
    assert second.value == 0 and "reuses conv1.weight (9 parameters)" in second.note  # 3·3, no bias
    assert shared.derive()["params"].steps[-1].value == 3 * 3 == 9
    unused = _count("unused_conv").derive()["params"]
    steps = {s.label: s.value for s in unused.steps}
    assert steps["params used by the forward pass"] == 9 and steps["conv2 (never called)"] == 9
    assert unused.steps[-1].value == 18


# --- renders ---------------------------------------------------------------------------------------------

class NonSquare(nn.Module):
    """A 3×5 kernel with strides (1, 2): every per-axis number differs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, (3, 5), stride=(1, 2), padding=(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def test_non_square_shows_per_axis() -> None:
    """H_out and W_out with their own K, s, p; the receptive field as a tuple with r_H and r_W."""
    report = nbcount.count(NonSquare(), (1, 3, 17, 20))
    d = report.derive("conv")
    shape = {s.label: s for s in d["shape"].steps}
    assert shape["H_out"].value == (17 + 2 * 1 - 1 * (3 - 1) - 1) // 1 + 1 == 17
    assert shape["W_out"].value == (20 + 2 * 2 - 1 * (5 - 1) - 1) // 2 + 1 == 10
    assert dict(shape["W_out"].symbols)["K_w"] == 5 and dict(shape["H_out"].symbols)["K_h"] == 3
    assert d["rf"].value == (3, 5) == report.table.loc[1, "rf"]
    assert report.table.loc[1, "jump"] == (1, 2)


def test_renders_and_thousands_separators() -> None:
    """Text, LaTeX (MathJax-ready), Markdown, HTML and the mime bundle; numbers with separators."""
    d = _count("dcgan_discriminator").derive("conv2")
    text, latex, markdown, page = d.to_text(), d.to_latex(), d.to_markdown(), d.to_html()
    assert "524,544" in text and "524{,}544" in latex and "524{,}544" in markdown
    assert latex.startswith("\\begin{aligned}") and latex.endswith("\\end{aligned}")
    assert "\\lfloor" in latex and "\\cdot" in latex
    bundle = d._repr_mimebundle_()
    assert bundle["text/plain"] == text and bundle["text/html"] == page


EVIL = ("<img src=x onerror=alert(1)>", r"$\input{x}$", r"\href{javascript:alert(1)}{x}", "50%_&#~^")


def test_names_are_escaped() -> None:
    """Layer names with HTML, LaTeX and Markdown payloads stay text in every render."""
    blocks = nn.ModuleDict({name: nn.Conv2d(1, 1, 3) for name in EVIL})

    class Evil(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = blocks

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return sum(block(x) for block in self.blocks.values())

    report = nbcount.count(Evil(), (1, 1, 8, 8))
    for name in EVIL:
        for d in (report.derive(f"blocks.{name}"), report.derive()):
            page, latex, markdown = d.to_html(), d.to_latex(), d.to_markdown()
            assert "<img" not in page and not re.search(r"<(?!/?(div|p|b|i|ul|li)\b)", page)
            assert html.escape(name) in page or d.subject.startswith("Totals")
            assert r"\input" not in latex and r"\href" not in latex
            assert not re.search(r"(?<!\\)<[A-Za-z/!]", markdown)


# --- golden files ---------------------------------------------------------------------------------------

def _golden_cases() -> dict[str, Any]:
    """Reviewed against hand arithmetic (each file's numbers, and where they come from):

    dcgan_conv1: seed 001, Conv2d(3, 128, 4, s=2, p=1) on 64²: 128·(3·4·4) + 128 = 6,272; ⌊(64 + 2 − 3 − 1)/2⌋ + 1
        = 32; MACs 128·32·32·48 = 6,291,456, bias 131,072; r = 1 + 3·1 = 4 (the seed's mistake 1 + 3·2 = 7 after).
    alexnet_last_pool: seed 003, MaxPool(3, 2) on 13²: ⌊(13 − 3)/2⌋ + 1 = 6; 256·6·6 = 9,216 outputs ·8
        comparisons = 73,728; r = 163 + 2·16 = 195, j = 16·2 = 32 (the article's 59 + 2·2 = 63 after it).
    nonsquare_conv: Conv2d(3, 8, (3, 5), s=(1, 2), p=(1, 2)) on 17×20: H 17, W ⌊(20 + 4 − 4 − 1)/2⌋ + 1 = 10;
        params 8·3·15 + 8 = 368; r_H = 3, r_W = 5.
    lenet_paddle_totals: seed 002, 61,610 parameters: features.0 6·1·3·3 + 6 = 60, features.3 16·6·5·5 + 16 =
        2,416, fc 400·120 + 120 = 48,120, 120·84 + 84 = 10,164, 84·10 + 10 = 850; paddle.flops' 347,560.
    unet_totals: seed 000, stage sums 9·C_in·C + C + 9·C·C + C + 4·C (BN) with C = 32…512, up-convs
        2·C·C·4 + C: 7,765,442; MACs per stage e.g. downs.0 = 32²·(9·1·32) + 32²·(9·32·32) = 9,732,096.
    unused_conv_totals: seed 004, conv1 9 used + conv2 9 never called = 18 (3·3 kernels, no bias).
    unet_up_conv: ups.3.conv.conv.3 = Conv2d(32, 32, 3, p=1) on 32²: 32·32·9 + 32 = 9,248 params, MACs
        32·32·32·(32·9) = 9,437,184.
    lstm_bidirectional: LSTM(10, 20, 2 layers, bidirectional): 2·(4·20·10 + 4·20·20 + 2·4·20) = 5,120, layer 1
        reads I = 2·20 = 40: 2·(4·20·40 + 4·20·20 + 2·4·20) = 9,920; 15,040.
    mha_params: MultiheadAttention(512, 8): 3·512·512 + 3·512 = 787,968 + 512·512 + 512 = 262,656 = 1,050,624.
    batchnorm_memory: BatchNorm2d(64) on 1×64×8×8: γ, β 64·4 bytes each = 512; buffers 64 + 64 + 1 = 129
        elements, 256 + 256 + 8 (int64) = 520 bytes; output 1·64·8·8 = 4,096 elements = 16,384 bytes.
    """
    return {
        "dcgan_conv1": lambda: _count("dcgan_discriminator").derive("conv1"),
        "alexnet_last_pool": lambda: _count("alexnet").derive("features.12"),
        "nonsquare_conv": lambda: nbcount.count(NonSquare(), (1, 3, 17, 20)).derive("conv"),
        "lenet_paddle_totals": lambda: _sections(_count("lenet", convention="paddle").derive(), "params", "flops"),
        "unet_totals": lambda: _sections(nbcount.count(zoo.unet(), (1, 1, 32, 32)).derive(), "params", "macs"),
        "unused_conv_totals": lambda: _sections(_count("unused_conv").derive(), "params"),
        "unet_up_conv": lambda: nbcount.count(zoo.unet(), (1, 1, 32, 32)).derive("ups.3.conv.conv.3"),
        "lstm_bidirectional": lambda: _sections(nbcount.count(nn.LSTM(10, 20, 2, bidirectional=True),
                                                              (5, 3, 10)).derive(""), "params"),
        "mha_params": lambda: _sections(nbcount.count(nn.MultiheadAttention(512, 8, batch_first=True),
                                                      inputs=(torch.zeros(1, 4, 512),) * 3).derive(""), "params"),
        "batchnorm_memory": lambda: _sections(nbcount.count(nn.BatchNorm2d(64), (1, 64, 8, 8)).derive(""),
                                              "params", "memory"),
    }


def _sections(d: Any, *keys: str) -> Any:
    return type(d)(d.subject, tuple(d[k] for k in keys))


@pytest.mark.parametrize("case", list(_golden_cases()))
def test_golden_renders(case: str) -> None:
    """The text and LaTeX renders match the golden files (NBCOUNT_REGEN_GOLDEN=1 rewrites them)."""
    d = _golden_cases()[case]()
    for suffix, rendered in (("txt", d.to_text()), ("tex", d.to_latex())):
        path = GOLDEN / f"{case}.{suffix}"
        if REGEN:
            GOLDEN.mkdir(exist_ok=True)
            path.write_text(rendered + "\n", encoding="utf-8")
        assert path.exists(), f"missing {path.name}: run NBCOUNT_REGEN_GOLDEN=1 pytest {__file__}"
        assert rendered + "\n" == path.read_text(encoding="utf-8"), f"{path.name} differs (regenerate if intended)"
