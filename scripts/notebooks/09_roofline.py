# %% [markdown]
# # 09 · The roofline: how long will it take on this GPU, and what limits it?
#
# FLOPs alone do not say how long a layer takes. A layer is bounded by its **arithmetic** or by its
# **memory traffic**, whichever is slower:
#
# $$t = \max\left(\frac{F}{P}, \frac{B}{BW}\right)$$
#
# with $F$ its FLOPs, $P$ the hardware's peak FLOP/s for the dtype, $B$ the bytes it moves and $BW$ the
# memory bandwidth. The two sides are equal at the **ridge point** $P / BW$ (FLOPs per byte). A layer
# whose **arithmetic intensity** $I = F / B$ is below the ridge is *memory-bound*: a faster chip with the
# same bandwidth would not make it faster.
#
# nbcount already sees every aten op with its shapes and dtypes, so it can compute both sides:
#
# - $F$ is **real FLOPs**: 2 per multiply-accumulate plus every other floating-point op (the `nbcount`
#   convention), whatever convention the report prints.
# - $B$ assumes **no fusion and no cache reuse**: every op reads its inputs and writes its outputs once, at
#   their real dtypes (an upper bound). Views move nothing; an embedding reads only the rows it picks.
#   Beside it, a **fused** estimate: the layer as one kernel reads its weights and inputs once and writes
#   what leaves it once.
#
# Three questions, each answered by one call and its derivation.

# %%
import torch
from torch import nn
import nbcount
from nbcount import zoo

# %% [markdown]
# ## The hardware
#
# Presets are cited data: dense peaks per dtype (no 2:4 sparsity), bandwidth, memory and the data sheet
# they come from. `this CPU` is measured on the spot (a matmul and a copy, once per process).

# %%
nbcount.hardware()[["name", "fp32_flops_per_s", "bf16_flops_per_s", "fp8_flops_per_s",
                    "bandwidth_bytes_per_s", "memory_bytes"]]

# %%
h100 = nbcount.get_hardware("H100-SXM")
h100

# %% [markdown]
# ## 1 · Why is LLM decoding memory-bound?
#
# A decode step makes one token per sequence, so every weight matrix is read from memory to do
# one multiply-add per weight: 2 FLOPs for 2 bytes in bf16 — an intensity of about **1 FLOP per byte**,
# against the H100's ridge point of $989.4 \cdot 10^{12} / 3.35 \cdot 10^{12} \approx 295$. Llama-2-7B,
# built on `meta` (no memory), in bf16, one token:

# %%
with torch.device("meta"):
    llama = zoo.llama_7b().to(torch.bfloat16)
step = nbcount.count(llama, (1, 1), dtype=torch.long)
decode = step.roofline("H100-SXM")
decode

# %%
decode.derive("layers.0.feed_forward.w1")

# %% [markdown]
# The whole step: every weight read once sets the floor, $\approx 13.5\,\text{GB} / 3.35\,\text{TB/s}
# \approx 4\,\text{ms}$ (the embedding table is not read whole: a lookup reads one row).

# %%
decode.derive()

# %%
assert decode.memory_bound_share > 0.9
weights_read = (step.total_params - 32_000 * 4096 + 4096) * 2
assert decode.total_time_s >= weights_read / 3.35e12

# %% [markdown]
# ### Prefill against decode, with the KV cache
#
# Prefill reuses each weight for every prompt token: compute-bound. A decode step after $T$ tokens also
# reads the **KV cache** — $2 \cdot L \cdot H_{kv} \cdot d \cdot T \cdot b$ bytes — and attends over it. The
# tokens/s column is an upper bound: the fused bytes at full bandwidth, or all arithmetic at peak.

# %%
serving = step.serving_roofline(llama, hardware=["A100-SXM-80GB", "H100-SXM", "H200", "L4"], prompt_len=512, context_len=4096)
serving

# %%
serving.derive("decode", "H100-SXM")

# %% [markdown]
# Measured a decode step yourself? Model FLOPs utilisation and memory-bandwidth utilisation follow.
# Here 12 ms per token, as an example:

# %%
serving.utilisation(0.012, "decode", "H100-SXM")

# %% [markdown]
# ## 2 · Why are depthwise convolutions slow per FLOP?
#
# A 3×3 depthwise convolution does 9 multiply-adds per output element but reads and writes the whole
# activation: intensity about $2 \cdot 9 / (2 \cdot 4) \approx 2$ FLOPs per byte in fp32. A dense 3×3
# convolution with 256 channels does $256\times$ more arithmetic on the same activations. On an A100
# (fp32 ridge $19.5 / 2.039 \approx 9.6$):

