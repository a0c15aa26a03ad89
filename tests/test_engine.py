"""The counting engine against seed numbers, published counts and independent oracles."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import nbcount
from nbcount import zoo

CNNS = ["lenet", "dcgan_discriminator", "alexnet", "resnet18", "resnet50", "mobilenet_v2", "two_convs",
        "shared_conv", "unused_conv"]
SMALL_SIZES = {"vgg16": (1, 3, 64, 64), "unet": (1, 1, 64, 64), "gpt2": (1, 32), "vit_b_16": (1, 3, 224, 224),
               "llama_tiny": (1, 16), "resnet50": (1, 3, 64, 64), "alexnet": (1, 3, 227, 227)}


def _size(name: str) -> tuple[int, ...]:
    return SMALL_SIZES.get(name, zoo.example_input_size(name))


def _dtype(name: str) -> torch.dtype:
    return torch.long if name in zoo.TOKEN_MODELS else torch.float32


def _unique_params(model: nn.Module) -> int:
    return sum({id(p): p.numel() for p in model.parameters()}.values())


def _flop_counter_macs(name: str, size: tuple[int, ...]) -> int:
    """Half of FlopCounterMode's total on a meta copy with grad enabled (attention decomposes into bmm)."""
    with torch.device("meta"):
        model = zoo.ZOO[name]()
    x = torch.zeros(size, dtype=_dtype(name), device="meta")
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    return counter.get_total_flops() // 2


# --- seed numbers -------------------------------------------------------------------------------

def test_seed000_unet_parameters() -> None:
    assert nbcount.count(zoo.unet(bn=True), (1, 1, 64, 64)).total_params == 7_765_442
    assert nbcount.count(zoo.unet(bn=False), (1, 1, 64, 64)).total_params == 7_759_554
    assert 7_765_442 - 7_759_554 == 2 * (2 * (32 + 64 + 128 + 256) + 512 * 2 + 2 * (256 + 128 + 64 + 32))


def test_seed001_dcgan_torchsummary_layers_and_memory() -> None:
    r = nbcount.count(zoo.dcgan_discriminator(), (1, 3, 64, 64))
    assert r.total_params == 11_038_081 == r.trainable_params
    expected = [("Conv2d", (128, 32, 32), 128 * (4 * 4 * 3) + 128), ("Conv2d", (256, 16, 16), 524_544),
                ("BatchNorm2d", (256, 16, 16), 256 * 2), ("Conv2d", (512, 8, 8), 2_097_664),
                ("BatchNorm2d", (512, 8, 8), 1_024), ("Conv2d", (1024, 4, 4), 8_389_632),
                ("BatchNorm2d", (1024, 4, 4), 2_048), ("Linear", (1,), 1024 * 4 * 4 * 1 + 1)]
    with_params = r.table[r.table.params > 0]
    got = [(t, tuple(s[1:]), p) for t, s, p in zip(with_params.type, with_params.output_shape, with_params.params)]
    assert got == expected
    activations = r.table[r.table.type.isin(["LeakyReLU", "Sigmoid"])]
    assert (activations.params == 0).all() and len(activations) == 5
    mem = r.memory
    assert [round(mem[k], 2) for k in ("input_mb", "forward_backward_mb", "params_mb", "total_mb")] == \
        [0.05, 4.63, 42.11, 46.78]


def test_seed002_lenet_parameters() -> None:
    r = nbcount.count(zoo.lenet(), (1, 1, 28, 28))
    assert r.total_params == 61_610
    assert list(r.table.params[r.table.params > 0]) == [60, 2_416, 48_120, 10_164, 850]


def test_seed003_alexnet_conv1() -> None:
    r = nbcount.count(zoo.alexnet(), (1, 3, 227, 227))
    conv1 = r.table[r.table.type == "Conv2d"].iloc[0]
    assert conv1.params == 96 * 11 * 11 * 3 + 96 == 34_944
    assert tuple(conv1.output_shape) == (1, 96, 55, 55)
    assert conv1.macs == 11 * 11 * 3 * 55 * 55 * 96


def test_seed004_sharing_and_unused() -> None:
    assert nbcount.count(zoo.two_convs(), (1, 1, 8, 8)).total_params == 18
    shared = nbcount.count(zoo.shared_conv(), (1, 1, 8, 8))
    conv_rows = shared.table[shared.table.type == "Conv2d"]
    assert shared.total_params == 9 and len(conv_rows) == 2
    assert list(conv_rows.params) == [9, 0] and list(conv_rows.call) == [0, 1] and bool(conv_rows.shared.iloc[1])
    assert any(d.kind == "shared_params" for d in shared.diagnostics)
    unused = nbcount.count(zoo.unused_conv(), (1, 1, 8, 8))
    assert (unused.total_params, unused.used_params) == (18, 9)
    names = [d.layers for d in unused.diagnostics if d.kind == "unused_module"]
    assert names == [("conv2",)]


