"""`torch`: torch.utils.flop_counter.FlopCounterMode — 2 FLOPs per MAC of the registered aten ops, nothing else.

Mirrors torch/utils/flop_counter.py, ``flop_registry`` (mm_flop, addmm_flop, bmm_flop, baddbmm_flop,
conv_flop, sdpa_flop): every other op, including bias adds, norms, activations and pooling, counts 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbcount.conventions import Convention, Defect, register
from nbcount.peers._common import FLOP2, SDPA_OPS, conv_macs, matmul_macs, mha_macs, sdpa_macs

if TYPE_CHECKING:
    from nbcount.report import Row

_CPU_SDPA = "aten._scaled_dot_product_flash_attention_for_cpu"
_MHA = "aten._native_multi_head_attention"

OP_COUNTS = {
    **dict.fromkeys(("aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm"), lambda op: 2 * matmul_macs(op)),
    **dict.fromkeys(("aten.convolution", "aten._convolution", "aten.cudnn_convolution",
                     "aten.convolution_overrideable", "aten._slow_conv2d_forward"), lambda op: 2 * conv_macs(op)),
    **dict.fromkeys(SDPA_OPS, lambda op: 2 * sdpa_macs(op)),
    _MHA: lambda op: 2 * mha_macs(op),
}


def _cpu_sdpa(row: Row) -> int:
    return -sum(2 * sdpa_macs(op) for op in row.call.ops if op.op == _CPU_SDPA)


def _mha_fast_path(row: Row) -> int:
    return -sum(2 * mha_macs(op) for op in row.call.ops if op.op == _MHA)


TORCH = register(Convention(
    name="torch",
    description="torch.utils.flop_counter.FlopCounterMode: 2 FLOPs per MAC of matmuls, convolutions and "
                "attention; bias, norms, activations and pooling are 0.",
    source="torch/utils/flop_counter.py: flop_registry (mm_flop, addmm_flop, bmm_flop, conv_flop, sdpa_flop)",
    unit="FLOPs",
    op_counts=OP_COUNTS,
    defects=(
        Defect("cpu_sdpa", "scaled_dot_product_attention on CPU runs aten._scaled_dot_product_flash_attention_for_cpu, "
               "which FlopCounterMode has no formula for: the attention matmuls count 0", _cpu_sdpa),
        Defect("mha_fast_path", "nn.MultiheadAttention in eval + no_grad runs the fused "
               "aten._native_multi_head_attention, which FlopCounterMode does not count at all", _mha_fast_path),
    ),
    notes=("Counts at the dispatcher, so functional matmuls are seen; per-module numbers are cumulative "
           "(ModuleTracker), nbcount shows each module's own share.",),
    rules={"conv": FLOP2, "conv_transpose": FLOP2 + "; MACs per input pixel", "linear": FLOP2,
           "matmul": "2 per MAC (baddbmm's added matrix not counted)",
           "sdpa": "2 per MAC of q·kᵀ and p·v (CPU kernel: 0, a defect)",
           "mha": "2 per MAC of the matmuls it runs (eval fast path: 0, a defect)",
           "rnn": "2 per MAC of the addmm/mm it decomposes into (LSTM's mkldnn kernel: 0)",
           "*": "0 (no formula registered)"},
))
