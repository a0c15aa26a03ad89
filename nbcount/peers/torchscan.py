"""`torchscan`: torchscan.crawl_module's "Module-formula forward FLOPs" — per-module FLOP formulas.

Mirrors torchscan/modules/flops.py ``module_flops`` (isinstance dispatch: flops_linear, flops_relu,
flops_elu, flops_leakyrelu, flops_relu6, flops_tanh, flops_sigmoid, flops_convnd,
flops_convtransposend, flops_bn, flops_maxpool, flops_avgpool, flops_adaptive_*pool, flops_dropout,
flops_layernorm) and torchscan/crawler.py (formulas on "metric leaf" modules only: no children, or
nn.MultiheadAttention; the model is run in eval mode). A dot product of n terms costs 2n − 1.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from torch import nn

from nbcount.convention import Convention, Cost, Defect, register
from nbcount.peers._common import (
    RowCount,
    attr,
    excess,
    formula,
    kernel_symbols,
    keyed,
    ndim_spatial,
    nothing,
    per_element,
    product,
    x,
    y,
)
from nbcount.rules import qualname

if TYPE_CHECKING:
    from nbcount.report import Row

LABEL = "FLOPs (torchscan)"


def _leaf(fn: RowCount) -> RowCount:
    def count(row: Row) -> Cost:
        if row.call.is_leaf and row.call.in_tensors and row.call.out_tensors:
            return fn(row)
        return nothing(LABEL, "not a metric leaf (it has children), or no tensor in / out")
    count.__doc__ = fn.__doc__
    return count


def linear(row: Row) -> Cost:
    """flops_linear: out·∏lead·(2·in − 1) + out·∏lead for the bias."""
    text = "N_out*rows*(2*N_in - 1)" + (" + N_out*rows" if attr(row, "bias") else "")
    return formula(LABEL, text, "rows: every leading position", N_out=attr(row, "out_features"),
                   rows=math.prod(x(row).shape[:-1]), N_in=attr(row, "in_features"))


def _conv_kernel(row: Row) -> dict[str, Any]:
    return kernel_symbols(attr(row, "kernel_size"), len(attr(row, "kernel_size")))


def conv(row: Row) -> Cost:
    """flops_convnd: n_out·(2·∏K·C_in/g − 1 + bias)."""
    kernel = _conv_kernel(row)
    text = f"n_out*(2*{product(kernel)}*(C_in/g) - 1" + (" + 1)" if attr(row, "bias") else ")")
    return formula(LABEL, text, n_out=y(row).numel, C_in=x(row).shape[1], g=attr(row, "groups", 1), **kernel)


def conv_transpose(row: Row) -> Cost:
    """8·ndim (padding arithmetic) + each input pixel's scatter: 2·MACs − n_out + bias per output."""
    kernel = _conv_kernel(row)
    text = f"8*D + 2*n_in*(C_out/g)*{product(kernel)} - n_out" + (" + n_out" if attr(row, "bias") else "")
    return formula(LABEL, text, "D spatial axes", D=len(kernel), n_in=x(row).numel, C_out=y(row).shape[1],
                   g=attr(row, "groups", 1), n_out=y(row).numel, **kernel)


def batch_norm(row: Row) -> Cost:
    """flops_bn (eval): 2·C (eps + sqrt) + 2·n (centre, scale) + 2·n for γ, β."""
    text = "2*C + 2*n_in" + (" + 2*n_in" if attr(row, "affine") else "")
    return formula(LABEL, text, C=attr(row, "num_features"), n_in=x(row).numel)


def _window(row: Row) -> dict[str, Any]:
    """K_h, K_w … over the spatial axes (an int kernel_size covers every axis)."""
    return kernel_symbols(attr(row, "kernel_size"), ndim_spatial(row))


def max_pool(row: Row) -> Cost:
    """flops_maxpool: n_out·(∏K − 1) comparisons."""
    kernel = _window(row)
    return formula(LABEL, f"n_out*({product(kernel)} - 1)", n_out=y(row).numel, **kernel)


def avg_pool(row: Row) -> Cost:
    """flops_avgpool: n_out·(∏K − 1 + ndim − 2)."""
    kernel = _window(row)
    return formula(LABEL, f"n_out*({product(kernel)} - 1 + ndim - 2)", n_out=y(row).numel, ndim=len(x(row).shape),
                   **kernel)