# --- every zoo model ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in zoo.ZOO if n not in ("llama_7b", "llama_70b")])
def test_params_and_shapes_match_oracles(name: str) -> None:
    model = zoo.ZOO[name]()
    size = _size(name)
    r = nbcount.count(model, size, dtype=_dtype(name))
    assert r.total_params == _unique_params(model)
    x = torch.zeros(size, dtype=torch.long) if _dtype(name) == torch.long else torch.randn(size)
    with torch.no_grad():
        real = model.eval()(x)
    assert r.table.output_shape.iloc[0] == tuple(real.shape)
    assert r.status == "complete", r.uncounted_ops


@pytest.mark.parametrize("name", CNNS + ["vgg16", "unet"])
def test_cnn_macs_equal_half_flop_counter(name: str) -> None:
    size = _size(name)
    assert nbcount.count(zoo.ZOO[name](), size).total_macs == _flop_counter_macs(name, size)


@pytest.mark.parametrize("name", ["gpt2", "vit_b_16", "llama_tiny"])
def test_transformer_macs_same_on_cpu_meta_grad_and_no_grad(name: str) -> None:
    size = _size(name)
    expected = _flop_counter_macs(name, size)
    torch.manual_seed(0)
    cpu = zoo.ZOO[name]()
    with torch.device("meta"):
        meta = zoo.ZOO[name]()
    results = {
        "cpu eval": nbcount.count(cpu, size, dtype=_dtype(name)).total_macs,
        "cpu train": nbcount.count(cpu, size, dtype=_dtype(name), mode="train").total_macs,
        "cpu real": nbcount.count(cpu, size, dtype=_dtype(name), execution="real").total_macs,
        "meta": nbcount.count(meta, size, dtype=_dtype(name)).total_macs,
    }
    with torch.no_grad():
        results["cpu under no_grad"] = nbcount.count(cpu.eval(), size, dtype=_dtype(name)).total_macs
    assert results == dict.fromkeys(results, expected)


def test_llama_70b_on_meta() -> None:
    cfg = zoo.llama_config("70b")
    with torch.device("meta"):
        model = zoo.llama(cfg)
    r = nbcount.count(model, (1, 128), dtype=torch.long)
    d, v, f, layers = 8192, 32000, 28672, 80
    kv = d // 64 * 8  # 8 KV heads of head dim 128
    per_layer = d * d * 2 + d * kv * 2 + 3 * d * f + 2 * d
    assert r.total_params == 2 * v * d + layers * per_layer + d == 68_976_648_192
    assert r.trace.execution == "meta"
    assert r.total_macs == _flop_counter_macs("llama_70b", (1, 128))


# --- layer rules against hand formulas ----------------------------------------------------------

def _macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    return nbcount.count(model, inputs=inputs).total_macs


