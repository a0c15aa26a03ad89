"""Model zoo: the seed-document models and well-known architectures in plain torch.nn.

``ZOO`` maps a name to a zero-argument constructor; ``example_input_size(name)``
gives the canonical input shape and ``example_input(name)`` a tensor of that shape
(token ids for the language models). Build ``llama_7b`` and ``llama_70b`` under
``with torch.device("meta"):`` (they hold 27 GB and 276 GB of float32 weights).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nbcount.zoo.cnn import alexnet, alexnet_torchvision, dcgan_discriminator, lenet, unet, vgg16
from nbcount.zoo.llama import (
    LLAMA_PRESETS,
    Llama,
    LlamaConfig,
    llama,
    llama_7b,
    llama_70b,
    llama_config,
    llama_tiny,
)
from nbcount.zoo.resnet import mobilenet_v2, resnet18, resnet50
from nbcount.zoo.sharing import shared_conv, two_convs, unused_conv
from nbcount.zoo.transformer import gpt2, vit_b_16

__all__ = [
    "INPUT_SIZES",
    "LLAMA_PRESETS",
    "TOKEN_MODELS",
    "ZOO",
    "Llama",
    "LlamaConfig",
    "alexnet",
    "alexnet_torchvision",
    "dcgan_discriminator",
    "example_input",
    "example_input_size",
    "gpt2",
    "lenet",
    "llama",
    "llama_7b",
    "llama_70b",
    "llama_config",
    "llama_tiny",
    "mobilenet_v2",
    "resnet18",
    "resnet50",
    "shared_conv",
    "two_convs",
    "unet",
    "unused_conv",
    "vgg16",
    "vit_b_16",
]

ZOO: dict[str, Callable[[], nn.Module]] = {
    "lenet": lenet,
    "dcgan_discriminator": dcgan_discriminator,
    "alexnet": alexnet,
    "alexnet_torchvision": alexnet_torchvision,
    "vgg16": vgg16,
    "unet": unet,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "vit_b_16": vit_b_16,
    "gpt2": gpt2,
    "llama_tiny": llama_tiny,
    "llama_7b": llama_7b,
    "llama_70b": llama_70b,
    "two_convs": two_convs,
    "shared_conv": shared_conv,
    "unused_conv": unused_conv,
}

INPUT_SIZES: dict[str, tuple[int, ...]] = {
    "lenet": (1, 1, 28, 28),
    "dcgan_discriminator": (1, 3, 64, 64),
    "alexnet": (1, 3, 227, 227),
    "alexnet_torchvision": (1, 3, 224, 224),
    "vgg16": (1, 3, 224, 224),
    "unet": (1, 1, 256, 256),
    "resnet18": (1, 3, 224, 224),
    "resnet50": (1, 3, 224, 224),
    "mobilenet_v2": (1, 3, 224, 224),
    "vit_b_16": (1, 3, 224, 224),
    "gpt2": (1, 1024),
    "llama_tiny": (1, 16),
    "llama_7b": (1, 4096),
    "llama_70b": (1, 4096),
    "two_convs": (1, 1, 512, 512),
    "shared_conv": (1, 1, 512, 512),
    "unused_conv": (1, 1, 512, 512),
}

#: Models whose input is a (batch, sequence) tensor of token ids rather than an image.
TOKEN_MODELS: frozenset[str] = frozenset({"gpt2", "llama_tiny", "llama_7b", "llama_70b"})

_VOCAB: dict[str, int] = {
    "gpt2": 50257,
    "llama_tiny": LLAMA_PRESETS["tiny"].vocab_size,
    "llama_7b": LLAMA_PRESETS["7b"].vocab_size,
    "llama_70b": LLAMA_PRESETS["70b"].vocab_size,
}


def example_input_size(name: str) -> tuple[int, ...]:
    """Canonical input shape of the zoo model ``name``."""
    return INPUT_SIZES[name]


def example_input(name: str, device: torch.device | str | None = None) -> torch.Tensor:
    """A reproducible example input for ``name``: a random image or random token ids."""
    size = INPUT_SIZES[name]
    gen = torch.Generator().manual_seed(0)
    if name in TOKEN_MODELS:
        x = torch.randint(0, _VOCAB[name], size, generator=gen, dtype=torch.long)
    else:
        x = torch.randn(size, generator=gen)
    return x if device is None else x.to(device)
