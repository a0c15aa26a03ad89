"""Hugging Face models built from configs (no hub): on meta they run fake over meta, so transformers takes its
fake-tensor path (padded masks, internal masks); serving counts read and never change the caller's cache."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils.flop_counter import FlopCounterMode

import nbcount

transformers = pytest.importorskip("transformers")
T = transformers


def bert() -> nn.Module:
    return T.BertModel(T.BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=64, max_position_embeddings=32, attn_implementation="eager"))


def bart() -> nn.Module:
    return T.BartModel(T.BartConfig(vocab_size=64, d_model=32, encoder_layers=1, decoder_layers=1,
                                    encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                                    decoder_ffn_dim=64, max_position_embeddings=32, attn_implementation="eager"))


def t5() -> nn.Module:
    return T.T5Model(T.T5Config(vocab_size=64, d_model=32, d_kv=16, d_ff=64, num_layers=1, num_decoder_layers=1,
                                num_heads=2, attn_implementation="eager"))


def llama(attention: str = "eager") -> nn.Module:
    config = T.LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    config._attn_implementation = attention
    return T.LlamaForCausalLM(config)


def padded(encoder_decoder: bool) -> dict[str, torch.Tensor]:
    ids = torch.randint(3, 60, (2, 8), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[0, :3] = 0  # left padding: transformers reads the mask's values unless the tensors are fake
    inputs = {"input_ids": ids, "attention_mask": mask}
    if encoder_decoder:
        inputs["decoder_input_ids"] = ids
    return inputs


@pytest.mark.parametrize(("build", "encoder_decoder"), [(bert, False), (bart, True), (t5, True), (llama, False)])
def test_meta_built_model_with_a_padded_mask_counts_like_its_cpu_twin(build: Callable[[], nn.Module],
                                                                      encoder_decoder: bool) -> None:
    """Oracle: FlopCounterMode on the eager-attention CPU twin (2 FLOPs per multiply-accumulate, matmuls only)."""
    torch.manual_seed(0)
    cpu = build().eval()
    with torch.device("meta"):
        meta = build().eval()
    inputs = padded(encoder_decoder)
    report = nbcount.count(meta, inputs=inputs)
    assert report.trace.execution == "meta" and report.status == "complete"
    assert report.total_params == sum(p.numel() for p in cpu.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        cpu(**inputs)
    assert report.total_macs == counter.get_total_flops() // 2
    assert all(p.device.type == "meta" for p in meta.parameters())


# --- serving -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_kv_cache_bytes_of_an_hf_decoder_counted_with_its_cache(attention: str) -> None:
    """use_cache=True (the default) puts transformers' DynamicCache in the forward: its empty placeholder is
    not the cached key. Oracle: 2·L·H_kv·d·T·B·bytes from the config."""
    model = llama(attention).eval()
    report = nbcount.count(model, inputs={"input_ids": torch.zeros(2, 8, dtype=torch.long)})
    config = model.config
    head_dim = config.hidden_size // config.num_attention_heads
    expected = 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * 100 * 4
    assert report.kv_cache_bytes(100) == expected
    assert report.kv_cache_bytes(100, batch=3, dtype=torch.float16) == 3 * expected // 2


def cache_state(cache: Any) -> list[tuple[Any, ...]]:
    return [(layer.keys, layer.keys.clone(), layer.values, layer.values.clone()) for layer in cache.layers]


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("execution", ["auto", "real"])
def test_counting_one_decode_step_leaves_the_callers_cache_alone(execution: str) -> None:
    """A decode step counted with past_key_values: the cache's tensors are the same objects with the same
    values, nothing fake is left in it, the next real decode works; the step is counted at T + 1 keys."""
    model = llama().eval()
    prompt = torch.randint(0, 128, (2, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        cache = model(input_ids=prompt, use_cache=True).past_key_values
    before = cache_state(cache)
    step = torch.randint(0, 128, (2, 1), generator=torch.Generator().manual_seed(2))
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"  # as README
    report = nbcount.count(model, inputs={"input_ids": step, name: cache}, execution=execution)
    for (keys, key_values, values, value_values), layer in zip(before, cache.layers):
        assert layer.keys is keys and layer.values is values
        assert torch.equal(layer.keys, key_values) and torch.equal(layer.values, value_values)
        assert type(layer.keys) is torch.Tensor and not isinstance(layer.values, FakeTensor)
    assert cache.get_seq_length() == 8
    config = model.config
    head_dim = config.hidden_size // config.num_attention_heads
    d, kv_width, ffn = config.hidden_size, config.num_key_value_heads * head_dim, config.intermediate_size
    layers, heads, batch, new, total = config.num_hidden_layers, config.num_attention_heads, 2, 1, 9
    per_token = d * d + d * kv_width + d * kv_width + d * d + 3 * d * ffn  # q, k, v, o; gate, up, down
    attention = 2 * batch * heads * new * total * head_dim  # q·kᵀ and p·v over the 8 cached keys + 1 new
    assert report.total_macs == layers * (batch * new * per_token + attention) + batch * new * d * config.vocab_size
    assert report.kv_cache_bytes(100) == 2 * layers * config.num_key_value_heads * head_dim * 100 * 4
    with torch.no_grad():
        model(input_ids=step, past_key_values=cache, use_cache=True)
    assert cache.get_seq_length() == 9


def qwen2_vl() -> nn.Module:
    config = T.Qwen2VLConfig(
        text_config=dict(vocab_size=200, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, in_channels=3,
                           patch_size=2, spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=199, vision_start_token_id=197, vision_end_token_id=198)
    for c in (config, config.text_config, config.vision_config):
        c._attn_implementation = "eager"
    return T.Qwen2VLForConditionalGeneration(config).eval()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_vision_language_model_reading_its_grid_values_is_counted_with_real_arithmetic() -> None:
    """Qwen2-VL's vision tower calls ``image_grid_thw.tolist()``: the run without data fails there, and the
    count runs again with real arithmetic. Oracle: FlopCounterMode on the same eager model."""
    torch.manual_seed(0)
    model = qwen2_vl()
    patches, image_tokens = 16, 16 // 4  # a 4×4 grid of patches, merged 2×2
    ids = torch.tensor([[5, 197] + [199] * image_tokens + [198, 7, 8]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "mm_token_type_ids": (ids == 199).long(),
              "pixel_values": torch.randn(patches, 3 * 2 * 2 * 2), "image_grid_thw": torch.tensor([[1, 4, 4]])}
    report = nbcount.count(model, inputs=inputs)
    assert report.trace.execution == "real"
    assert any("real arithmetic" in d.message and "model.visual" in d.message for d in report.diagnostics)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(**inputs)
    assert report.total_macs == counter.get_total_flops() // 2
