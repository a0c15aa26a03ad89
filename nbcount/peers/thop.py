"""`thop`: thop.profile — MACs from forward hooks on leaf modules of an exactly registered type.

Mirrors thop/profile.py ``register_hooks`` (type(m) must match exactly; other modules count 0),
thop/vision/basic_hooks.py (count_convNd, count_normalization, count_prelu, count_softmax, count_avgpool,
count_adap_avgpool, count_upsample, count_linear), thop/vision/calc_func.py and thop/rnn_hooks.py.
Functional ops (``torch.matmul``, ``+``, ``F.*``) are never counted.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from torch import nn

from nbcount.convention import Convention, Cost, Defect, register
from nbcount.derive import step
from nbcount.peers._common import (
    MAC,
    RowCount,
    attr,
    excess,
    formula,
    kernel_symbols,
    keyed,
    nothing,
    per_element,
    product,
    spatial,
    x,
    y,
)

if TYPE_CHECKING:
    from nbcount.report import Row

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.LayerNorm,
          nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
_ZERO = (nn.ZeroPad2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
         nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Dropout, nn.Sequential, nn.PixelShuffle)
_UPSAMPLE_OPS = {"nearest": 1, "linear": 5, "bilinear": 11, "bicubic": 224 + 35}


LABEL = "MACs (thop)"


def _kernel(row: Row) -> dict[str, Any]:
    k = attr(row, "kernel_size")
    return {"K": k} if isinstance(k, int) else kernel_symbols(k, len(k))


def conv(row: Row) -> Cost:
    """count_convNd: ∏out · C_in/g · ∏K (bias dropped)."""
    kernel = _kernel(row)
    return formula(LABEL, f"n_out*(C_in/g)*{product(kernel)}", n_out=y(row).numel, C_in=x(row).shape[1],
                   g=attr(row, "groups", 1), **kernel)


def conv_transpose_rule(row: Row) -> Cost:
    """The MACs of a transposed conv: N·C_in·∏in · C_out/g · ∏K (each input pixel scattered once)."""
    kernel = _kernel(row)
    return formula(LABEL, f"N*C_in*P_in*(C_out/g)*{product(kernel)}", "P_in: the input's spatial positions",
                   N=x(row).shape[0], C_in=x(row).shape[1], P_in=spatial(x(row).shape), C_out=y(row).shape[1],
                   g=attr(row, "groups", 1), **kernel)


def norm(row: Row) -> Cost:
    """count_normalization: 2 per input element, twice that with an affine transform."""
    affine = bool(attr(row, "affine", False) or attr(row, "elementwise_affine", False))
    return per_element(LABEL, 4 if affine else 2, x(row).numel)


def softmax(row: Row) -> Cost:
    """count_softmax: batch·(3·nf − 1), nf the size of the softmax axis (dim=None taken as the last)."""
    dim = attr(row, "dim")
    nf = x(row).shape[dim if dim is not None else -1]
    return formula(LABEL, "rows*(3*nf - 1)", "rows: the softmax vectors, nf their length", rows=x(row).numel // nf,
                   nf=nf)


def adaptive_avgpool(row: Row) -> Cost:
    """count_adap_avgpool: int((∏(in/out) + 1)·n_out), the kernel ratio in float64."""
    ratio = math.prod(i / o for i, o in zip(x(row).shape[2:], y(row).shape[2:]))
    return formula(LABEL, "floor((r + 1)*n_out)", "r = ∏(in/out), the window in float64", r=ratio, n_out=y(row).numel)


def upsample(row: Row) -> Cost:
    """count_upsample: nearest 1, linear 5, bilinear 11, bicubic 259 per output element; others 0."""
    mode = attr(row, "mode", "nearest")
    return per_element(LABEL, _UPSAMPLE_OPS.get(mode, 0), y(row).numel, "out", note=f"mode={mode}")


def _steps_and_batch(row: Row) -> tuple[int, int]:
    shape = x(row).shape
    return (shape[1], shape[0]) if attr(row, "batch_first", False) else (shape[0], shape[1])


def _cell(kind: str, bias: bool) -> str:
    """thop/rnn_hooks.py's per-cell ops over I (input width) and H (hidden width)."""
    b = " + 2*H" if bias else ""
    if kind == "RNN":
        return f"H*(I + H) + H{b}"
    state = f"((I + H)*H + H{b})"
    if kind == "GRU":
        return f"2*{state} + (I + H)*H + H{b} + H + 3*H"
    return f"4*{state} + 3*H + H"


