# %% [markdown]
# # 01 · Counting a UNet's parameters by hand — and checking every step
#
# *Seed: "神经网络参数量的计算：以UNet为例" (zhuanlan.zhihu.com/p/57437131).*
#
# A layer has parameters only if it learns weights. In a vision network that means convolutions,
# batch normalisation and fully connected layers; ReLU, max-pooling and upsampling have none.
#
# | layer | parameters | why |
# |---|---|---|
# | `Conv2d` | $K_h \cdot K_w \cdot C_{in} \cdot C_{out} + C_{out}$ | one $K_h \times K_w \times C_{in}$ kernel per output channel, plus one bias each |
# | `BatchNorm2d` | $2 \cdot C$ | a scale $\gamma$ and a shift $\beta$ per channel |
# | `Linear` | $N_{in} \cdot N_{out} + N_{out}$ | a weight matrix plus a bias vector |
#
# BatchNorm also *stores* a running mean and variance per channel — they take memory, but they are
# buffers, not parameters: nothing learns them by gradient descent.

# %%
%load_ext nbcount
import torch
from torch import nn
import nbcount
from nbcount import zoo

# %% [markdown]
# ## The model
#
# The post's UNet has five stages with `[32, 64, 128, 256, 512]` filters (half the original paper's),
# each stage two *(3×3 conv, padding 1 → BN → ReLU)* blocks. Going down, a 2×2 max-pool halves the
# image; going up, a transposed convolution (`k=2, s=2`) doubles it, the skip connection is
# concatenated and two more conv blocks follow. A final 1×1 conv maps 32 channels to 2 classes; the
# input has 1 channel.
#
# Parameter counts do not depend on the image size, so a small 64×64 input is enough.

# %%
unet = zoo.unet()
%netcount unet -i 1,1,64,64 --depth 2 -o report

# %% [markdown]
# ## Stage 1 by hand
#
# Stage 1 maps 1 channel to 32, then 32 to 32:
#
# - conv 1: $3 \cdot 3 \cdot 1 \cdot 32 + 32 = 320$
# - BN 1: $2 \cdot 32 = 64$
# - conv 2: $3 \cdot 3 \cdot 32 \cdot 32 + 32 = 9{,}248$
# - BN 2: $2 \cdot 32 = 64$
#
# so 9,696 in total. The table's `downs.0` rows say the same:

# %%
stage1 = report.table[report.table.layer.str.startswith("downs.0.")]
stage1[["layer", "type", "output_shape", "params"]]

# %%
assert stage1.params.sum() == (3 * 3 * 1 * 32 + 32) + 2 * 32 + (3 * 3 * 32 * 32 + 32) + 2 * 32

# %% [markdown]
# ## Every stage, and the whole network
#
# Summing the same formulas over all ten double-conv blocks, the four transposed convolutions and the
# final 1×1 conv gives the post's result: **7,765,442** parameters. Here is the same sum per block,
# straight from the table (each block's rows are its own layers; children carry their own numbers):

# %%
top = report.table.layer.str.split(".").str[:2].str.join(".")
report.table.assign(block=top).groupby("block", sort=False).params.sum().to_frame()

# %%
assert report.total_params == 7_765_442
assert report.total_params == sum(p.numel() for p in unet.parameters())

# %% [markdown]
# ## Without batch normalisation
#
# The post also counts the UNet without BN. Each BN layer had $2C$ parameters; the BN layers sit after
# every 3×3 conv, with these channel counts:

# %%
bn_channels = [32, 32, 64, 64, 128, 128, 256, 256, 512, 512,   # down path
               256, 256, 128, 128, 64, 64, 32, 32]              # up path
bn_params = sum(2 * c for c in bn_channels)
plain = nbcount.count(zoo.unet(bn=False), (1, 1, 64, 64))
print(f"BN parameters: {bn_params:,}; UNet without BN: {plain.total_params:,}")
assert plain.total_params == 7_765_442 - bn_params == 7_759_554

# %% [markdown]
# ## Stored but not learned: BN's running statistics
#
# `buffer_bytes` shows what BN keeps besides its parameters: running mean and variance (float32,
# 4 bytes each) and a 64-bit counter of batches seen.

# %%
bn = report.table[report.table.type == "BatchNorm2d"].head(2)
bn[["layer", "params", "param_bytes", "buffer_bytes"]]

# %% [markdown]
# **Exercise.** The post lists "feature scale" variants: divide all filter counts by 2 or 4
# (`zoo.unet(filters=(16, 32, 64, 128, 256))`). Predict how the parameter count scales — conv
# parameters grow with $C_{in} \cdot C_{out}$ — then check with `%netcount`.
