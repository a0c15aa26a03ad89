"""Parameter derivations that name the structure, buffers per tensor, and symbols that mean what they say.

Expected values are arithmetic over the layers' named dimensions (gates G, hidden H, input I, embed E, …),
written out here; the oracle beside each is ``sum(p.numel())`` over the real module. The walk over every
derivation of a GPT-2 and a ResNet-50 checks the text itself: every symbol substituted, defined once, and
every part of a sum shown by its dotted name.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
from torch import nn

import nbcount
from nbcount import zoo
from nbcount.formula import FUNCTIONS
from nbcount.symbols import conflicts, legend, step_symbols


def _params(report: nbcount.Report, layer: str = "") -> Any:
    return report.derive(layer)["params"]


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_lstm_names_its_four_gates() -> None:
    """LSTM(10, 20): G·H·I + G·H·H + 2·G·H with G = 4 gates = 4·20·10 + 4·20·20 + 2·4·20 = 2,560."""
    lstm = nn.LSTM(10, 20)
    section = _params(nbcount.count(lstm, (5, 3, 10)))
    assert section.value == 4 * 20 * 10 + 4 * 20 * 20 + 2 * 4 * 20 == 2_560 == _numel(lstm)
    last = section.steps[-1]
    assert dict(last.symbols) == {"G": 4, "H": 20, "I": 10} and "gate" in last.note


def test_bidirectional_upper_layer_reads_two_h() -> None:
    """LSTM(10, 20, 2 layers, bidirectional): layer 0 2·2,560 = 5,120; layer 1 reads I = 2·H = 40:
    2·(4·20·40 + 4·20·20 + 2·4·20) = 9,920; total 15,040."""
    lstm = nn.LSTM(10, 20, num_layers=2, bidirectional=True)
    section = _params(nbcount.count(lstm, (5, 3, 10)))
    steps = {s.label: s for s in section.steps}
    assert steps["I_k"].value == 2 * 20 == 40 and "both directions" in steps["I_k"].note
    assert steps["layer 1 (both directions)"].value == 2 * (4 * 20 * 40 + 4 * 20 * 20 + 2 * 4 * 20) == 9_920
    assert section.value == 2 * 2_560 + 9_920 == 15_040 == _numel(lstm)
    assert "= 2·20 = 40" in section.derivation.to_text()


def test_gru_rnn_projection_and_cells() -> None:
    """GRU: 3 gates, 3·20·(10 + 20) + 2·3·20 = 1,920; RNN: 1 gate; LSTM proj_size P: W_hh G·H × P, W_hr P × H."""
    cases = [(nn.GRU(10, 20), (5, 3, 10), 3 * 20 * (10 + 20) + 2 * 3 * 20, "reset"),
             (nn.RNN(10, 20, num_layers=3), (5, 3, 10), (20 * 30 + 40) + 2 * (20 * 40 + 40), "tanh"),
             (nn.LSTM(10, 20, proj_size=5), (5, 3, 10), 4 * 20 * 10 + 4 * 20 * 5 + 2 * 4 * 20 + 5 * 20, "forget"),
             (nn.GRUCell(10, 20), (3, 10), 3 * 20 * 30 + 2 * 3 * 20, "update")]
    for module, size, expected, word in cases:
        section = _params(nbcount.count(module, size))
        assert section.value == expected == _numel(module), type(module).__name__
        assert word in section.derivation.to_text()
    assert 1_920 == cases[0][2]


def test_multihead_attention_three_e_in_projection() -> None:
    """MHA(512, 8): 3·E·E + 3·E (q, k, v stacked) + E·E + E (out) = 1,050,624; kdim/vdim and bias_k/v apart."""
    x = torch.randn(2, 10, 512)
    section = _params(nbcount.count(nn.MultiheadAttention(512, 8, batch_first=True), inputs=(x, x, x)))
    assert section.steps[0].formula == "3*E*E + 3*E" and section.steps[0].value == 3 * 512 * 512 + 3 * 512
    assert section.value == 3 * 512 * 512 + 3 * 512 + 512 * 512 + 512 == 1_050_624
    assert "3·E·E" in section.derivation.to_text()
    mha = nn.MultiheadAttention(8, 2, kdim=4, vdim=6, add_bias_kv=True, add_zero_attn=True)
    section = _params(nbcount.count(mha, inputs=(torch.randn(3, 2, 8), torch.randn(4, 2, 4), torch.randn(4, 2, 6))))
    labels = {s.label: s.value for s in section.steps}
    assert labels["in-projections q, k, v"] == 8 * 8 + 8 * 4 + 8 * 6 + 3 * 8
    assert labels["bias_k, bias_v"] == 2 * 8 and "add_zero_attn" in section.steps[-1].note
    assert section.value == _numel(mha)


def test_transformer_layers_as_named_sums() -> None:
    """Encoder: self_attn 4·E² + 4·E, feed-forward 2·E·F + F + E, 2 norms 2·2·E; decoder adds cross-attention."""
    e, f = 64, 128
    enc = nn.TransformerEncoderLayer(e, 4, f, batch_first=True)
    section = _params(nbcount.count(enc, (2, 10, e)))
    steps = {s.label: s.value for s in section.steps}
    assert steps["self_attn"] == 4 * e * e + 4 * e and steps["linear1 + linear2"] == 2 * e * f + f + e
    assert steps["params of its sub-layers"] == 4 * e * e + 4 * e + 2 * e * f + f + e + 2 * 2 * e == _numel(enc)
    assert section.value == 0  # the layer's own row: its parts are counted in their rows
    dec = nn.TransformerDecoderLayer(e, 4, f, bias=False)
    report = nbcount.count(dec, inputs=(torch.randn(10, 2, e), torch.randn(7, 2, e)))
    steps = {s.label: s.value for s in _params(report).steps}
    assert steps["multihead_attn"] == 4 * e * e and steps["params of its sub-layers"] == _numel(dec)


def test_embeddings_and_norms_with_affine_on_and_off() -> None:
    """Embedding V·E; EmbeddingBag the same table; BatchNorm 2·C or 0; LayerNorm γ only without bias; RMSNorm γ."""
    assert _params(nbcount.count(nn.Embedding(100, 8, padding_idx=0), (2, 3), dtype=torch.long)).value == 800
    bag = nbcount.count(nn.EmbeddingBag(100, 8, mode="mean"), (2, 3), dtype=torch.long)
    assert _params(bag).value == 100 * 8 and "mode=mean" in _params(bag).steps[-1].note
    off = _params(nbcount.count(nn.BatchNorm2d(4, affine=False), (1, 4, 2, 2)))
    assert off.value == 0 and "affine=False" in off.steps[-1].note
    assert _params(nbcount.count(nn.LayerNorm(8, bias=False), (2, 8))).steps[-1].formula == "1*E"
    assert _params(nbcount.count(nn.RMSNorm(8), (2, 8))).value == 8


def test_batchnorm_buffers_per_tensor() -> None:
    """BatchNorm2d(64): running_mean 64 + running_var 64 + num_batches_tracked 1 = 129 elements, 64·4·2 + 8 bytes."""
    report = nbcount.count(nn.BatchNorm2d(64), (1, 64, 8, 8))
    assert report.table.loc[0, "buffers"] == 64 + 64 + 1 == 129
    assert report.table.loc[0, "buffer_bytes"] == 64 * 4 * 2 + 1 * 8 == 520
    memory = {s.label: s for s in report.derive("")["memory"].steps}
    assert memory["buffers"].value == 129 and memory["num_batches_tracked bytes"].value == 8
    assert "int64" in memory["num_batches_tracked bytes"].note and memory["running_var bytes"].value == 256


def test_tied_weights_name_the_tensor_they_reuse() -> None:
    """GPT-2's lm_head reuses wte.weight (V·E = 50,257·768): the row and the totals say which tensor."""
    model = zoo.gpt2(n_layer=1, n_embd=32, n_head=2, vocab=50, n_positions=16)
    report = nbcount.count(model, (1, 8), dtype=torch.long)
    note = _params(report, "lm_head").steps[-1].note
    assert "wte.weight (1,600 parameters)" in note  # 50·32
    assert "reuses wte.weight" in report.derive().to_text()


