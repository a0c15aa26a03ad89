# %% [markdown]
# # 03 · LeNet under `paddle.flops`' rules
#
# *Seed: "CNN中模型的参数量与FLOPs计算", which counts a LeNet with PaddlePaddle's `paddle.flops`.*
#
# A FLOP count is only meaningful together with the **rules** that produced it. The post uses
# Paddle's:
#
# | layer | parameters | FLOPs in `paddle.flops` |
# |---|---|---|
# | `Conv2D` | $C_{in} C_{out} K_h K_w + C_{out}$ | parameters $\times H_{out} W_{out}$ — one multiply-accumulate per weight per output pixel, plus the bias addition |
# | `Linear` | $C_{in} C_{out} + C_{out}$ | $C_{in} C_{out}$ — bias not counted |
# | `BatchNorm` | $4C$ in Paddle (it counts the running statistics), $2C$ in PyTorch | $2 C H_{out} W_{out}$ |
# | ReLU, pooling | 0 | 0 |
#
# So a "FLOP" here is really a multiply-accumulate, and biases count for convolutions but not for
# linear layers. Let us reproduce the post's numbers and then see them side by side with nbcount's own.

# %%
%load_ext nbcount
import torch
import nbcount
from nbcount import zoo

# %% [markdown]
# ## The single convolution
#
# `Conv2D(2 → 4, 3×3, padding 1)` on a 320×320 image: $4 \cdot 2 \cdot 3 \cdot 3 + 4 = 76$
# parameters, and $76 \cdot 320 \cdot 320 = 7{,}782{,}400$ FLOPs (Paddle printed 0.00778 GFLOPs).

# %%
%%netcount -i 1,2,320,320 -o single --derive Conv2d
conv = torch.nn.Conv2d(2, 4, kernel_size=3, padding=1)

# %%
row = single.row("")  # the root row: the conv itself
h_out, w_out = row.call.out_tensors[0].shape[2:]
paddle_flops = row.params * h_out * w_out
print(f"{row.params} parameters; paddle.flops: {paddle_flops:,}")
assert row.params == 76 and paddle_flops == 7_782_400
# the same number from nbcount's breakdown: multiply-accumulates plus one bias addition per output
assert single.total_macs + 4 * 320 * 320 == paddle_flops

# %% [markdown]
# ## LeNet
#
# Conv(1→6, 3×3, pad 1) → ReLU → MaxPool → Conv(6→16, 5×5) → ReLU → MaxPool → Linear(400→120) →
# Linear(120→84) → Linear(84→10), on one 1×28×28 image.

# %%
lenet = zoo.lenet()
%netcount lenet -i 1,1,28,28 -o report

# %% [markdown]
# Paddle's rule written as a small function over nbcount's rows. nbcount keeps, for every call,
# its parameters, multiply-accumulates and output shape — enough to apply any tool's rules.

# %%
def paddle_flops(row):
    """FLOPs of one row under paddle.flops' rules (Conv2D, Linear; activations and pooling are free)."""
    if row.call.module_type == "Conv2d":
        _, _, h, w = row.call.out_tensors[0].shape
        return row.params * h * w
    if row.call.module_type == "Linear":
        return row.macs
    return 0

per_layer = {r.layer: (r.params, paddle_flops(r)) for r in report.rows if r.params}
per_layer

# %%
expected = {"features.0": (60, 47_040), "features.3": (2_416, 241_600), "fc.0": (48_120, 48_000),
            "fc.1": (10_164, 10_080), "fc.2": (850, 840)}
assert per_layer == expected
assert report.total_params == 61_610
assert sum(paddle_flops(r) for r in report.rows) == 347_560

# %% [markdown]
# The post's totals: **61,610 parameters, 347,560 FLOPs**. nbcount's own headline number is larger,
# because its default convention counts *every* floating-point operation: two per multiply-accumulate
# (a multiply and an add), every bias addition, every ReLU and every max-pool comparison.

# %%
print(f"paddle.flops:       {347_560:>9,}")
print(f"nbcount MACs:       {report.total_macs:>9,}")
print(f"nbcount {report.headline.unit}:      {report.headline.value:>9,}  ({report.headline.convention} convention)")
print("breakdown:", report.breakdown)

# %% [markdown]
# ## The same rules as a named convention
#
# Writing a tool's rules as a function is a good exercise, and nbcount ships them: `-c paddle`
# recounts under `paddle.flops`' rules (`nbcount.conventions()` lists every convention). The layer
# table's FLOPs column then holds Paddle's numbers.

# %%
%netcount lenet -i 1,1,28,28 -c paddle -o paddle_report --columns layer,type,output_shape,params,flops
assert paddle_report.total_flops == 347_560
assert [paddle_flops(r) for r in report.rows] == list(paddle_report.table.flops)

# %% [markdown]
# Neither number is wrong; they answer different questions. Whenever you quote a FLOP count, name
# the convention — notebook 06 compares the common tools.
#
# **BatchNorm in Paddle.** Paddle reports $4C$ "parameters" for a BN layer because it stores four
# vectors. PyTorch registers only $\gamma$ and $\beta$ as parameters (2C); the running statistics are
# buffers, shown in nbcount's `buffer_bytes` column.
