"""Receptive field: seed 003's AlexNet numbers, arithmetic over named kernels, and the gradient-support oracle.

The oracle is independent of nbcount: a linearised copy of the network (weights 1/fan-in, biases 0,
batch norm the identity, activations removed, max-pool replaced by avg-pool) computes y = J·x with every
entry of J ≥ 0, so the support of the input gradient of output unit u is the set of pixels with J[u, p] > 0.
Forwarding one indicator image per input row (and one per column) gives, for every unit of every layer at
once, which rows (columns) that gradient touches; its hull is the unit's receptive field along that axis.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import nbcount
from nbcount import zoo
from nbcount.zoo.cnn import VGG

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU, nn.Hardtanh)


# --- the oracle -----------------------------------------------------------------------------------

def linearised(model: nn.Module) -> nn.Module:
    """A copy computing a non-negative linear map with the same dependency pattern as `model`."""
    lin = copy.deepcopy(model).float().eval()
    for parent in list(lin.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, ACTIVATIONS):
                setattr(parent, name, nn.Identity())
            elif isinstance(child, nn.MaxPool2d):
                assert child.dilation in (1, (1, 1)), "the oracle replaces max-pool by an undilated avg-pool"
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode))
    with torch.no_grad():
        for m in lin.modules():
            if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
                fan_in = m.weight.shape[0] if getattr(m, "transposed", False) else m.weight.shape[1]
                m.weight.fill_(1.0 / fan_in)
            elif isinstance(getattr(m, "weight", None), torch.Tensor):
                m.weight.fill_(1.0)
            if isinstance(getattr(m, "bias", None), torch.Tensor):
                m.bias.zero_()
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    return lin


class _Enough(Exception):
    """Every output the check needs has been seen: the rest of the forward pass is skipped."""


def layer_outputs(model: nn.Module, x: torch.Tensor,
                  needed: set[tuple[str, int]] | None = None) -> dict[tuple[str, int], torch.Tensor]:
    """Every module call's output, keyed (path, call index), kept before later in-place ops change it."""
    got: dict[tuple[str, int], torch.Tensor] = {}
    counts: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        def hook(m: nn.Module, args: object, out: object, name: str = name) -> object:
            k = counts.get(name, 0)
            counts[name] = k + 1
            if isinstance(out, torch.Tensor):
                got[(name, k)] = out
                if needed is not None and needed <= got.keys():
                    raise _Enough
                return out.clone()
            return None
        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(x)
    except _Enough:
        pass
    finally:
        for h in handles:
            h.remove()
    return got


def indicator_images(size: tuple[int, ...]) -> torch.Tensor:
    """One image per input row (all channels, all columns), then one per input column."""
    _, c, h, w = size
    x = torch.zeros(h + w, c, h, w)
    for i in range(h):
        x[i, :, i, :] = 1
    for j in range(w):
        x[h + j, :, :, j] = 1
    return x


