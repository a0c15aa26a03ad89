"""Parameter-count derivations per module type that name the structure; any other module gets the per-tensor sum.

The value of each derivation is checked against the tensors' real element counts by the caller,
so a formula here can explain a count but never change it. A composite layer (TransformerEncoderLayer)
is derived from its sub-layers: its call carries their attributes as ``self_attn.embed_dim`` and every
parameter of its subtree (see nbcount.explain.params_section).
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from nbcount.derive import Step, step, total
from nbcount.rules.registry import Cost, param_rule
from nbcount.types import LayerCall, ParamRef


def generic_params(call: LayerCall) -> Cost:
    """params = Σ over the module's own tensors of ∏shape."""
    steps: list[Step] = []
    for ref in call.params_new:
        dims: dict[str, Any] = {f"d{i}": d for i, d in enumerate(ref.shape)} or {"d0": 1}
        steps.append(step(ref.name.rsplit(".", 1)[-1], "*".join(dims), **dims))
    if len(steps) != 1:
        steps.append(total("params", [(s.label, s.value) for s in steps]))
    return tuple(steps)


def reuse_note(shared: tuple[ParamRef, ...]) -> str:
    """``reuses wte.weight (38,597,376 parameters), counted once at its first use``."""
    n = sum(p.numel for p in shared)
    names = ", ".join(p.name for p in shared[:3]) + (f" and {len(shared) - 3} more" if len(shared) > 3 else "")
    return f"reuses {names} ({n:,} parameters), counted once at {'its' if len(shared) == 1 else 'their'} first use"


def _own(call: LayerCall) -> set[str]:
    """The call's parameter names relative to the module (``weight_ih_l0``, ``out_proj.bias``)."""
    prefix = call.path + "." if call.path else ""
    return {r.name[len(prefix):] if r.name.startswith(prefix) else r.name for r in call.params_new}


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
    """params = F_in·F_out (weight) + F_out (bias)."""
    bias = " + F_out" if _has_bias(call) else ""
    return (step("params", "F_in*F_out" + bias, F_in=call.attr("in_features"), F_out=call.attr("out_features"),
                 note="weight F_out × F_in" + (", bias F_out" if bias else "")),)


@param_rule(nn.Bilinear)
def bilinear_params(call: LayerCall) -> Cost:
    """params = O·I_1·I_2 + O (bias)."""
    bias = " + O" if _has_bias(call) else ""
    return (step("params", "O*I_1*I_2" + bias, O=call.attr("out_features"), I_1=call.attr("in1_features"),
                 I_2=call.attr("in2_features")),)


@param_rule(nn.modules.batchnorm._NormBase, nn.GroupNorm)
def norm_params(call: LayerCall) -> Cost:
    """params = 2·C (γ and β) with affine=True, else 0; running mean and variance are buffers, not parameters."""
    c = call.attr("num_features") or call.attr("num_channels")
    if not call.params_new:
        return (step("params", "0", note="affine=False: no γ, β"),)
    return (step("params", "2*C", C=c, note="γ (weight) and β (bias), one each per channel; running statistics "
                 "are buffers"),)


@param_rule(nn.LayerNorm, nn.RMSNorm)
def layer_norm_params(call: LayerCall) -> Cost:
    """params = 2·∏normalized_shape (γ and β), 1·∏ with γ only (bias=False, RMSNorm), 0 without affine."""
    shape = tuple(call.attr("normalized_shape"))
    dims = {f"D_{i}": d for i, d in enumerate(shape)} if len(shape) > 1 else {"E": shape[0]}
    where = {k: f"normalized_shape[{i}]" for i, k in enumerate(dims)} if len(shape) > 1 else {}
    count = len(call.params_new)
    if count == 0:
        return (step("params", "0", note="elementwise_affine=False: no γ, β"),)
    what = "γ (weight) and β (bias)" if count == 2 else "γ (weight) only"
    return (step("params", f"{count}*{'*'.join(dims)}", note=f"{what}, one per normalised element", where=where,
                 **dims),)


