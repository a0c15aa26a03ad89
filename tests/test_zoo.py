"""nbcount.zoo against published counts, seed numbers and arithmetic oracles."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

import oracles  # noqa: E402  (tests/ is on sys.path under pytest)
import pytest
import torch
from torch import nn

from nbcount import zoo
from nbcount.zoo.llama import Attention
from nbcount.zoo.resnet import Bottleneck

M = TypeVar("M", bound=nn.Module)


def unique_params(model: nn.Module) -> int:
    """Parameter elements, each tensor counted once (tied weights deduped by id)."""
    seen = {id(p): p for _, p in model.named_parameters(remove_duplicate=False)}
    return sum(p.numel() for p in seen.values())


def on_meta(fn: Callable[[], M]) -> M:
    with torch.device("meta"):
        return fn()


def flops(model: nn.Module, x: torch.Tensor) -> int:
    return oracles.torch_flops(model, x, grad=torch.is_grad_enabled())


def conv_params(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return k * k * c_in * c_out + (c_out if bias else 0)


def linear_params(n_in: int, n_out: int, bias: bool = True) -> int:
    return n_in * n_out + (n_out if bias else 0)


# AlexNet of seed 003 by the seed's formulas:
# (w*h*c_in + 1)*c_out per conv, (o1 + 1)*o2 per FC.
ALEXNET_PARAMS = (
    conv_params(3, 96, 11)
    + conv_params(96, 256, 5)
    + conv_params(256, 384, 3)
    + conv_params(384, 384, 3)
    + conv_params(384, 256, 3)
    + linear_params(256 * 6 * 6, 4096)
    + linear_params(4096, 4096)
    + linear_params(4096, 1000)
)

# Published totals: seeds 000-004, torchvision's model docs, GPT-2 small (tied head),
# Llama-2-7B.
PUBLISHED_PARAMS: dict[str, int] = {
    "lenet": 61_610,
    "dcgan_discriminator": 11_038_081,
    "alexnet": ALEXNET_PARAMS,
    "alexnet_torchvision": 61_100_840,  # torchvision's model docs (AlexNet_Weights.IMAGENET1K_V1.meta)
    "vgg16": 138_357_544,
    "unet": 7_765_442,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "vit_b_16": 86_567_656,
    "gpt2": 124_439_808,
    "llama_7b": 6_738_415_616,
    "two_convs": 18,
    "shared_conv": 9,
    "unused_conv": 18,
}


def test_zoo_tables_agree() -> None:
    assert set(zoo.ZOO) == set(zoo.INPUT_SIZES)
    assert set(zoo.ZOO) >= zoo.TOKEN_MODELS
    assert set(zoo.ZOO) >= set(PUBLISHED_PARAMS)
    assert zoo.example_input_size("alexnet") == (1, 3, 227, 227)
    assert zoo.example_input("gpt2").dtype == torch.long
    assert zoo.example_input("lenet").shape == (1, 1, 28, 28)


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_published_param_counts(name: str) -> None:
    assert unique_params(on_meta(zoo.ZOO[name])) == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_every_model_runs_on_meta_at_canonical_input(name: str) -> None:
    model = on_meta(zoo.ZOO[name])
    assert all(p.is_meta for p in model.parameters())
    assert all(b.is_meta for b in model.buffers())
    out = model(zoo.example_input(name, "meta"))
    assert out.shape[0] == zoo.example_input_size(name)[0]


def test_alexnet_formula_matches_published_sixty_million() -> None:
    # Seed 003 quotes "~60M" parameters; its per-layer formulas sum to 62,378,344.
    assert ALEXNET_PARAMS == 62_378_344
    conv1 = on_meta(zoo.alexnet).features[0]
    assert unique_params(conv1) == 96 * 11 * 11 * 3 + 96 == 34_944


def test_lenet_per_layer_matches_seed_002() -> None:
    model = zoo.lenet()
    per_layer = [unique_params(m) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert per_layer == [60, 2_416, 48_120, 10_164, 850]
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_lenet_flop_counter_oracle() -> None:
    # Seed 002's paddle FLOPs (347,560) count conv bias once per output element;
    # FlopCounterMode counts 2 per MAC and no bias: (347,560 - 6*28*28 - 16*10*10) * 2.
    expected = (347_560 - 6 * 28 * 28 - 16 * 10 * 10) * 2
    assert expected == 682_512
    assert flops(zoo.lenet(), torch.randn(1, 1, 28, 28)) == expected


def test_dcgan_per_layer_matches_seed_001_torchsummary() -> None:
    model = zoo.dcgan_discriminator()
    expected = {
        "conv1": 6_272,
        "conv2": 524_544,
        "conv2_bn": 512,
        "conv3": 2_097_664,
        "conv3_bn": 1_024,
        "conv4": 8_389_632,
        "conv4_bn": 2_048,
        "linear": 16_385,
    }
    assert {k: unique_params(getattr(model, k)) for k in expected} == expected
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 1)
    assert ((out > 0) & (out < 1)).all()
    # Conv MACs (no bias) + linear MACs, times 2: k*k*c_in*c_out*h_out*w_out per conv.
    macs = (
        4 * 4 * 3 * 128 * 32 * 32
        + 4 * 4 * 128 * 256 * 16 * 16
        + 4 * 4 * 256 * 512 * 8 * 8
        + 4 * 4 * 512 * 1024 * 4 * 4
        + 1024 * 4 * 4
    )
    assert flops(model, x[:1]) == 2 * macs == 817_922_048


def test_alexnet_forward_and_flop_counter_oracle() -> None:
    model = zoo.alexnet()
    x = torch.randn(1, 3, 227, 227)
    assert flops(model, x) == 2_270_512_192
    # Seed 003's first-layer figure (11*11*3 + 1)*55*55*96 includes a bias multiply.
    assert flops(model.features[0], x) == 2 * (105_705_600 - 55 * 55 * 96)
    with torch.no_grad():
        assert model(x).shape == (1, 1000)


def test_vgg16_full_size_forward() -> None:
    model = zoo.vgg16().eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)
    assert isinstance(model.avgpool, nn.AdaptiveAvgPool2d)
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2


def test_unet_counts_and_shapes() -> None:
    with_bn = zoo.unet(bn=True)
    without_bn = zoo.unet(bn=False)
    assert unique_params(with_bn) == 7_765_442
    assert unique_params(without_bn) == 7_759_554
    # Seed 000: each double conv holds two BN layers of its output width (gamma, beta).
    bn_channels = 2 * (sum((32, 64, 128, 256, 512)) + sum((256, 128, 64, 32)))
    assert unique_params(with_bn) - unique_params(without_bn) == 2 * bn_channels == 5_888
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in with_bn.modules()) == 4
    with torch.no_grad():
        assert with_bn.eval()(torch.randn(1, 1, 256, 256)).shape == (1, 2, 256, 256)
    meta = on_meta(zoo.unet)
    assert meta(torch.empty(1, 1, 512, 512, device="meta")).shape == (1, 2, 512, 512)


# torchvision's model docs list GFLOPS (= GMACs) per model, rounded to 2 decimals.
TORCHVISION_GMACS = {
    "vgg16": 15.47,
    "resnet18": 1.81,
    "resnet50": 4.09,
    "mobilenet_v2": 0.30,
    "vit_b_16": 17.56,
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_GMACS))
def test_flops_match_torchvision_published_gmacs(name: str) -> None:
    # On meta, attention decomposes into counted matmuls, so ViT's attention counts.
    total = flops(on_meta(zoo.ZOO[name]), torch.empty(1, 3, 224, 224, device="meta"))
    assert total / 2 / 1e9 == pytest.approx(TORCHVISION_GMACS[name], abs=0.005)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v2"])
def test_small_image_forward(name: str) -> None:
    model = zoo.ZOO[name]().eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1000)


def test_resnet_layout() -> None:
    model = on_meta(zoo.resnet50)
    names = [n for n, _ in model.named_children()]
    assert names == [
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "avgpool",
        "fc",
    ]
    block = model.layer2[0]
    assert isinstance(block, Bottleneck)
    assert isinstance(block.downsample, nn.Sequential)
    assert block.conv2.stride == (2, 2)
    assert block.conv1.stride == (1, 1)
    assert isinstance(block.downsample[0], nn.Conv2d)
    assert block.downsample[0].kernel_size == (1, 1)


def test_vit_b_16_layout_and_forward() -> None:
    model = zoo.vit_b_16().eval()
    own = {n for n, _ in model.named_parameters(recurse=False)}
    assert own == {"class_token"}
    assert model.encoder.pos_embedding.shape == (1, 197, 768)
    assert isinstance(model.encoder.layers[0].self_attention, nn.MultiheadAttention)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_gpt2_tied_head() -> None:
    model = on_meta(zoo.gpt2)
    assert model.lm_head.weight is model.wte.weight
    naive = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    # The tied matrix is yielded twice; torchinfo reports the double count 163,037,184.
    assert naive - unique_params(model) == 50_257 * 768
    assert naive == 163_037_184


def _causal_prefix_check(model: nn.Module, vocab: int, t: int) -> torch.Tensor:
    ids = torch.randint(0, vocab, (2, t))
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % vocab
    with torch.no_grad():
        a: torch.Tensor = model(ids)
        b: torch.Tensor = model(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])
    return a


def test_gpt2_small_forward_is_causal() -> None:
    torch.manual_seed(0)
    model = zoo.gpt2(n_layer=2, n_embd=64, n_head=4, vocab=100, n_positions=32).eval()
    assert unique_params(model) == (
        100 * 64 + 32 * 64 + 2 * (4 * 64 + 64 * 192 + 192 + 64 * 64 + 64 + 2 * 64 * 256 + 256 + 64) + 2 * 64
    )
    assert _causal_prefix_check(model, 100, 8).shape == (2, 8, 100)


def llama_param_formula(cfg: zoo.LlamaConfig) -> int:
    head_dim = cfg.dim // cfg.n_heads
    attn = 2 * cfg.dim * cfg.dim + 2 * cfg.dim * cfg.n_kv_heads * head_dim
    mlp = 3 * cfg.dim * cfg.ffn_dim
    per_layer = attn + mlp + 2 * cfg.dim
    return 2 * cfg.vocab_size * cfg.dim + cfg.n_layers * per_layer + cfg.dim


@pytest.mark.parametrize(
    ("preset", "expected"),
    [("7b", 6_738_415_616), ("70b", 68_976_648_192)],
)
def test_llama_presets_on_meta(preset: str, expected: int) -> None:
    cfg = zoo.llama_config(preset)
    assert llama_param_formula(cfg) == expected
    model = on_meta(lambda: zoo.llama(cfg))
    assert all(p.is_meta for p in model.parameters())
    assert unique_params(model) == expected
    assert model.output.weight is not model.tok_embeddings.weight
    out = model(torch.zeros(1, 8, dtype=torch.long, device="meta"))
    assert out.shape == (1, 8, 32_000)


def test_llama_70b_shapes() -> None:
    cfg = zoo.llama_config("70b")
    shape = (
        cfg.dim,
        cfg.n_layers,
        cfg.n_heads,
        cfg.n_kv_heads,
        cfg.ffn_dim,
        cfg.vocab_size,
    )
    assert shape == (8192, 80, 64, 8, 28672, 32000)
    attn = on_meta(lambda: zoo.llama(cfg)).layers[0].attention
    assert isinstance(attn, Attention)
    assert attn.wk.weight.shape == (8 * 128, 8192)
    assert attn.wq.weight.shape == (8192, 8192)


def test_llama_config_is_frozen_and_validated() -> None:
    cfg = zoo.llama_config("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.dim = 8  # type: ignore[misc]
    with pytest.raises(ValueError, match="n_kv_heads"):
        zoo.LlamaConfig(dim=64, n_heads=4, n_kv_heads=3)
    with pytest.raises(KeyError, match="13x"):
        zoo.llama_config("13x")


def test_llama_tiny_forward_is_causal() -> None:
    torch.manual_seed(0)
    cfg = zoo.llama_config("tiny")
    assert cfg.n_kv_heads < cfg.n_heads  # exercises grouped-query attention
    model = zoo.llama(cfg).eval()
    assert unique_params(model) == llama_param_formula(cfg)
    assert _causal_prefix_check(model, cfg.vocab_size, 12).shape == (
        2,
        12,
        cfg.vocab_size,
    )


def _count_calls(module: nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_seed_004_sharing_nets() -> None:
    x = torch.randn(1, 1, 8, 8)

    two = zoo.two_convs()
    c1, c2 = _count_calls(two.conv1), _count_calls(two.conv2)
    assert two(x).shape == x.shape
    assert (c1[0], c2[0], unique_params(two)) == (1, 1, 18)

    shared = zoo.shared_conv()
    c1 = _count_calls(shared.conv1)
    assert shared(x).shape == x.shape
    assert (c1[0], unique_params(shared)) == (2, 9)

    unused = zoo.unused_conv()
    c1, c2 = _count_calls(unused.conv1), _count_calls(unused.conv2)
    assert unused(x).shape == x.shape
    assert (c1[0], c2[0]) == (2, 0)
    assert unique_params(unused) == 18
    assert unique_params(unused.conv1) == 9
    assert all(m.bias is None for m in (two.conv1, two.conv2, shared.conv1, unused.conv1))