# %%
x = (1, 256, 56, 56)
depthwise = nbcount.count(nn.Conv2d(256, 256, 3, padding=1, groups=256, bias=False), x).roofline("A100-SXM-80GB")
depthwise.derive("")

# %%
dense = nbcount.count(nn.Conv2d(256, 256, 3, padding=1, bias=False), x).roofline("A100-SXM-80GB")
dense.derive("")

# %%
dw, dn = depthwise.layers[0], dense.layers[0]
print(f"depthwise: {dw.flops:,} FLOPs in {dw.time_s * 1e6:.1f} µs ({dw.flops / dw.time_s / 1e12:.2f} TFLOP/s)")
print(f"dense:     {dn.flops:,} FLOPs in {dn.time_s * 1e6:.1f} µs ({dn.flops / dn.time_s / 1e12:.2f} TFLOP/s)")
assert (dw.bound, dn.bound) == ("memory", "compute")

# %% [markdown]
# So MobileNetV2 — 16× fewer FLOPs than ResNet-50 — spends its time moving activations, not computing.
# The chart places every layer: dots under the slanted roof are memory-bound, dots on the flat roof
# compute-bound; a dot's area is its share of the time.

# %%
mobilenet = nbcount.count(zoo.mobilenet_v2(), (1, 3, 224, 224)).roofline("A100-SXM-80GB")
mobilenet.chart()

# %% [markdown]
# ## 3 · Batch size moves a layer across the ridge
#
# A `Linear(4096, 4096)` on $N$ tokens in bf16 does $2 N d^2$ FLOPs and moves $2 (d^2 + 2 N d)$ bytes, so
# its intensity $N d / (d + 2N)$ grows with the batch until it crosses the ridge (295 on an H100):
# at $N \approx 344$ tokens.

# %%
with torch.device("meta"):
    linear = nn.Linear(4096, 4096, bias=False).to(torch.bfloat16)
for tokens in (1, 64, 256, 344, 512, 4096):
    layer = nbcount.count(linear, (tokens, 4096), dtype=torch.bfloat16).roofline("H100-SXM").layers[0]
    print(f"{tokens:>5} tokens: intensity {layer.intensity:7.1f} FLOP/B -> {layer.bound}-bound, "
          f"{layer.time_s * 1e6:6.1f} µs, {tokens / layer.time_s:,.0f} tokens/s")

# %%
nbcount.count(linear, (344, 4096), dtype=torch.bfloat16).roofline("H100-SXM").derive("")

# %%
assert nbcount.count(linear, (256, 4096), dtype=torch.bfloat16).roofline("H100-SXM").layers[0].bound == "memory"
assert nbcount.count(linear, (512, 4096), dtype=torch.bfloat16).roofline("H100-SXM").layers[0].bound == "compute"

# %% [markdown]
# ## Your own hardware, and fp32 with TF32
#
# `nbcount.Hardware(...)` takes any numbers. An fp32 model runs at the fp32 peak (PyTorch leaves TF32
# matmuls off by default); `dtype="tf32"` puts its multiply-accumulates on the TF32 tensor cores.

# %%
resnet = nbcount.count(zoo.resnet50(), (32, 3, 224, 224))
mine = nbcount.Hardware("my accelerator", bandwidth_bytes_per_s=1.5e12, fp32_flops_per_s=40e12,
                        tf32_flops_per_s=300e12, source="my own measurements")
for hardware, dtype in (("A100-SXM-80GB", None), ("A100-SXM-80GB", "tf32"), (mine, "tf32")):
    view = resnet.roofline(hardware, dtype=dtype)
    print(f"{view.hardware.name:15} {dtype or 'fp32':5} {view.total_time_s * 1e3:6.2f} ms, "
          f"{view.memory_bound_share:.0%} of it memory-bound")

# %%
resnet.roofline("A100-SXM-80GB", dtype="tf32").table.sort_values("time_s", ascending=False).head(8)

# %% [markdown]
# ## In the widget and in a terminal
#
# The report's widget has a **Roofline** tab: the chart, the slowest layers (repeated blocks folded), the
# totals and, for a decoder counted on token ids, prefill against one decode step. Pick the hardware and the
# peak the matrix ops run at; click a row or a dot for its worked roofline. In a terminal:
# `python -m nbcount gpt2 -i 1,512 --hardware H100-SXM` (`--hw-dtype tf32`, `--top 10`; `--help` lists the
# presets).

# %%
resnet.show(tab="Roofline", hardware="A100-SXM-80GB", hw_dtype="tf32")