# --- every derivation of two real models -----------------------------------------------------------------

def _check(explanation: Any, where: str) -> list[str]:
    problems = []
    meanings = dict(legend(explanation.steps))
    for st in explanation.steps:
        numbers = re.sub(r"\d[eE][-+]?\d+", "", st.substituted)
        left = [m for m in re.findall(r"[^\W\d]\w*", numbers) if m not in FUNCTIONS]  # any letter, ᵀ too
        if left:
            problems.append(f"{where}: {st.label} leaves {left} unfilled")
        problems += [f"{where}: {s} in {st.label} is never defined" for s in step_symbols(st) if s not in meanings]
        parts = dict(st.names)
        shown = st.shown_formula
        if parts and any(name not in shown for name in parts.values()):
            problems.append(f"{where}: {st.label} does not show its parts by name")
        if re.search(r"\bx\d+_\w+|_s_own", shown):
            problems.append(f"{where}: mangled name in {shown}")
    problems += [f"{where}: {k} means {v}" for k, v in conflicts(explanation.steps).items()]
    if "(model)" in explanation.subject:
        problems.append(f"{where}: subject {explanation.subject!r}")
    return problems


@pytest.mark.parametrize("name, size, dtype", [("gpt2", (1, 16), torch.long),
                                               ("resnet50", (1, 3, 64, 64), torch.float32)])
