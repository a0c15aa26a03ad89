# %% [markdown]
# # 04 · AlexNet: receptive field, FLOPs and model size — and a classic mistake
#
# *Seed: a post that computes AlexNet's receptive field, the FLOPs of its first layer, and its size
# on disk.*
#
# Three questions, three formulas. The first one is where the post goes wrong, and it is a favourite
# interview trap.

# %%
%load_ext nbcount
import nbcount
from nbcount import zoo

alexnet = zoo.alexnet()
%netcount alexnet -i 1,3,227,227 -o report --derive features.0

# %% [markdown]
# ## 1. Receptive field
#
# The receptive field of a unit is the patch of the input it can see. The post uses
#
# $$RF_i = RF_{i-1} + (k_i - 1) \cdot s_i, \qquad RF_0 = 1$$
#
# with each layer's **own** stride $s_i$. That is wrong: a step of one position in layer $i$'s input
# is already a step of $j_{i-1} = s_1 s_2 \cdots s_{i-1}$ pixels in the image (the *jump*). The
# right recurrence is
#
# $$r_i = r_{i-1} + (k_i - 1) \cdot j_{i-1}, \qquad j_i = j_{i-1} \cdot s_i, \qquad r_0 = j_0 = 1.$$
#
# The kernel sizes and strides of AlexNet's convolutions and poolings, read off the model:

# %%
from torch import nn

def as_int(v):
    return v[0] if isinstance(v, tuple) else v

layers = [(name, as_int(m.kernel_size), as_int(m.stride)) for name, m in alexnet.features.named_children()
          if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
layers

# %%
wrong, right, jump = [1], [1], 1
for _, k, s in layers:
    wrong.append(wrong[-1] + (k - 1) * s)      # the post's formula: the layer's own stride
    right.append(right[-1] + (k - 1) * jump)   # the jump: product of all earlier strides
    jump *= s
print("post's formula:", wrong[1:])
print("correct:       ", right[1:])
assert wrong[1:] == [41, 45, 49, 53, 55, 57, 59, 63]
assert right[1:] == [11, 19, 51, 67, 99, 131, 163, 195]

# %% [markdown]
# The post's own list is 41, 45, 53, 57, 59, 61, 63, **67**: on top of the wrong formula, its third
# step multiplies conv2's $(5 - 1)$ by the *pooling* layer's stride 2. Applied consistently, its
# formula gives 63. Both are wrong, and the first step shows why: conv1 sees $11$ pixels, not
# $1 + 10 \cdot 4 = 41$ — a layer's stride only matters for the layers *after* it. The last pooling
# layer sees **195** pixels.
#
# One more way to see it: a unit of the last pooling layer combines 3×3 units of conv5, which are
# $j = 16$ pixels apart in the image, so its field is at least $2 \cdot 16$ pixels wider than
# theirs: $163 + 32 = 195$. The post's formula adds only $2 \cdot 2 = 4$.

# %% [markdown]
# nbcount tracks the receptive field through the dataflow (which tensor feeds which op), so it also
# works for branching networks where "the previous layer" is not well defined. Its numbers for the
# same layers, from `report.receptive_field` (row index → field):

# %%
rows = {r.layer: i for i, r in enumerate(report.rows)}
fields = [report.receptive_field[rows[f"features.{name}"]].rf for name, _, _ in layers]
print("nbcount:       ", fields)
assert fields == right[1:]

# %% [markdown]
# ## 2. FLOPs of the first convolution
#
# The post counts one multiply per weight per output, plus one for the bias:
# $(11 \cdot 11 \cdot 3 + 1) \cdot 55 \cdot 55 \cdot 96 = 105{,}705{,}600$ ("105 M").
# nbcount's row keeps the two parts apart — the multiply-accumulates and the bias additions:

# %%
conv1 = report.row("features.0")
outputs = 55 * 55 * 96
print(f"MACs {conv1.macs:,} + bias additions {outputs:,} = {conv1.macs + outputs:,}")
assert conv1.macs == 11 * 11 * 3 * outputs
assert conv1.macs + outputs == 105_705_600

# %% [markdown]
# The post's convention (bias counted as one more multiply per output) is available as `macs+bias`:

# %%
post = report.recount("macs+bias")
assert post.convention.row_value(post.row("features.0")) == 105_705_600

# %% [markdown]
# The derivation of every number of this row is printed above, under the widget (`--derive features.0`).
#
# ## 3. Model size
#
# Stored as float32, each parameter takes 4 bytes. The first conv: $96 \cdot 11 \cdot 11 \cdot 3 + 96
# = 34{,}944$ parameters, 139,776 bytes.

# %%
assert conv1.params == 34_944
kb = report.total_params * 4 / 1024
print(f"{report.total_params:,} parameters x 4 bytes = {kb:,.0f} KB")
assert report.memory["param_bytes"] == 4 * sum(p.numel() for p in alexnet.parameters())

# %% [markdown]
# The post rounds to "about 60 M parameters" and gets $60 \cdot 10^6 \cdot 4 / 1024 = 234{,}375$ KB,
# and its real checkpoint file is 238,147 KB. This single-tower AlexNet (the torchvision-style layout
# with 96 first-layer filters) has 62,378,344 parameters; a file also stores names and metadata, so
# its size is a little above `params × 4`.
