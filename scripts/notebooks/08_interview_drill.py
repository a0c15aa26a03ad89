# %% [markdown]
# # 08 · Interview drill: parameters, shapes, receptive fields, MACs, memory and conventions
#
# Twenty-six questions that come up in ML interviews. For each one: work it out on paper, type your
# answer in the box (`73,856`, `73856`, `1.05M`, `2.4e8`, `1.9 GiB`, or a shape such as `(1, 64, 112, 112)`),
# press **Check**. You get a verdict — numbers are accepted to the precision you wrote them — and the
# derivation unfolds: formula → numbers → value, the steps nbcount computed the answer with.
# **Show the derivation** opens it without answering. Every answer key is one `nbcount` call, in the cell.

# %%
import torch
from torch import nn
import nbcount
from nbcount import zoo
from nbcount.drill import ask

# %% [markdown]
# ## Parameters and output shapes

# %%
q1 = ask("How many parameters does nn.Conv2d(64, 128, kernel_size=3) have?",
         nbcount.count(nn.Conv2d(64, 128, 3), (1, 64, 56, 56)).derive("")["params"], 1)
q1

# %%
q2 = ask("Output shape of nn.Conv2d(3, 64, 7, stride=2, padding=3) on a 1×3×224×224 image?",
         nbcount.count(nn.Conv2d(3, 64, 7, stride=2, padding=3), (1, 3, 224, 224)).derive("")["shape"], 2)
q2

# %%
q3 = ask("Output shape of nn.MaxPool2d(3, stride=2) on a 1×96×55×55 map (AlexNet's first pool)?",
         nbcount.count(nn.MaxPool2d(3, 2), (1, 96, 55, 55)).derive("")["shape"], 3)
q3

# %%
q4 = ask("ViT-B/16 cuts a 224×224 image into 16×16 patches with nn.Conv2d(3, 768, 16, stride=16): output shape?",
         nbcount.count(nn.Conv2d(3, 768, 16, stride=16), (1, 3, 224, 224)).derive("")["shape"], 4)
q4

# %%
separable = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1, groups=64), nn.Conv2d(64, 128, 1))
q5 = ask("Replace Conv2d(64, 128, 3) by a depthwise 3×3 (groups=64) and a 1×1 to 128 channels: parameters now?",
         nbcount.count(separable, (1, 64, 56, 56)).derive()["params"], 5)
q5

# %%
q6 = ask("nn.BatchNorm2d(256): how many parameters?",
         nbcount.count(nn.BatchNorm2d(256), (1, 256, 14, 14)).derive("")["params"], 6)
q6

# %%
q7 = ask("…and how many numbers does it store besides them (its buffers, in elements)?",
         nbcount.count(nn.BatchNorm2d(256), (1, 256, 14, 14)).derive("")["memory"].step("buffers"), 7)
q7

# %%
q8 = ask("A transformer MLP's nn.Linear(768, 3072): parameters?",
         nbcount.count(nn.Linear(768, 3072), (1, 128, 768)).derive("")["params"], 8)
q8

# %% [markdown]
# ## Recurrent and attention layers

# %%
q9 = ask("nn.LSTM(input_size=10, hidden_size=20): parameters?",
         nbcount.count(nn.LSTM(10, 20), (5, 1, 10)).derive("")["params"], 9)
q9

# %%
q10 = ask("nn.LSTM(10, 20, num_layers=2, bidirectional=True): parameters? (What does layer 1 read?)",
          nbcount.count(nn.LSTM(10, 20, num_layers=2, bidirectional=True), (5, 1, 10)).derive("")["params"], 10)
q10

# %%
q11 = ask("nn.GRU(10, 20): parameters?", nbcount.count(nn.GRU(10, 20), (5, 1, 10)).derive("")["params"], 11)
q11

# %%
x = torch.randn(1, 10, 512)
q12 = ask("nn.MultiheadAttention(embed_dim=512, num_heads=8): parameters?",
          nbcount.count(nn.MultiheadAttention(512, 8, batch_first=True), inputs=(x, x, x)).derive("")["params"], 12)