@param_rule(nn.Embedding, nn.EmbeddingBag)
def embedding_params(call: LayerCall) -> Cost:
    """params = V·E: one E-vector per vocabulary entry (an EmbeddingBag pools them; its table is the same)."""
    notes = ["a V × E table, one row per id"]
    if call.attr("padding_idx") is not None:
        notes.append(f"row {call.attr('padding_idx')} (padding_idx) is still a parameter, kept at zero")
    if "EmbeddingBag" in call.module_type:
        notes.append(f"mode={call.attr('mode')}: rows are pooled per bag, with no parameter of its own")
    return (step("params", "V*E", V=call.attr("num_embeddings"), E=call.attr("embedding_dim"), note="; ".join(notes)),)


_GATES = {"LSTM": (4, "4 gates: input, forget, cell, output"), "GRU": (3, "3 gates: reset, update, new"),
          "RNN": (1, "1 gate: h' = tanh(W_ih·x + b_ih + W_hh·h + b_hh)")}
_RNN_WHERE = {"G": "gates", "H": "hidden_size", "I": "input width of the layer", "P": "proj_size",
              "D": "directions (2: bidirectional)"}


def _cell_formula(bias: bool, proj: bool, upper: bool) -> str:
    """weight_ih (G·H × I) + weight_hh (G·H × P, P = H without projection) + 2 biases + weight_hr (P × H)."""
    i = "I_k" if upper else "I"
    p = "P" if proj else "H"
    return f"G*H*{i} + G*H*{p}" + (" + 2*G*H" if bias else "") + (" + P*H" if proj else "")


@param_rule(nn.RNNBase)
def recurrent_params(call: LayerCall) -> Cost:
    """Per layer and direction: G·H·I + G·H·H + 2·G·H (+ P·H with proj_size P); upper layers read I = D·H (D·P)."""
    mode = str(call.attr("mode", "RNN_TANH"))
    kind = "LSTM" if mode == "LSTM" else "GRU" if mode == "GRU" else "RNN"
    g, gates = _GATES[kind]
    h, layers = int(call.attr("hidden_size")), int(call.attr("num_layers"))
    proj = int(call.attr("proj_size") or 0)
    dirs = 2 if call.attr("bidirectional") else 1
    bias = bool(call.attr("bias"))
    where = {**_RNN_WHERE, "I_k": "input width of layers 1 and up"}
    sizes: dict[str, Any] = {"G": g, "H": h, **({"P": proj} if proj else {})}
    steps: list[Step] = []
    upper_width = 0
    for k in range(layers):
        upper = k > 0
        if k == 1:
            read = ("D*" if dirs == 2 else "") + ("P" if proj else "H")
            reads: dict[str, Any] = ({"P": proj} if proj else {"H": h}) | ({"D": dirs} if dirs == 2 else {})
            steps.append(step("I_k", read, where=where, **reads,
                              note=f"layers 1 and up read {'both directions of ' if dirs == 2 else ''}"
                                   "the layer below, not the input"))
            upper_width = int(steps[-1].value)
        widths: dict[str, Any] = {"I_k": upper_width} if upper else {"I": int(call.attr("input_size"))}
        cell = _cell_formula(bias, bool(proj), upper)
        formula = f"D*({cell})" if dirs == 2 else cell
        extra: dict[str, Any] = {"D": dirs} if dirs == 2 else {}
        note = gates if k == 0 else ("both directions" if dirs == 2 else "")
        label = f"layer {k}" + (" (both directions)" if dirs == 2 else "")
        steps.append(step(label, formula, note=note, where=where, **sizes, **widths, **extra))
    layer_steps = [s for s in steps if s.label.startswith("layer")]
    if len(layer_steps) > 1:
        steps.append(total("params", [(s.label, s.value) for s in layer_steps]))
    else:
        steps[-1] = _relabel(steps[-1], "params")
    return tuple(steps)


@param_rule(nn.RNNCellBase)
def recurrent_cell_params(call: LayerCall) -> Cost:
    """G·H·I + G·H·H + 2·G·H: one layer, one direction, one step at a time."""
    kind = "LSTM" if "LSTM" in call.module_type else "GRU" if "GRU" in call.module_type else "RNN"
    g, gates = _GATES[kind]
    formula = _cell_formula(bool(call.attr("bias")), False, False)
    return (step("params", formula, G=g, H=int(call.attr("hidden_size")), I=int(call.attr("input_size")),
                 note=gates, where=_RNN_WHERE),)


_MHA_WHERE = {"E": "embed_dim", "E_k": "kdim (key width)", "E_v": "vdim (value width)"}


