"""`thop`: thop.profile — MACs from forward hooks on leaf modules of an exactly registered type.

Mirrors thop/profile.py ``register_hooks`` (type(m) must match exactly; other modules count 0),
thop/vision/basic_hooks.py (count_convNd, count_normalization, count_prelu, count_softmax, count_avgpool,
count_adap_avgpool, count_upsample, count_linear), thop/vision/calc_func.py and thop/rnn_hooks.py.
Functional ops (``torch.matmul``, ``+``, ``F.*``) are never counted.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torch import nn

from nbcount.conventions import Convention, Defect, register
from nbcount.peers._common import MAC, RowCount, attr, keyed, spatial, x, y

if TYPE_CHECKING:
    from nbcount.report import Row

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.LayerNorm,
          nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)
_ZERO = (nn.ZeroPad2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
         nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.Dropout, nn.Sequential, nn.PixelShuffle)
_UPSAMPLE_OPS = {"nearest": 1, "linear": 5, "bilinear": 11, "bicubic": 224 + 35}


def _kernel(row: Row) -> int:
    k = attr(row, "kernel_size")
    return k if isinstance(k, int) else math.prod(k)


def conv(row: Row) -> int:
    """count_convNd: ∏out · C_in/g · ∏K (bias dropped)."""
    return y(row).numel * (x(row).shape[1] // attr(row, "groups", 1)) * _kernel(row)


def conv_transpose_rule(row: Row) -> int:
    """The MACs of a transposed conv: N·C_in·∏in · C_out/g · ∏K (each input pixel scattered once)."""
    return x(row).shape[0] * x(row).shape[1] * spatial(x(row).shape) * (y(row).shape[1] // attr(row, "groups", 1)) \
        * _kernel(row)


def norm(row: Row) -> int:
    """count_normalization: 2 per input element, twice that with an affine transform."""
    affine = bool(attr(row, "affine", False) or attr(row, "elementwise_affine", False))
    return 2 * x(row).numel * (2 if affine else 1)


def softmax(row: Row) -> int:
    """count_softmax: batch·(3·nf − 1), nf the size of the softmax axis (dim=None taken as the last)."""
    dim = attr(row, "dim")
    nf = x(row).shape[dim if dim is not None else -1]
    return (x(row).numel // nf) * (3 * nf - 1)


def adaptive_avgpool(row: Row) -> int:
    """count_adap_avgpool: int((∏(in/out) + 1)·n_out), the kernel ratio in float64."""
    ratio = math.prod(i / o for i, o in zip(x(row).shape[2:], y(row).shape[2:]))
    return int((ratio + 1) * y(row).numel)


def upsample(row: Row) -> int:
    """count_upsample: nearest 1, linear 5, bilinear 11, bicubic 259 per output element; others 0."""
    return _UPSAMPLE_OPS.get(attr(row, "mode", "nearest"), 0) * y(row).numel


def _steps_and_batch(row: Row) -> tuple[int, int]:
    shape = x(row).shape
    return (shape[1], shape[0]) if attr(row, "batch_first", False) else (shape[0], shape[1])


def _cell(kind: str, i: int, h: int, bias: bool) -> int:
    if kind == "RNN":
        return h * (i + h) + h + (2 * h if bias else 0)
    state = (i + h) * h + h + (2 * h if bias else 0)
    if kind == "GRU":
        return 2 * state + (i + h) * h + h + (2 * h if bias else 0) + h + 3 * h
    return 4 * state + 3 * h + h


def rnn(kind: str) -> RowCount:
    def count(row: Row) -> int:
        """thop/rnn_hooks.py count_rnn / count_gru / count_lstm: per-cell ops × steps × batch."""
        i, h, layers = attr(row, "input_size"), attr(row, "hidden_size"), attr(row, "num_layers", 1)
        bias, dirs = bool(attr(row, "bias", True)), 2 if attr(row, "bidirectional", False) else 1
        total = _cell(kind, i, h, bias) * dirs + (layers - 1) * _cell(kind, h * dirs, h, bias) * dirs
        steps, batch = _steps_and_batch(row)
        return total * steps * batch
    return count


def rnn_cell(kind: str) -> RowCount:
    def count(row: Row) -> int:
        """thop/rnn_hooks.py count_*_cell: per-cell ops × batch."""
        return _cell(kind, attr(row, "input_size"), attr(row, "hidden_size"), bool(attr(row, "bias", True))) \
            * x(row).shape[0]
    return count


OVERRIDES = {
    **keyed(_CONV, conv),
    **keyed(_CONV_T, conv_transpose_rule),
    **keyed(_NORMS, norm),
    **keyed((nn.PReLU,), lambda row: x(row).numel),
    **keyed((nn.Softmax,), softmax),
    **keyed(_ZERO, lambda row: 0),
    **keyed((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d), lambda row: y(row).numel),
    **keyed((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d), adaptive_avgpool),
    **keyed((nn.Linear,), lambda row: attr(row, "in_features") * y(row).numel),
    **keyed((nn.Upsample, nn.UpsamplingBilinear2d, nn.UpsamplingNearest2d), upsample),
    **keyed((nn.RNN,), rnn("RNN")), **keyed((nn.GRU,), rnn("GRU")), **keyed((nn.LSTM,), rnn("LSTM")),
    **keyed((nn.RNNCell,), rnn_cell("RNN")), **keyed((nn.GRUCell,), rnn_cell("GRU")),
    **keyed((nn.LSTMCell,), rnn_cell("LSTM")),
}
_CONV_T_NAMES = {f"{c.__module__}.{c.__qualname__}" for c in _CONV_T}


def _conv_transpose(row: Row) -> int:
    return conv(row) - conv_transpose_rule(row) if row.call.classes[0] in _CONV_T_NAMES else 0


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