def _adaptive_kernel(row: Row) -> dict[str, Any]:
    sizes = [i // o if i % o == 0 else i % o + 1 for i, o in zip(x(row).shape[2:], y(row).shape[2:])]
    return {f"k_{i}": k for i, k in enumerate(sizes)}


def adaptive_max_pool(row: Row) -> Cost:
    """flops_adaptive_maxpool: n_out·(∏k − 1), k = in // out (or in % out + 1)."""
    kernel = _adaptive_kernel(row)
    return formula(LABEL, f"n_out*({product(kernel)} - 1)", n_out=y(row).numel, **kernel)


def adaptive_avg_pool(row: Row) -> Cost:
    """flops_adaptive_avgpool: n_out·(∏k − 1 + len(k))."""
    kernel = _adaptive_kernel(row)
    return formula(LABEL, f"n_out*({product(kernel)} - 1 + D)", n_out=y(row).numel, D=len(kernel), **kernel)


def layer_norm(row: Row) -> Cost:
    """flops_layernorm: 6·n + 2·rows + n per affine tensor."""
    n = x(row).numel
    shape = attr(row, "normalized_shape")
    rows = n // math.prod(shape if isinstance(shape, (tuple, list)) else (shape,))
    text = "6*n_in + 2*rows" + (" + 2*n_in" if attr(row, "elementwise_affine") else "")
    return formula(LABEL, text, "rows: the normalised vectors", n_in=n, rows=rows)


def mha(row: Row) -> Cost:
    """flops_mha (no masks): projections (2d − 1 + bias per output), scale, q·kᵀ, softmax 3S − 1, p·v, out-proj,
    and the averaged weights when returned."""
    q, k, v = row.call.in_tensors[:3]
    e, h = attr(row, "embed_dim"), attr(row, "num_heads")
    b_dim, s_dim = (0, 1) if attr(row, "batch_first", False) else (1, 0)
    names = {p.name.rsplit(".", 1)[-1] for p in (*row.call.params_new, *row.call.params_shared)}
    bias = 1 if "in_proj_bias" in names else 0
    symbols = {"E": e, "H": h, "hd": e // h, "B": q.shape[b_dim], "L": q.shape[s_dim], "S": k.shape[s_dim],
               "b": bias, "r_q": math.prod(q.shape[:-1]), "r_k": math.prod(k.shape[:-1]),
               "r_v": math.prod(v.shape[:-1]), "d_q": q.shape[-1], "d_k": k.shape[-1], "d_v": v.shape[-1]}
    text = ("r_q*E*(2*d_q - 1 + b) + r_k*E*(2*d_k - 1 + b) + r_v*E*(2*d_v - 1 + b) + 1 + B*H*L*hd"
            " + B*H*L*S*(2*hd - 1) + B*H*L*(3*S - 1) + B*H*L*hd*(2*S - 1) + E*r_q*(2*E - 1)")
    if "bias" in names:
        text += " + E*r_q"
    outs = row.call.out_tensors
    if len(outs) > 1 and len(outs[1].shape) == 3:
        text += " + B*H*L*S"
    return formula(LABEL, text, "projections, scale, q·kᵀ, softmax, p·v, out-projection (and averaged weights)",
                   **symbols)


def _per_element(k: int) -> RowCount:
    def count(row: Row) -> Cost:
        return per_element(LABEL, k, x(row).numel)
    count.__doc__ = f"{k} per input element"
    return count


def _dropout(row: Row) -> Cost:
    """flops_dropout: one random draw per element when p > 0 (0 when the call ran no op)."""
    if attr(row, "p", 0) > 0 and row.call.ops:
        return per_element(LABEL, 1, x(row).numel)
    return nothing(LABEL, "eval-mode dropout (the defect dropout_in_eval adds what torchscan counts)")


OVERRIDES = {key: _leaf(fn) for key, fn in {
    **keyed((nn.Identity, nn.Flatten), lambda row: nothing(LABEL, "no arithmetic")),
    **keyed((nn.Dropout,), _dropout),
    **keyed((nn.Linear,), linear),
    **keyed((nn.ReLU,), _per_element(1)), **keyed((nn.ELU,), _per_element(6)),
    **keyed((nn.LeakyReLU,), _per_element(4)), **keyed((nn.ReLU6,), _per_element(2)),
    **keyed((nn.Tanh,), _per_element(6)), **keyed((nn.Sigmoid,), _per_element(4)),
    **keyed((nn.modules.conv._ConvTransposeNd,), conv_transpose),
    **keyed((nn.modules.conv._ConvNd,), conv),
    **keyed((nn.modules.batchnorm._BatchNorm,), batch_norm),
    **keyed((nn.modules.pooling._MaxPoolNd,), max_pool),
    **keyed((nn.modules.pooling._AvgPoolNd,), avg_pool),
    **keyed((nn.modules.pooling._AdaptiveMaxPoolNd,), adaptive_max_pool),
    **keyed((nn.modules.pooling._AdaptiveAvgPoolNd,), adaptive_avg_pool),
    **keyed((nn.LayerNorm,), layer_norm),
}.items()}
OVERRIDES.update(keyed((nn.MultiheadAttention,), mha))  # a metric leaf although it has a child
_DROPOUT = qualname(nn.Dropout)
_POOLS = {qualname(nn.modules.pooling._MaxPoolNd), qualname(nn.modules.pooling._AvgPoolNd)}
_CONV_T = qualname(nn.modules.conv._ConvTransposeNd)


def _int_kernel(row: Row) -> Cost:
    """flops_maxpool / flops_avgpool take an int kernel_size as the whole window: k − 1, not k^d − 1."""
    k = attr(row, "kernel_size")
    if not row.call.is_leaf or not _POOLS & set(row.call.classes) or not isinstance(k, int) or ndim_spatial(row) == 1:
        return nothing("defect pool_int_kernel", "not a pool with an int kernel_size")
    return formula("defect pool_int_kernel", "n_out*(k - k**D)", "k − 1 instead of k^D − 1 per output",
                   n_out=y(row).numel, k=k, D=ndim_spatial(row))


def _dropout_in_eval(row: Row) -> Cost:
    """flops_dropout counts one random draw per element whenever p > 0, though eval-mode dropout is the identity."""
    if row.call.is_leaf and _DROPOUT in row.call.classes and attr(row, "p", 0) > 0 and not row.call.ops:
        return per_element("defect dropout_in_eval", 1, x(row).numel)
    return nothing("defect dropout_in_eval", "not an eval-mode dropout")


def _conv_transpose_per_output(row: Row) -> Cost:
    """flops_convtransposend runs flops_convnd: a full C_in/g·∏K dot product for every output element."""
    if not row.call.is_leaf or _CONV_T not in row.call.classes:
        return nothing("defect conv_transpose_per_output", "not a transposed conv")
    return excess("defect conv_transpose_per_output", conv(row), conv_transpose(row), "8*D",
                  D=len(attr(row, "kernel_size")))


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
