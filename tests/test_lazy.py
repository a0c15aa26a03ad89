"""Lazy modules are counted with the parameters their first forward pass creates, on a meta copy:
the user's model stays uninitialised and unchanged (parameters, buffers, training flag, RNG state).

Oracles: the same network written with explicit sizes (nn.Linear(in_features, ...)) counted directly,
and sum(p.numel()) of a real materialised copy."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

import nbcount


def lazy_net() -> nn.Module:
    return nn.Sequential(nn.LazyConv2d(8, 3), nn.LazyBatchNorm2d(), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))


def explicit_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 14 * 14, 10))


def test_lazy_model_counts_like_its_explicit_twin() -> None:
    lazy, explicit = nbcount.count(lazy_net(), (2, 3, 16, 16)), nbcount.count(explicit_net(), (2, 3, 16, 16))
    assert lazy.total_params == explicit.total_params == sum(p.numel() for p in explicit_net().parameters())
    assert lazy.total_macs == explicit.total_macs and lazy.total_flops == explicit.total_flops
    assert list(lazy.table["output_shape"]) == list(explicit.table["output_shape"])
    assert lazy.memory["buffer_bytes"] == explicit.memory["buffer_bytes"]
    assert any(d.kind == "note" and "lazy modules 0 (LazyConv2d)" in d.message for d in lazy.diagnostics)


def test_the_user_model_is_untouched() -> None:
    model = lazy_net().train()
    rng = torch.get_rng_state()
    nbcount.count(model, (1, 3, 16, 16))
    assert torch.equal(torch.get_rng_state(), rng)
    assert model.training and [type(m).__name__ for m in model][:2] == ["LazyConv2d", "LazyBatchNorm2d"]
    assert isinstance(model[0].weight, UninitializedParameter) and isinstance(model[4].weight, UninitializedParameter)
    assert isinstance(model[1].running_mean, UninitializedBuffer)
    model(torch.randn(1, 3, 16, 16))  # the user's own first forward still materialises it
    assert model[4].weight.shape == (10, 8 * 14 * 14)


def test_lazy_model_with_inputs_and_a_tied_lazy_module() -> None:
    lin = nn.LazyLinear(4)
    model = nn.Sequential(lin, nn.ReLU(), nn.Linear(4, 4))
    report = nbcount.count(model, inputs=torch.randn(3, 6))
    assert report.total_params == (6 * 4 + 4) + (4 * 4 + 4)
    assert isinstance(lin.weight, UninitializedParameter)