def rnn(kind: str) -> RowCount:
    def count(row: Row) -> Cost:
        """thop/rnn_hooks.py count_rnn / count_gru / count_lstm: per-cell ops × steps × batch."""
        i, h, layers = attr(row, "input_size"), attr(row, "hidden_size"), attr(row, "num_layers", 1)
        bias, dirs = bool(attr(row, "bias", True)), 2 if attr(row, "bidirectional", False) else 1
        first = formula(f"{LABEL} per step, layer 0", _cell(kind, bias), I=i, H=h)
        later = formula(f"{LABEL} per step, later layers", _cell(kind, bias), I=h * dirs, H=h)
        steps, batch = _steps_and_batch(row)
        return (*first, *later, step(LABEL, "(cell_0*D + (L - 1)*cell_1*D)*T*B", cell_0=first[-1].value,
                                     cell_1=later[-1].value, D=dirs, L=layers, T=steps, B=batch))
    return count


def rnn_cell(kind: str) -> RowCount:
    def count(row: Row) -> Cost:
        """thop/rnn_hooks.py count_*_cell: per-cell ops × batch."""
        cell = formula(f"{LABEL} per cell", _cell(kind, bool(attr(row, "bias", True))), I=attr(row, "input_size"),
                       H=attr(row, "hidden_size"))
        return (*cell, step(LABEL, "cell*B", cell=cell[-1].value, B=x(row).shape[0]))
    return count


def _zero(row: Row) -> Cost:
    """zero_ops: the hook counts 0."""
    return nothing(LABEL, "thop's zero_ops hook")


OVERRIDES = {
    **keyed(_CONV, conv),
    **keyed(_CONV_T, conv_transpose_rule),
    **keyed(_NORMS, norm),
    **keyed((nn.PReLU,), lambda row: per_element(LABEL, 1, x(row).numel)),
    **keyed((nn.Softmax,), softmax),
    **keyed(_ZERO, _zero),
    **keyed((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d), lambda row: per_element(LABEL, 1, y(row).numel, "out")),
    **keyed((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d), adaptive_avgpool),
    **keyed((nn.Linear,), lambda row: formula(LABEL, "N_in*n_out", N_in=attr(row, "in_features"),
                                              n_out=y(row).numel)),
    **keyed((nn.Upsample, nn.UpsamplingBilinear2d, nn.UpsamplingNearest2d), upsample),
    **keyed((nn.RNN,), rnn("RNN")), **keyed((nn.GRU,), rnn("GRU")), **keyed((nn.LSTM,), rnn("LSTM")),
    **keyed((nn.RNNCell,), rnn_cell("RNN")), **keyed((nn.GRUCell,), rnn_cell("GRU")),
    **keyed((nn.LSTMCell,), rnn_cell("LSTM")),
}
_CONV_T_NAMES = {f"{c.__module__}.{c.__qualname__}" for c in _CONV_T}


def _conv_transpose(row: Row) -> Cost:
    """count_convNd on a ConvTranspose: a direct conv per output pixel, minus the MACs it really does."""
    if row.call.classes[0] not in _CONV_T_NAMES:
        return nothing("defect conv_transpose_per_output", "not a transposed conv")
    return excess("defect conv_transpose_per_output", conv(row), conv_transpose_rule(row))


THOP = register(Convention(
    name="thop",
    description="thop.profile: MACs of leaf modules whose exact type has a hook (conv and linear without "
                "bias, norms 2-4 per element); activations, max-pool and functional ops count 0.",
    source="thop/profile.py: register_hooks; thop/vision/basic_hooks.py, calc_func.py; thop/rnn_hooks.py",
    unit="MACs",
    module_overrides=OVERRIDES,
    exact_type=True,
    defects=(Defect("conv_transpose_per_output", "ConvTranspose counted like a conv: ∏out·C_in/g·∏K, "
                    "∏stride times its MACs (each input pixel is scattered once, not each output gathered)",
                    _conv_transpose),),
    notes=("Only modules whose exact type is registered are counted: a subclass of nn.Conv2d counts 0.",
           "Parameters come only from leaf modules with a hook (nn.MultiheadAttention, class tokens and "
           "position embeddings are missed).",
           "profile() puts the model in eval mode and leaves total_ops / total_params buffers only while "
           "it runs."),
    rules={"conv": MAC,
           "conv_transpose": "counted like a conv per output pixel (∏stride × its MACs, a defect)",
           "linear": MAC,
           "batchnorm": "2 per element, 4 with affine", "layernorm": "2 per element, 4 with affine",
           "instancenorm": "2 per element, 4 with affine", "activation": "PReLU 1 per element; others 0",
           "softmax": "3·nf − 1 per softmax row", "avgpool": "1 per output element",
           "adaptive_avgpool": "(∏(in/out) + 1) per output element (module only)",
           "upsample": "nearest 1, linear 5, bilinear 11, bicubic 259 per output element",
           "rnn": "thop/rnn_hooks.py per-cell formula × steps × batch",
           "*": "0 (no hook for the type, or zero_ops)"},
))
