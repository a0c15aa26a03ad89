"""Memory figures of a Report: torchsummary's convention beside nbcount's dtype-aware bytes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from nbcount.peers.memory import TORCHSUMMARY_MB as MB
from nbcount.peers.memory import torchsummary
from nbcount.types import TensorMeta

if TYPE_CHECKING:
    from nbcount.report import Report

FLOAT32_BYTES = 4  # torchsummary assumes 4 bytes per element whatever the dtype
_TORCHSUMMARY_SKIPPED = ("torch.nn.modules.container.Sequential", "torch.nn.modules.container.ModuleList")


def per_sample(t: TensorMeta) -> int:
    """Elements with the batch axis dropped, as torchsummary counts them (batch_size = -1)."""
    return math.prod(t.shape[1:]) if t.shape else 1


def memory_figures(report: Report) -> dict[str, float]:
    """torchsummary's input / forward-backward / params / total MB, and nbcount's bytes by real dtype."""
    summary = torchsummary(report)
    return {
        "input_mb": summary["input"],
        "forward_backward_mb": summary["forward/backward"],
        "params_mb": summary["params"],
        "total_mb": summary["total"],
        "param_bytes": sum(p.nbytes for p in report.trace.registered_params),
        "buffer_bytes": sum(r.call.buffer_bytes for r in report.rows),
        "input_bytes": sum(t.nbytes for t in report.trace.input_tensors),
        "output_activation_bytes": sum(r.output_bytes for r in report.rows if r.call.is_leaf),
        "peak_activation_bytes": report.trace.peak_activation_bytes,
    }
