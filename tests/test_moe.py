"""Mixture of experts from transformers configs (no hub): exact in fp32, bf16 and on meta, in every execution mode.

Oracles: parameters = unique ``numel``; MACs = FlopCounterMode over a real CPU run of the same model with
transformers' eager experts and eager attention (plain mm / bmm it has formulas for), and arithmetic over named
dims for a Mixtral-8x7B shape on meta. transformers' default experts code (``grouped_mm``) sorts the routed
(token, expert) pairs and runs ``aten._grouped_mm`` over them: its MACs are routed rows × K × N whatever the
routing, which is why nbcount counts it exactly without data (fake or meta) as well as with.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import nbcount

transformers = pytest.importorskip("transformers")

import corpus  # noqa: E402  (tests/ is on sys.path under pytest)


def unique_numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def flop_counter_macs(name: str) -> int:
    """FlopCounterMode on a real fp32 run with eager experts (a loop of F.linear) and eager attention (matmuls)."""
    model, ids = corpus.hf_decoder(name, "cpu", torch.float32, experts="eager")
    model.set_attn_implementation("eager")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(ids)
    return counter.get_total_flops() // 2


@pytest.fixture(scope="module")
def oracles() -> dict[str, int]:
    return {name: flop_counter_macs(name) for name in corpus.MOE}


CASES = [("cpu", torch.bfloat16, "auto", "fake"), ("cpu", torch.float32, "auto", "fake"),
         ("cpu", torch.float32, "real", "real"), ("meta", torch.bfloat16, "auto", "meta"),
         ("meta", torch.float32, "auto", "meta")]


@pytest.mark.parametrize("name", corpus.MOE)
@pytest.mark.parametrize(("device", "dtype", "execution", "ran"), CASES)
def test_moe_counts_every_routed_token_exactly(name: str, device: str, dtype: torch.dtype, execution: str,
                                               ran: str, oracles: dict[str, int]) -> None:
    model, ids = corpus.hf_decoder(name, device, dtype)
    assert model.config._experts_implementation == "grouped_mm"  # transformers' default experts code
    report = nbcount.count(model, inputs=ids, execution=execution)
    assert report.trace.execution == ran
    assert report.status == "complete", report.uncounted_ops
    assert report.total_params == unique_numel(model)
    assert report.total_macs == oracles[name]


def test_the_routed_rows_are_tokens_times_top_k() -> None:
    """Each _grouped_mm row is one (token, expert) pair: M = batch·sequence·top_k, with K, N the expert's dims."""
    model, ids = corpus.hf_decoder("mixtral", "meta", torch.bfloat16)
    report = nbcount.count(model, inputs=ids)
    config = model.config
    tokens, k = ids.numel(), config.num_experts_per_tok
    h, i = config.hidden_size, config.intermediate_size
    steps = [s for r in report.rows for op, cost in r.costs if op == "aten._grouped_mm" for s in cost]
    assert [dict(s.symbols) for s in steps] == [{"M": tokens * k, "K": h, "P": 2 * i},
                                                 {"M": tokens * k, "K": i, "P": h}] * config.num_hidden_layers
    histc = [s for r in report.rows for op, cost in r.costs if op == "aten.histc" for s in cost]
    assert [s.value for s in histc] == [tokens * k] * config.num_hidden_layers


@pytest.mark.parametrize("experts", ["batched_mm", "eager"])
def test_other_experts_code_counts_the_same(experts: str, oracles: dict[str, int]) -> None:
    """batched_mm (bmm over the routed pairs) runs without data; eager loops over experts with nonzero(), which
    needs values: under fake tensors the count falls back to real arithmetic and says so."""
    model, ids = corpus.hf_decoder("mixtral", "cpu", torch.float32, experts=experts)
    report = nbcount.count(model, inputs=ids)
    assert report.total_macs == oracles["mixtral"] and report.status == "complete"
    assert report.trace.execution == ("fake" if experts == "batched_mm" else "real")
    if experts == "eager":
        assert any("real arithmetic" in d.message for d in report.diagnostics)


def test_mixtral_8x7b_shape_on_meta_is_exact() -> None:
    """Mixtral-8x7B (32 layers, d 4096, 8 experts of 14336, top-2, GQA 32/8 heads, vocab 32000) on meta, bf16."""
    config = transformers.MixtralConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336,
                                        num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                                        num_local_experts=8, num_experts_per_tok=2, max_position_embeddings=4096)
    model = corpus.build(transformers.MixtralForCausalLM, config, "meta", torch.bfloat16)
    layers, tokens, d, inner, vocab, heads, kv, hd, experts, top = 32, 128, 4096, 14336, 32000, 32, 8, 128, 8, 2
    report = nbcount.count(model, inputs=torch.zeros(1, tokens, dtype=torch.long, device="meta"))
    attention = tokens * d * heads * hd + 2 * tokens * d * kv * hd + tokens * heads * hd * d \
        + 2 * heads * tokens * tokens * hd  # projections, then q·kᵀ and p·v (dense, GQA broadcast)
    per_layer = attention + tokens * d * experts + tokens * top * 3 * d * inner  # router, 2 of 8 SwiGLU experts
    assert report.status == "complete"
    assert report.total_macs == layers * per_layer + tokens * d * vocab
    assert report.total_params == unique_numel(model) == 46_702_792_704  # the published 46.7B
