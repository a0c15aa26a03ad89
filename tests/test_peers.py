"""nbcount under each peer's convention against the real peer packages (the `peers` extra).

Every expected number comes from running the peer itself in the test. Where nbcount's rule and the peer
differ, the difference must be exactly the peer's documented defects, named in DEFECTS below.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import warnings
from collections import defaultdict
from functools import cache
from typing import Any

import pytest
import torch
from torch import nn

import nbcount
from nbcount import zoo
from nbcount.compare import compare_memory
from nbcount.convention import get_convention
from nbcount.peers import memory
from nbcount.report import Report

pytestmark = pytest.mark.peers

PEER_PACKAGES = {"torch": "torch", "fvcore": "fvcore", "thop": "thop", "ptflops": "ptflops", "torchinfo": "torchinfo",
                 "torchscan": "torchscan", "calflops": "calflops"}
# Small inputs where the model allows: the peers do real arithmetic. (constructor, input shape, token ids?)
MODELS: dict[str, tuple[Any, tuple[int, ...], bool]] = {
    "lenet": (zoo.lenet, (1, 1, 28, 28), False),
    "dcgan_discriminator": (zoo.dcgan_discriminator, (1, 3, 64, 64), False),
    "alexnet": (zoo.alexnet, (1, 3, 227, 227), False),
    "vgg16": (zoo.vgg16, (1, 3, 32, 32), False),
    "unet": (zoo.unet, (1, 1, 64, 64), False),
    "resnet50": (zoo.resnet50, (1, 3, 64, 64), False),
    "mobilenet_v2": (zoo.mobilenet_v2, (1, 3, 64, 64), False),
    "vit_b_16": (lambda: zoo.vit_b_16(image_size=64), (1, 3, 64, 64), False),
    "gpt2": (zoo.gpt2, (1, 32), True),
    "llama_tiny": (zoo.llama_tiny, (1, 16), True),
}
# The peer defects that explain every difference between nbcount's rule and the real peer, per model.
DEFECTS: dict[tuple[str, str], set[str]] = {
    ("lenet", "ptflops"): {"functional_counted_twice"},
    ("lenet", "torchscan"): {"pool_int_kernel"},
    ("alexnet", "ptflops"): {"functional_counted_twice"},
    ("alexnet", "torchscan"): {"pool_int_kernel", "dropout_in_eval"},
    ("vgg16", "ptflops"): {"functional_counted_twice"},
    ("vgg16", "torchscan"): {"pool_int_kernel", "dropout_in_eval"},
    ("unet", "thop"): {"conv_transpose_per_output"},
    ("unet", "ptflops"): {"functional_counted_twice"},
    ("unet", "torchinfo"): {"conv_transpose_per_output"},
    ("unet", "torchscan"): {"pool_int_kernel", "conv_transpose_per_output"},
    ("unet", "calflops"): {"conv_transpose"},
    ("resnet50", "ptflops"): {"functional_counted_twice", "operators_not_patched"},
    ("resnet50", "torchscan"): {"pool_int_kernel"},
    ("resnet50", "calflops"): {"operators_not_patched"},
    ("mobilenet_v2", "ptflops"): {"operators_not_patched"},
    ("mobilenet_v2", "torchscan"): {"dropout_in_eval"},
    ("mobilenet_v2", "calflops"): {"relu6_unpatched", "operators_not_patched"},
    ("vit_b_16", "torch"): {"mha_fast_path"},
    ("vit_b_16", "fvcore"): {"sdpa_unsupported"},
    ("vit_b_16", "ptflops"): {"functional_counted_twice", "operators_not_patched", "layernorm_affine_ignored"},
    ("vit_b_16", "torchinfo"): {"linear_not_scaled_by_sequence"},
    ("vit_b_16", "calflops"): {"attention_unpatched", "operators_not_patched"},
    ("gpt2", "torch"): {"cpu_sdpa"},
    ("gpt2", "fvcore"): {"sdpa_unsupported"},
    ("gpt2", "ptflops"): {"functional_counted_twice", "operators_not_patched", "layernorm_affine_ignored"},
    ("gpt2", "torchinfo"): {"linear_not_scaled_by_sequence"},
    ("gpt2", "calflops"): {"attention_unpatched", "operators_not_patched"},
    ("llama_tiny", "torch"): {"cpu_sdpa"},
    ("llama_tiny", "fvcore"): {"sdpa_unsupported"},
    ("llama_tiny", "ptflops"): {"operators_not_patched"},
    ("llama_tiny", "torchinfo"): {"linear_not_scaled_by_sequence"},
    ("llama_tiny", "calflops"): {"attention_unpatched", "operators_not_patched"},
}


def need(package: str) -> Any:
    """Import a peer; without it skip, except in CI (CI set), where the peers extra must be installed."""
    try:
        return importlib.import_module(package)
    except ImportError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{package} cannot be imported ({error}): pip install 'nbcount[peers]' (required when CI is set)")


# running the real peers ---------------------------------------------------------------------------------
def _own_share(model: nn.Module, cumulative: dict[str, float]) -> dict[str, float]:
    """Each module's own count from cumulative per-path counts (uncalled containers looked through)."""
    modules = dict(model.named_modules())

    def below(name: str) -> float:
        total = 0.0
        for child, _ in modules[name].named_children():
            path = f"{name}.{child}" if name else child
            total += cumulative[path] if path in cumulative else below(path)
        return total

    return {name: cumulative[name] - below(name) for name in modules if name in cumulative}


