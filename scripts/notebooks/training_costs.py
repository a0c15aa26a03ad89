# %% [markdown]
# # Training a model: the cost questions
#
# The questions asked most about training, answered from the model itself, each number with its
# derivation:
#
# 1. Why is a training step about **3 × the forward FLOPs**, and when is it less?
# 2. Where does **6·N·D** come from?
# 3. How much memory does **Adam in mixed precision** need per parameter, and what do **ZeRO** and
#    FSDP save on 8 GPUs?
# 4. How big is the **KV-cache** of a 7B model at 4k context, and why is a 70B model's smaller per layer?
# 5. At what sequence length does **attention** start to dominate?
#
# `nbcount.count(model, ..., training=True)` runs one forward pass, the loss (the sum of the outputs,
# or your `loss_fn`) and the backward pass under the same capture. Every model here is built on the
# `meta` device: shapes, no data, no arithmetic, so a 70B model costs nothing to count.

# %%
import pandas as pd
import torch

import nbcount
from nbcount import zoo

GiB = 2**30

# %% [markdown]
# ## 1 · Backward ≈ 2 × forward (ResNet-50)
#
# Every product $y = W x$ of the forward pass needs two products in backward: $\partial x = W^\top
# \partial y$ (the gradient that flows on to the previous layer) and $\partial W = \partial y \, x^\top$
# (the weight's gradient). Each costs exactly as many multiply-accumulates as the forward product.
# The first convolution has no $\partial x$ to compute: nothing before it wants a gradient.

# %%
with torch.device("meta"):
    resnet = zoo.resnet50()
r50 = nbcount.count(resnet, (8, 3, 224, 224), training=True)
r50.training

# %%
r50.training.explain()

# %% [markdown]
# Per layer: the forward MACs, the two gradients, and the activation bytes autograd keeps for them.

# %%
r50.training.table.sort_values("backward_macs", ascending=False).head(6)

# %% [markdown]
# **Fine-tuning only the head.** Freeze everything but `fc`: backward shrinks to the head's
# $\partial W$ = batch · 2048 · 1000 MACs — no layer before it needs $\partial x$.

# %%
for name, p in resnet.named_parameters():
    p.requires_grad_(name.startswith("fc."))
head = nbcount.count(resnet, (8, 3, 224, 224), training=True)
print(f"backward {head.backward_macs:,} MACs = 8·2048·1000 = {8 * 2048 * 1000:,}")
assert head.backward_macs == 8 * 2048 * 1000
_ = resnet.requires_grad_(True)

# %% [markdown]
# ## 2 · Where 6·N·D comes from (GPT-2)
#
# Per token, each weight is used in one multiply-accumulate forward and two backward: 3 MACs = 6
# FLOPs. Attention's $QK^\top$ and $PV$ multiply activations by activations: they grow with the
# context, not with N, and are shown apart.

# %%
with torch.device("meta"):
    gpt2 = zoo.gpt2()
gpt = nbcount.count(gpt2, (1, 1024), dtype=torch.long, training=True)
gpt.training.six_nd()

# %%
steps = {s.label: s.value for s in gpt.training.six_nd().steps}
L, T, d = 12, 1024, 768
assert steps["attention per token"] == 6 * L * 2 * T * d  # q·kᵀ and p·v, forward and both gradients
print(f"weights used per token: {steps['weights used per token N_matmul']:,} of N = {gpt.total_params:,}"
      " (the rest: the position embedding, a lookup, and the biases and norm weights)")

# %% [markdown]
# The same step under every counting convention. FlopCounterMode counts the backward kernels it sees;
# calflops and DeepSpeed print backward as 2 × their forward; the other tools count the forward pass only.

# %%
gpt.training.by_convention()

# %% [markdown]
# ## 3 · Training memory: 16 bytes per parameter, then ZeRO
#
# Mixed precision keeps fp16 weights (2) and gradients (2), an fp32 master copy (4) and Adam's two
# fp32 moments (4 + 4). ZeRO-1 shards the optimizer states (with the master weights) over the
# devices, ZeRO-2 also the gradients, ZeRO-3 / FSDP also the weights.

# %%
with torch.device("meta"):
    llama7b = zoo.llama_7b()
r7 = nbcount.count(llama7b, (1, 16), dtype=torch.long)
adam = r7.training_memory("adam", "mixed")
assert adam["bytes_per_param"] == 16
print(f"Adam, mixed precision: {adam['bytes_per_param']} bytes per parameter, "
      f"{adam['total'] / GiB:.1f} GiB for {r7.total_params:,} parameters before activations")
adam

# %%
rows = {f"ZeRO-{stage}": r7.training_memory("adam", "mixed", shards=8, zero_stage=stage) for stage in range(4)}
pd.DataFrame({name: {k: v / GiB for k, v in mem.items() if k not in ("bytes_per_param", "activations")}
              for name, mem in rows.items()}).round(1)

# %% [markdown]
# Activations come from the counted step: GPT-2's saved tensors at 1,024 tokens, measured with
# `saved_tensors_hooks` (each storage once, weights excluded), then the whole budget. On `meta`,
# attention runs PyTorch's math path, which keeps every $T \times T$ probability matrix for backward; a
# fused flash kernel keeps only one log-sum-exp per row — count a real model on CPU to see that
# difference.

# %%
print(f"GPT-2 saves {gpt.training.saved_bytes / 2**20:,.1f} MiB of activations per 1,024-token sequence")
gpt.training_memory("adamw", "mixed")

# %% [markdown]
# ## 4 · The KV-cache
#
# A decoder keeps every past token's key and value in every layer:
# $2 \cdot L \cdot H_{kv} \cdot d_{head} \cdot T \cdot B$ elements. nbcount finds $L$, $H_{kv}$ and
# $d_{head}$ in the counted forward pass (the keys before they are repeated for the query heads).

# %%
kv7 = r7.kv_cache_bytes(4096, dtype=torch.float16)
assert kv7 == 2 * 32 * 32 * 128 * 4096 * 2 == 2 * GiB
print(f"7B: {kv7:,} bytes = {kv7 / GiB:.2f} GiB at 4,096 tokens")
kv7

# %% [markdown]
# Llama-2-70B uses grouped-query attention: 64 query heads share 8 key/value heads, so per layer it
# caches 8× less than multi-head attention would.

# %%
with torch.device("meta"):
    llama70b = zoo.llama_70b()
r70 = nbcount.count(llama70b, (1, 8), dtype=torch.long)
kv70 = r70.kv_cache_bytes(4096, dtype=torch.float16)
print(f"70B: {kv70:,} bytes = {kv70 / GiB:.2f} GiB at 4,096 tokens (80 layers × 8 KV heads)")
assert kv70 == 2 * 80 * 8 * 128 * 4096 * 2

# %% [markdown]
# ## 5 · When attention takes over
#
# Count GPT-2 at six sequence lengths and fit the exact polynomial: a·L for the weights, b·L² for
# attention. The fit is checked on every size it was not fitted on, and on one more here.

# %%
forward = nbcount.count(gpt2, (1, 1024), dtype=torch.long, convention="macs")
fit = forward.scaling(gpt2)  # counts gpt2 again at six lengths
assert fit(300) == nbcount.count(gpt2, (1, 300), dtype=torch.long, convention="macs").total_macs
print(fit.formula, f"· the L² term wins from L = {fit.crossover():,}")
fit.chart(upto=8192)
