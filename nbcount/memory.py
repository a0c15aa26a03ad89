"""Memory figures of a Report: torchsummary's convention beside nbcount's dtype-aware bytes."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from nbcount.types import TensorMeta

if TYPE_CHECKING:
    from nbcount.report import Report

MB = 2**20
FLOAT32_BYTES = 4
# torchsummary hooks every module except the model itself, nn.Sequential and nn.ModuleList
_TORCHSUMMARY_SKIPPED = ("torch.nn.modules.container.Sequential", "torch.nn.modules.container.ModuleList")


def per_sample(t: TensorMeta) -> int:
    """Elements with the batch axis dropped, as torchsummary counts them (batch_size = -1)."""
    return math.prod(t.shape[1:]) if t.shape else 1


def memory_figures(report: Report) -> dict[str, float]:
    """torchsummary's input / forward-backward / params / total MB, and nbcount's bytes by real dtype."""
    hooked = [r for r in report.rows[1:] if r.call.classes[0] not in _TORCHSUMMARY_SKIPPED]
    input_mb = sum(per_sample(t) for t in report.trace.input_tensors) * FLOAT32_BYTES / MB
    forward_backward_mb = 2 * sum(per_sample(t) for r in hooked for t in r.call.out_tensors) * FLOAT32_BYTES / MB
    params_mb = report.total_params * FLOAT32_BYTES / MB
    return {
        "input_mb": input_mb,
        "forward_backward_mb": forward_backward_mb,
        "params_mb": params_mb,
        "total_mb": input_mb + forward_backward_mb + params_mb,
        "param_bytes": sum(p.nbytes for p in report.trace.registered_params),
        "buffer_bytes": sum(r.call.buffer_bytes for r in report.rows),
        "input_bytes": sum(t.nbytes for t in report.trace.input_tensors),
        "output_activation_bytes": sum(r.output_bytes for r in report.rows if r.call.is_leaf),
        "peak_activation_bytes": report.trace.peak_activation_bytes,
    }
