"""Recurrent layers, counted per module call (their aten ops differ by backend: mkldnn, cudnn, math).

Per time step, layer and direction, with I the layer's input width and H the hidden width:
RNN  MACs = H·(I + H), bias 2·H, tanh H;
GRU  MACs = 3·H·(I + H), bias 2·3·H, gates 3·H (σ, σ, tanh) + 5·H pointwise;
LSTM MACs = 4·H·(I + P), bias 2·4·H, gates 5·H (σ, σ, σ, tanh, tanh) + 4·H pointwise
     (+ H·P MACs for a projection of size P; P = H without one).
A subclass that overrides forward is counted op by op: an LSTM layer on CPU runs aten.mkldnn_rnn_layer
(one layer, one direction), the other recurrent layers decompose into matmuls and pointwise ops.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from nbcount.derive import Step, step
from nbcount.rules.registry import Cost, expects, kind, module_rule, op_rule
from nbcount.types import LayerCall, OpEvent, Term

aten = torch.ops.aten

_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_ACTIVATIONS = {"RNN": 1, "GRU": 3, "LSTM": 5}
_POINTWISE = {"RNN": 0, "GRU": 5, "LSTM": 4}


def _tokens(call: LayerCall) -> int:
    """Batch × time steps seen by the first layer (a PackedSequence's data holds the tokens)."""
    x = call.in_tensors[0]
    if len(x.shape) == 2 and call.attr("_packed"):
        return x.shape[0]
    if len(x.shape) == 2:
        return x.shape[0]  # unbatched (T, I)
    return x.shape[0] * x.shape[1]


def _cell_steps(kind: str, label: str, tokens: int, i: int, h: int, p: int, bias: bool) -> list[Step]:
    g = _GATES[kind]
    steps = [step(f"MACs {label}", "T*G*H*(I + P)", term=Term.MAC, T=tokens, G=g, H=h, I=i, P=p)]
    if p != h:
        steps.append(step(f"MACs {label} projection", "T*H*P", term=Term.MAC, T=tokens, H=h, P=p))
    if bias:
        steps.append(step(f"bias adds {label}", "T*2*G*H", term=Term.BIAS, T=tokens, G=g, H=h))
    steps.append(step(f"gate activations {label}", "T*A*H", term=Term.ACTIVATION, T=tokens,
                      A=_ACTIVATIONS[kind], H=h))
    if _POINTWISE[kind]:
        steps.append(step(f"pointwise {label}", "T*M*H", term=Term.ELEMENTWISE, T=tokens,
                          M=_POINTWISE[kind], H=h))
    return steps


def _kind(call: LayerCall) -> str:
    mode = str(call.attr("mode", "RNN_TANH"))
    return "LSTM" if mode == "LSTM" else "GRU" if mode == "GRU" else "RNN"


@module_rule(nn.RNNBase)
def recurrent(call: LayerCall) -> Cost:
    """Sum over layers and directions of the per-step cell cost times batch·time steps."""
    kind = _kind(call)
    h, layers = int(call.attr("hidden_size")), int(call.attr("num_layers"))
    p = int(call.attr("proj_size") or 0) or h
    dirs = 2 if call.attr("bidirectional") else 1
    tokens, bias = _tokens(call), bool(call.attr("bias"))
    steps: list[Step] = []
    for layer in range(layers):
        i = int(call.attr("input_size")) if layer == 0 else p * dirs
        for d in range(dirs):
            label = f"layer {layer}" + (" reverse" if d else "")
            steps += _cell_steps(kind, label, tokens, i, h, p, bias)
    return tuple(steps)


@module_rule(nn.RNNCellBase)
def recurrent_cell(call: LayerCall) -> Cost:
    """One step of an RNNCell / GRUCell / LSTMCell for each row of the batch."""
    name = call.module_type
    kind = "LSTM" if "LSTM" in name else "GRU" if "GRU" in name else "RNN"
    x = call.in_tensors[0]
    batch = x.shape[0] if len(x.shape) == 2 else 1
    h = int(call.attr("hidden_size"))
    return tuple(_cell_steps(kind, "cell", batch, int(call.attr("input_size")), h, h, bool(call.attr("bias"))))


@op_rule(aten.mkldnn_rnn_layer)
def mkldnn_rnn_layer(op: OpEvent) -> Cost:
    """One LSTM layer in one direction over T = batch·time tokens: the LSTM cell's cost per token."""
    x, w_ih, w_hh = op.args[0], op.args[1], op.args[2]
    h = int(op.arg(10, "hidden_size"))
    i, p = w_ih.shape[1], w_hh.shape[1]
    return tuple(_cell_steps("LSTM", "layer", x.numel // i, i, h, p, bool(op.arg(12, "has_biases"))))


kind("rnn", nn.RNNBase, nn.RNNCellBase)


@expects(nn.RNNBase)
def rnn_input(m: Any) -> str:
    """RNN / GRU / LSTM expect (N, L, H_in) with batch_first, else (L, N, H_in)."""
    h = m.input_size
    batched = f"(N, L, H_in={h})" if m.batch_first else f"(L, N, H_in={h})"
    return f"{batched} or (L, H_in={h}) (batch_first={m.batch_first})"


@expects(nn.RNNCellBase)
def rnn_cell_input(m: Any) -> str:
    """Recurrent cells expect (N, H_in) or (H_in)."""
    return f"(N, H_in={m.input_size}) or (H_in={m.input_size})"
