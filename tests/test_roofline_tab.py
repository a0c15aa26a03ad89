"""The widget's Roofline tab (payload side): folded rows, hand-checked numbers, the serving view where it applies,
hardware chosen from the front end, and light payloads for models of thousands of ops.

Expected numbers are hand arithmetic over the layer's dimensions and the data sheets' figures (H100-SXM 3.35 TB/s,
fp32 66.9 TFLOP/s); completeness checks add up the folded rows against the roofline's own total.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from torch import nn

import nbcount
from nbcount import display, tabs, zoo
from nbcount.roofline_tab import STEPS, roofline_payload


@pytest.fixture(scope="module")
def lenet() -> nbcount.Report:
    return nbcount.count(zoo.lenet(), (1, 1, 28, 28))


LLAMA = zoo.llama_tiny()  # held: the serving view counts it again (a report holds its model weakly)


@pytest.fixture(scope="module")
def tiny_llama() -> nbcount.Report:
    return nbcount.count(LLAMA, (1, 16), dtype=torch.long)


def test_lenet_rows_by_hand(lenet: nbcount.Report) -> None:
    """fc.0 = Linear(400, 120) on one fp32 row: 2·400·120 + 120 = 96,120 FLOPs; (400 + 48,000 + 120 + 120)·4 =
    194,560 bytes; 0.494 FLOP/B < ridge 66.9e12 / 3.35e12: memory-bound, 194,560 / 3.35e12 s; no serving view."""
    payload = roofline_payload(lenet, "H100-SXM")
    fc0 = next(r for r in payload["rows"] if r["label"] == "fc.0")
    assert (fc0["flops"], fc0["bytes"], fc0["bound"], fc0["n"]) == (96_120, 194_560, "memory", 1)
    assert fc0["time_s"] == pytest.approx(194_560 / 3.35e12)
    assert payload["roofs"][0]["ridge"] == pytest.approx(66.9e12 / 3.35e12)
    assert fc0["derivation"]["title"] == "roofline of fc.0 on H100-SXM"
    assert payload["serving"] is None and payload["others"] is None
    times = [r["time_s"] for r in payload["rows"]]
    assert times == sorted(times, reverse=True)  # the slowest first
    assert sum(times) == pytest.approx(payload["summary"]["total_time_s"])
    json.dumps(payload)  # plain JSON


def test_repeated_blocks_fold_and_every_row_counts_once(tiny_llama: nbcount.Report) -> None:
    view = tiny_llama.roofline("H100-SXM")
    payload = roofline_payload(tiny_llama, "H100-SXM")
    blocks = len(zoo.llama_tiny().layers)  # the model's own count of transformer blocks
    folded = [r for r in payload["rows"] if r["n"] > 1]
    assert folded and all(r["label"].endswith(f"×{r['n']}") and "*" in r["label"] for r in folded)
    wq = next(r for r in payload["rows"] if r["label"].startswith("layers.*.attention.wq"))
    assert wq["n"] == blocks and wq["type"] == "Linear"
    shown = sum(r["n"] for r in payload["rows"]) + (payload["others"] or {"n": 0})["n"]
    assert shown == len(view.moving)
    assert sum(r["time_s"] for r in payload["rows"]) + (payload["others"] or {"time_s": 0})["time_s"] == \
        pytest.approx(view.total_time_s)


def test_a_decoder_gets_prefill_and_one_decode_step(tiny_llama: nbcount.Report) -> None:
    serving = roofline_payload(tiny_llama, "L4")["serving"]
    assert (serving["prompt_len"], serving["context_len"], serving["batch"]) == (16, 16, 1)
    prefill, decode = serving["phases"]
    assert (prefill["phase"], prefill["tokens"], decode["phase"], decode["tokens"]) == ("prefill", 16, "decode", 1)
    assert decode["bound"] == "memory" and decode["tokens_per_s_max"] == pytest.approx(1 / decode["best_time_s"])
    assert decode["derivation"]["title"] == "decode on L4"


def test_without_the_model_the_tab_says_how_to_get_the_serving_view() -> None:
    report = nbcount.count(zoo.llama_tiny(), (1, 16), dtype=torch.long)  # the model is dropped at once
    serving = roofline_payload(report, "L4")["serving"]
    assert "keep the model in a variable" in serving["error"] and "serving_roofline(model)" in serving["error"]
    assert roofline_payload(report, "L4")["rows"]  # the rest of the tab reads the report alone


def test_hardware_and_dtype_come_from_the_front_end(lenet: nbcount.Report, monkeypatch: Any) -> None:
    """The widget answers a tab request with choices: L4 at the tf32 peak (60 TFLOP/s, ridge 60e12 / 300e9 = 200)."""
    pytest.importorskip("anywidget")
    view = display.widget(lenet)
    sent: list[Any] = []
    monkeypatch.setattr(view, "send", lambda content, buffers=None: sent.append(content))
    view._answer(view, {"type": "tab", "title": "Roofline"}, [])
    view._answer(view, {"type": "tab", "title": "Roofline", "choices": {"hardware": "L4", "hw_dtype": "tf32"}}, [])
    view._answer(view, {"type": "tab", "title": "Roofline", "choices": {"hardware": "", "junk": 1}}, [])
    default, chosen, ignored = sent
    assert default["payload"]["hardware"] == "H100-SXM" and default["choices"] == {}
    assert chosen["choices"] == {"hardware": "L4", "hw_dtype": "tf32"} and chosen["payload"]["dtype"] == "tf32"
    assert [r["ridge"] for r in chosen["payload"]["roofs"]] == pytest.approx([30.3e12 / 300e9, 60e12 / 300e9])
    assert ignored["payload"]["hardware"] == "H100-SXM"  # an empty or unknown choice keeps the defaults
    assert tabs.chosen(tabs.ViewOptions(), {"hardware": "A10", "hw_dtype": ""}).hw_dtype is None


def test_show_takes_the_hardware(lenet: nbcount.Report) -> None:
    pytest.importorskip("anywidget")
    model = display.widget(lenet, hardware="A10", tab="Roofline").model
    assert model["open"] == "Roofline"
    roofline = next(t for t in model["tabs"] if t["title"] == "Roofline")
    assert roofline["lazy"] and roofline["payload"] is None  # built when opened


def test_a_row_of_thousands_of_ops_stays_light() -> None:
    """A root calling F.relu 1,000 times: its derivation keeps STEPS steps and says how many it left out."""
    class Relus(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.fc(x)
            for _ in range(1000):
                x = torch.relu(x)
            return x

    payload = roofline_payload(nbcount.count(Relus(), (1, 8)))
    root = next(r for r in payload["rows"] if r["label"] == "(root)")
    steps = root["derivation"]["steps"]
    assert len(steps) == STEPS + 1 and any(s[0] == "…" and "more steps" in s[3] for s in steps)
    assert all(len(s[1]) <= 300 and len(s[2]) <= 300 for s in steps)
    assert len(json.dumps(payload)) < 60_000
