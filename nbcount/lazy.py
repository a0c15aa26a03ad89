"""Lazy modules (``nn.LazyLinear``, ``nn.LazyConv2d``, …): counted as they will be after their first forward.

A lazy parameter gets its shape from the first input it sees, and that first forward pass changes the
module (it becomes an ``nn.Linear``). Counting must not do that to the user's model, so nbcount counts a
*stand-in*: a copy whose tensors live on the ``meta`` device (no memory, no data), whose lazy modules are
materialised by one forward pass on meta inputs of the same shapes. The user's model, its uninitialised
parameters, training flag and the RNG state stay exactly as they were.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy

from nbcount.inputs import example_inputs, normalise_sizes, split_inputs
from nbcount.labels import layer_label
from nbcount.types import Diagnostic

if TYPE_CHECKING:
    from nbcount.report import Report

META = torch.device("meta")


def lazy_names(model: nn.Module) -> list[str]:
    """Names of the parameters and buffers that are still uninitialised (lazy)."""
    return [name for name, t in (*model.named_parameters(), *model.named_buffers()) if is_lazy(t)]


def has_lazy(model: Any) -> bool:
    """Whether `model` is an nn.Module with uninitialised (lazy) parameters or buffers."""
    return isinstance(model, nn.Module) and bool(lazy_names(model))


def _meta_memo(model: nn.Module) -> dict[int, Any]:
    """deepcopy memo: every parameter and buffer replaced by a meta tensor (lazy ones by new lazy ones on meta)."""
    memo: dict[int, Any] = {}
    for p in model.parameters():
        if is_lazy(p):
            memo[id(p)] = UninitializedParameter(requires_grad=p.requires_grad, device=META, dtype=p.dtype)
        else:
            memo[id(p)] = nn.Parameter(p.detach().to(META), requires_grad=p.requires_grad)
    for b in model.buffers():
        lazy = UninitializedBuffer(requires_grad=False, device=META, dtype=b.dtype) if is_lazy(b) else None  # type: ignore[call-arg]
        memo[id(b)] = lazy if lazy is not None else b.detach().to(META)
    return memo


def stand_in(model: nn.Module, input_size: Any, inputs: Any, dtype: Any, mode: str) -> nn.Module:
    """A meta copy of `model` with its lazy modules materialised by one forward pass on meta inputs."""
    copied = copy.deepcopy(model, _meta_memo(model))
    if mode != "same":
        copied.train(mode == "train")
    if inputs is not None:
        args, kwargs = split_inputs(inputs, META)
    else:
        args, kwargs = example_inputs(normalise_sizes(input_size), dtype, META), {}
    rng = torch.get_rng_state()
    try:
        with torch.no_grad():
            copied(*args, **kwargs)
    except Exception as error:
        left = ", ".join(lazy_names(copied)[:3])
        raise TypeError(f"{type(model).__name__} has lazy modules ({left or 'uninitialised parameters'}) and "
                        f"materialising them on a meta copy failed ({type(error).__name__}: {error}). Run one "
                        "forward pass on an example input first (model(x)), then count it.") from error
    finally:
        torch.set_rng_state(rng)
    return copied


def count_lazy(count: Callable[..., Report], model: nn.Module, input_size: Any = None, *, inputs: Any = None,
               dtype: Any = torch.float32, mode: str | None = None, training: bool = False, **options: Any) -> Report:
    """count() of a materialised meta stand-in of `model`; the report notes which modules were lazy."""
    names = lazy_names(model)
    copied = stand_in(model, input_size, inputs, dtype, mode or ("train" if training else "eval"))
    report = count(copied, input_size, inputs=inputs, dtype=dtype, mode=mode, training=training, **options)
    paths = list(dict.fromkeys(n.rpartition(".")[0] for n in names))
    modules = [layer_label(p, 0, type(model.get_submodule(p)).__name__) for p in paths]
    listed = ", ".join(modules[:4]) + (", …" if len(modules) > 4 else "")
    plural = "s" if len(modules) > 1 else ""
    note = Diagnostic("note", f"lazy module{plural} {listed} counted with the parameters the first forward pass on "
                      "these inputs creates; your model is unchanged (still uninitialised): nbcount counted a "
                      "materialised copy on the meta device", tuple(paths))
    return dataclasses.replace(report, diagnostics=(*report.diagnostics, note))
