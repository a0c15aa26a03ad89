# %% [markdown]
# # nbcount quickstart
#
# How big is a network, how much arithmetic does one forward pass cost, and **why** those numbers?
# `nbcount` runs your PyTorch model once, watches every layer and every low-level operation, and shows
# the parameters, multiply-accumulates (MACs), FLOPs, output shapes and memory of each layer — with the
# formula behind every number.
#
# This notebook takes five minutes. You will:
#
# 1. load the extension and count a small CNN with the `%%netcount` cell magic,
# 2. read the widget's tabs (Summary, Layers, Charts, Derivation, Conventions, Diagnostics),
# 3. do the same from plain Python with `nbcount.count()`, and export the table.

# %%
%load_ext nbcount
import torch
from torch import nn
import nbcount

# %% [markdown]
# ## 1. Count the model a cell defines
#
# `%%netcount` runs the cell in your namespace and counts the model it defines: the cell's last
# expression if it is an `nn.Module`, otherwise the module assigned last. `-i 1,3,32,32` says what to
# feed it: one batch of one 3-channel 32×32 image. `-o report` keeps the result as a Python variable.

# %%
%%netcount -i 1,3,32,32 -o report
class TinyNet(nn.Module):
    """Two conv blocks and a classifier: small enough to check every number by hand."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 8 * 8, classes)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.fc(x.flatten(1))

model = TinyNet()

# %% [markdown]
# **Reading the widget.** The line on top holds the totals; each tab fits the screen and scrolls inside.
#
# - **Summary**: the totals. *Parameters (unique)* counts every parameter tensor once; *used by the
#   forward pass* leaves out modules that were never called. FLOPs are always labelled with the
#   *convention* that produced them — tools disagree about what a FLOP is (see notebook 06).
#   *Status* says whether every operation had a counting rule (`complete`) or the total is a
#   `lower bound`.
# - **Layers**: the model as a tree. Every row shows its *subtotal* — the module plus everything that ran
#   inside it — so a collapsed block still carries its whole cost, and the `total` row at the bottom is
#   the model's. Click ▸ to expand, a column header to sort, type in the filter box to find a layer,
#   tick *own costs only* to see each row's own operations. Repeated blocks (twelve transformer layers)
#   are folded into one row such as `h.0–h.11 ×12`. Click a row to open its derivation.
# - **Charts**: the biggest layers by FLOPs, parameters, MACs or activation memory, per layer, per
#   repeated block or per module type; hover a bar for its exact value, click it for its derivation.
# - **Derivation**: every number of one layer as *formula → substituted numbers → value*, with buttons
#   to copy it as LaTeX or text.
# - **Conventions** and **Diagnostics**: how other tools would count this model, with the reason for each
#   difference one click away, and anything you should know (shared weights, unused modules, operations
#   without a rule).
#
# The same output also carries a static copy (the totals, the layer table and a chart) that GitHub,
# nbviewer and `jupyter nbconvert` show where the widget cannot run.
#
# Check the first convolution by hand: a 3×3 kernel over 3 input channels, 8 filters, one bias each:
# $8 \cdot (3 \cdot 3 \cdot 3) + 8 = 224$ parameters. Every one of the 32×32×8 outputs needs
# $3 \cdot 3 \cdot 3 = 27$ multiply-accumulates: $27 \cdot 8192 = 221{,}184$ MACs.

# %%
conv1 = report.row("conv1")
assert conv1.params == 8 * 3 * 3 * 3 + 8
assert conv1.macs == 3 * 3 * 3 * (8 * 32 * 32)
assert report.total_params == sum(p.numel() for p in model.parameters())
print(f"{report.total_params:,} parameters, {report.total_macs:,} MACs, {report.headline}")

# %% [markdown]
# ## 2. Count a model you already have
#
# The line magic `%netcount NAME` counts an existing variable. `--derive LAYER` opens the derivation
# of one layer and also prints it below the widget (`LAYER#1` names a layer's second call, like `pool#1`
# in the table above). `%netcount?` lists every option with examples.

# %%
%netcount model -i 1,3,32,32 --derive fc

# %% [markdown]
# ## 3. The same from Python
#
# The magics are a thin shell over `nbcount.count()`; the `Report` it returns is the whole result.
# `report.table` is a pandas DataFrame — filter, sort and plot it like any other.

# %%
report = nbcount.count(model, (1, 3, 32, 32))
report.table[["layer", "type", "output_shape", "params", "params_incl", "macs_incl", "flops_incl"]]

# %% [markdown]
# `report.table` has each call's own figures (`params`, `macs`, `flops`) and its subtotals
# (`params_incl`, `macs_incl`, `flops_incl`: the module plus everything inside it; the first row, the
# model itself, equals the totals).
#
# The `Report` object itself renders as a static HTML table with a chart, and as plain text, anywhere.
# Exports for course material: `to_csv()`, `to_markdown()`, `to_latex()` and `to_json()`; `report.chart()`
# draws matplotlib bar charts, `report.show()` the widget.

# %%
report

# %%
print(report.to_markdown().splitlines()[-1])

# %% [markdown]
# ## 4. Settings you want every time
#
# `%config NetCount` lists the defaults the magics read — convention, number units, tree depth,
# columns, chart size. For example, show totals in SI units only and the top two levels of the tree:

# %%
%config NetCount.units = "si"
%config NetCount.depth = 1
%netcount model -i 1,3,32,32 -q -o small
print(small)

# %% [markdown]
# Next: the seed walkthroughs (01–05) reproduce classic hand calculations, 06 explains why tools
# disagree, 07 counts GPT-2 and 70-billion-parameter decoders without memory, and 08 is an
# interview drill.