q12

# %%
layer = nn.TransformerEncoderLayer(512, 8, dim_feedforward=2048, batch_first=True)
q13 = ask("nn.TransformerEncoderLayer(d_model=512, nhead=8, dim_feedforward=2048): parameters?",
          nbcount.count(layer, (1, 10, 512)).derive("")["params"].step("params of its sub-layers"), 13)
q13

# %% [markdown]
# ## Receptive fields

# %%
stack = nn.Sequential(*[nn.Conv2d(8, 8, 3, padding=1) for _ in range(3)])
q14 = ask("Three stacked 3×3 convolutions, stride 1: receptive field of the last one? (Why did VGG prefer them?)",
          nbcount.count(stack, (1, 8, 32, 32)).derive("2")["rf"], 14)
q14

# %%
q15 = ask("AlexNet (seed 003): receptive field of the last max-pool, features.12?",
          nbcount.count(zoo.alexnet(), (1, 3, 227, 227)).derive("features.12")["rf"], 15)
q15

# %% [markdown]
# ## MACs and FLOPs

# %%
q16 = ask("Conv2d(64, 128, 3, padding=1) on a 56×56 map: multiply-accumulates?",
          nbcount.count(nn.Conv2d(64, 128, 3, padding=1), (1, 64, 56, 56)).derive("")["macs"], 16)
q16

# %%
q17 = ask("nn.Linear(768, 3072) over a sequence of 128 tokens: multiply-accumulates?",
          nbcount.count(nn.Linear(768, 3072), (1, 128, 768)).derive("")["macs"], 17)
q17

# %%
q18 = ask("A 1×1 nn.Conv2d(64, 128, 1) on a 14×14 map: MACs? (Compare nn.Linear(64, 128) over 196 rows.)",
          nbcount.count(nn.Conv2d(64, 128, 1), (1, 64, 14, 14)).derive("")["macs"], 18)
q18


