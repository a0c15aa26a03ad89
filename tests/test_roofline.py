"""Bytes moved, hardware presets, the per-layer roofline and the serving view, against hand arithmetic.

Expected values are arithmetic over named dimensions (elements × bytes per element, 2·M·K·N FLOPs, data-sheet
peaks), or an independent oracle (sum of p.numel()); never numbers read back from nbcount. No timing assertions:
the microbenchmark of "this CPU" is only checked to give positive, finite numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import matplotlib
import pytest
import torch
from torch import nn

import nbcount
from nbcount import zoo
from nbcount.machines import PRESETS, Hardware, get_hardware
from nbcount.roofline import roofline_view
from nbcount.serving import attention_sites
from nbcount.zoo.llama import LlamaConfig, RMSNorm, llama

H100_BF16, H100_BW = 989.4e12, 3.35e12
BF16, FP32, INT64 = 2, 4, 8


def _meta(build: object) -> nn.Module:
    with torch.device("meta"):
        return build()  # type: ignore[operator, no-any-return]


def _linear_report(tokens: int) -> nbcount.Report:
    model = _meta(lambda: nn.Linear(4096, 4096, bias=False).to(torch.bfloat16))
    return nbcount.count(model, (tokens, 4096), dtype=torch.bfloat16)


# --- the hand arithmetic ------------------------------------------------------------------------

def test_linear_one_token_bf16_is_memory_bound_on_h100() -> None:
    view = _linear_report(1).roofline("H100-SXM")
    d = 4096
    flops = 2 * 1 * d * d
    weight, x, y = d * d * BF16, 1 * d * BF16, 1 * d * BF16
    assert (flops, weight + x + y) == (33_554_432, 33_570_816)
    row = view.table.iloc[0]
    assert (row["flops"], row["bytes"], row["fused_bytes"], row["bound"]) == (flops, weight + x + y, weight + x + y,
                                                                              "memory")
    assert row["time_s"] == pytest.approx((weight + x + y) / H100_BW, rel=1e-12)
    assert view.total_time_s == pytest.approx((weight + x + y) / H100_BW, rel=1e-12)
    derivation = view.derive("")
    assert derivation.value == pytest.approx(row["time_s"], rel=1e-12)
    by_label = {s.label: s.value for s in derivation.steps}
    assert by_label["ridge point"] == pytest.approx(H100_BF16 / H100_BW)
    assert by_label["intensity I"] == pytest.approx(flops / (weight + x + y))
    assert "memory-bound" in derivation.to_text()


def test_linear_8192_tokens_is_compute_bound_at_intensity_1638() -> None:
    view = _linear_report(8192).roofline("H100-SXM")
    t, d = 8192, 4096
    flops, nbytes = 2 * t * d * d, (d * d + t * d + t * d) * BF16
    row = view.table.iloc[0]
    assert (row["flops"], row["bytes"], row["bound"]) == (flops, nbytes, "compute")
    assert row["intensity"] == pytest.approx(flops / nbytes) == pytest.approx(1638.4)
    assert row["time_s"] == pytest.approx(flops / H100_BF16, rel=1e-12)


@pytest.fixture(scope="module")
def llama_7b_decode() -> Iterator[nbcount.Report]:
    model = _meta(lambda: zoo.llama_7b().to(torch.bfloat16))  # held while the module's tests run: the serving
    yield nbcount.count(model, (1, 1), dtype=torch.long)       # view counts it again (a report holds it weakly)


def test_llama_7b_decode_step_is_memory_bound(llama_7b_decode: nbcount.Report) -> None:
    view = llama_7b_decode.roofline("H100-SXM")
    cfg = LlamaConfig()
    params = llama_7b_decode.total_params
    with torch.device("meta"):
        assert params == sum(p.numel() for p in zoo.llama_7b().parameters())
    # one token reads every weight it multiplies by; the embedding lookup reads one row of its table, not all of it
    weights_read = (params - cfg.vocab_size * cfg.dim + cfg.dim) * BF16
    assert view.memory_bound_share > 0.9
    assert view.total_time_s >= weights_read / H100_BW
    assert view.total_bytes >= weights_read
    table = view.table.set_index("layer")
    assert table.loc["tok_embeddings", "bytes"] == 1 * INT64 + 2 * cfg.dim * BF16  # index + one row + output row
    assert table.loc["output", "flops"] == 2 * cfg.dim * cfg.vocab_size


def test_llama_7b_serving_view_prefill_vs_decode(llama_7b_decode: nbcount.Report) -> None:
    cfg, context = LlamaConfig(), 4096
    view = llama_7b_decode.serving_roofline(hardware="H100-SXM", prompt_len=512, context_len=context)
    decode, prefill = view.phase("decode"), view.phase("prefill")
    kv = 2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * context * BF16
    assert kv == 2 * 2**30
    assert decode.cache is not None and decode.cache.read.value == kv
    assert decode.cache.append_bytes == 2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * BF16
    attention = cfg.n_layers * (4 * cfg.n_heads * cfg.head_dim * context + 5 * cfg.n_heads * context)
    assert decode.flops == llama_7b_decode.roofline("H100-SXM").total_flops + attention
    all_weights = llama_7b_decode.total_params * BF16
    assert decode.bound == "memory" and prefill.bound == "compute"
    assert decode.time_s >= decode.best_time_s >= (all_weights + kv - cfg.vocab_size * cfg.dim * BF16) / H100_BW
    assert decode.time_s >= all_weights / H100_BW  # the bound holds once the cache is read
    row = view.table.set_index("phase").loc["decode"]
    assert row["tokens_per_s_max"] == pytest.approx(1 / decode.best_time_s)
    assert prefill.tokens == 512
    text = view.derive("decode").to_text()
    assert "2·L·H_kv·d·T·B·b" in text and "tokens per second at most" in text


def test_mfu_and_mbu_of_a_measured_decode_step(llama_7b_decode: nbcount.Report) -> None:
    view = llama_7b_decode.serving_roofline(hardware=["H100-SXM", "A100-SXM-80GB"], context_len=1024)
    phase, measured = view.phase("decode", "H100-SXM"), 0.010
    used = view.utilisation(measured, "decode", "H100")
    assert used.mbu == pytest.approx(phase.fused_bytes / (measured * H100_BW))
    assert used.mfu == pytest.approx(phase.flops / (measured * (phase.flops / phase.compute_s)))
    assert 0 < used.mfu < 0.01 < used.mbu < 1
    assert "MBU = B_min/(t·BW)" in used.derivation.to_text()
    with pytest.raises(ValueError, match="positive"):
        view.utilisation(0.0)
    assert set(view.table["hardware"]) == {"H100-SXM", "A100-SXM-80GB"}


def test_serving_view_refuses_a_model_without_attention() -> None:
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10))
    report = nbcount.count(model, (1, 3), dtype=torch.long)
    with pytest.raises(ValueError, match="no attention"):
        report.serving_roofline()
    image = nbcount.count(nn.Conv2d(3, 4, 3), (1, 3, 8, 8))
    with pytest.raises(ValueError, match="token ids"):
        image.serving_roofline()


def test_bf16_math_path_attention_is_found() -> None:
    cfg = LlamaConfig(dim=64, n_layers=2, n_heads=4, n_kv_heads=4, ffn_dim=96, vocab_size=32, max_seq_len=16)
    model = _meta(lambda: llama(cfg).to(torch.bfloat16))
    report = nbcount.count(model, (1, 4), dtype=torch.long)
    assert [(s.heads, s.head_dim) for s in attention_sites(report)] == [(4, 16)] * 2
    decode = report.serving_roofline(model, hardware="H100-SXM", context_len=100).phase("decode")
    assert decode.cache is not None and decode.cache.read.value == 2 * 2 * 4 * 16 * 100 * BF16


# --- bytes moved, rule by rule --------------------------------------------------------------------------

def _traffic(model: nn.Module, size: tuple[int, ...], dtype: torch.dtype = torch.float32) -> dict[str, tuple[int, int]]:
    view = nbcount.count(model, size, dtype=dtype).roofline("A100-SXM-80GB")
    return {lay.layer: (lay.bytes, lay.traffic.fused_bytes) for lay in view.layers}


def test_embedding_reads_only_the_rows_it_picks() -> None:
    b, t, vocab, dim = 2, 5, 1000, 64
    found = _traffic(nn.Sequential(nn.Embedding(vocab, dim)), (b, t), torch.long)
    expected = b * t * INT64 + b * t * dim * FP32 + b * t * dim * FP32  # indices + rows read + output written
    assert found["0"] == (expected, expected)


def test_views_move_nothing_and_in_place_ops_read_and_write_their_target() -> None:
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(inplace=True), nn.Flatten(), nn.Unflatten(1, (2, 3)))
    found = _traffic(model, (3, 8))
    activation = 3 * 6 * FP32
    assert found["1"] == (2 * activation, 2 * activation)
    assert found["2"] == (0, 0) and found["3"] == (0, 0)
    weights = (8 * 6 + 6) * FP32
    assert found["0"] == (weights + 3 * 8 * FP32 + activation,) * 2


def test_copy_into_a_slice_writes_only_the_slice() -> None:
    class Cache(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("keys", torch.zeros(1, 100, 16))

        def forward(self, k: torch.Tensor) -> torch.Tensor:
            self.keys[:, 10:13] = k  # slice (a view) + copy_: reads k, writes 3 of the 100 rows
            return k

    found = _traffic(Cache(), (1, 3, 16))
    k_bytes = 3 * 16 * FP32
    assert found[""][0] == k_bytes + k_bytes
    assert found[""][1] == k_bytes + k_bytes  # the buffer is state: its written slice leaves the layer


def test_index_put_writes_only_the_updated_elements() -> None:
    class Put(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("table", torch.zeros(50, 8))

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            self.table.index_put_((idx,), torch.ones(idx.shape[0], 8))
            return idx

    view = nbcount.count(Put(), inputs=torch.tensor([1, 4, 7])).roofline("H100-SXM")
    put = next(t for lay in view.layers for t in lay.traffic.ops if t.op == "aten.index_put_")
    assert put.nbytes == 3 * INT64 + 3 * 8 * FP32 + 3 * 8 * FP32  # indices + values read, 3 rows written


def test_fused_bytes_of_rms_norm_are_weight_input_output() -> None:
    n, dim = 4, 64
    unfused, fused = _traffic(RMSNorm(dim), (1, n, dim))[""]
    assert fused == dim * FP32 + n * dim * FP32 + n * dim * FP32
    assert unfused > fused  # pow, mean, rsqrt, mul each go through memory without fusion


def test_conv_bytes_are_weights_input_output() -> None:
    c_in, c_out, k, h = 3, 8, 3, 10
    found = _traffic(nn.Conv2d(c_in, c_out, k), (2, c_in, h, h))[""]
    expected = (c_out * c_in * k * k + c_out + 2 * c_in * h * h + 2 * c_out * (h - k + 1) ** 2) * FP32
    assert found == (expected, expected)


def test_depthwise_conv_is_memory_bound_where_a_dense_conv_is_compute_bound() -> None:
    c, hw = 256, 56 * 56
    depthwise = nbcount.count(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), (1, c, 56, 56))
    dense = nbcount.count(nn.Conv2d(c, c, 3, padding=1, bias=False), (1, c, 56, 56))
    dw, dn = depthwise.roofline("A100-SXM-80GB").table.iloc[0], dense.roofline("A100-SXM-80GB").table.iloc[0]
    dw_flops, dn_flops = 2 * c * hw * 9, 2 * c * hw * c * 9
    assert dw["intensity"] == pytest.approx(dw_flops / ((2 * c * hw + c * 9) * FP32))
    assert dn["intensity"] == pytest.approx(dn_flops / ((2 * c * hw + c * c * 9) * FP32))
    ridge = 19.5e12 / 2.039e12
    assert dw["intensity"] < ridge < dn["intensity"]
    assert (dw["bound"], dn["bound"]) == ("memory", "compute")


# --- FLOPs, peaks and dtypes ---------------------------------------------------------------------------

def test_roofline_flops_are_real_flops_whatever_the_convention() -> None:
    report = nbcount.count(nn.Linear(32, 16, bias=False), (4, 32))
    macs = 4 * 32 * 16
    assert report.recount("macs").headline.value == macs and report.recount("macs").total_flops is None
    assert report.recount("macs").roofline().total_flops == report.roofline().total_flops == 2 * macs


def test_forced_tf32_uses_the_tf32_peak_for_multiply_accumulates() -> None:
    report = nbcount.count(nn.Linear(1024, 1024, bias=False), (2048, 1024))
    flops = 2 * 2048 * 1024 * 1024
    fp32 = report.roofline("A100-SXM-80GB").layers[0]
    tf32 = report.roofline("A100-SXM-80GB", dtype="tf32").layers[0]
    assert fp32.compute_s == pytest.approx(flops / 19.5e12)
    assert tf32.compute_s == pytest.approx(flops / 156e12)
    assert (fp32.dtype, tf32.dtype) == ("fp32", "tf32")


def test_a_layer_in_two_dtypes_has_an_effective_peak() -> None:
    class Mixed(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x @ x).to(torch.bfloat16) @ x.to(torch.bfloat16)

    n = 64
    layer = nbcount.count(Mixed(), (n, n)).roofline("H100-SXM").layers[0]
    mm = 2 * n * n * n
    assert layer.compute_s == pytest.approx(mm / 66.9e12 + mm / H100_BF16)
    assert "effective peak P" in nbcount.count(Mixed(), (n, n)).roofline("H100-SXM").derive("", own=True).to_text()


def test_vector_arithmetic_runs_at_the_fp32_peak() -> None:
    layer = nbcount.count(nn.GELU(), (1, 1000), dtype=torch.bfloat16).roofline("H100-SXM").layers[0]
    assert [p.key for p, _ in layer.compute] == ["vector"]
    assert layer.compute_s == pytest.approx(layer.flops / 66.9e12)


# --- containers, totals, views --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_llama_view() -> nbcount.Report:
    cfg = LlamaConfig(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=96, vocab_size=32, max_seq_len=16)
    return nbcount.count(llama(cfg), (1, 8), dtype=torch.long)


def test_a_block_adds_up_its_layers(tiny_llama_view: nbcount.Report) -> None:
    view = tiny_llama_view.roofline("L4")
    block = view.derive("layers.0")
    inside = view.subtree(view.layer("layers.0").index)
    assert len(inside) > 5
    assert block.value == pytest.approx(sum(lay.time_s for lay in inside))
    by_label = {s.label: s.value for s in block.steps}
    assert by_label["FLOPs F"] == sum(lay.flops for lay in inside)
    assert view.derive().value == pytest.approx(view.total_time_s)
    assert view.total_flops == tiny_llama_view.recount("nbcount").total_flops  # every FLOP placed at some peak
    assert view.total_time_s == pytest.approx(view.table["time_s"].sum())
    assert view.table["share"].sum() == pytest.approx(1.0)


def test_views_are_plain_json_text_and_escaped_html(tiny_llama_view: nbcount.Report) -> None:
    data = roofline_view(tiny_llama_view, "H200", chart=True)
    json.dumps(data)
    assert data["hardware"]["name"] == "H200" and data["chart_png"]
    assert len(data["layers"]) == len(tiny_llama_view.roofline("H200").table)
    model = nn.Sequential()
    model.add_module("<img src=x onerror=alert(1)>", nn.Linear(4, 4))
    view = nbcount.count(model, (1, 4)).roofline()
    bundle = view._repr_mimebundle_()
    assert "<img src=x" not in bundle["text/html"] and "&lt;img src=x" in bundle["text/html"]
    assert "<img src=x onerror=alert(1)>" in bundle["text/plain"]


def test_chart_is_readable_and_agg_safe(tiny_llama_view: nbcount.Report) -> None:
    matplotlib.use("Agg")
    model = nn.Sequential()
    model.add_module("cost_$x$", nn.Linear(4, 4))
    for view in (tiny_llama_view.roofline("H100-SXM"), nbcount.count(model, (1, 4)).roofline()):
        fig = view.chart()
        fig.canvas.draw()
        texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
        assert texts and min(t.get_fontsize() for t in texts) >= 10
        ax = fig.axes[0]
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert any(label.endswith(("k", "M", "G", "T", "P")) for label in labels)
        assert fig._repr_png_().startswith(b"\x89PNG")  # shows itself in a notebook whatever the backend


# --- hardware -------------------------------------------------------------------------------------------

def test_presets_are_cited_data() -> None:
    frame = nbcount.hardware(measure_cpu=False)
    names = set(frame["name"])
    assert {"A100-SXM-80GB", "H100-SXM", "H100-PCIe", "H200", "L4", "RTX-4090"} <= names
    assert {"fp32_flops_per_s", "tf32_flops_per_s", "bf16_flops_per_s", "fp16_flops_per_s", "fp8_flops_per_s",
            "int8_ops_per_s", "bandwidth_bytes_per_s", "memory_bytes", "source"} <= set(frame.columns)
    h100 = get_hardware("h100-sxm")
    assert (h100.bf16_flops_per_s, h100.bandwidth_bytes_per_s) == (H100_BF16, H100_BW)
    assert all("data sheet" in h.source or "white paper" in h.source for h in PRESETS)
    assert get_hardware("A100-SXM-80GB").fp8_flops_per_s is None  # no fp8 tensor cores: not invented


def test_users_bring_their_own_hardware() -> None:
    mine = nbcount.Hardware("my accelerator", bandwidth_bytes_per_s=1e12, fp32_flops_per_s=10e12,
                            bf16_flops_per_s=100e12, source="my notes")
    layer = _linear_report(1).roofline(mine).layers[0]
    assert layer.memory_s == pytest.approx(layer.bytes / 1e12)
    assert mine.ridge("bf16") == pytest.approx(100)
    assert mine.peak(torch.float16).note.startswith("my accelerator lists no fp16 peak")
    with pytest.raises(ValueError, match="positive"):
        Hardware("broken", bandwidth_bytes_per_s=0, fp32_flops_per_s=1e12)
    with pytest.raises(ValueError, match="H100-SXM"):
        get_hardware("H900")


def test_this_cpu_is_measured_once() -> None:
    cpu = get_hardware("this CPU")
    assert cpu is get_hardware("cpu")
    for value in (cpu.fp32_flops_per_s, cpu.bf16_flops_per_s, cpu.bandwidth_bytes_per_s):
        assert value is not None and math.isfinite(value) and value > 0
    assert "measured here" in cpu.source
    assert "this CPU" in set(nbcount.hardware()["name"])


# --- real third-party model code (transformers, built from configs) --------------------------------------

def test_transformers_gpt2_lm_head_reads_the_tied_matrix_and_the_embedding_only_rows() -> None:
    transformers = pytest.importorskip("transformers")
    vocab, dim, tokens = 100, 64, 16
    cfg = transformers.GPT2Config(n_layer=2, n_embd=dim, n_head=4, vocab_size=vocab, n_positions=64)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    table = nbcount.count(model, (1, tokens), dtype=torch.long).roofline("H100-SXM").table.set_index("layer")
    assert table.loc["lm_head", "bytes"] == (tokens * dim + vocab * dim + tokens * vocab) * FP32
    assert table.loc["lm_head", "flops"] == 2 * tokens * dim * vocab
    assert table.loc["transformer.wte", "bytes"] == tokens * INT64 + 2 * tokens * dim * FP32


def test_transformers_llama_serving_needs_the_kv_heads_when_the_trace_hides_them() -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=100)
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(cfg).to(torch.bfloat16)
    report = nbcount.count(model, (1, 8), dtype=torch.long)
    sites = attention_sites(report)
    if any(not s.k_width for s in sites):  # the width is not always found: then it is asked for, never zero
        with pytest.raises(ValueError, match="n_kv_heads="):
            report.serving_roofline(hardware="H100-SXM", context_len=100)
    decode = report.serving_roofline(hardware="H100-SXM", context_len=100, n_kv_heads=2).phase("decode")
    layers, kv_heads, head_dim, context = 2, 2, 64 // 4, 100
    assert decode.cache is not None and decode.cache.read.value == 2 * layers * kv_heads * head_dim * context * BF16
    assert decode.bound == "memory"


# --- the benchmark script cannot rot (no time is asserted) --------------------------------------------------

def test_spearman_by_hand() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from roofline_cpu import spearman

    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties share their average rank: ranks (1.5, 1.5, 3) and (1, 2, 3) -> Pearson of the ranks = √3 / 2
    assert spearman([5, 5, 9], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2)


def test_quick_roofline_benchmark_writes_its_results(tmp_path: object) -> None:
    import subprocess
    import sys
    from pathlib import Path

    out = Path(str(tmp_path)) / "ROOFLINE.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "roofline_cpu.py"
    proc = subprocess.run([sys.executable, str(script), "--quick", "--repeat", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert [c["rows"] > 0 for c in data["cases"]] == [True, True]
    assert all(c["measured_total_s"] > 0 and c["predicted_total_s"] > 0 for c in data["cases"])
    assert "## Roofline predictions against measured per-layer time" in proc.stdout
    assert "no GPU was lent" in proc.stdout
