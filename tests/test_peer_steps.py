"""Every number is built by steps, the peers' too: under every convention (strict included), each row's
derivation is the peer's own formula with the numbers substituted, and it ends on the number the table shows."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nbcount
from nbcount.analysis import analyse
from nbcount.convention import conventions, get_convention
from nbcount.zoo import lenet, mobilenet_v2, unet


class EveryKind(nn.Module):
    """One of each layer kind the conventions' rules tables name."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn, self.relu, self.relu6, self.leaky = nn.BatchNorm2d(8), nn.ReLU(), nn.ReLU6(), nn.LeakyReLU()
        self.pool, self.avg, self.adaptive = nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(2)
        self.up, self.deconv = nn.Upsample(scale_factor=2), nn.ConvTranspose2d(8, 4, 3, stride=2)
        self.gn, self.ln, self.sigmoid, self.tanh = nn.GroupNorm(2, 4), nn.LayerNorm(16), nn.Sigmoid(), nn.Tanh()
        self.mha, self.lstm, self.gru = nn.MultiheadAttention(16, 4), nn.LSTM(16, 8), nn.GRU(8, 8)
        self.linear, self.softmax, self.drop, self.emb = nn.Linear(8, 16), nn.Softmax(-1), nn.Dropout(), \
            nn.Embedding(10, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.leaky(self.relu6(self.relu(self.bn(self.conv(x)))))
        y = self.up(self.adaptive(self.avg(self.pool(y))))
        y = self.tanh(self.sigmoid(self.gn(self.deconv(y))))  # (1, 4, 9, 9)
        seq = self.ln(y.flatten(2)[..., :16].transpose(0, 1).reshape(4, 1, 16)) + self.emb(torch.zeros(4, 1).long())
        att, _ = self.mha(seq, seq, seq)
        att = att + F.scaled_dot_product_attention(att[None], att[None], att[None])[0] + att @ torch.ones(16, 16)
        h, _ = self.gru(self.lstm(att)[0])
        return self.softmax(self.drop(self.linear(h))) * 2


MODELS = {"every_kind": (EveryKind, (1, 3, 16, 16)), "lenet": (lenet, (1, 1, 28, 28)),
          "mobilenet_v2": (mobilenet_v2, (1, 3, 32, 32)), "unet": (unet, (1, 1, 32, 32))}
NAMES = [*conventions(), *(f"{name}:strict" for name in conventions())]


@pytest.fixture(scope="module", params=list(MODELS))
def trace(request: pytest.FixtureRequest) -> nbcount.types.Trace:
    build, size = MODELS[request.param]
    return nbcount.count(build().eval(), size).trace


@pytest.mark.parametrize("name", NAMES)
def test_no_derivation_ends_on_a_bare_number(trace: nbcount.types.Trace, name: str) -> None:
    report = analyse(trace, name)
    convention = get_convention(name)
    for row in report.rows:
        section = report.derive(row.layer, row.call.call_index)["flops"]
        assert section.steps, row.layer
        assert all(s.formula for s in section.steps), (row.layer, [s.to_text() for s in section.steps])
        assert section.steps[-1].value == section.value == convention.row_value(row), row.layer
        assert section.steps[-1].label == convention.label
    totals = report.derive()["flops"]
    assert totals.steps[-1].formula and totals.steps[-1].value == report.headline.value


def test_a_peer_formula_reads_as_the_peer_writes_it() -> None:
    """calflops' conv: 2·MACs + one bias add per output, with the layer's own numbers substituted."""
    report = nbcount.count(nn.Conv2d(3, 8, 3), (1, 3, 10, 10), convention="calflops")
    step = report.derive("")["flops"].steps[-1]
    assert step.formula == "2*N*C_out*H_out*W_out*(C_in/g*K_h*K_w) + N*C_out*H_out*W_out"
    assert dict(step.symbols) == {"N": 1, "C_out": 8, "H_out": 8, "W_out": 8, "C_in": 3, "g": 1, "K_h": 3, "K_w": 3}
    assert step.value == 2 * 8 * 8 * 8 * 3 * 3 * 3 + 8 * 8 * 8


def test_strict_rows_add_their_defects_as_steps() -> None:
    """ptflops:strict on nn.ReLU: the hook's count, the patched F.relu counted again, and their sum."""
    report = nbcount.count(nn.Sequential(nn.ReLU()), (2, 5), convention="ptflops:strict")
    steps = report.derive("0")["flops"].steps
    assert steps[-1].value == 2 * 10 and "rule" in steps[-1].formula
    assert any(s.label == "defect functional_counted_twice" or s.label.startswith("MACs (ptflops)") for s in steps)
