"""Example inputs from sizes, made with a private generator on the model's device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

InputSize = Sequence[int] | Sequence[Sequence[int]]


class InputError(ValueError):
    """The inputs given to count() cannot be used; the message says how to fix them."""


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model without tensors)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def normalise_sizes(input_size: InputSize) -> list[tuple[int, ...]]:
    """``(1, 3, 224, 224)`` or ``[(1, 8), (1, 8)]`` → a list of shapes."""
    if isinstance(input_size, torch.Size) or (input_size and all(isinstance(d, int) for d in input_size)):
        sizes = [tuple(int(d) for d in input_size)]  # type: ignore[union-attr]
    else:
        sizes = [tuple(int(d) for d in s) for s in input_size]  # type: ignore[union-attr]
    for s in sizes:
        if any(d < 0 for d in s):
            raise InputError(f"input_size {s} has a negative dimension")
    return sizes


def example_inputs(sizes: list[tuple[int, ...]], dtype: torch.dtype | Sequence[torch.dtype],
                   device: torch.device, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random floats (or zeros for integer dtypes, valid token ids) from a private generator."""
    dtypes = list(dtype) if isinstance(dtype, Sequence) else [dtype] * len(sizes)
    if len(dtypes) != len(sizes):
        raise InputError(f"{len(dtypes)} dtypes given for {len(sizes)} input sizes")
    out = []
    for shape, dt in zip(sizes, dtypes):
        if device.type == "meta" or dt.is_floating_point is False or dt.is_complex:
            t = torch.zeros(shape, dtype=dt, device=device)
        else:
            gen = torch.Generator(device="cpu").manual_seed(seed)
            t = torch.randn(shape, generator=gen, dtype=dt).to(device)
        out.append(t)
    return tuple(out)


def split_inputs(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A tensor, a tuple/list of positional args, or a dict of keyword args → (args, kwargs)."""
    if isinstance(inputs, dict):
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    return (inputs,), {}