def support_hulls(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last probe (batch index) that reaches each unit."""
    reached = values > 0
    index = torch.arange(values.shape[0]).view(-1, *([1] * (values.ndim - 1)))
    return torch.where(reached, index, values.shape[0]).amin(0), torch.where(reached, index, -1).amax(0)


def check_against_oracle(model: nn.Module, size: tuple[int, ...], min_units: int = 1, interior: bool = False) -> int:
    """Every unit of every spatial row: nbcount's field, clipped to the input, equals the oracle's hull.

    interior: compare only units whose whole field lies inside the input; near the border a dilated or
    cropped net's unit reads padding, and its support has holes the (border-free) receptive field ignores.
    """
    report = nbcount.count(model, size)
    fields = report.receptive_field
    spatial = {(r.layer, r.call.call_index) for k, r in enumerate(report.rows)
               if k in fields and all(a.tracked for a in fields[k].axes)}
    outs = layer_outputs(linearised(model), indicator_images(size), spatial)
    h, w = size[2:]
    checked = 0
    for index, row in enumerate(report.rows):
        field = fields.get(index)
        key = (row.layer, row.call.call_index)
        if field is None or not all(a.tracked for a in field.axes) or key not in outs or outs[key].ndim != 4:
            continue
        per_position = outs[key].sum(1)  # a unit = one spatial position, all channels
        spans = [[ax.span(p) for p in range(n)] for ax, n in zip(field.axes, per_position.shape[1:])]
        inside = [torch.tensor([s[0] >= 0 and s[1] < e for s in axis]) for axis, e in zip(spans, (h, w))]
        keep = inside[0].view(-1, 1) & inside[1].view(1, -1)
        keep = keep if interior else torch.ones_like(keep)
        for axis, (probes, extent) in enumerate(((slice(0, h), h), (slice(h, h + w), w))):
            lo, hi = support_hulls(per_position[probes])
            view = [-1, 1] if axis == 0 else [1, -1]
            want_lo = torch.tensor([max(s[0], 0) for s in spans[axis]]).view(view).expand_as(lo)
            want_hi = torch.tensor([min(s[1], extent - 1) for s in spans[axis]]).view(view).expand_as(hi)
            where = (row.layer, row.call.call_index, axis)
            assert torch.equal(lo[keep], want_lo[keep]), ("start", *where)
            assert torch.equal(hi[keep], want_hi[keep]), ("end", *where)
            checked += int(keep.sum())
    assert checked >= min_units
    return checked


def check_unit_fits(model: nn.Module, size: tuple[int, ...], layer: str, expected: int, axes: int = 2) -> None:
    """For the centre unit of `layer`: the oracle's support is exactly [lo, hi] of size `expected`, inside the input.

    Four probes per axis: everything before lo and everything after hi must not reach the unit, rows lo and hi
    must; so the support's hull is exactly [lo, hi], unclipped.
    """
    report = nbcount.count(model, size)
    index = next(k for k, r in enumerate(report.rows) if r.layer == layer)
    field = report.receptive_field[index]
    out_shape = report.rows[index].call.out_tensors[0].shape[2:]
    centre = [n // 2 for n in out_shape]
    spans = [ax.span(p) for ax, p in zip(field.axes, centre)][:axes]
    probes, expect = [], []
    for axis, (lo, hi) in enumerate(spans):
        assert hi - lo + 1 == expected and lo >= 0 and hi <= size[2 + axis] - 1, "choose an input the field fits"
        for sl, reach in ((slice(0, lo), False), (slice(lo, lo + 1), True), (slice(hi, hi + 1), True),
                          (slice(hi + 1, None), False)):
            if sl.start == sl.stop or sl.start == size[2 + axis]:
                continue  # the field touches the border: nothing lies beyond it
            x = torch.zeros(size[1:])
            x[(slice(None), sl) if axis == 0 else (slice(None), slice(None), sl)] = 1
            probes.append(x)
            expect.append(reach)
    outs = layer_outputs(linearised(model), torch.stack(probes), {(layer, 0)})
    unit = outs[(layer, 0)].sum(1)[:, centre[0], centre[1]]
    assert [bool(v > 0) for v in unit] == expect


# --- seed 003: AlexNet ------------------------------------------------------------------------------

ALEXNET = [("features.0", 11, 4), ("features.2", 3, 2), ("features.3", 5, 1), ("features.5", 3, 2),
           ("features.6", 3, 1), ("features.8", 3, 1), ("features.10", 3, 1), ("features.12", 3, 2)]


def test_alexnet_receptive_field_seed003() -> None:
    """r_i = r_{i−1} + (k_i − 1)·j_{i−1}, j_i = j_{i−1}·s_i: 11, 19, 51, 67, 99, 131, 163, 195 (seed 003)."""
    report = nbcount.count(zoo.alexnet(), (1, 3, 227, 227))
    table = report.table.set_index("layer")
    r, j, own = 1, 1, 1
    for layer, k, s in ALEXNET:
        r, j, own = r + (k - 1) * j, j * s, own + (k - 1) * s
        assert table.loc[layer, "rf"] == r and table.loc[layer, "jump"] == j
        derivation = report.derive(layer)["rf"]
        assert derivation.value == r and derivation.steps[-1].value == r
        last = derivation.steps[-1]  # the answer first, then the seed-003 mistake named after it
        assert last.label == "r" and "classic mistake" in last.note
        assert f"= {own:,}, not the receptive field" in last.note
    assert [table.loc[layer, "rf"] for layer, _, _ in ALEXNET] == [11, 19, 51, 67, 99, 131, 163, 195]
    # The article's chain multiplies by the layer's own stride (and by 2 at conv2): 41, 45, 53, …, 67.
    article = [1 + 10 * 4, 3 - 1, 5 - 1, 3 - 1, 3 - 1, 3 - 1, 3 - 1, 3 - 1]
    factors = [1, 2, 2, 2, 1, 1, 1, 2]
    chain = [article[0]]
    for extra, factor in zip(article[1:], factors[1:]):
        chain.append(chain[-1] + extra * factor)
    assert chain[-1] == 67 != table.loc["features.12", "rf"]
    text = report.derive("features.12")["rf"].derivation.to_text()
    answer = text.index("r_in + (K - 1)·d·j_in = 163 + (3 - 1)·1·16 = 195")
    assert answer < text.index("classic mistake") < text.index("own stride") < text.index("= 63, not the receptive")
    assert table.loc["classifier.6", "rf"] == 227  # a linear layer sees the whole input


def test_alexnet_field_fits_the_oracle() -> None:
    """The centre unit of AlexNet's last pool sees exactly 195 × 195 pixels of a 227 × 227 input."""
    check_unit_fits(zoo.alexnet(), (1, 3, 227, 227), "features.12", 195)


# --- arithmetic over named kernels, and branches -------------------------------------------------

class Dilated(nn.Module):
    """Parallel dilated convs (one non-square), concatenated, fused, a residual, a stride, a dilated conv."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.a = nn.Conv2d(4, 4, 3, padding=2, dilation=2)
        self.b = nn.Conv2d(4, 4, 3, padding=4, dilation=4)
        self.c = nn.Conv2d(4, 4, (1, 3), padding=(0, 3), dilation=(1, 3))
        self.fuse = nn.Conv2d(12, 4, 1)
        self.down = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.d = nn.Conv2d(4, 4, 3, padding=3, dilation=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.fuse(torch.cat([self.a(x), self.b(x), self.c(x)], 1)) + x
        y = self.down(y)
        return self.d(y) + y


def test_dilated_branches_by_arithmetic_and_oracle() -> None:
    """r = r_in + (K − 1)·d·j per branch; cat and add take the union; a non-square kernel gives a tuple."""
    report = nbcount.count(Dilated(), (1, 1, 48, 48))
    rf = report.table.set_index("layer")["rf"]
    stem = 1 + (3 - 1) * 1
    assert rf["stem"] == stem
    assert rf["a"] == stem + (3 - 1) * 2 and rf["b"] == stem + (3 - 1) * 4
    assert rf["c"] == (stem, stem + (3 - 1) * 3)
    widest = stem + (3 - 1) * 4
    assert rf["fuse"] == widest and rf["down"] == widest + (3 - 1) * 1
    assert rf["d"] == widest + 2 + (3 - 1) * 3 * 2 and rf[""] == rf["d"]
    check_against_oracle(Dilated(), (1, 1, 48, 48), min_units=500, interior=True)


class Offset(nn.Module):
    """Two branches whose fields are offset by one pixel: their union is wider than either."""

    def __init__(self) -> None:
        super().__init__()
        self.valid = nn.Conv2d(1, 2, 3)
        self.same = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.valid(x) + self.same(x)[..., :-2, :-2]


def test_offset_branches_union_is_wider() -> None:
    """Unit o sees [o, o+2] in one branch and [o−1, o+1] in the other: [o−1, o+2], 4 pixels, centred at 0.5."""
    report = nbcount.count(Offset(), (1, 1, 16, 16))
    root = report.receptive_field[0]
    assert root.rf == 3 + 1 and root.start == (-1 + 2) / 2 and root.jump == 1
    derivation = report.derive("")["rf"]
    assert derivation.steps[-1].value == 4 and "offset from each other" in derivation.derivation.to_text()
    check_against_oracle(Offset(), (1, 1, 16, 16))


class CallOrder(nn.Module):
    """The small conv is called after the big one but reads the input, not the big conv's output."""

    def __init__(self) -> None:
        super().__init__()
        self.big = nn.Conv2d(1, 1, 7, padding=3)
        self.small = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.big(x)
        return self.small(x) + y


def test_dataflow_not_call_order() -> None:
    """Chaining in call order would give small 7 + 2 = 9; through the dataflow it sees 3 pixels."""
    rf = nbcount.count(CallOrder(), (1, 1, 20, 20)).table.set_index("layer")["rf"]
    assert (rf["big"], rf["small"], rf[""]) == (7, 3, 7)
    check_against_oracle(CallOrder(), (1, 1, 20, 20))


def _up(kind: str) -> nn.Module:
    down = [nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.Conv2d(2, 2, 3, stride=2, padding=1)]
    ups = {
        "transposed_k3": [nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1)],
        "transposed_k4": [nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1)],
        "nearest": [nn.Upsample(scale_factor=4, mode="nearest")],
        "bilinear": [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)],
        "shuffle": [nn.Conv2d(2, 8, 1), nn.PixelShuffle(2), nn.PixelUnshuffle(2), nn.Conv2d(8, 2, 1),
                    nn.PixelShuffle(1)],
        "pad_pool": [nn.ZeroPad2d((2, 0, 1, 0)), nn.AvgPool2d(3, 2, ceil_mode=True)],
    }[kind]
    return nn.Sequential(*down, *ups, nn.Conv2d(2, 1, 3, padding=1))