# %%
class Repeat(nn.Module):
    """One Conv2d(16, 16, 3) called three times: shared weights."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x):
        for _ in range(3):
            x = self.conv(x)
        return x


q19 = ask("One Conv2d(16, 16, 3, padding=1) applied three times to a 32×32 map: total MACs?",
          nbcount.count(Repeat(), (1, 16, 32, 32)).derive()["macs"], 19)
q19

# %%
q20 = ask("ResNet-50 at 224×224: parameters?",
          nbcount.count(zoo.resnet50(), (1, 3, 224, 224)).derive()["params"], 20)
q20

# %% [markdown]
# ## Language models: parameters, serving and training memory

# %%
gpt = nbcount.count(zoo.gpt2(), (1, 64), dtype=torch.long)
q21 = ask("GPT-2 small (12 layers, d = 768, vocabulary 50,257, tied embeddings): parameters?",
          gpt.derive()["params"], 21)
q21

# %%
q22 = ask("Its token embedding table wte (50,257 × 768): parameters?", gpt.derive("wte")["params"], 22)
q22

# %%
q23 = ask("GPT-2 small's KV-cache for 1,024 tokens, batch 1, in fp16: bytes?",
          gpt.kv_cache_bytes(1024, dtype=torch.float16), 23)
q23

# %%
q24 = ask("Training GPT-2 small with Adam in mixed precision: bytes of weights, gradients, fp32 master copy and "
          "optimizer state (activations aside)?", gpt.training_memory("adam", "mixed").derivation, 24)
q24

# %% [markdown]
# ## Conventions and size on disk

# %%
q25 = ask("nn.Linear(8, 4) on a (1, 8) input: how many FLOPs does torch.utils.flop_counter.FlopCounterMode report?",
          nbcount.count(nn.Linear(8, 4), (1, 8), convention="torch").derive("")["flops"], 25)
q25

# %%
q26 = ask("…and fvcore's FlopCountAnalysis, for the same layer?",
          nbcount.count(nn.Linear(8, 4), (1, 8), convention="fvcore").derive("")["flops"], 26)
q26

# %%
q27 = ask("torchvision's AlexNet (61,100,840 parameters) saved as an fp32 state_dict: bytes of tensor data?",
          nbcount.count(zoo.alexnet_torchvision(), (1, 3, 224, 224)).checkpoint_bytes(), 27)
q27

# %% [markdown]
# ## Try it: answers typed for you
#
# `question.answer(text)` types into the box and presses **Check**, exactly as you would: a right answer
# to the precision written, a classic slip (FLOPs where MACs were asked), and a shape without the batch.

# %%
print(q1.answer("73,856").message)
print(q16.answer("462,422,016").message)
print(q2.answer("64x112x112").message)

# %% [markdown]
# ## Answer key, by hand
#
# The same numbers from the formulas, so the notebook checks nbcount as well as you:
# VGG's reason for 3×3 stacks is $3 \cdot 9C^2 = 27C^2$ weights against $49C^2$ for one 7×7, with the same
# receptive field $1 + 2 + 2 + 2 = 7$ and two more non-linearities.

# %%
questions = [q1, q2, q3, q4, q5, q6, q7, q8, q9, q10, q11, q12, q13, q14, q15, q16, q17, q18, q19, q20, q21, q22,
             q23, q24, q25, q26, q27]
by_hand = [
    128 * 64 * 9 + 128,                                     # q1: C_out·C_in·K² + C_out
    (1, 64, (224 + 2 * 3 - 7) // 2 + 1, (224 + 2 * 3 - 7) // 2 + 1),  # q2: ⌊(H + 2p − K)/s⌋ + 1 = 112
    (1, 96, (55 - 3) // 2 + 1, (55 - 3) // 2 + 1),          # q3: 27
    (1, 768, 224 // 16, 224 // 16),                         # q4: 14 × 14 patches
    (64 * 9 + 64) + (128 * 64 + 128),                       # q5: depthwise + pointwise
    2 * 256,                                                # q6: γ and β
    256 + 256 + 1,                                          # q7: running mean, running var, num_batches_tracked
    768 * 3072 + 3072,                                      # q8
    4 * 20 * (10 + 20) + 2 * 4 * 20,                        # q9: 4 gates
    2 * (4 * 20 * (10 + 20) + 2 * 4 * 20) + 2 * (4 * 20 * (40 + 20) + 2 * 4 * 20),  # q10: layer 1 reads 2·H = 40
    3 * 20 * (10 + 20) + 2 * 3 * 20,                        # q11: 3 gates
    3 * 512 * 512 + 3 * 512 + 512 * 512 + 512,              # q12: 3·E in-projection + out-projection
    (4 * 512 * 512 + 4 * 512) + (2 * 512 * 2048 + 2048 + 512) + 2 * 2 * 512,  # q13
    1 + 2 + 2 + 2,                                          # q14
    195,                                                    # q15: seed 003
    64 * 9 * 128 * 56 * 56,                                 # q16
    128 * 768 * 3072,                                       # q17
    14 * 14 * 64 * 128,                                     # q18
    3 * 16 * 9 * 16 * 32 * 32,                              # q19: three calls, one set of weights
    25_557_032,                                             # q20: torchvision's published count
    124_439_808,                                            # q21: GPT-2 small, lm_head tied to wte
    50_257 * 768,                                           # q22
    2 * 12 * 12 * 64 * 1024 * 1 * 2,                        # q23: K and V · layers · heads · head dim · tokens · bytes
    124_439_808 * (2 + 2 + 4 + 4 + 4),                      # q24: fp16 weight + grad, fp32 master, Adam m and v
    2 * 8 * 4,                                              # q25: 2 FLOPs per MAC, bias not counted
    8 * 4,                                                  # q26: one per MAC
    61_100_840 * 4,                                         # q27
]
assert [q.expected for q in questions] == by_hand
assert q1.verdict.correct and not q16.verdict.correct and q2.verdict.correct
print(f"{len(questions)} questions, every answer key matches the hand calculation")