@param_rule(nn.MultiheadAttention)
def attention_params(call: LayerCall) -> Cost:
    """in-projection 3·E·E + 3·E (q, k, v stacked; E·E + E·E_k + E·E_v when kdim/vdim differ) + out-projection
    E·E + E (+ 2·E for bias_k, bias_v)."""
    own = _own(call)
    e = int(call.attr("embed_dim"))
    e_k, e_v = int(call.attr("kdim") or e), int(call.attr("vdim") or e)
    bias = "in_proj_bias" in own
    steps = []
    if "in_proj_weight" in own:
        steps.append(step("in-projection (q, k, v)", "3*E*E" + (" + 3*E" if bias else ""), E=e, where=_MHA_WHERE,
                          note="in_proj_weight 3E × E: W_q, W_k, W_v stacked" + (", in_proj_bias 3E" if bias else "")))
    else:
        steps.append(step("in-projections q, k, v", "E*E + E*E_k + E*E_v" + (" + 3*E" if bias else ""), E=e, E_k=e_k,
                          E_v=e_v, where=_MHA_WHERE, note="q_proj_weight E × E, k_proj_weight E × E_k, v_proj_weight "
                          "E × E_v (kdim, vdim differ from E)" + (", in_proj_bias 3E" if bias else "")))
    out_bias = "out_proj.bias" in own
    steps.append(step("out-projection", "E*E" + (" + E" if out_bias else ""), E=e, where=_MHA_WHERE,
                      note="out_proj.weight E × E" + (", out_proj.bias E" if out_bias else "")))
    if "bias_k" in own:
        steps.append(step("bias_k, bias_v", "2*E", E=e, where=_MHA_WHERE,
                          note="add_bias_kv: one learned key and value appended to the sequence"))
    note = "add_zero_attn appends a zero key and value: no parameters, S + 1 keys" if call.attr("add_zero_attn") else ""
    steps.append(total("params", [(s.label, s.value) for s in steps], note=note))
    return tuple(steps)


def _relabel(st: Step, label: str) -> Step:
    from dataclasses import replace

    return replace(st, label=label)


def _transformer_parts(call: LayerCall, attentions: tuple[str, ...], norms: int) -> Cost:
    """Σ of named parts: attention blocks 4·E·E + 4·E, feed-forward 2·E·F + F + E, norms 2·E each."""
    own = _own(call)
    e, f = int(call.attr("self_attn.embed_dim")), int(call.attr("linear1.out_features"))
    sizes: dict[str, Any] = {"E": e, "F": f}
    where = {"E": "d_model (embedding width)", "F": "dim_feedforward"}
    steps = []
    for name in attentions:
        bias = f"{name}.in_proj_bias" in own
        steps.append(step(name, "4*E*E" + (" + 4*E" if bias else ""), where=where, E=e,
                          note="in-projection 3·E·E + 3·E, out-projection E·E + E" if bias else
                          "in-projection 3·E·E, out-projection E·E"))
    bias = "linear1.bias" in own
    steps.append(step("linear1 + linear2", "2*E*F" + (" + F + E" if bias else ""), where=where, **sizes,
                      note="feed-forward: E → F → E" + (" with biases F and E" if bias else "")))
    norm_bias = "norm1.bias" in own
    steps.append(step(" + ".join(f"norm{k}" for k in range(1, norms + 1)), f"{norms}*{2 if norm_bias else 1}*E",
                      where=where, E=e, note="LayerNorm γ" + (" and β" if norm_bias else "") + " per norm"))
    steps.append(total("params", [(s.label, s.value) for s in steps]))
    return tuple(steps)


@param_rule(nn.TransformerEncoderLayer)
def encoder_layer_params(call: LayerCall) -> Cost:
    """self_attn + feed-forward + 2 norms = (4·E·E + 4·E) + (2·E·F + F + E) + 2·2·E."""
    return _transformer_parts(call, ("self_attn",), 2)


@param_rule(nn.TransformerDecoderLayer)
def decoder_layer_params(call: LayerCall) -> Cost:
    """self_attn + cross-attention + feed-forward + 3 norms = 2·(4·E·E + 4·E) + (2·E·F + F + E) + 3·2·E."""
    return _transformer_parts(call, ("self_attn", "multihead_attn"), 3)
