"""nbcount.diff, checkpoint_bytes and scaling over every input that shares the varied axis.

Oracles: ``p.numel()`` over the real modules, output shapes from a real (meta) forward with hooks, a real
``torch.save`` into a BytesIO, and arithmetic over named dimensions (E, L, N, C_in, C_out, H, W).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import torch
from torch import nn

import nbcount
from nbcount import zoo


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _depthwise_oracle(model: nn.Module, size: tuple[int, ...]) -> tuple[int, int]:
    """(params, MACs) of every depthwise conv, from the modules and a meta forward's output shapes."""
    macs = []

    def hook(m: nn.Module, _: Any, out: torch.Tensor) -> None:
        macs.append(out.numel() * m.kernel_size[0] * m.kernel_size[1])  # C_in/g = 1: ∏K per output element

    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1]
    handles = [m.register_forward_hook(hook) for m in depthwise]
    model.to("meta")(torch.empty(size, device="meta"))
    for h in handles:
        h.remove()
    return sum(_numel(m) for m in depthwise), sum(macs)


@pytest.fixture(scope="module")
def resnet_vs_mobilenet() -> tuple[Any, nbcount.Report, nbcount.Report]:
    size = (1, 3, 64, 64)
    a, b = nbcount.count(zoo.resnet50(), size), nbcount.count(zoo.mobilenet_v2(), size)
    return nbcount.diff(a, b, names=("ResNet-50", "MobileNetV2")), a, b


def test_resnet50_vs_mobilenet_v2_totals_and_ratio(resnet_vs_mobilenet: Any) -> None:
    """Published counts 25,557,032 and 3,504,872; the ratio b/a of each total."""
    d, a, b = resnet_vs_mobilenet
    totals = d["totals"].to_frame()
    assert totals.loc["params", "ResNet-50"] == 25_557_032 and totals.loc["params", "MobileNetV2"] == 3_504_872
    assert d.ratio("params") == pytest.approx(3_504_872 / 25_557_032)
    assert d.ratio("MACs") == pytest.approx(b.total_macs / a.total_macs)


def test_per_kind_and_per_stage_against_the_modules(resnet_vs_mobilenet: Any) -> None:
    """Depthwise convs (params, MACs) match the module oracle; each ResNet stage sums its children's tensors."""
    d, _, _ = resnet_vs_mobilenet
    kinds = d["per layer kind"].to_frame()
    params, macs = _depthwise_oracle(zoo.mobilenet_v2(), (1, 3, 64, 64))
    dw = [k for k in kinds.index if "depthwise" in k]
    assert sum(kinds.loc[k, "MobileNetV2"] for k in dw if k.endswith("params")) == params
    assert sum(kinds.loc[k, "MobileNetV2"] for k in dw if k.endswith("MACs")) == macs
    assert all(kinds.loc[k, "ResNet-50"] == 0 for k in dw)
    stages = d["stages of ResNet-50"].to_frame()
    resnet = zoo.resnet50()
    for name, child in resnet.named_children():
        if _numel(child):
            assert stages.loc[name, "params"] == _numel(child), name


def test_the_why_names_depthwise_convolutions(resnet_vs_mobilenet: Any) -> None:
    """The reasons say which kind makes the difference and why depthwise convs are cheap; text, HTML, frame."""
    d, _, _ = resnet_vs_mobilenet
    why = " ".join(d.why)
    assert "depthwise" in why and "C_in/g = 1" in why and "9 MACs per output element" in why  # K·K = 3·3
    assert "Conv2d 1×1" in why
    text, page = str(d), d.to_html()
    assert "ResNet-50 vs MobileNetV2" in text and "<table>" in page and "per layer kind" in page


def test_one_by_one_conv_equals_linear_over_positions() -> None:
    """Conv2d(C, F, 1) on (1, C, H, W) vs Linear(C, F) on (1, H·W, C): F·C + F params, H·W·C·F MACs, explained."""
    c, f, h, w = 64, 128, 14, 14
    conv = nbcount.count(nn.Conv2d(c, f, 1), (1, c, h, w))
    linear = nbcount.count(nn.Linear(c, f), (1, h * w, c))
    d = nbcount.diff(conv, linear)
    layer = d["layer"].to_frame()
    assert list(layer.loc["params"][:2]) == [f * c + f] * 2 and list(layer.loc["MACs"][:2]) == [h * w * c * f] * 2
    assert d.ratio("MACs", "layer") == 1
    assert "1×1 convolution is a Linear" in d.why[0] and "196 positions = 196 rows" in d.why[0]
    assert any("C_out·(C_in/g·K_h·K_w) + C_out" in left and "F_in·F_out + F_out" in right
               for _, left, right in d.derivations)


