"""Findings that are true: "unused" means no op read the parameters, checked against autograd's own answer.

Oracle: after a real forward and backward, a parameter with no gradient was not used by the forward pass.
"""

from __future__ import annotations

import corpus  # noqa: E402  (tests/ is on sys.path under pytest)
import pytest
import torch
from torch import nn

import nbcount


def unused_by_autograd(model: nn.Module, inputs: object) -> int:
    """Elements of the parameters that get no gradient from a real forward + backward."""
    model.zero_grad(set_to_none=True)
    args, kwargs = (inputs, {}) if not isinstance(inputs, dict) else ((), inputs)
    args = args if isinstance(args, tuple) else (args,)
    output = model(*args, **kwargs)
    tensors = [t for t in (output.values() if isinstance(output, dict) else
                           output if isinstance(output, tuple) else (output,))
               if isinstance(t, torch.Tensor) and t.is_floating_point()]
    sum(t.float().sum() for t in tensors).backward()
    unique = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in unique if p.grad is None)


def findings(report: nbcount.Report, kind: str = "unused_module") -> list[nbcount.types.Diagnostic]:
    return [d for d in report.diagnostics if d.kind == kind]


class Attention(nn.Module):
    """nn.MultiheadAttention reads out_proj's weights functionally without calling out_proj."""

    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(16, 4)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32), 2, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.mha(x, x, x)[0])


class Leftovers(nn.Module):
    """A used Linear, an unused Linear, and three parameterless modules it never calls."""

    def __init__(self) -> None:
        super().__init__()
        self.used, self.spare = nn.Linear(4, 4), nn.Linear(4, 3)
        self.dropout, self.drop_path, self.act = nn.Dropout(0.1), nn.Identity(), nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x)


def test_multihead_attention_weights_read_functionally_are_used() -> None:
    model = Attention().eval()
    x = torch.randn(5, 2, 16)
    report = nbcount.count(model, inputs=x)
    assert unused_by_autograd(model.train(), x) == 0
    assert report.used_params == report.total_params == sum(p.numel() for p in model.parameters())
    assert findings(report) == []
    steps = report.derive()["params"].steps
    assert all(s.value >= 0 for s in steps) and not any("never" in s.label for s in steps)


def test_unused_parameters_are_named_and_parameterless_modules_summarised_in_one_line() -> None:
    model = Leftovers()
    report = nbcount.count(model, (2, 4))
    found = findings(report)
    spare = [d for d in found if d.layers == ("spare",)]
    assert len(spare) == 1 and spare[0].count == 4 * 3 + 3 == unused_by_autograd(model, torch.randn(2, 4))
    quiet = [d for d in found if d.count == 0]
    assert len(quiet) == 1 and set(quiet[0].layers) == {"dropout", "drop_path", "act"}
    assert "nothing is missing" in quiet[0].message
    assert report.total_params - report.used_params == 15
    assert report.derive()["params"].value == report.total_params


@pytest.mark.parametrize("name", ["bert", "t5", "vit", "swin", "convnext", "torch_layers"])
def test_unused_findings_agree_with_autograd_on_real_models(name: str) -> None:
    pytest.importorskip("transformers")
    model, inputs = corpus.CORPUS[name]()
    report = nbcount.count(model, inputs=inputs)
    claimed = sum(d.count for d in findings(report))
    assert claimed == report.total_params - report.used_params
    assert claimed == unused_by_autograd(model.train(), inputs)
    assert all(s.value >= 0 for s in report.derive()["params"].steps)
