"""`torch`: torch.utils.flop_counter.FlopCounterMode — 2 FLOPs per MAC of the registered aten ops, nothing else.

Mirrors torch/utils/flop_counter.py, ``flop_registry`` (mm_flop, addmm_flop, bmm_flop, baddbmm_flop,
conv_flop, sdpa_flop): every other op, including bias adds, norms, activations and pooling, counts 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from nbcount.convention import Convention, Cost, Defect, register
from nbcount.peers._common import FLOP2, SDPA_OPS, conv_count, matmul_count, mha_count, minus, sdpa_count
from nbcount.rules import conv
from nbcount.rules.table import names
from nbcount.types import OpEvent

if TYPE_CHECKING:
    from nbcount.report import Row

aten = torch.ops.aten
LABEL = "FLOPs (torch)"
_CPU_SDPA = "aten._scaled_dot_product_flash_attention_for_cpu"
_MHA = "aten._native_multi_head_attention"


def _matmul(op: OpEvent) -> Cost:
    """mm_flop / addmm_flop / bmm_flop / baddbmm_flop: 2·M·K·N (the added matrix not counted)."""
    return matmul_count(op, LABEL, per_mac=2)


def _conv(op: OpEvent) -> Cost:
    """conv_flop: 2·N·∏out·C_out·(C_in/g)·∏K (transposed: per input pixel)."""
    return conv_count(op, LABEL, per_mac=2)


def _sdpa(op: OpEvent) -> Cost:
    """sdpa_flop: 2·(B·H·L·S·E + B·H·L·S·E_v)."""
    return sdpa_count(op, LABEL, per_mac=2)


def _mha(op: OpEvent) -> Cost:
    """The mm / bmm of MultiheadAttention's slow path at 2 per MAC: projections and both attention matmuls."""
    return mha_count(op, LABEL, per_mac=2)


OP_COUNTS = {
    **dict.fromkeys(names(aten.mm, aten.addmm, aten.bmm, aten.baddbmm), _matmul),
    **dict.fromkeys(names(*conv.CONV), _conv),
    **dict.fromkeys(SDPA_OPS, _sdpa),
    _MHA: _mha,
}


def _cpu_sdpa(row: Row) -> Cost:
    """The CPU flash-attention kernel has no formula: minus its matmuls."""
    return minus("defect cpu_sdpa", [(op.op, _sdpa(op)) for op in row.call.ops if op.op == _CPU_SDPA],
                 "FlopCounterMode has no formula for the CPU kernel")


def _mha_fast_path(row: Row) -> Cost:
    """The fused MultiheadAttention op is not counted: minus all its matmuls."""
    return minus("defect mha_fast_path", [(op.op, _mha(op)) for op in row.call.ops if op.op == _MHA],
                 "FlopCounterMode does not count the fused op")


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
           "(ModuleTracker), nbcount shows each module's own share.",
           "aten._grouped_mm (the experts of transformers' mixture-of-experts models, its default grouped_mm "
           "code) has no formula: FlopCounterMode counts the experts as 0, nbcount counts their MACs."),
    rules={"conv": FLOP2, "conv_transpose": FLOP2 + "; MACs per input pixel", "linear": FLOP2,
           "matmul": "2 per MAC (baddbmm's added matrix not counted)",
           "sdpa": "2 per MAC of q·kᵀ and p·v (CPU kernel: 0, a defect)",
           "mha": "2 per MAC of the matmuls it runs (eval fast path: 0, a defect)",
           "rnn": "2 per MAC of the addmm/mm it decomposes into (LSTM's mkldnn kernel: 0)",
           "*": "0 (no formula registered)"},
))
