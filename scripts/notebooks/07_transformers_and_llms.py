# %% [markdown]
# # 07 · Transformers and LLMs: GPT-2, and 7B / 70B decoders without the memory
#
# Large language models raise three counting questions CNNs do not:
#
# 1. **Tied weights.** GPT-2 uses the same matrix for the token embedding and the output layer. Count
#    it once.
# 2. **Work outside modules.** Attention's $QK^\top$ and $AV$ are `torch.matmul` / `@` /
#    `scaled_dot_product_attention` calls inside `forward`, not `nn.Linear` modules. Module-hook
#    counters miss them; nbcount counts at the operator level.
# 3. **Size.** A 70-billion-parameter model does not fit in a laptop's memory. nbcount counts models
#    built on PyTorch's `meta` device, where tensors have shapes but no data.

# %%
%load_ext nbcount
import torch
import nbcount
from nbcount import zoo

# %% [markdown]
# ## GPT-2 (124 M)
#
# `--device meta` runs the cell under `with torch.device("meta"):`, so the model and the 128 token ids
# are built without allocating any data (instant, even for huge models). `--depth 2` keeps the table
# to the blocks and their direct children.

# %%
%%netcount --device meta --inputs tokens --depth 2 -o gpt
gpt2 = zoo.gpt2()
tokens = torch.zeros(1, 128, dtype=torch.long)

# %% [markdown]
# **Parameters.** 124,439,808 — the figure OpenAI and Hugging Face give. A counter that walks the
# modules and adds up each one's weights finds the 50,257 × 768 embedding twice (once in `wte`, once
# in `lm_head`) and reports 163,037,184. nbcount lists `lm_head` as a row that reuses weights
# (Diagnostics tab):

# %%
assert gpt.total_params == 124_439_808 == sum(p.numel() for p in gpt2.parameters())
tied = 50_257 * 768
print(f"counted twice you would get {gpt.total_params + tied:,}")
[d.message for d in gpt.diagnostics if d.kind == "shared_params"]

# %% [markdown]
# **Multiply-accumulates.** With $T = 128$ tokens, every weight of a linear layer is used once per
# token, and attention adds $2 T^2 d$ per layer ($QK^\top$ and $AV$, $d = 768$), plus the tied
# output layer:
#
# $$\text{MACs} = T \cdot W_{\text{linear}} + T \cdot V \cdot d + L \cdot 2 T^2 d$$

# %%
T, d, V, L = 128, 768, 50_257, 12
linear_weights = sum(m.weight.numel() for m in gpt2.modules()
                     if isinstance(m, torch.nn.Linear) and m is not gpt2.lm_head)
expected = T * linear_weights + T * V * d + L * 2 * T * T * d
print(f"by hand {expected:,} · nbcount {gpt.total_macs:,}")
assert gpt.total_macs == expected

# %% [markdown]
# The attention term is small at 128 tokens (2%), but it grows with $T^2$: at 1,024 tokens it is
# 14 % of the total. Where the arithmetic goes, per layer type:

# %%
gpt.table.groupby("type")[["params", "macs"]].sum().sort_values("macs", ascending=False)

# %% [markdown]
# ## A 7B decoder (Llama-style) on meta
#
# 32 layers, $d = 4096$, SwiGLU feed-forward of width 11,008, rotary embeddings, RMSNorm. 27 GB of
# float32 weights — none of which are allocated here.

# %%
with torch.device("meta"):
    llama7b = zoo.llama("7b")
    prompt = torch.zeros(1, 128, dtype=torch.long)
%netcount llama7b --inputs prompt -q -o r7
print(f"{r7.total_params:,} parameters, {r7.total_macs:,} MACs for 128 tokens ({r7.status})")
assert r7.total_params == 6_738_415_616

# %% [markdown]
# The well-known rule of thumb says a forward pass costs about $2N$ FLOPs per token, with $N$ the
# parameters outside the embedding. Per token that is $N$ MACs, plus the attention term:

# %%
cfg = zoo.llama_config("7b")
T = 128
weights = sum(m.weight.numel() for m in llama7b.modules() if isinstance(m, torch.nn.Linear))
by_hand = T * weights + cfg.n_layers * 2 * T * T * cfg.dim
print(f"rule of thumb + attention: {by_hand:,}")
assert r7.total_macs == by_hand

# %% [markdown]
# ## A 70B decoder
#
# 80 layers, $d = 8192$, grouped-query attention (64 query heads share 8 key/value heads).
# In bfloat16 the weights alone need about 128 GiB.

# %%
with torch.device("meta"):
    llama70b = zoo.llama("70b").to(torch.bfloat16)
%netcount llama70b --inputs prompt -q -o r70
gib = r70.memory["param_bytes"] / 2**30
print(f"{r70.total_params:,} parameters = {gib:,.1f} GiB in bfloat16")
assert r70.total_params == 68_976_648_192
assert r70.memory["param_bytes"] == 2 * r70.total_params

# %% [markdown]
# **Grouped-query attention in the numbers.** The key and value projections map 8192 to
# $8 \text{ heads} \cdot 128 = 1024$ features, an eighth of the query projection:

# %%
r70.table[r70.table.layer.str.match(r"layers\.0\.attention\.w[qkvo]$")][["layer", "output_shape", "params"]]

# %% [markdown]
# **The KV cache** is what limits how many users a server can hold: per token, each layer keeps one
# key and one value vector per key/value head. For one 4,096-token sequence in bfloat16:

# %%
cfg = zoo.llama_config("70b")
kv_bytes = 2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * 4096 * 2
print(f"{kv_bytes / 2**30:.2f} GiB per 4,096-token sequence")