def run_torch(model: nn.Module, x: torch.Tensor) -> tuple[float, Any]:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    root = type(model).__name__
    cumulative = {("" if key == root else key.removeprefix(root + ".")): sum(ops.values())
                  for key, ops in counter.get_flop_counts().items() if key != "Global"}
    return counter.get_total_flops(), _own_share(model, cumulative)


def run_fvcore(model: nn.Module, x: torch.Tensor) -> tuple[float, Any]:
    fvcore_nn = need("fvcore.nn")
    analysis = fvcore_nn.FlopCountAnalysis(model, (x,)).unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False).tracer_warnings("none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analysis.total(), _own_share(model, dict(analysis.by_module()))


def run_thop(model: nn.Module, x: torch.Tensor) -> tuple[float, Any]:
    thop = need("thop")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total, _, info = thop.profile(model, inputs=(x,), verbose=False, ret_layer_info=True)
    cumulative = {"": total}

    def walk(prefix: str, layer_info: dict[str, Any]) -> None:
        for name, (ops, _, nested) in layer_info.items():
            path = f"{prefix}.{name}" if prefix else name
            cumulative[path] = ops
            walk(path, nested)

    walk("", info)
    return total, _own_share(model, cumulative)


def run_ptflops(model: nn.Module, x: torch.Tensor) -> tuple[float, Any]:
    """Headline from get_model_complexity_info; per layer the module hooks, read before ptflops removes them."""
    ptflops = need("ptflops")
    from ptflops import pytorch_engine as engine
    from ptflops.pytorch_ops import MODULES_MAPPING

    with contextlib.redirect_stdout(io.StringIO()):
        total, _ = ptflops.get_model_complexity_info(model, tuple(x.shape[1:]), as_strings=False,
                                                     print_per_layer_stat=False, backend="pytorch",
                                                     input_constructor=lambda _: x)
    counted = engine.add_flops_counting_methods(model)
    counted.start_flops_count(ost=io.StringIO(), verbose=False, ignore_list=[])
    functional: list[int] = []
    tensor_ops: list[int] = []
    engine.patch_functional(functional)
    engine.patch_tensor_ops(tensor_ops)
    try:
        model(x)
        per_layer = {name: m.__flops__ for name, m in model.named_modules() if type(m) in MODULES_MAPPING}
    finally:
        engine.unpatch_functional()
        engine.unpatch_tensor_ops()
        counted.stop_flops_count()
    return total, per_layer


def run_torchinfo(model: nn.Module, x: torch.Tensor) -> tuple[float, Any]:
    torchinfo = need("torchinfo")
    stats = torchinfo.summary(model, input_data=x, verbose=0)
    layers = [(layer.class_name, layer.is_leaf_layer, layer.macs) for layer in stats.summary_list if layer.executed]
    return stats.total_mult_adds, (layers, stats)


def run_torchscan(model: nn.Module, x: torch.Tensor) -> tuple[float, Any]:
    torchscan = need("torchscan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = torchscan.crawl_module(model, args=(x,))
    per_call = {(layer["path"], layer["call_index"]): layer["metrics"]["module_flops"]["known_value"]
                for layer in report["layers"] if "module_flops" in layer["metrics"]}
    return report["totals"]["module_flops"]["known_value"], per_call  # "partial" totals keep value=None


def run_calflops(model: nn.Module, x: torch.Tensor) -> tuple[float, Any]:
    """Headline from calculate_flops; per layer each module's own __flops__ from calflops' pipeline."""
    calflops = need("calflops")
    from calflops.calculate_pipline import CalFlopsPipline

    if next(model.parameters(), None) is None:  # calculate_flops reads next(model.parameters())
        model = _WithParameter(model)
    with contextlib.redirect_stdout(io.StringIO()):
        total, _, _ = calflops.calculate_flops(model, args=[x], output_as_string=False, print_results=False)
    pipeline = CalFlopsPipline(model, include_backPropagation=False, compute_bp_factor=2.0)
    pipeline.start_flops_calculate(ignore_list=None)
    try:
        model(x)
        per_layer = {name: m.__flops__ for name, m in model.named_modules()}
    finally:
        pipeline.end_flops_calculate()
    return total, per_layer


class _WithParameter(nn.Module):
    """A parameter-less layer plus one unused parameter, so that calflops can read the model's device."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer, self.unused = layer, nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


RUNNERS = {"torch": run_torch, "fvcore": run_fvcore, "thop": run_thop, "ptflops": run_ptflops,
           "torchinfo": run_torchinfo, "torchscan": run_torchscan, "calflops": run_calflops}


@cache
def model_case(name: str) -> tuple[nn.Module, torch.Tensor, Report]:
    """The zoo model (eval), a random input (image or token ids) and nbcount's report, built once per session."""
    make, size, tokens = MODELS[name]
    model = make().eval()
    generator = torch.Generator().manual_seed(0)
    x = zoo.example_input(name)[:, : size[1]] if tokens else torch.randn(size, generator=generator)
    return model, x, nbcount.count(model, inputs=x)


@cache
def peer_run(name: str, peer: str) -> tuple[float, Any]:
    """Run one peer once on one model."""
    need(PEER_PACKAGES[peer])
    model, x, _ = model_case(name)
    result = RUNNERS[peer](model, x)
    model.eval()  # ptflops and calflops leave the model in eval; thop restores; be explicit
    return result


# the checks ---------------------------------------------------------------------------------------------
def _per_layer(report: Report, peer: str, per_layer: Any) -> list[tuple[Any, float, int]]:
    """(layer, peer's number, nbcount's strict number) for every layer the peer reports."""
    strict = get_convention(peer, strict=True)
    if peer == "torchinfo":
        layers, _ = per_layer
        assert [cls for cls, _, _ in layers] == [r.call.module_type for r in report.rows]
        return [((r.layer, r.call.call_index), macs, strict.row_value(r))
                for (_, leaf, macs), r in zip(layers, report.rows) if leaf]
    if peer == "torchscan":
        return [((r.layer, r.call.call_index), per_layer[(r.layer, r.call.call_index)], strict.row_value(r))
                for r in report.rows if (r.layer, r.call.call_index) in per_layer]
    mine: dict[str, int] = defaultdict(int)
    for r in report.rows:
        value = strict.row_value(r)
        if peer == "ptflops":  # its per-layer printout holds the module hooks only; functionals go to the total
            value -= strict.defect_deltas(r).get("functional_counted_twice", 0)
        mine[r.layer] += value
    return [(path, value, mine.get(path, 0)) for path, value in per_layer.items()]


@pytest.mark.parametrize("peer", list(RUNNERS))
@pytest.mark.parametrize("name", list(MODELS))
def test_total_is_the_peers_rule_plus_its_named_defects(name: str, peer: str) -> None:
    total, _ = peer_run(name, peer)
    _, _, report = model_case(name)
    rule = get_convention(peer)
    defects: dict[str, int] = defaultdict(int)
    for row in report.rows:
        for defect, delta in rule.defect_deltas(row).items():
            defects[defect] += delta
    assert {d for d, v in defects.items() if v} == DEFECTS.get((name, peer), set())
    assert report.recount(peer).headline.value + sum(defects.values()) == total
    assert report.recount(get_convention(peer, strict=True)).headline.value == total
    if not DEFECTS.get((name, peer)):
        assert report.recount(peer).headline.value == total


@pytest.mark.parametrize("peer", list(RUNNERS))
@pytest.mark.parametrize("name", list(MODELS))
def test_per_layer_numbers_match_the_peer(name: str, peer: str) -> None:
    _, per_layer = peer_run(name, peer)
    _, _, report = model_case(name)
    compared = _per_layer(report, peer, per_layer)
    assert compared, "the peer reported no layers"
    assert [c for c in compared if c[1] != c[2]] == []


# single layers: bug-for-bug (strict) totals on the layer kinds the zoo models do not cover ---------------------
LAYERS: dict[str, tuple[Any, tuple[int, ...]]] = {
    "conv_stride_pad": (lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1), (1, 3, 17, 19)),
    "conv_transpose_grouped": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2), (1, 4, 5, 6)),
    "linear_3d": (lambda: nn.Linear(8, 4), (1, 5, 8)),
    "layernorm": (lambda: nn.LayerNorm(16), (1, 5, 16)),
    "groupnorm": (lambda: nn.GroupNorm(2, 4), (1, 4, 5, 6)),
    "instancenorm": (lambda: nn.InstanceNorm2d(4), (1, 4, 5, 6)),
    "avgpool": (lambda: nn.AvgPool2d(3, 2), (1, 4, 11, 13)),
    "adaptive_avgpool_3": (lambda: nn.AdaptiveAvgPool2d(3), (1, 4, 7, 8)),
    "adaptive_maxpool_1": (lambda: nn.AdaptiveMaxPool2d(1), (1, 4, 5, 6)),
    "upsample_nearest": (lambda: nn.Upsample(scale_factor=2), (1, 3, 5, 6)),
    "upsample_bilinear": (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (1, 3, 5, 6)),
    "softmax": (lambda: nn.Softmax(dim=1), (1, 4, 5, 6)),
    "activations": (lambda: nn.Sequential(nn.GELU(), nn.SiLU(), nn.ELU(), nn.PReLU(), nn.Tanh(), nn.Sigmoid()),
                    (1, 4, 5, 6)),
    "lstm": (lambda: nn.LSTM(10, 20, 2, bidirectional=True, batch_first=True), (1, 7, 10)),
    "gru": (lambda: nn.GRU(10, 20, batch_first=True), (1, 7, 10)),
    "mha": (lambda: _SelfAttention(), (1, 5, 16)),
}


