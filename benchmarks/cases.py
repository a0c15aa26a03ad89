"""The models and inputs of the benchmark: the zoo at the sizes issue #6 names, a 2,000-layer MLP, and
Llama decoders built on ``meta`` (those run in a fresh process, for their peak RSS)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nbcount import zoo


class DeepMLP(nn.Module):
    """`depth` Linear(width, width) layers with a functional ReLU between them: depth + 1 report rows."""

    def __init__(self, depth: int = 2000, width: int = 256):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


@dataclass(frozen=True)
class Case:
    """One model at one input size, counted in this process."""

    key: str
    title: str
    build: Callable[[], nn.Module]
    shape: tuple[int, ...]
    vocab: int = 0  # > 0: the input is token ids below this

    def make_input(self) -> torch.Tensor:
        """The input tensor, from a private generator (the benchmark never touches the global RNG)."""
        gen = torch.Generator().manual_seed(0)
        if self.vocab:
            return torch.randint(0, self.vocab, self.shape, generator=gen)
        return torch.randn(self.shape, generator=gen)


@dataclass(frozen=True)
class BigCase:
    """A Llama decoder built under ``torch.device("meta")``, counted in a fresh process."""

    key: str
    title: str
    preset: str
    tokens: int


CASES: tuple[Case, ...] = (
    Case("resnet50_224", "ResNet-50 1×3×224²", zoo.resnet50, (1, 3, 224, 224)),
    Case("resnet50_448x16", "ResNet-50 16×3×448²", zoo.resnet50, (16, 3, 448, 448)),
    Case("unet_512", "UNet 1×1×512²", zoo.unet, (1, 1, 512, 512)),
    Case("vit_b_16", "ViT-B/16 1×3×224²", zoo.vit_b_16, (1, 3, 224, 224)),
    Case("gpt2_1024", "GPT-2 1×1024 tokens", zoo.gpt2, (1, 1024), vocab=50257),
    Case("mlp_2000", "MLP, 2,000 Linear layers, 1×256", DeepMLP, (1, 256)),
)

BIG_CASES: tuple[BigCase, ...] = (
    BigCase("llama_7b", "Llama-2-7B on meta, 1×4096 tokens", "7b", 4096),
    BigCase("llama_70b", "Llama-2-70B shape on meta, 1×4096 tokens", "70b", 4096),
)

QUICK_CASES: tuple[Case, ...] = (
    Case("lenet", "LeNet-5 1×1×28²", zoo.lenet, (1, 1, 28, 28)),
    Case("mlp_50", "MLP, 50 Linear layers, 1×64", lambda: DeepMLP(50, 64), (1, 64)),
    Case("llama_tiny", "Llama tiny 1×16 tokens", zoo.llama_tiny, (1, 16), vocab=256),
)

QUICK_BIG_CASES: tuple[BigCase, ...] = (BigCase("llama_tiny_meta", "Llama tiny on meta, 1×64 tokens", "tiny", 64),)

#: the case whose report feeds the DataFrame + widget timing
WIDE_CASE = {"full": "mlp_2000", "quick": "mlp_50"}
