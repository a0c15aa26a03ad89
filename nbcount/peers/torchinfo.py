"""`torchinfo`: torchinfo.summary's total_mult_adds — parameters × positions, summed over leaf modules.

Mirrors torchinfo/layer_info.py ``LayerInfo.calculate_macs`` (a module with "Conv" in its class name:
each parameter once per output position; any other module: each "weight" / "bias" parameter once per
output row; RNN inner weights once per (batch, step)) and torchinfo/model_statistics.py
``ModelStatistics.__init__`` (only leaf layers are summed, every call of a repeated layer included).
Activations, pooling and functional ops have no parameters and count 0.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torch import nn

from nbcount.convention import Convention, Cost, Defect, register
from nbcount.derive import step
from nbcount.peers._common import MAC_BIAS, formula, module_params, nothing, weighted, y
from nbcount.rules import qualname

if TYPE_CHECKING:
    from nbcount.report import Row

LABEL = "MACs (torchinfo)"
_LINEAR = {qualname(nn.Linear), qualname(nn.Bilinear)}
_TRANSPOSED = qualname(nn.modules.conv._ConvTransposeNd)


def _is_conv(row: Row) -> bool:
    return "Conv" in row.call.module_type


def _rows(row: Row) -> int:
    """Output vectors of a Linear: every position of every leading axis (torchinfo uses the batch only)."""
    out = y(row).shape
    return math.prod(out[:-1]) if out else 1


def _positions(shape: tuple[int, ...]) -> int:
    return shape[0] * math.prod(shape[2:]) if shape else 1


def _param_use(row: Row, name: str, numel: int) -> Cost:
    """One parameter tensor times the positions torchinfo's rule uses it at."""
    out = y(row).shape
    if name in ("weight", "bias"):
        if _is_conv(row):
            transposed = _TRANSPOSED in row.call.classes and name == "weight"
            where = "input" if transposed else "output"
            shape = row.call.in_tensors[0].shape if transposed else out
            return formula(LABEL, "n_param*positions", f"positions: N × the {where}'s spatial positions",
                           n_param=numel, positions=_positions(shape))
        if set(row.call.classes) & _LINEAR:
            return formula(LABEL, "n_param*rows", "rows: every output vector", n_param=numel, rows=_rows(row))
        return formula(LABEL, "n_param*batch", n_param=numel, batch=out[0] if out else 1)
    return formula(LABEL, "n_param*out_0*out_1", "inner weights: × the output's first two sizes", n_param=numel,
                   out_0=out[0], out_1=out[1] if len(out) > 1 else 1)


def calculate_macs(row: Row) -> Cost:
    """The MACs torchinfo's rule means: per-position parameter use, leaf modules only."""
    if not row.call.is_leaf or not row.call.out_tensors:
        return nothing(LABEL, "not a leaf layer" if row.call.out_tensors else "no tensor output")
    used = [(name, _param_use(row, name, n)) for name, n in module_params(row) if "weight" in name or "bias" in name]
    return weighted(LABEL, used) or nothing(LABEL, "no weight or bias")


def _linear_batch_only(row: Row) -> Cost:
    """torchinfo multiplies a Linear's parameters by output_size[0] only: sequence positions are lost."""
    label = "defect linear_not_scaled_by_sequence"
    if not row.call.is_leaf or _is_conv(row) or not set(row.call.classes) & _LINEAR or not row.call.out_tensors:
        return nothing(label, "not a Linear layer")
    params = sum(n for name, n in module_params(row) if name in ("weight", "bias"))
    return formula(label, "n_param*batch - n_param*rows", n_param=params, batch=y(row).shape[0], rows=_rows(row))


def _transposed_per_output(row: Row) -> Cost:
    """ConvTranspose's weight is multiplied by the output positions, not the input positions it scatters."""
    label = "defect conv_transpose_per_output"
    if not row.call.is_leaf or _TRANSPOSED not in row.call.classes or not row.call.out_tensors:
        return nothing(label, "not a transposed conv")
    weight = sum(n for name, n in module_params(row) if name == "weight")
    return (step(label, "n_weight*(out_positions - in_positions)", n_weight=weight,
                 out_positions=_positions(y(row).shape), in_positions=_positions(row.call.in_tensors[0].shape)),)


TORCHINFO = register(Convention(
    name="torchinfo",
    description="torchinfo.summary total_mult_adds: each parameter once per output position (conv) or per "
                "output row (other layers), leaf modules only; bias included, activations and functionals 0.",
    source="torchinfo/layer_info.py: LayerInfo.calculate_macs; torchinfo/model_statistics.py: ModelStatistics",
    unit="MACs",
    module_overrides={qualname(nn.Module): calculate_macs},
    defects=(
        Defect("linear_not_scaled_by_sequence", "a Linear's parameters are multiplied by output_size[0] (the "
               "batch) only, not by every row of a (batch, sequence, features) output", _linear_batch_only),
        Defect("conv_transpose_per_output", "ConvTranspose's weight is multiplied by the output positions "
               "(∏stride × the input positions it actually scatters)", _transposed_per_output),
    ),
    notes=("BatchNorm / LayerNorm count their parameters once per sample (2·C·N), not per element.",
           "Tied weights are counted in each module that holds them (GPT-2: 163,037,184 vs 124,439,808 "
           "parameters); non-leaf modules' own parameters (class tokens) count no MACs.",
           "Attention matmuls and every functional op count 0."),
    rules={"conv": MAC_BIAS,
           "conv_transpose": MAC_BIAS + "; MACs per input pixel (torchinfo: weight × output positions, a defect)",
           "linear": MAC_BIAS + " ((weight + bias) × output rows; torchinfo: × batch only, a defect)",
           "batchnorm": "its parameters (2·C) × batch", "layernorm": "its parameters × batch",
           "groupnorm": "its parameters × batch", "instancenorm": "its parameters × batch (0 without affine)",
           "activation": "PReLU: its parameters × batch; others 0", "embedding": "its parameters × batch",
           "mha": "0 (not a leaf: its out_proj child is never called)", "rnn": "each weight × batch × steps",
           "*": "0 (no parameters)"},
))
