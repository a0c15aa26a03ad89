"""Issue 12's op cases, each against an independent oracle: no false lower bound, nothing silently zero, module
rules only for the library's own forward, invalid calls refused as a real forward refuses them."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import corpus  # noqa: E402  (tests/ is on sys.path under pytest)
import oracles  # noqa: E402  (tests/ is on sys.path under pytest)
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import nbcount
from nbcount.rules import vision
from nbcount.types import OpEvent, TensorMeta


def meta_flop_counter_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FlopCounterMode on a meta copy: its mm / bmm / conv formulas, no arithmetic run."""
    return oracles.torch_macs(model, inputs, meta=True)


class Fn(nn.Module):
    def __init__(self, fn: Callable[..., torch.Tensor], *layers: nn.Module):
        super().__init__()
        self.fn, self.layers = fn, nn.ModuleList(layers)

    def forward(self, *x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, *x)


# --- item 4: ops that do no arithmetic are not a lower bound ------------------------------------------------------
def test_channels_last_adaptive_pool_is_complete() -> None:
    model, x = corpus.channels_last_cnn()
    report = nbcount.count(model, inputs=x)
    assert any(op.op == "aten.as_strided_" for r in report.rows for op in r.call.ops)
    assert report.status == "complete"
    assert report.total_macs == meta_flop_counter_macs(model, x)


def test_weight_norm_masked_scatter_all_true_and_aminmax_are_counted() -> None:
    linear = nn.utils.parametrizations.weight_norm(nn.Linear(6, 4))

    def forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        y = self.layers[0](x)
        torch.ops.aten._is_all_true(y > -1e9)
        low, high = torch.aminmax(y)
        return y.masked_scatter(y > 0, torch.zeros_like(y)) + low + high

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = nbcount.count(Fn(forward, linear), (3, 6), execution="real")
    ran = {op.op for r in report.rows for op in r.call.ops}
    assert {"aten._weight_norm_interface", "aten.masked_scatter", "aten._is_all_true", "aten.aminmax"} <= ran
    assert report.status == "complete"
    assert report.total_macs == 3 * 6 * 4
    aminmax = [s for r in report.rows for op, cost in r.costs if op == "aten.aminmax" for s in cost]
    assert [s.value for s in aminmax] == [2 * 3 * 4]  # a min and a max comparison per element
    norm = [s for r in report.rows for op, cost in r.costs if op == "aten._weight_norm_interface" for s in cost]
    assert [s.value for s in norm] == [3 * 6 * 4 + 2 * 4]  # square-accumulate and scale 4×6, sqrt + divide per row


def test_language_model_with_labels_counts_its_loss() -> None:
    pytest.importorskip("transformers")
    model, inputs = corpus.gpt2_lm()
    report = nbcount.count(model, inputs=inputs)
    assert report.status == "complete"
    loss = [s for r in report.rows for op, cost in r.costs if op == "aten.nll_loss_forward" for s in cost]
    tokens = inputs["labels"].numel()  # transformers shifts the labels and pads the last with ignore_index
    assert [s.value for s in loss] == [tokens, 1]  # mean: one add per target (dense), one divide
    model.set_attn_implementation("eager")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(**inputs)
    assert report.total_macs == counter.get_total_flops() // 2