def test_depthwise_vs_dense_layer_and_bad_input() -> None:
    """A depthwise 3×3 and a dense 3×3 on 64 channels: MACs differ by C_in/g = 64."""
    dw = nbcount.count(nn.Conv2d(64, 64, 3, groups=64), (1, 64, 8, 8))
    dense = nbcount.count(nn.Conv2d(64, 64, 3), (1, 64, 8, 8))
    d = nbcount.diff(dw, dense)
    assert d.ratio("MACs", "layer") == 64 and "depthwise" in d.why[0]
    with pytest.raises(TypeError, match="two reports"):
        nbcount.diff(nn.Linear(2, 2), dense)  # type: ignore[arg-type]


def test_checkpoint_bytes_match_a_real_torch_save() -> None:
    """torchvision AlexNet: 61,100,840 fp32 parameters = 244,403,360 bytes; the file adds a zip entry and a
    pickled name per tensor (16 tensors, a few hundred bytes each), well inside 0.5 %."""
    model = zoo.alexnet_torchvision()
    derived = nbcount.count(model, (1, 3, 224, 224)).checkpoint_bytes()
    assert derived == 61_100_840 * 4 == 244_403_360 and derived.derivation.value == derived
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    saved = len(buffer.getvalue())
    assert saved > derived and (saved - derived) / saved < 0.005
    assert saved - derived < 1_000 * len(model.state_dict())  # the per-tensor overhead, not the payload


def test_checkpoint_buffers_dtype_cast_and_ties() -> None:
    """BatchNorm buffers are saved (running stats as float, the step counter int64); a cast halves floats only;
    GPT-2's tied head is stored once; a non-persistent buffer is not saved."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    model[1].register_buffer("mask", torch.ones(5), persistent=False)
    report = nbcount.count(model, (1, 3, 8, 8))
    floats = _numel(model) + 2 * 8  # parameters + running_mean + running_var
    assert report.checkpoint_bytes() == floats * 4 + 8
    assert report.checkpoint_bytes(torch.float16) == floats * 2 + 8
    half = io.BytesIO()
    torch.save(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)).half().state_dict(), half)
    assert 0 < len(half.getvalue()) - report.checkpoint_bytes(torch.float16) < 1_000 * 7
    assert "mask" in report.checkpoint_bytes().derivation.to_text()
    gpt = zoo.gpt2(n_layer=1, n_embd=32, n_head=2, vocab=50, n_positions=16)
    storages = {t.untyped_storage().data_ptr(): t.numel() * t.element_size() for t in gpt.state_dict().values()}
    tied = nbcount.count(gpt, (1, 8), dtype=torch.long).checkpoint_bytes()
    assert tied == sum(storages.values()) and "writes the storage once" in str(tied.derivation)


@pytest.mark.parametrize("batch_first", [True, False])
def test_self_attention_scales_quadratically_through_every_input(batch_first: bool) -> None:
    """MHA(E=64, H=4) on q = k = v: MACs = N·(4·E²·L + 2·E·L²) by the fused path and the math path alike."""
    n, e, length = 2, 64, 10
    x = torch.randn(n, length, e) if batch_first else torch.randn(length, n, e)
    mha = nn.MultiheadAttention(e, 4, batch_first=batch_first)
    report = nbcount.count(mha, inputs=(x, x, x))
    for fit in (report.scaling(mha, convention="macs"), report.scaling(axis="L", convention="macs")):
        assert fit.coefficients == (0, n * 4 * e * e, n * 2 * e) and fit.variable == "L"
        assert "inputs 0, 1, 2" in fit.description
        assert str(fit).startswith(f"MACs(L) = {n * 2 * e:,}·L² + {n * 4 * e * e:,}·L")


def test_scaling_axis_by_name_and_a_clear_error() -> None:
    """axis="N" fits the batch (linear), "R" the resolution; a name the input lacks is refused with its axes."""
    conv = nn.Conv2d(3, 8, 3, padding=1)
    report = nbcount.count(conv, (1, 3, 8, 8))
    batch = report.scaling(conv, axis="N", sizes=[1, 2, 3, 4], convention="macs")
    assert batch.coefficients == (0, 8 * 3 * 9 * 8 * 8)  # C_out·C_in·K²·H·W per sample
    assert report.scaling(axis="R", sizes=[4, 8, 12, 16], convention="macs").coefficients == (0, 0, 8 * 3 * 9)
    with pytest.raises(ValueError, match="axes are N, C, H, W"):
        report.scaling(axis="L")
