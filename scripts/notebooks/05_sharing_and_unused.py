# %% [markdown]
# # 05 · Shared weights and unused modules: when the usual one-liner lies
#
# *Seed: "PyTorch 统计网络参数量", three small networks that make torchsummary and the usual
# `sum(p.numel() for p in model.parameters())` disagree.*
#
# Every network here uses `Conv2d(1, 1, 3, padding=1, bias=False)`: $1 \cdot 1 \cdot 3 \cdot 3 = 9$
# parameters.

# %%
%load_ext nbcount
import torch
import nbcount
from nbcount import zoo

def numel(model):
    """The usual one-liner."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

# %% [markdown]
# ## Case 1 — two convolutions, each called once
#
# Everyone agrees: 18.

# %%
case1 = zoo.two_convs()
%netcount case1 -i 1,1,512,512 -o r1
assert numel(case1) == r1.total_params == r1.used_params == 18

# %% [markdown]
# ## Case 2 — one convolution called twice (weight sharing)
#
# `forward` applies `conv1` twice. There are 9 weights, used twice. torchsummary lists one row per
# call and adds the rows up: it reports **18**. `parameters()` yields each tensor once: 9.
#
# nbcount shows both calls as rows, but the second call adds **0** new parameters and is marked
# `shared`; the Diagnostics tab says which call reuses which weights.

# %%
case2 = zoo.shared_conv()
%netcount case2 -i 1,1,512,512 -o r2
r2.table[["layer", "call", "params", "shared", "macs"]]

# %%
assert numel(case2) == r2.total_params == 9
assert list(r2.table.params) == [0, 9, 0]          # root, first call, second call
assert r2.total_macs == 2 * 9 * 512 * 512           # the arithmetic does happen twice
[d.message for d in r2.diagnostics]

# %% [markdown]
# Note the asymmetry: sharing saves parameters, not computation. Both calls cost
# $9 \cdot 512 \cdot 512$ multiply-accumulates.
#
# ## Case 3 — a module that is registered but never called
#
# `conv2` is created in `__init__` but `forward` only calls `conv1` (twice). `parameters()` still
# yields conv2's weights, so the one-liner says 18; the forward pass only ever touches 9.

# %%
case3 = zoo.unused_conv()
%netcount case3 -i 1,1,512,512 -o r3
print(f"registered: {r3.total_params}, used by forward: {r3.used_params}")
assert numel(case3) == r3.total_params == 18 and r3.used_params == 9
[d.message for d in r3.diagnostics if d.kind == "unused_module"]

# %% [markdown]
# Which number is "right" depends on the question. Memory for the checkpoint and the optimiser state:
# 18 (unused weights are still saved and still get optimiser state). Capacity the model actually uses:
# 9. nbcount reports both and names the unused module, so the difference never goes unnoticed.
#
# ## torchsummary, for comparison
#
# If it is installed, here is the real torchsummary on case 2 — look at its total.

# %%
try:
    from torchsummary import summary
except ImportError:
    print("torchsummary is not installed (pip install torchsummary); it reports 18 for case 2.")
else:
    summary(zoo.shared_conv(), input_size=(1, 16, 16), device="cpu")