# --- item 5: accumulating ops are never silently zero ------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag_adds_its_rows(mode: str) -> None:
    bag, dim, ids, bags = nn.EmbeddingBag(20, 8, mode=mode), 8, 12, 3
    tokens = torch.randint(0, 20, (bags, ids // bags))
    report = nbcount.count(bag, inputs=tokens)
    expected = (ids - bags) * dim + (bags * dim if mode == "mean" else 0)
    assert report.status == "complete" and report.breakdown == {"reduction": expected}


def test_fold_index_put_scatter_add_and_polar_do_arithmetic() -> None:
    def forward(self: nn.Module, cols: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        folded = F.fold(cols, output_size=(4, 4), kernel_size=2)  # cols (1, 4·2·2, 9): 144 elements added in
        acc = torch.zeros(5, 3).index_put_((torch.tensor([0, 1, 1]),), x, accumulate=True)  # 3 rows of 3 added
        scat = torch.zeros(5, 3).scatter_(0, torch.zeros(2, 3, dtype=torch.long), x[:2], reduce="add")  # 6 adds
        angle = torch.polar(x.abs(), x)  # 9 elements: cos, sin, 2 multiplies
        return folded.sum() + acc.sum() + scat.sum() + angle.real.sum()

    report = nbcount.count(Fn(forward), inputs=(torch.randn(1, 16, 9), torch.randn(3, 3)))
    costs = {op: sum(s.value for s in cost) for r in report.rows for op, cost in r.costs}
    assert report.status == "complete"
    assert costs["aten.col2im"] == 16 * 9
    assert costs["aten.index_put_"] == 3 * 3
    assert costs["aten.scatter_"] == 2 * 3
    assert costs["aten.polar"] == 4 * 9


def _event(name: str, args: tuple, out: tuple[int, ...]) -> OpEvent:
    return OpEvent(name, args, (), (TensorMeta(out, "float32", 4, 99),))


def _t(*shape: int) -> TensorMeta:
    return TensorMeta(shape, "float32", 4, hash(shape) % 1000)


def test_torchvision_op_rules_by_arithmetic() -> None:
    """The rules registered when torchvision is importable, on events of its documented schemas."""
    n = 10
    nms = vision.nms(_event("torchvision.nms", (_t(n, 4), _t(n), 0.5), (n,)))
    assert sum(s.value for s in nms) == 3 * n + 12 * n * (n - 1) // 2
    k, c, ph, pw, s = 4, 8, 7, 7, 2
    roi = vision.roi_align(_event("torchvision.roi_align", (_t(2, c, 32, 32), _t(k, 5), 0.25, ph, pw, s, True),
                                  (k, c, ph, pw)))
    assert sum(x.value for x in roi) == k * c * ph * pw * (7 * s * s + 1)
    x, w = _t(1, 8, 12, 12), _t(16, 8, 3, 3)
    deform = vision.deform_conv2d(_event("torchvision.deform_conv2d", (x, w, _t(1, 18, 10, 10), _t(1, 9, 10, 10),
                                                                       _t(16), 1, 1, 0, 0, 1, 1, 1, 1, True),
                                         (1, 16, 10, 10)))
    macs = 16 * 10 * 10 * 8 * 3 * 3
    assert [s.value for s in deform] == [macs, 8 * 8 * 3 * 3 * 10 * 10, 16 * 10 * 10]


def test_torchvision_ops_when_importable() -> None:
    ops = pytest.importorskip("torchvision.ops")
    layer = ops.DeformConv2d(8, 16, 3)
    offset = torch.randn(1, 18, 10, 10)
    report = nbcount.count(Fn(lambda self, x, o: self.layers[0](x, o), layer), inputs=(torch.randn(1, 8, 12, 12),
                                                                                         offset))
    assert report.status == "complete" and report.total_macs == 16 * 10 * 10 * 8 * 3 * 3


# --- item 6: module rules for the library's own forward only; roots, inference mode, quantized layers -------------
class LSTMPlus(nn.LSTM):
    """An LSTM subclass whose forward adds a matmul: the LSTM rule must not swallow it."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, object]:  # type: ignore[override]
        y, state = super().forward(x)
        return y @ torch.ones(self.hidden_size, self.hidden_size), state


@pytest.mark.parametrize("execution", ["auto", "real"])
def test_subclass_overriding_forward_is_counted_op_by_op(execution: str) -> None:
    model, x = LSTMPlus(4, 8, batch_first=True), torch.randn(2, 5, 4)
    report = nbcount.count(model, inputs=x, execution=execution)
    assert report.status == "complete"
    assert report.total_macs == meta_flop_counter_macs(model, x) == 2 * 5 * 4 * 8 * (4 + 8) + 2 * 5 * 8 * 8


class CallRoot(nn.Module):
    """A root that overrides __call__: hooks never see it, its own ops must still be counted."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.lin(x) @ torch.ones(4, 4)


def test_root_overriding_call_keeps_its_own_ops() -> None:
    model, x = CallRoot(), torch.randn(2, 4)
    report = nbcount.count(model, inputs=x)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    assert report.total_macs == counter.get_total_flops() // 2 == 2 * 4 * 4 * 2
    assert report.rows[0].macs == 2 * 4 * 4 and report.rows[0].layer == ""


def test_inference_mode_counts_the_same() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.LayerNorm(8 * 6 * 6),
                          nn.Linear(8 * 6 * 6, 5)).eval()
    plain = nbcount.count(model, (2, 3, 8, 8))
    with torch.inference_mode():
        inside = nbcount.count(model, (2, 3, 8, 8))
    assert inside.status == "complete"
    assert inside.total_macs == plain.total_macs == meta_flop_counter_macs(model, torch.randn(2, 3, 8, 8))
    assert inside.breakdown == plain.breakdown


def test_dynamically_quantized_linear_counts_its_packed_weights() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2)),
                                                       {nn.Linear}, dtype=torch.qint8)
        report = nbcount.count(model, (3, 6))
    assert report.total_params == (6 * 4 + 4) + (4 * 2 + 2)
    assert report.total_macs == 3 * 6 * 4 + 3 * 4 * 2
    assert report.status == "complete"
    weight = [p for p in report.trace.registered_params if p.name.endswith("weight")][0]
    assert weight.nbytes == weight.numel  # int8: one byte per element


# --- item 7: invalid calls refused exactly as a real forward refuses them -----------------------------------------
INVALID = {
    "bf16 Linear fed float32": (lambda: nn.Linear(4, 3).to(torch.bfloat16), lambda: torch.randn(2, 4)),
    "Linear fed bool": (lambda: nn.Linear(4, 3), lambda: torch.ones(2, 4, dtype=torch.bool)),
    "float64 Linear fed float32": (lambda: nn.Linear(4, 3).double(), lambda: torch.randn(2, 5, 4)),
    "Embedding(10) fed 12": (lambda: nn.Embedding(10, 4), lambda: torch.tensor([[1, 12]])),
    "Embedding(10) fed -3": (lambda: nn.Embedding(10, 4), lambda: torch.tensor([[1, -3]])),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_calls_are_refused_as_a_real_forward_refuses_them(case: str) -> None:
    build, make = INVALID[case]
    model, x = build(), make()
    with pytest.raises(Exception) as real:
        model(x)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(nbcount.CountError) as counted:
        nbcount.count(model, inputs=x)
    cause = counted.value.cause
    assert type(cause) is type(real.value) and str(cause) == str(real.value)
    assert counted.value.report is not None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_valid_integer_ids_still_count_without_data() -> None:
    report = nbcount.count(nn.Embedding(10, 4), inputs=torch.tensor([[0, 9]]))
    assert report.trace.execution == "fake" and report.status == "complete"
