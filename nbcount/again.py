"""Count a model again as a Report counted it — same convention, mode, execution and training flag — at other
input shapes (scaling fits, the serving view's prefill and decode step): the model given, else the one the Report
still reaches (it holds it weakly)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from nbcount.counting import count
from nbcount.report import Report

CountAt = Callable[[Sequence[tuple[int, ...]], Sequence[torch.dtype]], Report]


def count_at(report: Report, model: nn.Module | None = None,
             loss_fn: Callable[[Any], torch.Tensor] | None = None) -> CountAt:
    """``f(shapes, dtypes)``: `model` counted on example inputs of those shapes, as `report` was counted."""
    model = report.model() if model is None else model
    if not isinstance(model, nn.Module):
        raise TypeError(f"counting again needs the model itself (an nn.Module), not {type(model).__name__}: "
                        "pass the model you counted")
    options = report.options

    def again(shapes: Sequence[tuple[int, ...]], dtypes: Sequence[torch.dtype]) -> Report:
        return count(model, list(shapes), dtype=list(dtypes), convention=report.convention,
                     mode=options.get("mode"), execution=options.get("execution", "auto"),
                     training=bool(options.get("training", False)), loss_fn=loss_fn)
    return again
