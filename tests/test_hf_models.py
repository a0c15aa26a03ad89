"""Real third-party models built from their configs (no hub): complete, parameters = unique numel, MACs =
FlopCounterMode over a real CPU run with eager attention (FlopCounterMode has no formula for CPU SDPA kernels)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import nbcount

transformers = pytest.importorskip("transformers")

import corpus  # noqa: E402  (tests/ is on sys.path under pytest)
import oracles  # noqa: E402  (tests/ is on sys.path under pytest)

NAMES = ["bert", "t5", "vit", "convnext", "swin"]


def eager_macs(model: torch.nn.Module, inputs: Any) -> int:
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    return oracles.torch_macs(model, inputs)


unique_numel = oracles.unique_params


@pytest.fixture(scope="module")
def oracle() -> dict[str, int]:
    return {name: eager_macs(*corpus.CORPUS[name]()) for name in NAMES}


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("name", NAMES)
def test_model_from_config_is_complete_and_exact(name: str, device: str, oracle: dict[str, int]) -> None:
    model, inputs = corpus.CORPUS[name](device)
    report = nbcount.count(model, inputs=inputs)
    assert report.status == "complete", report.uncounted_ops
    assert report.total_params == unique_numel(model)
    assert report.total_macs == oracle[name]


def test_llama_with_a_padded_mask_on_cpu() -> None:
    model, ids = corpus.hf_decoder("llama")
    mask = torch.ones_like(ids)
    mask[0, :3] = 0  # left padding on the first sequence
    report = nbcount.count(model, inputs={"input_ids": ids, "attention_mask": mask})
    assert report.status == "complete"
    assert report.total_params == unique_numel(model)
    assert report.total_macs == eager_macs(model, {"input_ids": ids, "attention_mask": mask})
