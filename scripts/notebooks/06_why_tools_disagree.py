# %% [markdown]
# # 06 · Why FLOP counters disagree
#
# Ask five tools for the FLOPs of the same network and you get five numbers. Usually none of them is
# wrong: they count different things and call all of them "FLOPs". This notebook takes the smallest
# possible example apart, then recounts real networks under each tool's convention.

# %%
%load_ext nbcount
import torch
from torch import nn
import pandas as pd
import nbcount
from nbcount import zoo

# %% [markdown]
# ## One linear layer
#
# `nn.Linear(8, 4)` on one input vector computes $y = Wx + b$: 4 outputs, each a dot product of
# length 8 (8 multiply-accumulates) plus one bias addition.
#
# - multiply-accumulates (MACs): $8 \cdot 4 = 32$
# - floating-point operations: each MAC is a multiply and an add, so $2 \cdot 32 = 64$, plus 4 bias
#   additions: **68**.
#
# Tools pick different subsets: some report MACs and call them FLOPs, some drop the bias, some count
# $2 \cdot$MACs and drop the bias, some add the bias to the MACs.

# %%
%%netcount -i 1,8 -o lin --derive Linear
layer = nn.Linear(8, 4)

# %%
assert lin.total_macs == 8 * 4
assert lin.total_flops == 2 * 8 * 4 + 4
lin.breakdown

# %% [markdown]
# PyTorch ships its own counter, `torch.utils.flop_counter.FlopCounterMode`. It counts $2 \cdot$MACs
# of matrix multiplications and ignores the bias:

# %%
from torch.utils.flop_counter import FlopCounterMode

with FlopCounterMode(display=False) as counter:
    layer(torch.randn(1, 8))
print("FlopCounterMode:", counter.get_total_flops())
assert counter.get_total_flops() == 2 * 8 * 4

# %% [markdown]
# ## Every convention nbcount knows
#
# A convention is a rule that turns nbcount's breakdown (MACs, bias additions, normalisation,
# activations, pooling, …) into one tool's headline number. `report.recount(name)` reuses the same
# trace — nothing runs again.

# %%
def headline(report):
    """One row per convention: its unit and this model's total."""
    rows = []
    for name, description in nbcount.conventions().items():
        other = report.recount(name)
        rows.append({"convention": name, "unit": other.headline.unit, "total": other.headline.value,
                     "what it counts": description})
    return pd.DataFrame(rows).set_index("convention")

pd.set_option("display.max_colwidth", 110)

table = headline(lin)
table

# %% [markdown]
# The peers' rules were measured with the real packages (torch 2.13): FlopCounterMode 64, fvcore 32
# (it calls a MAC a "flop"), torchinfo 36 (MACs plus bias), torchscan 64 FLOPs.

# %%
assert table.loc["torch", "total"] == 64 and table.loc["fvcore", "total"] == 32
assert table.loc["torchinfo", "total"] == 36 and table.loc["torchscan", "total"] == 64

# %% [markdown]
# ## A whole CNN
#
# On LeNet the conventions spread further apart: besides the bias question, tools disagree on whether
# ReLU, max-pooling and the flatten count at all. The widget's **Conventions** tab holds the same
# comparison per layer (`--compare`).

# %%
lenet = zoo.lenet()
%netcount lenet -i 1,1,28,28 -o report --compare
headline(report)

# %% [markdown]
# Read it this way: the `macs` row is the honest "multiply-accumulates of conv and linear layers"
# number, and the `nbcount` row counts every floating-point operation. A tool that reports something
# in between has made choices; the table's last column says which.
#
# Check LeNet's MACs by hand: conv1 $1 \cdot 9 \cdot 6 \cdot 28 \cdot 28 = 42{,}336$,
# conv2 $6 \cdot 25 \cdot 16 \cdot 10 \cdot 10 = 240{,}000$, and the linear layers
# $400 \cdot 120 + 120 \cdot 84 + 84 \cdot 10 = 58{,}920$: **341,256**.

# %%
assert report.total_macs == 1 * 9 * 6 * 28 * 28 + 6 * 25 * 16 * 10 * 10 + 400 * 120 + 120 * 84 + 84 * 10

# %% [markdown]
# ## Rules of thumb
#
# 1. Always write the unit *and* the convention next to a number: "0.68 MFLOPs (2·MAC + bias,
#    nbcount)" or "0.34 GMACs (fvcore)".
# 2. MACs ≈ FLOPs / 2 only when convolutions and matrix products dominate — true for most CNNs and
#    transformers, false for tiny or normalisation-heavy networks.
# 3. If two papers disagree by exactly 2×, one counted MACs and the other FLOPs.
