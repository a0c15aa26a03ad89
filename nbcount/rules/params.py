"""Parameter-count derivations per module type; any other module gets the generic per-tensor sum.

The value of each derivation is checked against the tensors' real element counts by the caller,
so a formula here can explain a count but never change it.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from nbcount.derive import Step, step, total
from nbcount.rules import Cost, param_rule
from nbcount.types import LayerCall


def generic_params(call: LayerCall) -> Cost:
    """params = Σ over the module's own tensors of ∏shape."""
    steps: list[Step] = []
    for ref in call.params_new:
        dims: dict[str, Any] = {f"d{i}": d for i, d in enumerate(ref.shape)} or {"d0": 1}
        steps.append(step(ref.name.rsplit(".", 1)[-1], "*".join(dims), **dims))
    if len(steps) != 1:
        steps.append(total("params", [(s.label, s.value) for s in steps]))
    return tuple(steps)


def _has_bias(call: LayerCall) -> int:
    return int(any(r.name.endswith("bias") for r in call.params_new))


@param_rule(nn.modules.conv._ConvNd)
def conv_params(call: LayerCall) -> Cost:
    """params = C_out·(C_in/groups·∏K) + C_out (bias); transposed: C_in·(C_out/groups·∏K) + C_out."""
    ks = call.attr("kernel_size")
    names = ("K_d", "K_h", "K_w")[-len(ks):]
    kernel = dict(zip(names, ks))
    bias = "+ C_out" if _has_bias(call) else ""
    c_in, c_out, g = call.attr("in_channels"), call.attr("out_channels"), call.attr("groups")
    if call.attr("transposed"):
        formula = f"C_in*(C_out/g*{'*'.join(kernel)}) {bias}".strip()
    else:
        formula = f"C_out*(C_in/g*{'*'.join(kernel)}) {bias}".strip()
    return (step("params", formula, C_out=c_out, C_in=c_in, g=g, **kernel),)


@param_rule(nn.Linear)
def linear_params(call: LayerCall) -> Cost:
    """params = N_in·N_out + N_out (bias)."""
    bias = " + N_out" if _has_bias(call) else ""
    return (step("params", "N_in*N_out" + bias, N_in=call.attr("in_features"), N_out=call.attr("out_features")),)


@param_rule(nn.Bilinear)
def bilinear_params(call: LayerCall) -> Cost:
    """params = O·I_1·I_2 + O (bias)."""
    bias = " + O" if _has_bias(call) else ""
    return (step("params", "O*I_1*I_2" + bias, O=call.attr("out_features"), I_1=call.attr("in1_features"),
                 I_2=call.attr("in2_features")),)


@param_rule(nn.modules.batchnorm._NormBase, nn.GroupNorm)
def norm_params(call: LayerCall) -> Cost:
    """params = 2·C (γ and β); running mean and variance are buffers, not parameters."""
    c = call.attr("num_features") or call.attr("num_channels")
    if not call.params_new:
        return (step("params", "0", note="affine=False: no γ, β"),)
    return (step("params", "2*C", C=c, note="γ and β; running statistics are buffers"),)


@param_rule(nn.LayerNorm)
def layer_norm_params(call: LayerCall) -> Cost:
    """params = 2·∏normalized_shape (γ and β), or 1·∏ without bias."""
    shape = call.attr("normalized_shape")
    dims = {f"D_{i}": d for i, d in enumerate(shape)} if len(shape) > 1 else {"D": shape[0]}
    count = len(call.params_new)
    if count == 0:
        return (step("params", "0", note="elementwise_affine=False"),)
    return (step("params", f"{count}*{'*'.join(dims)}", **dims),)


@param_rule(nn.Embedding)
def embedding_params(call: LayerCall) -> Cost:
    """params = V·D: one D-vector per vocabulary entry."""
    return (step("params", "V*D", V=call.attr("num_embeddings"), D=call.attr("embedding_dim")),)
