# %% [markdown]
# # 02 · A DCGAN discriminator: nbcount next to torchsummary
#
# *Seed: a blog post that counts a DCGAN discriminator with `torchsummary.summary`.*
#
# `torchsummary` prints one line per layer with its output shape and parameter count, then four
# memory figures. We rebuild the post's discriminator (`d = 128`, input 3×64×64), reproduce every one
# of its numbers, and see what each memory figure actually means.

# %%
%load_ext nbcount
import torch
from torch import nn
import nbcount
from nbcount import zoo

# %% [markdown]
# The post's model, as `zoo.dcgan_discriminator()`: four stride-2 convolutions (3 → 128 → 256 → 512
# → 1024 channels, 64×64 → 4×4), BN after all but the first, LeakyReLU(0.2), then a linear layer to
# one logit and a sigmoid.

# %%
%%netcount -i 1,3,64,64 -o report
disc = zoo.dcgan_discriminator(d=128)

# %% [markdown]
# ## The post's table, line by line
#
# torchsummary printed (parameters per layer):
#
# ```
# Conv2d-1      [-1, 128, 32, 32]     6,272
# Conv2d-3      [-1, 256, 16, 16]   524,544
# BatchNorm2d-4 [-1, 256, 16, 16]       512
# Conv2d-6      [-1, 512, 8, 8]     2,097,664
# BatchNorm2d-7 [-1, 512, 8, 8]       1,024
# Conv2d-9      [-1, 1024, 4, 4]  8,389,632
# BatchNorm2d-10 [-1, 1024, 4, 4]     2,048
# Linear-12     [-1, 1]              16,385
# Total params: 11,038,081
# ```
#
# Worked by hand: the first conv has $128 \cdot (4 \cdot 4 \cdot 3) + 128 = 6{,}272$; a BN over
# 256 channels $256 \cdot 2 = 512$; the linear layer $1024 \cdot 4 \cdot 4 \cdot 1 + 1 = 16{,}385$.

# %%
learned = report.table[report.table.params > 0]
learned[["layer", "type", "output_shape", "params"]]

# %%
assert list(learned.params) == [6_272, 524_544, 512, 2_097_664, 1_024, 8_389_632, 2_048, 16_385]
assert report.total_params == 11_038_081 == sum(p.numel() for p in disc.parameters())

# %% [markdown]
# ## The four memory figures
#
# torchsummary reported *Input size 0.05 MB, Forward/backward pass size 4.63 MB, Params size
# 42.11 MB, Estimated total size 46.78 MB*. Its rules: 4 bytes per number, MB = $2^{20}$ bytes, and
# "forward/backward" = **2 ×** the sum of every layer's output (once for the activation, once for its
# gradient). Nothing here measures real memory: a LeakyReLU that works in place still counts.

# %%
mem = report.memory
print(f"input {mem['input_mb']:.2f} MB · forward/backward {mem['forward_backward_mb']:.2f} MB · "
      f"params {mem['params_mb']:.2f} MB · total {mem['total_mb']:.2f} MB")
assert f"{mem['input_mb']:.2f}" == "0.05" and f"{mem['params_mb']:.2f}" == "42.11"
assert f"{mem['forward_backward_mb']:.2f}" == "4.63" and f"{mem['total_mb']:.2f}" == "46.78"

# %% [markdown]
# Check the input size yourself: $3 \cdot 64 \cdot 64 \cdot 4$ bytes $= 49{,}152$ bytes
# $= 0.047$ MB, printed as 0.05. The parameters: $11{,}038{,}081 \cdot 4 / 2^{20} = 42.11$ MB.
#
# nbcount adds what torchsummary cannot know: the *peak* activation memory of one inference pass,
# from when each tensor is created and last used — much less than the sum of all outputs.

# %%
print(f"peak activation memory (inference): {mem['peak_activation_bytes'] / 2**20:.2f} MB")

# %% [markdown]
# ## If you have torchsummary installed
#
# The real package prints the same table (it needs `pip install torchsummary`).

# %%
try:
    from torchsummary import summary
except ImportError:
    print("torchsummary is not installed; the seed's output is quoted above.")
else:
    summary(zoo.dcgan_discriminator(d=128), input_size=(3, 64, 64), device="cpu")
