"""Memory figures of a Report: torchsummary's convention beside nbcount's dtype-aware bytes.

torchsummary's four figures are derivation steps (one code path: the dict holds the steps' values).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from nbcount.derive import Step, given, step, total
from nbcount.types import TensorMeta

if TYPE_CHECKING:
    from nbcount.report import Report, Row

MB = 2**20
FLOAT32_BYTES = 4  # torchsummary assumes 4 bytes per element whatever the dtype
_CONTAINERS = ("torch.nn.modules.container.Sequential", "torch.nn.modules.container.ModuleList")


def per_sample(t: TensorMeta) -> int:
    """Elements with the batch axis dropped, as torchsummary counts them (batch_size = -1)."""
    return math.prod(t.shape[1:]) if t.shape else 1


def torchsummary_hooked(row: Row) -> bool:
    """torchsummary hooks every module except the model itself and (subclasses of) Sequential / ModuleList."""
    return row.call.parent is not None and not any(c in _CONTAINERS for c in row.call.classes)


def torchsummary_steps(report: Report) -> tuple[Step, ...]:
    """Input, forward/backward (2 × hooked outputs), params and total MB: one sample, 4 bytes, MB = 2^20."""
    n_in = sum(per_sample(t) for t in report.trace.input_tensors)
    n_out = sum(per_sample(t) for r in report.rows if torchsummary_hooked(r) for t in r.call.out_tensors)
    steps = [
        given("input elements (one sample)", n_in, note="torchsummary's figures: 4 bytes each, MB = 2^20 bytes"),
        step("input (MB)", "n_in*b/MB", n_in=n_in, b=FLOAT32_BYTES, MB=MB),
        given("outputs of hooked layers (one sample)", n_out,
              note="every module except the model, nn.Sequential and nn.ModuleList, as torchsummary hooks them"),
        step("forward/backward pass (MB)", "2*n_out*b/MB", n_out=n_out, b=FLOAT32_BYTES, MB=MB,
             note="2×: the outputs and their gradients"),
        step("params (MB)", "P*b/MB", P=report.total_params, b=FLOAT32_BYTES, MB=MB),
    ]
    steps.append(total("estimated total (MB)", [("input (MB)", steps[1].value),
                                                 ("forward/backward pass (MB)", steps[3].value),
                                                 ("params (MB)", steps[4].value)]))
    return tuple(steps)


def memory_figures(report: Report) -> dict[str, float]:
    """torchsummary's input / forward-backward / params / total MB, and nbcount's bytes by real dtype."""
    summary = {s.label: s.value for s in torchsummary_steps(report)}
    return {
        "input_mb": summary["input (MB)"],
        "forward_backward_mb": summary["forward/backward pass (MB)"],
        "params_mb": summary["params (MB)"],
        "total_mb": summary["estimated total (MB)"],
        "param_bytes": sum(p.nbytes for p in report.trace.registered_params),
        "buffer_bytes": sum(r.call.buffer_bytes for r in report.rows),
        "input_bytes": sum(t.nbytes for t in report.trace.input_tensors),
        "output_activation_bytes": sum(r.output_bytes for r in report.rows if r.call.is_leaf),
        "peak_activation_bytes": report.trace.peak_activation_bytes,
    }
