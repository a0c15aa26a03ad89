"""Example inputs from sizes, made with a private generator on the model's device."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

InputSize = Sequence[int] | Sequence[Sequence[int]]
DType = torch.dtype | str | Sequence[torch.dtype | str]
_EXAMPLE = "input_size=(1, 3, 224, 224) for one input, or [(1, 16), (1, 16)] for two"


class InputError(ValueError):
    """The inputs given to count() cannot be used; the message says how to fix them."""


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model without tensors)."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def _dim(d: Any, shape: Any) -> int:
    if isinstance(d, bool) or isinstance(d, float):
        raise InputError(f"input_size {shape!r}: dimension {d!r} is not an integer; {_EXAMPLE}")
    try:
        n = operator.index(d)
    except TypeError:
        raise InputError(f"input_size {shape!r}: dimension {d!r} is not an integer; {_EXAMPLE}") from None
    if n < 0:
        raise InputError(f"input_size {tuple(shape)} has a negative dimension {n}")
    return n


def _is_shape(value: Any) -> bool:
    if isinstance(value, torch.Size):
        return True
    return isinstance(value, (tuple, list)) and all(not isinstance(d, (tuple, list, torch.Size)) for d in value)


def normalise_sizes(input_size: Any) -> list[tuple[int, ...]]:
    """``(1, 3, 224, 224)`` or ``[(1, 8), (1, 8)]`` → a list of shapes; anything else is an InputError."""
    if isinstance(input_size, int) and not isinstance(input_size, bool):
        raise InputError(f"input_size={input_size} is one number, not a shape: write ({input_size},) for a 1-d "
                         f"input, or (1, {input_size}) for a batch of one; {_EXAMPLE}")
    if isinstance(input_size, torch.Tensor):
        raise InputError("input_size takes a shape, not a tensor: pass the tensor as inputs=tensor")
    if not isinstance(input_size, (tuple, list, torch.Size)) or len(input_size) == 0:
        raise InputError(f"input_size={input_size!r} is not a shape; {_EXAMPLE}")
    if _is_shape(input_size):
        return [tuple(_dim(d, input_size) for d in input_size)]
    sizes = []
    entries: list[Any] = list(input_size)
    for shape in entries:
        if not _is_shape(shape) or len(shape) == 0:
            raise InputError(f"input_size entry {shape!r} is not a shape; {_EXAMPLE}")
        sizes.append(tuple(_dim(d, shape) for d in shape))
    return sizes


def _dtype(value: Any) -> torch.dtype:
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, str):
        found = getattr(torch, value.removeprefix("torch."), None)
        if isinstance(found, torch.dtype):
            return found
    raise InputError(f"dtype={value!r} is not a torch dtype: use e.g. torch.float32, torch.long or 'float16'")


def dtypes_for(dtype: DType, n: int) -> list[torch.dtype]:
    """One dtype per input: a single dtype (or name) repeats; a sequence must have one per input."""
    if isinstance(dtype, (torch.dtype, str)):
        return [_dtype(dtype)] * n
    if not isinstance(dtype, Sequence):
        raise InputError(f"dtype={dtype!r} is not a torch dtype or a sequence of them")
    found = [_dtype(d) for d in dtype]
    if len(found) != n:
        raise InputError(f"{len(found)} dtypes given for {n} input sizes: give one dtype, or one per input")
    return found


def check_inputs(input_size: InputSize | None, dtype: DType) -> None:
    """Raise InputError now, before anything runs, when `input_size` or `dtype` cannot be used."""
    if input_size is not None:
        dtypes_for(dtype, len(normalise_sizes(input_size)))


def example_inputs(sizes: list[tuple[int, ...]], dtype: DType, device: torch.device,
                   seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random floats (or zeros for integer dtypes, valid token ids) from a private generator."""
    out = []
    for shape, dt in zip(sizes, dtypes_for(dtype, len(sizes))):
        if device.type == "meta" or dt.is_floating_point is False or dt.is_complex:
            t = torch.zeros(shape, dtype=dt, device=device)
        else:
            gen = torch.Generator(device="cpu").manual_seed(seed)
            t = torch.randn(shape, generator=gen, dtype=dt).to(device)
        out.append(t)
    return tuple(out)


def _to_meta(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value if value.device.type == "meta" else value.to("meta")
    if isinstance(value, (tuple, list)):
        return type(value)(_to_meta(v) for v in value) if type(value) in (tuple, list) else value
    if isinstance(value, dict):
        return {k: _to_meta(v) for k, v in value.items()}
    return value


def split_inputs(inputs: Any, device: torch.device | None = None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A tensor, a tuple/list of positional args, or a dict of keyword args → (args, kwargs).

    For a model on the meta device, tensors given on another device are moved to meta (no data is needed).
    """
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    if isinstance(inputs, dict):
        bad = [k for k in inputs if not isinstance(k, str)]
        if bad:
            raise InputError(f"inputs as a dict are keyword arguments, so the keys must be names (str), not "
                             f"{bad[0]!r}; pass positional inputs as a tuple: inputs=(x, y)")
        args, kwargs = (), dict(inputs)
    elif isinstance(inputs, (tuple, list)):
        args, kwargs = tuple(inputs), {}
    else:
        args, kwargs = (inputs,), {}
    if device is not None and device.type == "meta":
        return tuple(_to_meta(a) for a in args), {k: _to_meta(v) for k, v in kwargs.items()}
    return args, kwargs
