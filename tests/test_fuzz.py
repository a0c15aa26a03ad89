"""Hypothesis-generated conv / pool / linear / transposed-conv layers against independent oracles.

Oracles: ``sum(p.numel())`` for parameters, the real forward's output shape, analytic MAC formulas
(cross-checked with torch's FlopCounterMode, which counts 2 FLOPs per MAC for these ops) and, for the
receptive field, the support of the input gradient of one output unit in a linearised copy of the net.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import oracles  # noqa: E402  (tests/ is on sys.path under pytest)
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from nbcount import count

EXAMPLES = int(os.environ.get("NBCOUNT_FUZZ_EXAMPLES", "40"))  # raise it for a longer bug hunt
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
TRANSPOSED = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


def params_oracle(model: nn.Module) -> int:
    """Each parameter tensor once."""
    return sum(p.numel() for p in model.parameters())


def real_shape(model: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The output shape of a real forward pass."""
    with torch.no_grad():
        return tuple(model(torch.zeros(shape)).shape)


def torch_flops(model: nn.Module, shape: tuple[int, ...]) -> int:
    """torch.utils.flop_counter's total for one real forward pass."""
    return oracles.torch_flops(model, torch.zeros(shape))


def check_against_oracles(model: nn.Module, shape: tuple[int, ...], macs: int) -> None:
    """nbcount on both paths: parameters, output shape, MACs, status; FlopCounterMode agrees with `macs`."""
    out = real_shape(model, shape)
    assert torch_flops(model, shape) == 2 * macs
    for execution in ("auto", "real"):
        report = count(model, shape, execution=execution)
        assert report.total_params == params_oracle(model)
        assert report.rows[0].call.out_tensors[0].shape == out
        assert report.total_macs == macs
        assert report.status == "complete", report.uncounted_ops


# --- convolutions ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvCase:
    """A convolution layer and an input it accepts."""

    dims: int
    c_in: int
    c_out: int
    groups: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Any
    dilation: tuple[int, ...]
    padding_mode: str
    bias: bool
    batch: int
    size: tuple[int, ...]

    def layer(self) -> nn.Module:
        """The nn.ConvNd this case describes."""
        return CONV[self.dims](self.c_in, self.c_out, self.kernel, self.stride, self.padding, self.dilation,
                               self.groups, self.bias, self.padding_mode)

    def pads(self) -> tuple[int, ...]:
        """Total padding per axis (both sides)."""
        if self.padding == "valid":
            return (0,) * self.dims
        if self.padding == "same":
            return tuple(d * (k - 1) for k, d in zip(self.kernel, self.dilation))
        return tuple(2 * p for p in self.padding)

    def out_size(self) -> tuple[int, ...]:
        """Analytic output size: ⌊(n + pad − d·(k − 1) − 1) / s⌋ + 1."""
        return tuple((n + p - d * (k - 1) - 1) // s + 1
                     for n, p, k, s, d in zip(self.size, self.pads(), self.kernel, self.stride, self.dilation))

    def macs(self) -> int:
        """N·C_out·∏out·(C_in/groups)·∏k."""
        per_output = (self.c_in // self.groups) * math.prod(self.kernel)
        return self.batch * self.c_out * math.prod(self.out_size()) * per_output


@st.composite
def conv_cases(draw: st.DrawFn) -> ConvCase:
    """Any dimensionality, groups, dilation, stride, padding (ints, 'same', 'valid'), non-square kernels."""
    dims = draw(st.sampled_from([1, 2, 2, 3]))
    axes = st.lists(st.integers(1, 4), min_size=dims, max_size=dims).map(tuple)
    groups = draw(st.integers(1, 3))
    kernel, dilation = draw(axes), draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims).map(tuple))
    padding: Any = draw(st.one_of(st.sampled_from(["same", "valid"]),
                                  st.lists(st.integers(0, 3), min_size=dims, max_size=dims).map(tuple)))
    stride = (1,) * dims if padding == "same" else draw(st.lists(st.integers(1, 3), min_size=dims,
                                                                 max_size=dims).map(tuple))
    mode = draw(st.sampled_from(["zeros", "zeros", "circular", "reflect", "replicate"]))
    extra = st.integers(0, 4) if dims < 3 else st.integers(0, 2)
    size = tuple(max(d * (k - 1) + 1, 4) + draw(extra) for k, d in zip(kernel, dilation))
    return ConvCase(dims, groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3)), groups, kernel,
                    stride, padding, dilation, mode, draw(st.booleans()), draw(st.integers(1, 2)), size)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@FUZZ