def test_every_derivation_fills_and_defines_its_symbols(name: str, size: tuple[int, ...], dtype: torch.dtype) -> None:
    """No half-substituted step, no symbol without a meaning or with two, sums by dotted names, a human title."""
    report = nbcount.count(zoo.ZOO[name](), size, dtype=dtype)
    problems = _check(report.derive(), "totals")
    for row in report.rows:
        problems += _check(report.derive(row.layer, row.call.call_index), row.layer or "(root)")
    assert not problems, "\n".join(problems[:20])
    parts = "layer1.0.conv1 + layer1.0.bn1" if name == "resnet50" else "h.0 = ln_1 + attn.c_attn + attn.c_proj"
    assert parts in report.derive().to_text()


def test_the_walk_catches_half_substituted_and_mangled_steps() -> None:
    """The check above fails on the defects it is for (so it cannot pass vacuously)."""
    from nbcount.derive import Derivation, Step, total
    from nbcount.explanation import Explanation, Section

    half = Step("MACs", "MACs_q_kᵀ + b", (("MACs_q_k", 1), ("b", 2)), 3)
    mangled = Step("total", "x0_0 + model_s_own", (("x0_0", 1), ("model_s_own", 2)), 3)
    undefined = Step("bytes", "Q*b", (("Q", 1), ("b", 2)), 2)
    fine = total("MACs", [("MACs q·kᵀ", 1), ("0.conv", 2)])
    section = Section("x", Derivation("x", (half, mangled, undefined, fine)), 0)
    found = _check(Explanation("Derivation of (model) (Net)", (section,)), "t")
    text = "\n".join(found)
    assert "MACs leaves ['ᵀ'] unfilled" in text
    assert "mangled name" in text and "Q in bytes is never defined" in text and "subject" in text
    assert not [p for p in found if "MACs q·kᵀ" in p or ": MACs does not" in p]


def test_sequence_and_attention_layouts() -> None:
    """(N, L, E) for sequences, F_in/F_out for a Linear, (B, H, L, E_h) for attention, defined in a where-line."""
    linear = nbcount.count(nn.Linear(16, 32), (2, 7, 16)).derive("")
    labels = [s.label for s in linear["shape"].steps]
    assert labels == ["N", "L", "F_out"]
    text = linear.to_text()
    assert "where F_in = in_features; F_out = out_features; N = batch; L = sequence length" in text
    assert "M = rows of the product" in text and "C = " not in text

    class Attend(nn.Module):
        def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            return nn.functional.scaled_dot_product_attention(q, k, v)

    q = torch.randn(2, 8, 16, 4)
    bare = nbcount.count(Attend(), inputs=(q, q, q)).derive("")
    assert [s.label for s in bare["shape"].steps] == ["B", "H", "L", "E_h"]
    assert dict(bare.legend)["H"] == "heads" and "B·H·L·S·E_h" in bare.to_text()


def test_math_path_attention_is_named_on_meta() -> None:
    """On meta, attention runs as bmm → softmax → bmm: the two products read q·kᵀ = BH·L·S·E_h and p·v =
    BH·L·S·E_v (batch·heads 1·2, L = S = 8, E_h = 32/2 = 16), and the walk finds nothing undefined."""
    with torch.device("meta"):
        model = zoo.gpt2(n_layer=1, n_embd=32, n_head=2, vocab=50, n_positions=16)
    report = nbcount.count(model, (1, 8), dtype=torch.long)
    attn = report.derive("h.0.attn")
    macs = {s.label: s for s in attn["macs"].steps}
    assert macs["MACs q·kᵀ"].value == macs["MACs p·v"].value == 1 * 2 * 8 * 8 * 16
    assert macs["MACs q·kᵀ"].formula == "BH*L*S*E_h" and dict(attn.legend)["BH"].startswith("batch × heads")
    problems = [p for row in report.rows for p in _check(report.derive(row.layer, row.call.call_index), row.layer)]
    assert not problems, "\n".join(problems[:10])
