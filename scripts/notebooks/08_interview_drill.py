# %% [markdown]
# # 08 · Interview drill: parameters, FLOPs and receptive fields
#
# Seven questions that come up in ML interviews. Work each one out on paper first, then open
# **Show the derivation** under it: nbcount's worked steps, formula → numbers → value.
# (Running the notebook only *prepares* the answers; they stay folded until you click.)

# %%
%load_ext nbcount
import torch
from torch import nn
import nbcount
from nbcount.display import reveal

# %% [markdown]
# ### Q1. How many parameters does `nn.Conv2d(64, 128, kernel_size=3)` have?

# %%
q1 = nbcount.count(nn.Conv2d(64, 128, 3, padding=1), (1, 64, 56, 56))
reveal(q1, "Conv2d")

# %% [markdown]
# ### Q2. How many multiply-accumulates does it do on a 56×56 feature map (padding 1)?

# %%
reveal(q1, "Conv2d", title="Show the MACs")

# %% [markdown]
# ### Q3. Replace it with a depthwise-separable pair: a 3×3 depthwise conv (`groups=64`) and a 1×1 conv to 128 channels. How many parameters now?

# %%
separable = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1, groups=64), nn.Conv2d(64, 128, 1))
q3 = nbcount.count(separable, (1, 64, 56, 56))
reveal(q3, "0", title="Show the depthwise conv")

# %%
reveal(q3, "1", title="Show the pointwise conv")

# %% [markdown]
# ### Q4. `nn.BatchNorm2d(256)`: how many parameters, and how many numbers does it store?

# %%
q4 = nbcount.count(nn.BatchNorm2d(256), (1, 256, 14, 14))
reveal(q4, "BatchNorm2d")

# %% [markdown]
# ### Q5. A transformer MLP, `nn.Linear(768, 3072)`, on a sequence of 128 tokens: parameters and multiply-accumulates?

# %%
q5 = nbcount.count(nn.Linear(768, 3072), (1, 128, 768))
reveal(q5, "Linear")

# %% [markdown]
# ### Q6. Weight sharing: a module calls the same `Conv2d(16, 16, 3)` three times. Parameters? MACs?

# %%
class Repeat(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x):
        for _ in range(3):
            x = self.conv(x)
        return x

q6 = nbcount.count(Repeat(), (1, 16, 32, 32))
reveal(q6, "conv", 0, title="Show the first call")

# %%
reveal(q6, "conv", 2, title="Show the third call")

# %% [markdown]
# ### Q7. Three stacked 3×3 convolutions with stride 1: what is the receptive field? Why did VGG prefer them to one 7×7?
#
# Work it out with $r_i = r_{i-1} + (k_i - 1) \cdot j_{i-1}$, then compare the parameters of the two
# designs for $C$ channels in and out: $3 \cdot 9C^2 = 27C^2$ against $49C^2$.

# %%
stack = nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(3)])
single = nn.Conv2d(8, 8, 7, padding=3)
q7a, q7b = nbcount.count(stack, (1, 8, 16, 16)), nbcount.count(single, (1, 8, 16, 16))
print(f"three 3x3: {q7a.total_params:,} parameters; one 7x7: {q7b.total_params:,}")

# %% [markdown]
# Answer check (open only after trying): receptive field $1 + 2 + 2 + 2 = 7$, the same as one 7×7,
# with fewer parameters ($27C^2 + 3C$ vs $49C^2 + C$) and two more non-linearities in between.

# %%
assert q1.total_params == 128 * 64 * 9 + 128
assert q1.total_macs == 64 * 9 * 128 * 56 * 56
assert q3.total_params == (64 * 9 + 64) + (64 * 128 + 128)
assert q4.total_params == 2 * 256 and q4.row("BatchNorm2d").call.buffer_bytes == 2 * 256 * 4 + 8
assert q5.total_params == 768 * 3072 + 3072 and q5.total_macs == 128 * 768 * 3072
assert q6.total_params == 16 * 16 * 9 + 16 and q6.total_macs == 3 * 16 * 9 * 16 * 32 * 32
assert q7a.total_params == 3 * (8 * 8 * 9 + 8) and q7b.total_params == 8 * 8 * 49 + 8