class _SelfAttention(nn.Module):
    """nn.MultiheadAttention(16, 4, batch_first) on one input (the peers pass a single tensor)."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x)[0]


SKIP_LAYER: dict[tuple[str, str], str] = {}  # (case, peer) -> why that peer cannot run it


@pytest.mark.parametrize("peer", list(RUNNERS))
@pytest.mark.parametrize("case", list(LAYERS))
def test_single_layer_strict_totals(case: str, peer: str) -> None:
    if (case, peer) in SKIP_LAYER:
        pytest.skip(SKIP_LAYER[(case, peer)])
    need(PEER_PACKAGES[peer])
    make, size = LAYERS[case]
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(size)
    report = nbcount.count(model, size)
    total, _ = RUNNERS[peer](model, x)
    assert report.recount(get_convention(peer, strict=True)).headline.value == int(total)


# memory figures --------------------------------------------------------------------------------------------
def test_torchinfo_memory_figures_match_torchinfo() -> None:
    for name in ("lenet", "resnet50"):
        _, (_, stats) = peer_run(name, "torchinfo")
        figures = memory.torchinfo_bytes(model_case(name)[2])
        assert figures["input"] == stats.total_input
        assert figures["forward/backward"] == stats.total_output_bytes
        assert figures["params"] == stats.total_param_bytes


def test_torchsummary_memory_figures_match_torchsummary() -> None:
    torchsummary = need("torchsummary")
    model, x, report = model_case("dcgan_discriminator")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        torchsummary.summary(model, tuple(x.shape[1:]), device="cpu")
    printed = {line.split(":")[0].strip(): line.split(":")[1].strip() for line in out.getvalue().splitlines()
               if "(MB)" in line or "params" in line}
    figures = compare_memory(report)["torchsummary"]
    assert f"{figures['input']:.2f}" == printed["Input size (MB)"]
    assert f"{figures['forward/backward']:.2f}" == printed["Forward/backward pass size (MB)"]
    assert f"{figures['params']:.2f}" == printed["Params size (MB)"]
    assert f"{figures['total']:.2f}" == printed["Estimated Total Size (MB)"]
    assert f"{memory.torchsummary_params(report):,}" == printed["Total params"]