@given(conv_cases())
def test_convolution(case: ConvCase) -> None:
    """ConvNd: parameters, output shape, MACs and status against the oracles."""
    layer = case.layer()
    shape = (case.batch, case.c_in, *case.size)
    assert real_shape(layer, shape)[2:] == case.out_size()  # the analytic oracle agrees with torch
    assert params_oracle(layer) == case.c_out * (case.c_in // case.groups) * math.prod(case.kernel) + (
        case.c_out if case.bias else 0)
    check_against_oracles(layer, shape, case.macs())


@dataclass(frozen=True)
class TransposedCase:
    """A transposed convolution and an input it accepts."""

    dims: int
    c_in: int
    c_out: int
    groups: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    bias: bool
    batch: int
    size: tuple[int, ...]

    def layer(self) -> nn.Module:
        """The nn.ConvTransposeNd this case describes."""
        return TRANSPOSED[self.dims](self.c_in, self.c_out, self.kernel, self.stride, self.padding,
                                     self.output_padding, self.groups, self.bias, self.dilation)

    def out_size(self) -> tuple[int, ...]:
        """(n − 1)·s − 2p + d·(k − 1) + output_padding + 1."""
        return tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, s, p, d, k, op in
                     zip(self.size, self.stride, self.padding, self.dilation, self.kernel, self.output_padding))

    def macs(self) -> int:
        """N·C_in·∏in·(C_out/groups)·∏k: every input element scatters into C_out/groups·∏k outputs."""
        return self.batch * self.c_in * math.prod(self.size) * (self.c_out // self.groups) * math.prod(self.kernel)


@st.composite
def transposed_cases(draw: st.DrawFn) -> TransposedCase:
    """Groups, stride, padding, output_padding < max(stride, dilation), dilation, non-square kernels."""
    dims = draw(st.sampled_from([1, 2, 2, 3]))

    def axes(lo: int, hi: int) -> tuple[int, ...]:
        return tuple(draw(st.lists(st.integers(lo, hi), min_size=dims, max_size=dims)))

    groups, kernel, stride, dilation = draw(st.integers(1, 3)), axes(1, 4), axes(1, 3), axes(1, 2)
    padding = tuple(draw(st.integers(0, (d * (k - 1)) // 2)) for k, d in zip(kernel, dilation))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    size = tuple(draw(st.integers(2, 6 if dims < 3 else 4)) for _ in range(dims))
    case = TransposedCase(dims, groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3)), groups,
                          kernel, stride, padding, output_padding, dilation, draw(st.booleans()),
                          draw(st.integers(1, 2)), size)
    assume(all(n >= 1 for n in case.out_size()))
    return case


@FUZZ
@given(transposed_cases())
def test_transposed_convolution(case: TransposedCase) -> None:
    """ConvTransposeNd: parameters, output shape, MACs and status against the oracles."""
    layer = case.layer()
    shape = (case.batch, case.c_in, *case.size)
    assert real_shape(layer, shape)[2:] == case.out_size()
    assert params_oracle(layer) == case.c_in * (case.c_out // case.groups) * math.prod(case.kernel) + (
        case.c_out if case.bias else 0)
    check_against_oracles(layer, shape, case.macs())


# --- pooling and linear ----------------------------------------------------------------------------------


@st.composite
def pool_layers(draw: st.DrawFn) -> tuple[nn.Module, tuple[int, ...]]:
    """Max / average pooling of any dimensionality with stride, padding ≤ k/2, dilation, ceil_mode."""
    dims = draw(st.sampled_from([1, 2, 3]))
    kernel = tuple(draw(st.lists(st.integers(1, 4), min_size=dims, max_size=dims)))
    stride = tuple(draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    ceil_mode = draw(st.booleans())
    if draw(st.booleans()):
        dilation = tuple(draw(st.lists(st.integers(1, 2), min_size=dims, max_size=dims)))
        layer: nn.Module = MAX_POOL[dims](kernel, stride, padding, dilation, ceil_mode=ceil_mode)
        span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    else:
        layer = AVG_POOL[dims](kernel, stride, padding, ceil_mode, draw(st.booleans()))
        span = list(kernel)
    size = tuple(s + draw(st.integers(0, 5 if dims < 3 else 2)) for s in span)
    return layer, (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size)


@FUZZ
@given(pool_layers())
def test_pooling(case: tuple[nn.Module, tuple[int, ...]]) -> None:
    """Pooling: no parameters, no MACs, the real output shape and bytes, every op counted."""
    layer, shape = case
    out = real_shape(layer, shape)
    for execution in ("auto", "real"):
        report = count(layer, shape, execution=execution)
        assert (report.total_params, report.total_macs) == (0, 0)
        assert report.rows[0].call.out_tensors[0].shape == out
        assert report.rows[0].output_bytes == math.prod(out) * 4
        assert report.status == "complete", report.uncounted_ops


@FUZZ
@given(st.integers(1, 12), st.integers(1, 12), st.booleans(), st.lists(st.integers(1, 4), max_size=3))
def test_linear(n_in: int, n_out: int, bias: bool, lead: list[int]) -> None:
    """Linear on (*, in): MACs = ∏lead·in·out, parameters in·out + out."""
    layer = nn.Linear(n_in, n_out, bias=bias)
    assert params_oracle(layer) == n_in * n_out + (n_out if bias else 0)
    check_against_oracles(layer, (*lead, n_in), math.prod(lead) * n_in * n_out)


# --- receptive field --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One sliding-window layer of a receptive-field chain (2-D, one channel)."""

    kind: str  # "conv", "max" or "avg"
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]

    def layer(self) -> nn.Module:
        """The real layer nbcount counts."""
        if self.kind == "conv":
            return nn.Conv2d(1, 1, self.kernel, self.stride, self.padding, self.dilation)
        if self.kind == "max":
            return nn.MaxPool2d(self.kernel, self.stride, self.padding, self.dilation)
        return nn.AvgPool2d(self.kernel, self.stride, self.padding)

    def linearised(self) -> nn.Module:
        """A ones-kernel convolution with the same window: positive, so no gradient cancels."""
        conv = nn.Conv2d(1, 1, self.kernel, self.stride, self.padding, self.dilation, bias=False)
        nn.init.ones_(conv.weight)
        return conv


@st.composite
def windows(draw: st.DrawFn) -> Window:
    """A conv, max-pool (dilated) or avg-pool window with padding at most half its span."""
    kind = draw(st.sampled_from(["conv", "max", "avg"]))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (1, 1) if kind == "avg" else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = tuple(draw(st.integers(0, (d * (k - 1) + 1) // 2 if kind == "conv" else k // 2))
                    for k, d in zip(kernel, dilation))
    return Window(kind, kernel, stride, padding, dilation)  # type: ignore[arg-type]


def gradient_support(chain: list[Window], size: int) -> tuple[int, int] | None:
    """Extent per axis of the input pixels that reach the centre output unit (None if it touches a border)."""
    net = nn.Sequential(*[w.linearised() for w in chain])
    x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    y = net.double()(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    extents = []
    for axis in (0, 1):
        hit = x.grad[0, 0].abs().sum(dim=1 - axis).nonzero().flatten()
        lo, hi = int(hit.min()), int(hit.max())
        if lo == 0 or hi == size - 1:
            return None
        extents.append(hi - lo + 1)
    return extents[0], extents[1]


def analytic_field(chain: list[Window]) -> tuple[int, int]:
    """r' = r + (k − 1)·d·j, j' = j·s per axis."""
    field = []
    for axis in (0, 1):
        r, j = 1, 1
        for w in chain:
            r, j = r + (w.kernel[axis] - 1) * w.dilation[axis] * j, j * w.stride[axis]
        field.append(r)
    return field[0], field[1]


@FUZZ
@given(st.lists(windows(), min_size=1, max_size=3))
def test_receptive_field(chain: list[Window]) -> None:
    """nbcount's receptive field of the last layer = the gradient support of one output unit."""
    pytest.importorskip("nbcount.receptive", reason="nbcount.receptive is not written yet")
    size = 4 * max(analytic_field(chain)) + 24
    support = gradient_support(chain, size)
    assume(support is not None)
    assert support == analytic_field(chain)
    report = count(nn.Sequential(*[w.layer() for w in chain]), (1, 1, size, size))
    field = report.receptive_field[len(report.rows) - 1]
    assert tuple(axis.size for axis in field.axes) == support
