"""Training costs against FlopCounterMode, saved_tensors_hooks measurements and hand arithmetic."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import nbcount
from nbcount import zoo


def _flop_counter_training(model: nn.Module, x: torch.Tensor) -> int:
    """FlopCounterMode's total around forward + sum-loss backward (2 FLOPs per MAC)."""
    counter = FlopCounterMode(display=False)
    with counter:
        model(x).sum().backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def _saved_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Independent measurement: bytes of the distinct storages autograd saves, weights and buffers excluded."""
    weights = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(saved.values())


def _tiny_gpt2() -> nn.Module:
    return zoo.gpt2(n_layer=2, n_embd=64, n_head=4, vocab=100, n_positions=64)


# --- totals against FlopCounterMode ------------------------------------------------------------

@pytest.mark.parametrize("device, build, size", [("cpu", zoo.lenet, (2, 1, 28, 28)),
                                                 ("meta", zoo.resnet18, (2, 3, 64, 64))])
def test_cnn_forward_plus_backward_macs_equal_half_flop_counter(device: str, build: object, size: tuple) -> None:
    torch.manual_seed(0)
    with torch.device(device):
        model, x = build(), torch.randn(size)  # type: ignore[operator]
    report = nbcount.count(model, inputs=x, training=True)
    assert report.trace.execution == ("fake" if device == "cpu" else "meta")
    total = _flop_counter_training(model, x)
    assert report.forward_macs + report.backward_macs == total // 2
    assert report.training.flops("torch") == total  # the FlopCounterMode convention, backward included
    assert report.training.status == "complete"


@pytest.mark.parametrize("build", [_tiny_gpt2, zoo.llama_tiny])
def test_transformer_on_meta_equals_half_flop_counter(build: object) -> None:
    with torch.device("meta"):
        model = build()  # type: ignore[operator]
    x = torch.zeros(2, 16, dtype=torch.long, device="meta")
    report = nbcount.count(model, inputs=x, training=True)
    assert report.trace.execution == "meta"
    total = _flop_counter_training(model, x)
    assert report.forward_macs + report.backward_macs == total // 2
    assert report.training.flops("torch") == total


def test_frozen_backbone_counts_only_the_head_and_matches_flop_counter() -> None:
    with torch.device("meta"):
        model, x = zoo.resnet18(), torch.zeros(2, 3, 64, 64)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("fc."))
    report = nbcount.count(model, inputs=x, training=True)
    batch, features, classes = 2, 512, 1000
    assert report.training.weight_macs == batch * features * classes  # ∂W of the head only
    assert report.training.input_macs == 0  # nothing before the head wants a gradient
    assert report.forward_macs + report.backward_macs == _flop_counter_training(model, x) // 2


def test_first_and_frozen_middle_layers_follow_the_rule_by_hand() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1),
                          nn.Conv2d(16, 4, 3, padding=1))
    model[1].requires_grad_(False)
    n, h, w = 2, 10, 10
    f0, f1, f2 = (n * 8 * h * w * 3 * 9, n * 16 * h * w * 8 * 9, n * 4 * h * w * 16 * 9)
    report = nbcount.count(model, (n, 3, h, w), training=True)
    table = report.training.table.set_index("layer")
    assert report.forward_macs == f0 + f1 + f2
    assert list(table.loc[["0", "1", "2"], "backward_input_macs"]) == [0, f1, f2]  # first layer: no ∂x
    assert list(table.loc[["0", "1", "2"], "backward_weight_macs"]) == [f0, 0, f2]  # frozen: no ∂W
    assert report.backward_macs == 2 * (f0 + f1 + f2) - f0 - f1
    steps = {s.label: s.value for s in report.training.explain().steps}
    assert steps["∂x not needed"] == f0 and steps["∂W not needed (frozen)"] == f1
    assert steps["other"] == 0


def test_input_that_requires_grad_gets_its_input_gradient() -> None:
    model = nn.Linear(8, 4)
    plain = nbcount.count(model, (3, 8), training=True)
    wanted = nbcount.count(model, inputs=torch.randn(3, 8, requires_grad=True), training=True)
    assert plain.backward_macs == 3 * 8 * 4  # ∂W only
    assert wanted.backward_macs == 2 * 3 * 8 * 4  # ∂W and ∂x
    assert plain.training.table.iloc[0]["backward_weight_macs"] == 3 * 8 * 4


def test_transformer_split_into_input_and_weight_gradients() -> None:
    b, t, d, layers, heads, vocab = 2, 16, 64, 2, 4, 100
    report = nbcount.count(_tiny_gpt2(), (b, t), dtype=torch.long, training=True)
    attention = layers * 2 * b * heads * t * t * (d // heads)  # q·kᵀ and p·v of every layer
    weights = b * t * (layers * 12 * d * d + d * vocab)  # qkv 3d², proj d², mlp 8d², tied head d·V
    assert report.forward_macs == weights + attention
    assert report.training.weight_macs == weights  # every weight once more for ∂W
    recompute = layers * b * heads * t * t * (d // heads)  # the CPU flash kernel recomputes q·kᵀ
    assert report.training.input_macs == weights + 2 * attention + recompute


def test_depthwise_and_transposed_convolution_gradients_equal_forward() -> None:
    model = nn.Sequential(nn.Conv2d(8, 8, 3, groups=8, padding=1), nn.ConvTranspose2d(8, 4, 2, stride=2))
    x = torch.randn(1, 8, 6, 6, requires_grad=True)
    report = nbcount.count(model, inputs=x, training=True)
    depthwise, transposed = 1 * 8 * 6 * 6 * (8 // 8) * 9, 1 * 8 * 6 * 6 * 4 * 4
    table = report.training.table.set_index("layer")
    assert list(table.loc[["0", "1"], "forward_macs"]) == [depthwise, transposed]
    assert list(table.loc[["0", "1"], "backward_input_macs"]) == [depthwise, transposed]
    assert list(table.loc[["0", "1"], "backward_weight_macs"]) == [depthwise, transposed]


# --- saved activations ----------------------------------------------------------------------------

@pytest.mark.parametrize("build, x", [(zoo.resnet18, torch.randn(2, 3, 32, 32)),
                                      (_tiny_gpt2, torch.randint(0, 100, (2, 16))),
                                      (zoo.llama_tiny, torch.randint(0, 256, (2, 16)))])
def test_saved_activation_bytes_equal_saved_tensors_hooks(build: object, x: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = build().train()  # type: ignore[operator]
    report = nbcount.count(model, inputs=x, training=True, mode="same")
    assert report.trace.execution == "fake"  # counted without data, measured with it
    assert report.training.saved_bytes == _saved_bytes(model, x)


def test_saved_activations_per_layer_by_hand() -> None:
    b = 5
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    report = nbcount.count(model, (b, 8), training=True)
    saved = report.training.table.set_index("layer")["saved_bytes"]
    assert saved["0"] == b * 8 * 4  # the input, for ∂W of the first Linear (its weight is not an activation)
    assert saved["1"] == b * 16 * 4  # ReLU's output: the mask of its gradient, reused by the second Linear's ∂W
    assert saved["2"] == 0
    assert report.training.saved_bytes == b * (8 + 16) * 4


# --- the model is left as it was -------------------------------------------------------------------

def test_training_count_leaves_gradients_and_flags_untouched() -> None:
    model = zoo.resnet18().eval()
    model.layer1.requires_grad_(False)
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    nbcount.count(model, (2, 3, 32, 32), training=True)
    assert all(p.grad is None for p in model.parameters())
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    assert not model.training and torch.is_grad_enabled()


def test_loss_fn_is_counted_apart_from_the_model() -> None:
    model = nn.Linear(8, 4)
    target = torch.randint(0, 4, (3,))
    summed = nbcount.count(model, (3, 8), training=True)
    crossed = nbcount.count(model, (3, 8), training=True, loss_fn=lambda y: F.cross_entropy(y, target))
    assert crossed.backward_macs == summed.backward_macs == 3 * 8 * 4
    loss = crossed.training.table.set_index("layer").loc["(loss)"]
    assert loss["backward_flops"] > 0  # log-softmax backward, outside the model
    classes, batch = 4, 3
    assert crossed.training.loss_flops() > summed.training.loss_flops() >= batch * classes  # a sum reads each once
    assert crossed.training.flops() == summed.training.flops()  # the model's step, the loss excluded


def test_forward_only_report_has_no_backward() -> None:
    report = nbcount.count(nn.Linear(4, 2), (1, 4))
    assert report.backward_macs is None
    assert report.training is None and not hasattr(report.trace, "backward")  # hasattr() works: nothing raises


def test_training_flops_under_every_convention() -> None:
    report = nbcount.count(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)), (2, 8), training=True)
    frame = report.training.by_convention().set_index("convention")
    assert frame.loc["macs", "training_step"] == report.forward_macs + report.backward_macs
    assert frame.loc["nbcount", "forward"] == report.total_flops
    assert report.training.flops("macs") == frame.loc["macs", "training_step"]
    calflops = report.recount("calflops").total_flops  # calflops: fwd+bwd = fwd·(1 + 2)
    assert frame.loc["calflops", "training_step"] == 3 * calflops
    assert report.training.flops("thop") is None  # thop counts the forward pass only


# --- the 6·N·D rule ------------------------------------------------------------------------------

def test_six_n_from_the_counted_model() -> None:
    b, t, d, layers, vocab = 1, 32, 64, 2, 100
    with torch.device("meta"):
        model = _tiny_gpt2()
    report = nbcount.count(model, (b, t), dtype=torch.long, training=True)
    steps = {s.label: s.value for s in report.training.six_nd().steps}
    matmul_weights = layers * 12 * d * d + d * vocab  # weights used once per token (tied head included)
    assert steps["weights used per token N_matmul"] == matmul_weights
    assert steps["weight products per token"] == 6 * matmul_weights
    assert steps["attention per token"] == 6 * layers * 2 * t * d  # q·kᵀ and p·v, forward + 2× backward
    assert steps["6·N"] == 6 * report.total_params
    assert steps["training FLOPs per token"] == 6 * matmul_weights + 6 * layers * 2 * t * d


# --- training memory -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def llama_7b_report() -> nbcount.Report:
    with torch.device("meta"):
        model = zoo.llama_7b()
    return nbcount.count(model, (1, 8), dtype=torch.long)


def test_adam_mixed_precision_is_16_bytes_per_parameter(llama_7b_report: nbcount.Report) -> None:
    n = 6_738_415_616
    mem = llama_7b_report.training_memory("adam", "mixed")
    assert mem["bytes_per_param"] == 2 + 2 + 4 + 4 + 4 == 16
    assert (mem["parameters"], mem["gradients"], mem["master_weights"], mem["optimizer_state"]) == \
        (2 * n, 2 * n, 4 * n, 8 * n)
    assert mem["total"] == 16 * n and mem["activations"] is None
    assert mem.derivation.value == mem["total"]


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_zero_stages_divide_states_then_gradients_then_parameters(stage: int, llama_7b_report: nbcount.Report) -> None:
    n, s = 6_738_415_616, 8
    mem = llama_7b_report.training_memory("adamw", "mixed", shards=s, zero_stage=stage)
    assert mem["optimizer_state"] == 8 * n // s and mem["master_weights"] == 4 * n // s
    assert mem["gradients"] == (2 * n // s if stage >= 2 else 2 * n)
    assert mem["parameters"] == (2 * n // s if stage == 3 else 2 * n)
    assert mem["total"] == sum(mem[k] for k in ("parameters", "gradients", "master_weights", "optimizer_state"))


def test_optimizers_precisions_frozen_parameters_and_activations() -> None:
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    model[0].requires_grad_(False)
    n, n_t = 10 * 20 + 20, 20 * 5 + 5
    report = nbcount.count(model, (4, 10), training=True)
    sgd = report.training_memory("sgd", "fp32")
    assert (sgd["parameters"], sgd["gradients"], sgd["optimizer_state"]) == (4 * (n + n_t), 4 * n_t, 0)
    assert report.training_memory("sgd-momentum", "fp32")["optimizer_state"] == 4 * n_t
    assert report.training_memory("adam", "bf16")["bytes_per_param"] == 2 + 2 + 2 * 2
    saved = report.training.saved_bytes
    assert sgd["activations"] == saved == 4 * 20 * 4  # frozen first layer: only the ReLU output is saved
    assert report.training_memory("adam", "mixed")["activations"] == saved // 2
    with pytest.raises(ValueError, match="optimizer"):
        report.training_memory("lion")
