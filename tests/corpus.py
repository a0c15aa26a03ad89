"""A corpus of real models for op coverage and oracle tests: tiny transformers models built from configs (no
hub), channels-last CNNs and windowed attention. Each builder returns (model, inputs) on a device.

Used by the tests (MoE, findings, coverage) and by scripts/ops_coverage.py, which regenerates docs/ops-coverage.md.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

Case = tuple[nn.Module, Any]
VOCAB = 96
_DECODER = {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 64, "head_dim": 8}
_MOE = {"num_experts_per_tok": 2}

# name -> (model class, config class, config arguments) in transformers
HF_DECODERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "llama": ("LlamaForCausalLM", "LlamaConfig", {"intermediate_size": 48}),
    "mixtral": ("MixtralForCausalLM", "MixtralConfig", {"intermediate_size": 48, "num_local_experts": 4, **_MOE}),
    "qwen2_moe": ("Qwen2MoeForCausalLM", "Qwen2MoeConfig",
                  {"intermediate_size": 48, "moe_intermediate_size": 24, "shared_expert_intermediate_size": 40,
                   "num_experts": 4, "decoder_sparse_step": 1, **_MOE}),
    "olmoe": ("OlmoeForCausalLM", "OlmoeConfig", {"intermediate_size": 24, "num_experts": 4, **_MOE}),
    "qwen3_moe": ("Qwen3MoeForCausalLM", "Qwen3MoeConfig",
                  {"intermediate_size": 48, "moe_intermediate_size": 24, "num_experts": 4, "decoder_sparse_step": 1,
                   **_MOE}),
    "deepseek_v3": ("DeepseekV3ForCausalLM", "DeepseekV3Config",
                    {"intermediate_size": 48, "moe_intermediate_size": 24, "n_routed_experts": 4,
                     "n_shared_experts": 1, "n_group": 2, "topk_group": 1, "first_k_dense_replace": 1,
                     "kv_lora_rank": 16, "q_lora_rank": 24, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8,
                     "v_head_dim": 8, "num_key_value_heads": 4, **_MOE}),
}
MOE = ("mixtral", "qwen2_moe", "olmoe", "qwen3_moe", "deepseek_v3")


def ids(device: str = "cpu", shape: tuple[int, int] = (2, 8)) -> torch.Tensor:
    """Reproducible token ids (real values even for a meta model: they become meta below)."""
    return torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(0)).to(device)


def build(model_cls: Any, config: Any, device: str = "cpu", dtype: torch.dtype = torch.float32) -> nn.Module:
    """Instantiate from a config on `device` (meta: no memory), in eval mode, seeded."""
    context = torch.device("meta") if device == "meta" else contextlib.nullcontext()
    with context, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        model = model_cls(config)
    return model.to(dtype).eval()


def hf_config(name: str, **overrides: Any) -> Any:
    """The tiny transformers config of a decoder in HF_DECODERS."""
    import transformers

    _, config_name, extra = HF_DECODERS[name]
    return getattr(transformers, config_name)(**{**_DECODER, **extra, **overrides})


def hf_decoder(name: str, device: str = "cpu", dtype: torch.dtype = torch.float32, experts: str | None = None,
               **overrides: Any) -> Case:
    """A tiny decoder-only LM from its config, with (2, 8) token ids; `experts` picks transformers' experts code."""
    import transformers

    config = hf_config(name, **overrides)
    if experts is not None:
        config._experts_implementation = experts
    model = build(getattr(transformers, HF_DECODERS[name][0]), config, device, dtype)
    if experts is not None and hasattr(model, "set_experts_implementation"):
        model.set_experts_implementation(experts)
    return model, ids(device)


def bert(device: str = "cpu") -> Case:
    import transformers

    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=48, max_position_embeddings=64)
    return build(transformers.BertModel, config, device), ids(device)


def t5(device: str = "cpu") -> Case:
    import transformers

    config = transformers.T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
                                   decoder_start_token_id=0)
    model = build(transformers.T5ForConditionalGeneration, config, device)
    return model, {"input_ids": ids(device), "decoder_input_ids": ids(device, (2, 4))}


def vit(device: str = "cpu") -> Case:
    import transformers

    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=48)
    return build(transformers.ViTModel, config, device), torch.randn(1, 3, 32, 32, device=device)


def convnext(device: str = "cpu") -> Case:
    """transformers' ConvNeXt: depthwise 7×7 convs, LayerNorm over channels-last permutes, layer scale."""
    import transformers

    config = transformers.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2)
    return build(transformers.ConvNextModel, config, device), torch.randn(1, 3, 32, 32, device=device)


def swin(device: str = "cpu") -> Case:
    """transformers' Swin: shifted windows (roll, window partition views, relative position bias, masks)."""
    import transformers

    config = transformers.SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[2, 1], num_heads=[2, 4],
                                     window_size=4)
    return build(transformers.SwinModel, config, device), torch.randn(1, 3, 32, 32, device=device)


def gpt2_lm(device: str = "cpu") -> Case:
    """transformers' GPT-2 called with labels: the loss (cross-entropy) is part of the forward."""
    import transformers

    config = transformers.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    x = ids(device)
    return build(transformers.GPT2LMHeadModel, config, device), {"input_ids": x, "labels": x}


def channels_last_cnn(device: str = "cpu") -> Case:
    """A small CNN in channels_last memory format: AdaptiveAvgPool runs as_strided_ on the way."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, groups=2), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(16, 10))
    model = model.to(device=device, memory_format=torch.channels_last).eval()
    x = torch.randn(2, 3, 16, 16, device=device).to(memory_format=torch.channels_last)
    return model, x


def torch_layers(device: str = "cpu") -> Case:
    """torch.nn's own composite layers: MultiheadAttention, TransformerEncoder, LSTM, GRU, EmbeddingBag."""
    return _TorchLayers().to(device).eval(), (torch.randn(2, 6, 16, device=device),
                                               torch.randint(0, 20, (2, 6), device=device))


class _TorchLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.mha = nn.MultiheadAttention(16, 4)
        self.lstm = nn.LSTM(16, 8, batch_first=True)
        self.gru = nn.GRU(8, 8, batch_first=True, bidirectional=True)
        self.bag = nn.EmbeddingBag(20, 16, mode="mean")

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        x = self.encoder(x)
        y, _ = self.mha(x, x, x)
        h, _ = self.lstm(y)
        g, _ = self.gru(h)
        return g.sum() + self.bag(tokens).sum()


CORPUS: dict[str, Callable[..., Case]] = {
    **{name: (lambda device="cpu", _n=name: hf_decoder(_n, device)) for name in HF_DECODERS},
    "bert": bert, "t5": t5, "vit": vit, "convnext": convnext, "swin": swin, "gpt2_lm": gpt2_lm,
    "channels_last_cnn": channels_last_cnn, "torch_layers": torch_layers,
}
