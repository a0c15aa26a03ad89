"""`paddle` (paddle.flops, seed 002) and `macs+bias` (the AlexNet article's formula, seed 003).

`paddle` mirrors python/paddle/hapi/dynamic_flops.py ``register_hooks`` (count_convNd, count_bn,
count_linear, count_leaky_relu, count_avgpool, count_adap_avgpool, count_zero_ops) applied to the
PyTorch layer that corresponds to each Paddle layer (Conv2d for Conv2D, ...), leaf layers only, exact
type. `macs+bias` counts a conv as (K·K·C_in + 1)·H·W·C_out and a fully connected layer as
(N_in + 1)·N_out: every multiply-add plus one addition for the bias, nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from nbcount.convention import Convention, Cost, Defect, register
from nbcount.peers._common import (
    MAC,
    MAC_BIAS,
    attr,
    excess,
    formula,
    kernel_symbols,
    keyed,
    nothing,
    per_element,
    product,
    x,
    y,
)

if TYPE_CHECKING:
    from nbcount.report import Row

LABEL = "FLOPs (paddle)"
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_CONV_T_NAMES = {f"{c.__module__}.{c.__qualname__}" for c in _CONV_T}


def _kernel(row: Row) -> dict[str, Any]:
    return kernel_symbols(attr(row, "kernel_size"), len(attr(row, "kernel_size")))


def conv(row: Row, label: str = LABEL) -> Cost:
    """count_convNd: n_out·(C_in/g·∏K + 1 if bias) — every output a dot product plus its bias."""
    kernel = _kernel(row)
    text = f"n_out*(C_in/g*{product(kernel)}" + (" + 1)" if attr(row, "bias") else ")")
    return formula(label, text, n_out=y(row).numel, C_in=x(row).shape[1], g=attr(row, "groups", 1), **kernel)


def conv_transpose(row: Row) -> Cost:
    """The MACs a transposed conv does (per input pixel) + 1 per output for the bias."""
    kernel = _kernel(row)
    text = f"n_in*(C_out/g)*{product(kernel)}" + (" + n_out" if attr(row, "bias") else "")
    return formula(LABEL, text, n_in=x(row).numel, C_out=y(row).shape[1], g=attr(row, "groups", 1),
                   n_out=y(row).numel, **kernel)


def _conv_transpose_per_output(row: Row) -> Cost:
    label = "defect conv_transpose_per_output"
    if row.call.classes[0] not in _CONV_T_NAMES:
        return nothing(label, "not a transposed conv")
    return excess(label, conv(row), conv_transpose(row))


def adaptive_avgpool(row: Row) -> Cost:
    """count_adap_avgpool: (∏(in // out) + 1)·n_out."""
    kernel: dict[str, Any] = {f"k_{i}": a // b for i, (a, b) in enumerate(zip(x(row).shape[2:], y(row).shape[2:]))}
    return formula(LABEL, f"({product(kernel)} + 1)*n_out", "k = in // out per axis", n_out=y(row).numel, **kernel)


def _linear(row: Row, label: str = LABEL, bias: bool = False) -> Cost:
    text = "(N_in + 1)*n_out" if bias and attr(row, "bias") else "N_in*n_out"
    return formula(label, text, N_in=attr(row, "in_features"), n_out=y(row).numel)


PADDLE = register(Convention(
    name="paddle",
    description="paddle.flops: conv MACs + 1 per output for the bias, Linear MACs without bias, BatchNorm 2 per "
                "element, LeakyReLU 1; ReLU, max-pool and other layers 0 (seed 002).",
    source="python/paddle/hapi/dynamic_flops.py: register_hooks (count_convNd, count_bn, count_linear, ...)",
    unit="FLOPs",
    module_overrides={
        **keyed((nn.Conv1d, nn.Conv2d, nn.Conv3d), conv),
        **keyed(_CONV_T, conv_transpose),
        **keyed((nn.BatchNorm2d,), lambda row: per_element(LABEL, 2, x(row).numel)),
        **keyed((nn.ReLU, nn.ReLU6, nn.Dropout), lambda row: nothing(LABEL, "count_zero_ops")),
        **keyed((nn.LeakyReLU,), lambda row: per_element(LABEL, 1, x(row).numel)),
        **keyed((nn.Linear,), _linear),
        **keyed((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d), lambda row: per_element(LABEL, 1, y(row).numel, "out")),
        **keyed((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d), adaptive_avgpool),
    },
    exact_type=True,
    defects=(Defect("conv_transpose_per_output", "Conv2DTranspose shares count_convNd: a direct conv per "
                    "output element (∏stride × its MACs)", _conv_transpose_per_output),),
    notes=("Paddle cannot be installed here: checked against seed 002 (LeNet 347,560; one conv 7,782,400).",
           "Paddle's BatchNorm 'params' are 4·C (running statistics included); PyTorch keeps those as buffers.",
           "Only BatchNorm2D (and the generic BatchNorm) is registered: 1-D / 3-D batch norms count 0."),
    rules={"conv": MAC_BIAS, "conv_transpose": MAC_BIAS + "; MACs per input pixel (paddle: per output pixel, "
           "a defect)", "linear": MAC,
           "batchnorm": "2 per element (BatchNorm2D only)", "leaky_relu": "1 per element",
           "avgpool": "1 per output element", "adaptive_avgpool": "(∏(in // out) + 1) per output element",
           "*": "0 (count_zero_ops or no hook)"},
))


def seed_conv(row: Row) -> Cost:
    """(K·K·C_in/g + 1)·H·W·C_out·N: each output a K·K·C_in dot product plus one bias addition."""
    return conv(row, "FLOPs (macs+bias)")


def seed_linear(row: Row) -> Cost:
    """(N_in + 1)·N_out per output row."""
    return _linear(row, "FLOPs (macs+bias)", bias=True)


SEED003 = register(Convention(
    name="macs+bias",
    description="The AlexNet article (seed 003): conv (K·K·C_in + 1)·H·W·C_out, fully connected (N_in + 1)·N_out, "
                "nothing else.",
    source="seeds/003_618e9139234802d3.txt (AlexNet: receptive field, FLOPs, model size)",
    unit="FLOPs",
    module_overrides={**keyed((nn.modules.conv._ConvNd,), seed_conv), **keyed((nn.Linear,), seed_linear)},
    notes=("The +1 is the bias; a layer without bias counts its multiply-adds only.",
           "Transposed convolutions use the same formula per output pixel, as the article's formula reads."),
    rules={"conv": MAC_BIAS, "conv_transpose": MAC_BIAS + " per output pixel ((K·K·C_in/g + 1) per output)",
           "linear": MAC_BIAS, "*": "0"},
))
