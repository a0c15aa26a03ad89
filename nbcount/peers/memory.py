"""Memory conventions: torchsummary's and torchinfo's four memory figures, and nbcount's, from a Report.

torchsummary mirrors torchsummary/torchsummary.py ``summary`` (hooks on every module except the model,
nn.Sequential and nn.ModuleList; 4 bytes per element; batch axis dropped; MB = 2**20 bytes).
torchinfo mirrors torchinfo/model_statistics.py ``ModelStatistics.__init__`` and torchinfo/torchinfo.py
``get_total_memory_used`` (output bytes × 2 of leaf layers that hold parameters; input = sys.getsizeof of
each input's storage; real dtypes, whole batch; MB = 10**6 bytes).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import torch

from nbcount.memory import MB as TORCHSUMMARY_MB
from nbcount.memory import memory_figures, torchsummary_hooked

if TYPE_CHECKING:
    from nbcount.report import Report

TORCHINFO_MB = 10**6
# sys.getsizeof(storage) is the storage's bytes plus the Python object's own size (torchinfo counts both)
STORAGE_OVERHEAD = sys.getsizeof(torch.empty(0).untyped_storage())

FIGURES = ("input", "forward/backward", "params", "total")


def torchsummary(report: Report) -> dict[str, float]:
    """Input, forward/backward (2 × every hooked output), params and total, in MB of 2**20 bytes at 4 bytes each."""
    figures = memory_figures(report)
    return {"input": figures["input_mb"], "forward/backward": figures["forward_backward_mb"],
            "params": figures["params_mb"], "total": figures["total_mb"]}


def torchsummary_params(report: Report) -> int:
    """torchsummary's 'Total params': weight + bias of every hooked call, a repeated module counted again."""
    total = 0
    for r in report.rows:
        if torchsummary_hooked(r):
            total += sum(p.numel for p in (*r.call.params_new, *r.call.params_shared)
                         if p.name.rsplit(".", 1)[-1] in ("weight", "bias"))
    return total


def torchinfo_bytes(report: Report) -> dict[str, int]:
    """torchinfo's figures in bytes: input storages, 2 × outputs of leaf layers with parameters, their params."""
    leaf_with_params = [r for r in report.rows if r.call.is_leaf and (r.call.params_new or r.call.params_shared)]
    first_calls = [r for r in leaf_with_params if r.call.call_index == 0]
    figures = {
        "input": sum(t.nbytes + STORAGE_OVERHEAD for t in report.trace.input_tensors),
        "forward/backward": 2 * sum(r.call.out_tensors[0].nbytes for r in leaf_with_params if r.call.out_tensors),
        "params": sum(p.nbytes for r in first_calls for p in (*r.call.params_new, *r.call.params_shared)),
    }
    figures["total"] = sum(figures.values())
    return figures


def torchinfo(report: Report) -> dict[str, float]:
    """torchinfo's four figures in MB of 10**6 bytes."""
    return {k: v / TORCHINFO_MB for k, v in torchinfo_bytes(report).items()}


def nbcount_memory(report: Report) -> dict[str, float]:
    """nbcount's inference figures in MiB: input bytes, peak live activations, unique parameter bytes, total."""
    figures = {"input": sum(t.nbytes for t in report.trace.input_tensors) / TORCHSUMMARY_MB,
               "forward/backward": report.trace.peak_activation_bytes / TORCHSUMMARY_MB,
               "params": sum(p.nbytes for p in report.trace.registered_params) / TORCHSUMMARY_MB}
    figures["total"] = sum(figures.values())
    return figures


WHY = {
    "input": "torchsummary: one sample at 4 bytes, MB = 2^20; torchinfo: sys.getsizeof of each input storage "
             f"(bytes + {STORAGE_OVERHEAD} of Python object), whole batch, MB = 10^6; nbcount: the inputs' bytes, MiB",
    "forward/backward": "torchsummary: 2 × every non-container module's output (one sample, 4 bytes; a tuple output "
                        "is the product of all its dims there, a defect, summed here); torchinfo: "
                        "2 × outputs of leaf layers that hold parameters (activations skipped), real dtype, whole "
                        "batch; nbcount: peak live activation bytes of the inference pass",
    "params": "torchsummary: 4 bytes × unique parameters (its own total repeats shared modules); torchinfo: bytes "
              "of leaf layers' parameters (tied weights twice, non-leaf parameters missed); nbcount: unique bytes",
    "total": "the sum of the three figures above, in each tool's own MB",
}
