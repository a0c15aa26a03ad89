"""KV-cache found from the trace, and the exact scaling fit, against hand arithmetic and fresh counts."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from torch import nn

import nbcount
from nbcount import zoo
from nbcount.scaling import fit_polynomial
from nbcount.serving import attention_sites
from nbcount.zoo.llama import LlamaConfig, llama


def _on_meta(build: object) -> nn.Module:
    with torch.device("meta"):
        return build()  # type: ignore[operator, no-any-return]


@pytest.fixture(scope="module")
def llama_7b_report() -> nbcount.Report:
    return nbcount.count(_on_meta(zoo.llama_7b), (1, 8), dtype=torch.long)


# --- KV-cache --------------------------------------------------------------------------------------

def test_llama_7b_kv_cache_at_4k_tokens_fp16_is_2_gib(llama_7b_report: nbcount.Report) -> None:
    kv = llama_7b_report.kv_cache_bytes(4096, dtype=torch.float16)
    layers, kv_heads, head_dim, tokens, fp16 = 32, 32, 128, 4096, 2
    assert kv == 2 * layers * kv_heads * head_dim * tokens * fp16 == 2_147_483_648 == 2 * 2**30
    assert kv.derivation.value == kv
    assert "2·L·H_kv·d·T·B·b" in kv.derivation.to_text()
    assert llama_7b_report.kv_cache_bytes(4096, batch=3, dtype="bfloat16") == 3 * kv


def test_gqa_caches_only_the_key_value_heads() -> None:
    cfg = LlamaConfig(dim=512, n_layers=3, n_heads=8, n_kv_heads=2, ffn_dim=1024, vocab_size=64)
    gqa = nbcount.count(_on_meta(lambda: llama(cfg)), (1, 8), dtype=torch.long)
    mha = nbcount.count(_on_meta(lambda: llama(LlamaConfig(dim=512, n_layers=3, n_heads=8, n_kv_heads=8,
                                                           ffn_dim=1024, vocab_size=64))), (1, 8), dtype=torch.long)
    head_dim = 512 // 8
    assert gqa.kv_cache_bytes(1000, dtype=torch.float16) == 2 * 3 * 2 * head_dim * 1000 * 2
    assert mha.kv_cache_bytes(1000, dtype=torch.float16) == 2 * 3 * 8 * head_dim * 1000 * 2
    sites = attention_sites(gqa)
    assert [(s.heads, s.kv_heads, s.head_dim) for s in sites] == [(8, 2, head_dim)] * 3


def test_llama_70b_gqa_on_meta() -> None:
    report = nbcount.count(_on_meta(zoo.llama_70b), (1, 4), dtype=torch.long)
    assert report.kv_cache_bytes(4096, dtype=torch.float16) == 2 * 80 * 8 * 128 * 4096 * 2


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_gpt2_multi_head_cache_from_fused_qkv(device: str) -> None:
    model = _on_meta(zoo.gpt2) if device == "meta" else zoo.gpt2(n_layer=2, n_embd=64, n_head=4, vocab=100)
    layers, width = (12, 768) if device == "meta" else (2, 64)
    report = nbcount.count(model, (1, 8), dtype=torch.long)
    assert report.kv_cache_bytes(1024) == 2 * layers * width * 1024 * 4  # the counted dtype: float32


def test_kv_cache_from_a_training_count_and_with_overrides() -> None:
    report = nbcount.count(zoo.llama_tiny(), (2, 16), dtype=torch.long, training=True)
    cfg = zoo.llama_config("tiny")
    assert report.kv_cache_bytes(64, dtype=torch.float16) == 2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * 64 * 2
    assert report.kv_cache_bytes(64, dtype=torch.float16, n_kv_heads=1) == 2 * cfg.n_layers * cfg.head_dim * 64 * 2


def test_no_attention_is_an_error_unless_everything_is_given() -> None:
    report = nbcount.count(nn.Linear(4, 4), (1, 4))
    with pytest.raises(ValueError, match="no attention"):
        report.kv_cache_bytes(16)
    given = report.kv_cache_bytes(16, dtype=torch.float16, n_layers=2, n_kv_heads=3, head_dim=8)
    assert given == 2 * 2 * 3 * 8 * 16 * 2


# --- scaling -----------------------------------------------------------------------------------------

def test_fit_polynomial_is_exact_or_refuses() -> None:
    xs = [1, 2, 3, 5, 8]
    assert fit_polynomial(xs, [7 * x * x + 3 * x + 1 for x in xs]) == (1, 3, 7)
    assert fit_polynomial(xs, [x * (x + 1) // 2 for x in xs]) == (0, Fraction(1, 2), Fraction(1, 2))
    assert fit_polynomial(xs, [2**x for x in xs]) is None


def test_transformer_macs_are_exactly_a_l_plus_b_l_squared() -> None:
    layers, d, heads, vocab = 2, 64, 4, 100
    model = zoo.gpt2(n_layer=layers, n_embd=d, n_head=heads, vocab=vocab, n_positions=64)
    fit = nbcount.count(model, (1, 32), dtype=torch.long).scaling(convention="macs")
    assert fit.coefficients == (0, layers * 12 * d * d + d * vocab, layers * 2 * d)  # weights·L + attention·L²
    assert fit.crossover() == -(-(layers * 12 * d * d + d * vocab) // (layers * 2 * d))  # ⌈a/b⌉: b·L² ≥ a·L
    for held_out in (7, 41, 64):  # sizes the fit never saw
        assert fit(held_out) == nbcount.count(model, (1, held_out), dtype=torch.long, convention="macs").total_macs
    assert all("counted: the same" in s.note for s in fit.derivation.steps[:len(fit.sizes)])


def test_resolution_fit_of_a_cnn_reproduces_a_size_it_was_not_fitted_on() -> None:
    model = zoo.resnet18()
    fit = nbcount.count(model, (1, 3, 64, 64)).scaling(sizes=[32, 64, 96, 128, 160])
    assert fit.degree == 2 and fit.variable == "R"
    assert fit(224) == nbcount.count(model, (1, 3, 224, 224)).total_flops


def test_scaling_of_a_training_count_fits_the_training_step() -> None:
    model = zoo.gpt2(n_layer=1, n_embd=32, n_head=2, vocab=50, n_positions=32)
    report = nbcount.count(model, (1, 16), dtype=torch.long, training=True)
    fit = report.scaling(sizes=[4, 8, 12, 16], convention="macs")
    again = nbcount.count(model, (1, 9), dtype=torch.long, training=True)
    assert fit(9) == again.forward_macs + again.backward_macs
    assert fit.chart() is not None


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_a_bf16_cache_is_two_bytes_per_element_on_meta_too(device: str) -> None:
    """2·L·H_kv·d·T·B·2 bytes for a bf16 GQA decoder (2 layers, 2 K/V heads of 16): meta's attention upcasts K and V
    to fp32 for its products, the cache keeps the layer's dtype."""
    cfg = LlamaConfig(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=96, vocab_size=32, max_seq_len=64)
    with torch.device(device):
        model = llama(cfg).to(torch.bfloat16)
    report = nbcount.count(model, (1, 8), dtype=torch.long)
    assert int(report.kv_cache_bytes(40)) == 2 * 2 * 2 * 16 * 40 * 1 * 2
    assert int(report.kv_cache_bytes(40, dtype=torch.float32)) == 2 * 2 * 2 * 16 * 40 * 1 * 4  # asked for: as asked