@pytest.mark.parametrize("groups,dilation,stride,padding", [(1, 1, 1, 0), (2, 2, 2, 3), (4, 1, (2, 1), (1, 2))])
def test_conv2d_macs_and_bias(groups: int, dilation: int, stride: object, padding: object) -> None:
    conv = nn.Conv2d(8, 12, (3, 5), stride=stride, padding=padding, dilation=dilation, groups=groups)
    x = torch.randn(2, 8, 17, 19)
    n, c_out, h, w = conv(x).shape
    r = nbcount.count(conv, inputs=x)
    assert r.total_macs == n * c_out * h * w * (8 // groups) * 3 * 5
    assert r.breakdown["bias"] == n * c_out * h * w


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_transposed_conv_macs(dims: int) -> None:
    cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dims]
    conv = cls(4, 6, 3, stride=2, groups=2, bias=False)
    x = torch.randn((2, 4) + (5,) * dims)
    assert nbcount.count(conv, inputs=x).total_macs == 2 * 4 * 5**dims * (6 // 2) * 3**dims


def test_linear_any_leading_dims_and_functional_ops() -> None:
    assert _macs(nn.Linear(8, 4), torch.randn(2, 5, 7, 8)) == 2 * 5 * 7 * 8 * 4

    class Functional(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            y = torch.matmul(a, b) + a @ b
            z = torch.einsum("bij,bjk->bik", a, b)
            q = y.view(2, 1, 3, 5)
            return F.scaled_dot_product_attention(q, q, q, is_causal=True).sum() + z.sum()

    a, b = torch.randn(2, 3, 4), torch.randn(2, 4, 5)
    r = nbcount.count(Functional(), inputs=(a, b))
    assert r.total_macs == 3 * (2 * 3 * 4 * 5) + 2 * (2 * 1 * 3 * 3 * 5)
    assert r.status == "complete"


def test_sdpa_gqa_counts_query_heads() -> None:
    class GQA(nn.Module):
        def forward(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
            return F.scaled_dot_product_attention(q, k, k, enable_gqa=True)

    q, k = torch.randn(2, 8, 6, 16), torch.randn(2, 2, 9, 16)
    assert _macs(GQA(), q, k) == 2 * (2 * 8 * 6 * 9 * 16)


def test_multihead_attention_fast_path_and_math_path_agree() -> None:
    mha = nn.MultiheadAttention(16, 4, batch_first=True)
    x = torch.randn(2, 5, 16)
    b, length, e = 2, 5, 16
    expected = b * length * e * 3 * e + 2 * b * length * length * e + b * length * e * e
    assert nbcount.count(mha, inputs=(x, x, x)).total_macs == expected
    assert nbcount.count(mha, inputs=(x, x, x), mode="train").total_macs == expected
    assert nbcount.count(mha, inputs=(x, x, x), execution="real").total_macs == expected


@pytest.mark.parametrize("kind,gates", [(nn.RNN, 1), (nn.GRU, 3), (nn.LSTM, 4)])
def test_recurrent_macs(kind: type[nn.RNNBase], gates: int) -> None:
    rnn = kind(10, 20, num_layers=2, bidirectional=True, batch_first=True)
    batch, steps, i, h = 3, 7, 10, 20
    per_token = 2 * gates * h * (i + h) + 2 * gates * h * (2 * h + h)
    assert _macs(rnn, torch.randn(batch, steps, i)) == batch * steps * per_token


def test_bilinear_and_embedding() -> None:
    assert _macs(nn.Bilinear(3, 4, 5), torch.randn(2, 3), torch.randn(2, 4)) == 2 * 5 * (3 * 4 + 3)
    r = nbcount.count(nn.Embedding(10, 4), inputs=torch.tensor([[1, 2, 3]]))
    assert (r.total_params, r.total_macs, r.status) == (40, 0, "complete")


def test_norms_pools_and_activations_are_counted() -> None:
    model = nn.Sequential(nn.BatchNorm2d(4), nn.GroupNorm(2, 4), nn.InstanceNorm2d(4), nn.ReLU(), nn.GELU(),
                          nn.MaxPool2d(2), nn.AvgPool2d(2), nn.Upsample(scale_factor=2, mode="bilinear"),
                          nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.LayerNorm(4), nn.Softmax(-1))
    r = nbcount.count(model, (2, 4, 8, 8))
    n = 2 * 4 * 8 * 8
    assert r.breakdown["norm"] == 2 * n + (5 + 2) * n + 5 * n + (5 + 2) * 8
    assert r.breakdown["activation"] == 2 * n
    assert r.status == "complete"
    assert r.breakdown["pool"] == (n // 4) * 3 + (n // 16) * 4 + (n // 4 - 8)


def test_uncounted_op_is_named_and_total_is_a_lower_bound() -> None:
    class Inverse(nn.Module):  # a matrix inverse: no rule, and torch's metadata does not say what it costs
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.linalg.inv(x).abs()

    r = nbcount.count(Inverse(), (2, 4, 4))
    assert r.status == "lower_bound"
    found = [d for d in r.diagnostics if d.kind == "uncounted_op"]
    assert found and "linalg_inv" in found[0].message and found[0].layers


def test_peak_activation_is_bounded_by_the_sum_of_outputs() -> None:
    model = nn.Sequential(*[nn.Linear(64, 64) for _ in range(6)])
    r = nbcount.count(model, (8, 64))
    one = 8 * 64 * 4
    assert one * 2 <= r.memory["peak_activation_bytes"] <= one * 7
    assert r.memory["param_bytes"] == 6 * (64 * 64 + 64) * 4


# --- the model and the process are left as they were -------------------------------------------

def test_counting_leaves_model_and_rng_untouched() -> None:
    model = zoo.resnet18().train()
    model.layer1[0].bn1.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    hook_calls: list[int] = []
    handle = model.conv1.register_forward_hook(lambda *a: hook_calls.append(1))
    hooks_before = list(model.conv1._forward_hooks.items())
    rng = torch.get_rng_state()
    for execution in ("auto", "real"):
        nbcount.count(model, (2, 3, 32, 32), mode="train", execution=execution)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [m.training for m in model.modules()] == flags
    assert list(model.conv1._forward_hooks.items()) == hooks_before
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.grad is None for p in model.parameters())
    handle.remove()
    assert math.isfinite(len(hook_calls))
