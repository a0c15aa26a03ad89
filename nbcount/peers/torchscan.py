"""`torchscan`: torchscan.crawl_module's "Module-formula forward FLOPs" — per-module FLOP formulas.

Mirrors torchscan/modules/flops.py ``module_flops`` (isinstance dispatch: flops_linear, flops_relu,
flops_elu, flops_leakyrelu, flops_relu6, flops_tanh, flops_sigmoid, flops_convnd,
flops_convtransposend, flops_bn, flops_maxpool, flops_avgpool, flops_adaptive_*pool, flops_dropout,
flops_layernorm) and torchscan/crawler.py (formulas on "metric leaf" modules only: no children, or
nn.MultiheadAttention; the model is run in eval mode). A dot product of n terms costs 2n − 1.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torch import nn

from nbcount.conventions import Convention, Defect, register
from nbcount.peers._common import RowCount, attr, keyed, ndim_spatial, x, y
from nbcount.rules import qualname

if TYPE_CHECKING:
    from nbcount.report import Row


def _leaf(fn: RowCount) -> RowCount:
    def count(row: Row) -> int:
        return fn(row) if row.call.is_leaf and row.call.in_tensors and row.call.out_tensors else 0
    count.__doc__ = fn.__doc__
    return count


def linear(row: Row) -> int:
    """flops_linear: out·∏lead·(2·in − 1) + out·∏lead for the bias."""
    outs = attr(row, "out_features") * math.prod(x(row).shape[:-1])
    return outs * (2 * attr(row, "in_features") - 1) + (outs if attr(row, "bias") else 0)


def conv(row: Row) -> int:
    """flops_convnd: n_out·(2·∏K·C_in/g − 1 + bias)."""
    terms = math.prod(attr(row, "kernel_size")) * (x(row).shape[1] // attr(row, "groups", 1))
    return y(row).numel * (2 * terms - 1 + (1 if attr(row, "bias") else 0))


def conv_transpose(row: Row) -> int:
    """8·ndim (padding arithmetic) + each input pixel's scatter: 2·MACs − n_out + bias per output."""
    macs = x(row).shape[0] * x(row).shape[1] * math.prod(x(row).shape[2:]) * (
        y(row).shape[1] // attr(row, "groups", 1)) * math.prod(attr(row, "kernel_size"))
    return 8 * len(attr(row, "kernel_size")) + 2 * macs - y(row).numel + (y(row).numel if attr(row, "bias") else 0)


def batch_norm(row: Row) -> int:
    """flops_bn (eval): 2·C (eps + sqrt) + 2·n (centre, scale) + 2·n for γ, β."""
    n = x(row).numel
    return 2 * attr(row, "num_features") + 2 * n + (2 * n if attr(row, "affine") else 0)


def _window(row: Row) -> int:
    """∏K over the spatial axes (an int kernel_size covers every axis)."""
    k = attr(row, "kernel_size")
    return k ** ndim_spatial(row) if isinstance(k, int) else math.prod(k)


def max_pool(row: Row) -> int:
    """flops_maxpool: n_out·(∏K − 1) comparisons."""
    return y(row).numel * (_window(row) - 1)


def avg_pool(row: Row) -> int:
    """flops_avgpool: n_out·(∏K − 1 + ndim − 2)."""
    return y(row).numel * (_window(row) - 1 + len(x(row).shape) - 2)


def _adaptive_kernel(row: Row) -> tuple[int, ...]:
    return tuple(i // o if i % o == 0 else i % o + 1 for i, o in zip(x(row).shape[2:], y(row).shape[2:]))


def layer_norm(row: Row) -> int:
    """flops_layernorm: 6·n + 2·rows + n per affine tensor."""
    n = x(row).numel
    shape = attr(row, "normalized_shape")
    rows = n // math.prod(shape if isinstance(shape, (tuple, list)) else (shape,))
    affine = 2 if attr(row, "elementwise_affine") else 0
    return 6 * n + 2 * rows + affine * n


def mha(row: Row) -> int:
    """flops_mha (no masks): projections (2d − 1 + bias per output), scale, q·kᵀ, softmax 3S − 1, p·v, out-proj,
    and the averaged weights when returned."""
    q, k, v = row.call.in_tensors[:3]
    e, h = attr(row, "embed_dim"), attr(row, "num_heads")
    hd = e // h
    b_dim, s_dim = (0, 1) if attr(row, "batch_first", False) else (1, 0)
    b, lq, s = q.shape[b_dim], q.shape[s_dim], k.shape[s_dim]
    names = {p.name.rsplit(".", 1)[-1] for p in (*row.call.params_new, *row.call.params_shared)}
    bias = 1 if "in_proj_bias" in names else 0
    total = sum(math.prod(t.shape[:-1]) * e * (2 * t.shape[-1] - 1 + bias) for t in (q, k, v))
    total += 1 + b * h * lq * hd + b * h * lq * s * (2 * hd - 1) + b * h * lq * (3 * s - 1)
    total += b * h * lq * hd * (2 * s - 1)
    rows = math.prod(q.shape[:-1])
    total += e * rows * (2 * e - 1) + (e * rows if "bias" in names else 0)
    outs = row.call.out_tensors
    return total + (b * h * lq * s if len(outs) > 1 and len(outs[1].shape) == 3 else 0)


def per_element(k: int) -> RowCount:
    def count(row: Row) -> int:
        return k * x(row).numel
    count.__doc__ = f"{k} per input element"
    return count


OVERRIDES = {key: _leaf(fn) for key, fn in {
    **keyed((nn.Identity, nn.Flatten), lambda row: 0),
    **keyed((nn.Dropout,), lambda row: x(row).numel if attr(row, "p", 0) > 0 and row.call.ops else 0),
    **keyed((nn.Linear,), linear),
    **keyed((nn.ReLU,), per_element(1)), **keyed((nn.ELU,), per_element(6)),
    **keyed((nn.LeakyReLU,), per_element(4)), **keyed((nn.ReLU6,), per_element(2)),
    **keyed((nn.Tanh,), per_element(6)), **keyed((nn.Sigmoid,), per_element(4)),
    **keyed((nn.modules.conv._ConvTransposeNd,), conv_transpose),
    **keyed((nn.modules.conv._ConvNd,), conv),
    **keyed((nn.modules.batchnorm._BatchNorm,), batch_norm),
    **keyed((nn.modules.pooling._MaxPoolNd,), max_pool),
    **keyed((nn.modules.pooling._AvgPoolNd,), avg_pool),
    **keyed((nn.modules.pooling._AdaptiveMaxPoolNd,),
            lambda row: y(row).numel * (math.prod(_adaptive_kernel(row)) - 1)),
    **keyed((nn.modules.pooling._AdaptiveAvgPoolNd,),
            lambda row: y(row).numel * (math.prod(_adaptive_kernel(row)) - 1 + len(_adaptive_kernel(row)))),
    **keyed((nn.LayerNorm,), layer_norm),
}.items()}
OVERRIDES.update(keyed((nn.MultiheadAttention,), mha))  # a metric leaf although it has a child
_DROPOUT = qualname(nn.Dropout)
_POOLS = {qualname(nn.modules.pooling._MaxPoolNd), qualname(nn.modules.pooling._AvgPoolNd)}
_CONV_T = qualname(nn.modules.conv._ConvTransposeNd)


def _int_kernel(row: Row) -> int:
    """flops_maxpool / flops_avgpool take an int kernel_size as the whole window: k − 1, not k^d − 1."""
    k = attr(row, "kernel_size")
    if not row.call.is_leaf or not _POOLS & set(row.call.classes) or not isinstance(k, int) or ndim_spatial(row) == 1:
        return 0
    return y(row).numel * (k - k ** ndim_spatial(row))


def _dropout_in_eval(row: Row) -> int:
    """flops_dropout counts one random draw per element whenever p > 0, though eval-mode dropout is the identity."""
    if row.call.is_leaf and _DROPOUT in row.call.classes and attr(row, "p", 0) > 0 and not row.call.ops:
        return x(row).numel
    return 0


def _conv_transpose_per_output(row: Row) -> int:
    """flops_convtransposend runs flops_convnd: a full C_in/g·∏K dot product for every output element."""
    if not row.call.is_leaf or _CONV_T not in row.call.classes:
        return 0
    return 8 * len(attr(row, "kernel_size")) + conv(row) - conv_transpose(row)


TORCHSCAN = register(Convention(
    name="torchscan",
    description="torchscan crawl_module module_flops: per-module FLOP formulas on leaf modules (dot products "
                "2n − 1, BatchNorm 4-6 per element, ReLU 1, Sigmoid 4); functional ops count 0.",
    source="torchscan/modules/flops.py: module_flops; torchscan/crawler.py: crawl_module",
    unit="FLOPs",
    module_overrides=OVERRIDES,
    defects=(
        Defect("pool_int_kernel", "an int kernel_size is taken as the whole window: MaxPool2d(3) counts "
               "(3 − 1) comparisons per output instead of (9 − 1)", _int_kernel),
        Defect("dropout_in_eval", "Dropout counts one random draw per element even in eval mode, where it "
               "is the identity", _dropout_in_eval),
        Defect("conv_transpose_per_output", "ConvTranspose is counted as a direct conv of every output "
               "element (∏stride × its real work)", _conv_transpose_per_output),
    ),
    notes=("Only 'metric leaf' modules get formulas; unsupported leaf types warn and count 0.",
           "torchscan also reports macs and dmas, and 'Operator forward FLOPs' from FlopCounterMode (the "
           "`torch` convention); its headline here is the module-formula FLOPs.",
           "MultiheadAttention is mirrored without attention masks; nn.Transformer's composite formula (only for "
           "a root nn.Transformer) is not mirrored."),
    rules={"conv": "(2·C_in/g·∏K − 1 + bias) per output", "conv_transpose": "2·MACs − n_out + bias + 8·ndim "
           "(torchscan: a direct conv per output, a defect)", "linear": "(2·in − 1 + bias) per output",
           "batchnorm": "2·C + 2 per element + 2 per element with affine", "layernorm": "6 per element + 2 "
           "per row + 1 per element per affine tensor", "relu": "1 per element", "relu6": "2 per element",
           "leaky_relu": "4 per element", "activation": "ELU 6 per element; GELU / SiLU / PReLU 0",
           "sigmoid": "4 per element", "tanh": "6 per element",
           "maxpool": "∏K − 1 per output (int kernel: k − 1, a defect)", "avgpool": "∏K − 1 + ndim − 2 per "
           "output", "adaptive_avgpool": "∏k − 1 + ndim per output (k = in/out, module only)",
           "adaptive_maxpool": "∏k − 1 per output", "dropout": "0 in eval (torchscan: 1 per element, a defect)",
           "mha": "flops_mha: projections, scale, q·kᵀ, softmax 3S − 1, p·v, out-projection (2n − 1 dot products)",
           "*": "0 (unsupported type, or not a leaf)"},
))
