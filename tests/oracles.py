"""Independent oracles the tests compare nbcount with: PyTorch's own FlopCounterMode and parameter counts.

Nothing here imports nbcount. ``conftest.py`` exposes them as fixtures too; modules import them directly
(tests/ is on sys.path under pytest).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _call(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def _to_meta(inputs: Any) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.to("meta")
    if isinstance(inputs, dict):
        return {k: _to_meta(v) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_to_meta(v) for v in inputs)
    return inputs


def torch_flops(model: nn.Module, inputs: Any, *, meta: bool = False, grad: bool = False) -> int:
    """FlopCounterMode's total for one forward of `model` on `inputs` (a tensor, a tuple or a dict of keyword
    arguments). meta=True: on a deep copy moved to the meta device (torch's formulas, no arithmetic run);
    grad=True: with autograd enabled (some ops, e.g. attention, then decompose into the matmuls torch counts)."""
    if meta:
        model, inputs = copy.deepcopy(model).to("meta"), _to_meta(inputs)
    with FlopCounterMode(display=False) as counter, torch.set_grad_enabled(grad):
        _call(model, inputs)
    return int(counter.get_total_flops())


def torch_macs(model: nn.Module, inputs: Any, *, meta: bool = False, grad: bool = False) -> int:
    """Half of FlopCounterMode's total: torch counts 2 FLOPs per multiply-accumulate of mm / bmm / conv / SDPA."""
    return torch_flops(model, inputs, meta=meta, grad=grad) // 2


def unique_params(model: nn.Module) -> int:
    """Elements of the model's parameters, each tensor once (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
