"""Recurrent layers, counted per module call (their aten ops differ by backend: mkldnn, cudnn, math).

Per time step, layer and direction, with I the layer's input width and H the hidden width:
RNN  MACs = H·(I + H), bias 2·H, tanh H;
GRU  MACs = 3·H·(I + H), bias 2·3·H, gates 3·H (σ, σ, tanh) + 5·H pointwise;
LSTM MACs = 4·H·(I + P), bias 2·4·H, gates 5·H (σ, σ, σ, tanh, tanh) + 4·H pointwise
     (+ H·P MACs for a projection of size P; P = H without one).
"""

from __future__ import annotations

import torch.nn as nn

from nbcount.derive import Step, step
from nbcount.rules import Cost, module_rule
from nbcount.types import LayerCall, Term

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
    steps = [step(f"MACs {label}", "T*G*H*(I + P)", term=Term.MAC.value, T=tokens, G=g, H=h, I=i, P=p)]
    if p != h:
        steps.append(step(f"MACs {label} projection", "T*H*P", term=Term.MAC.value, T=tokens, H=h, P=p))
    if bias:
        steps.append(step(f"bias adds {label}", "T*2*G*H", term=Term.BIAS.value, T=tokens, G=g, H=h))
    steps.append(step(f"gate activations {label}", "T*A*H", term=Term.ACTIVATION.value, T=tokens,
                      A=_ACTIVATIONS[kind], H=h))
    if _POINTWISE[kind]:
        steps.append(step(f"pointwise {label}", "T*M*H", term=Term.ELEMENTWISE.value, T=tokens,
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