@pytest.mark.parametrize("kind", ["transposed_k3", "transposed_k4", "nearest", "bilinear", "shuffle", "pad_pool"])
def test_upsampling_nets_against_oracle(kind: str) -> None:
    """Transposed convolutions, upsampling, pixel shuffle, padding: every unit's field, position by position."""
    check_against_oracle(_up(kind), (1, 1, 32, 32), min_units=100, interior=kind == "pad_pool")


def test_transposed_field_depends_on_position() -> None:
    """k=3, s=2 after a jump of 4: even outputs read 1 input, odd ones 2: r_in and r_in + j_in (the largest)."""
    report = nbcount.count(_up("transposed_k3"), (1, 1, 32, 32))
    up = report.receptive_field[3]
    r_in, j_in = report.receptive_field[2].rf, report.receptive_field[2].jump
    assert up.jump == j_in / 2 and up.varies and sorted(set(up.axes[0].sizes)) == [r_in, r_in + j_in]
    assert up.rf == r_in + (-(-3 // 2) - 1) * j_in
    text = report.derive("2")["rf"].derivation.to_text()
    assert "r_in + (ceil(K/s) - 1)·j_in" in text and "largest" in text


# --- every zoo CNN against the oracle ------------------------------------------------------------

ZOO_CASES = {
    "lenet": (lambda: zoo.lenet(), (1, 1, 28, 28)),
    "dcgan_discriminator": (lambda: zoo.dcgan_discriminator(d=8), (1, 3, 64, 64)),
    "alexnet_features": (lambda: zoo.alexnet().features, (1, 3, 99, 99)),
    "vgg16_layout": (lambda: VGG(((4, 2), (4, 2), (4, 3), (4, 3), (512, 3))), (1, 3, 32, 32)),
    "unet": (lambda: zoo.unet(filters=(4, 8, 16, 32, 64)), (1, 1, 32, 32)),
    "unet_no_bn": (lambda: zoo.unet(bn=False, filters=(4, 8, 16, 32, 64)), (1, 1, 32, 32)),
    "resnet18": (lambda: zoo.resnet18(), (1, 3, 32, 32)),
    "resnet50": (lambda: zoo.resnet50(), (1, 3, 32, 32)),
    "mobilenet_v2": (lambda: zoo.mobilenet_v2(), (1, 3, 32, 32)),
    "sharing": (lambda: zoo.unused_conv(), (1, 1, 12, 12)),
}


@pytest.mark.parametrize("name", list(ZOO_CASES))
def test_zoo_against_oracle(name: str) -> None:
    """Every unit of every row with a spatial output: the field (clipped to the input) = the gradient support."""
    make, size = ZOO_CASES[name]
    torch.manual_seed(0)
    check_against_oracle(make(), size, min_units=100)


def test_unet_field_fits_and_varies() -> None:
    """UNet's output field depends on the position (upsampling) and its centre unit fits a 256 input exactly."""
    model = zoo.unet(filters=(2, 2, 2, 2, 2))
    report = nbcount.count(model, (1, 1, 256, 256))
    final = report.receptive_field[len(report.rows) - 1]
    assert final.varies and final.jump == 1
    text = report.derive("ups.3.conv.conv.3")["rf"].derivation.to_text()
    assert "depends on the output position" in text
    centre = final.axes[0].span(128)
    check_unit_fits(model, (1, 1, 256, 256), "final", centre[1] - centre[0] + 1)


def test_resnet18_field_fits() -> None:
    """ResNet-18's layer4 sees 435 pixels (the classic value), checked unclipped on a 448 input (rows; H and W
    are built alike)."""
    report = nbcount.count(zoo.resnet18(), (1, 3, 448, 448))
    assert report.table.set_index("layer").loc["layer4", "rf"] == 435
    check_unit_fits(zoo.resnet18(), (1, 3, 448, 448), "layer4", 435, axes=1)


# --- the table ------------------------------------------------------------------------------------

def test_columns_and_whole_input() -> None:
    """rf / jump / start columns; global pooling and linear layers cover the whole input; tokens have none."""
    table = nbcount.count(zoo.resnet18(), (1, 3, 64, 64)).table.set_index("layer")
    assert table.loc["conv1", "rf"] == 7 and table.loc["conv1", "jump"] == 2 and table.loc["conv1", "start"] == 0
    assert table.loc["maxpool", "rf"] == 7 + (3 - 1) * 2 and table.loc["maxpool", "jump"] == 4
    assert table.loc["avgpool", "rf"] == 64 and table.loc["fc", "rf"] == 64 and table.loc["fc", "jump"] is None
    tokens = nbcount.count(zoo.gpt2(), (1, 8), dtype=torch.long)
    assert tokens.table["rf"].isna().all() and "rf" not in tokens.derive("h.0")


def test_in_place_add_does_not_leak_back() -> None:
    """bn2's output is later added to in place (out += identity): bn2's row keeps the conv path's field."""
    table = nbcount.count(zoo.resnet18(), (1, 3, 64, 64)).table.set_index("layer")
    assert table.loc["layer1.0.bn2", "rf"] == table.loc["layer1.0.conv2", "rf"] == 11 + 2 * 4 + 2 * 4
    assert table.loc["layer1.0", "rf"] == table.loc["layer1.0.conv2", "rf"]


def test_functional_ops_are_followed() -> None:
    """F.max_pool2d, F.interpolate, slicing and F.pad outside modules move the field too."""

    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)
            self.head = nn.Conv2d(1, 1, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.max_pool2d(self.conv(x), 2)
            y = F.interpolate(y, scale_factor=2.0, mode="nearest")
            return self.head(F.pad(y[..., 1:, 1:], (1, 0, 1, 0)))

    check_against_oracle(Functional(), (1, 1, 20, 20))


def test_one_dimensional_and_sequence_inputs() -> None:
    """A Conv1d net on (N, C, L) has a field along L; a (batch, sequence, features) input to linears has none."""
    convs = nn.Sequential(nn.Conv1d(2, 4, 5, stride=2), nn.ReLU(), nn.Conv1d(4, 4, 3))
    rf = nbcount.count(convs, (1, 2, 40)).table.set_index("layer")["rf"]
    assert rf["0"] == 5 and rf["2"] == 5 + (3 - 1) * 2
    linears = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 4))
    assert nbcount.count(linears, (1, 5, 8)).table["rf"].isna().all()
