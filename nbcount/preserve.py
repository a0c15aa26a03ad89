"""Leave the user's model and process exactly as they were: training flags, buffers, RNG, grad mode."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def _snapshot_buffers(model: nn.Module) -> list[tuple[nn.Module, str, torch.Tensor | None, torch.Tensor | None]]:
    saved = []
    for module in model.modules():
        for name, buf in module._buffers.items():
            copy = None
            if buf is not None and buf.device.type != "meta":
                copy = buf.detach().clone()
            saved.append((module, name, buf, copy))
    return saved


def _restore_buffers(saved: list[tuple[nn.Module, str, torch.Tensor | None, torch.Tensor | None]]) -> None:
    with torch.no_grad():
        for module, name, buf, copy in saved:
            module._buffers[name] = buf
            if buf is not None and copy is not None and not torch.equal(buf, copy):
                buf.copy_(copy)


@contextlib.contextmanager
def preserved(model: nn.Module, mode: str) -> Iterator[None]:
    """Within: the model in `mode` ("eval", "train" or "same"); after: everything restored."""
    flags = [(m, m.training) for m in model.modules()]
    buffers = _snapshot_buffers(model)
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    grad_enabled = torch.is_grad_enabled()
    try:
        if mode in ("eval", "train"):
            model.train(mode == "train")
        yield
    finally:
        torch.set_grad_enabled(grad_enabled)
        for module, flag in flags:
            module.training = flag
        _restore_buffers(buffers)
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
