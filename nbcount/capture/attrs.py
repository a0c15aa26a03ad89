"""What capture reads from modules and values: hyper-parameters, class names, the tensors inside a value."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

HYPERPARAMS = (
    "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "output_padding",
    "padding_mode", "transposed", "in_features", "out_features", "in1_features", "in2_features", "num_features",
    "eps", "momentum", "affine", "track_running_stats", "normalized_shape", "elementwise_affine", "num_groups",
    "num_channels", "num_embeddings", "embedding_dim", "padding_idx", "mode", "input_size", "hidden_size",
    "num_layers", "bidirectional", "batch_first", "proj_size", "bias", "scale_factor", "size", "align_corners",
    "output_size", "ceil_mode", "count_include_pad", "divisor_override", "return_indices", "embed_dim",
    "num_heads", "kdim", "vdim", "dim", "negative_slope", "p", "approximate", "start_dim", "end_dim",
    "upscale_factor", "num_parameters", "beta", "threshold", "min_val", "max_val", "alpha", "lambd",
    "add_zero_attn",
)


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return True
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list, torch.Size)):
        return tuple(_plain(v) for v in value)
    return str(value)


_ORDER = {name: i for i, name in enumerate(HYPERPARAMS)}


def hyperparams(module: nn.Module) -> tuple[tuple[str, Any], ...]:
    """The module's configuration attributes as plain values (a tensor attribute becomes True)."""
    names = _ORDER.keys() & {*module.__dict__, *module._parameters.keys(), *module._buffers.keys()}
    return tuple((name, _plain(getattr(module, name, None))) for name in sorted(names, key=_ORDER.__getitem__))


def tensors_of(value: Any, depth: int = 0) -> list[torch.Tensor]:
    """The tensors inside nested tuples, lists, dicts and dataclasses, in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if depth > 6:
        return []
    if isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif hasattr(value, "__dataclass_fields__"):
        items = [getattr(value, f) for f in value.__dataclass_fields__]
    else:
        return []
    return [t for v in items for t in tensors_of(v, depth + 1)]


def class_names(module: nn.Module) -> tuple[str, ...]:
    """Qualified names of the module's classes, most derived first (what rules are looked up by)."""
    return _class_names(type(module))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=4096)
def _class_names(cls: type) -> tuple[str, ...]:
    return tuple(f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__)


def forward_owner(module: nn.Module) -> str:
    """The class that defines the forward that runs (module rules describe their own class's forward only)."""
    if "forward" in module.__dict__:  # a forward set on the instance replaces every class's
        return "<instance>"
    return _forward_owner(type(module))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=4096)
def _forward_owner(cls: type) -> str:
    owner = next((c for c in cls.__mro__ if "forward" in c.__dict__), cls)
    return f"{owner.__module__}.{owner.__qualname__}"
