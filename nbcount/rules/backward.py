"""Backward-pass ops: the gradient kernels autograd runs (convolution_backward, norm, activation, attention).

Labels mark which gradient a step computes: ``∂x`` the layer's input, ``∂W`` / ``∂b`` / ``∂γ`` / ``∂β``
its parameters; ``step_part`` reads them so one op that returns both (convolution_backward) is split.
A convolution's ∂x and ∂W each cost exactly its forward MACs (a transposed convolution and a
convolution of the input with ∂y); matmul gradients are plain mm / bmm ops with their own rules.
"""

from __future__ import annotations

from nbcount.derive import Step, step
from nbcount.rules import Cost, ignore, op_rule
from nbcount.types import OpEvent, Term

_MAC = Term.MAC.value
_WEIGHT_MARKS = ("∂W", "∂b", "∂γ", "∂β")


def step_part(label: str) -> str | None:
    """'weight' or 'input' when a step's label names the gradient it computes, else None."""
    if any(mark in label for mark in _WEIGHT_MARKS):
        return "weight"
    return "input" if "∂x" in label else None


def _mask(op: OpEvent, index: int, size: int) -> tuple[bool, ...]:
    mask = op.arg(index, "output_mask")
    return tuple(bool(m) for m in mask) if mask is not None else (True,) * size


@op_rule("aten.convolution_backward")
def convolution_backward(op: OpEvent) -> Cost:
    """∂x MACs = ∂W MACs = the forward MACs N·C_out·∏out·(C_in/g·∏K); ∂b = N·C_out·∏out sums."""
    dy, x, w = op.args[0], op.args[1], op.args[2]
    transposed, groups = bool(op.args[7]), int(op.args[9])
    mask = _mask(op, 10, 3)
    kernel = {f"K_{i}": k for i, k in enumerate(w.shape[2:])}
    if transposed:  # forward MACs of a transposed conv: N·C_in·∏in·(C_out/g·∏K)
        spatial = {f"S_{i}": s for i, s in enumerate(x.shape[2:])}
        symbols = {"N": x.shape[0], "C_in": x.shape[1], "C_out": dy.shape[1], "g": groups, **spatial, **kernel}
        formula = f"N*C_in*{'*'.join(spatial) or '1'}*(C_out/g*{'*'.join(kernel) or '1'})"
    else:
        spatial = {f"S_{i}": s for i, s in enumerate(dy.shape[2:])}
        symbols = {"N": dy.shape[0], "C_out": dy.shape[1], "C_in": x.shape[1], "g": groups, **spatial, **kernel}
        formula = f"N*C_out*{'*'.join(spatial) or '1'}*(C_in/g*{'*'.join(kernel) or '1'})"
    steps = []
    if mask[0]:
        steps.append(step("MACs ∂x", formula, term=_MAC, note="transposed convolution of ∂y with W", **symbols))
    if mask[1]:
        steps.append(step("MACs ∂W", formula, term=_MAC, note="convolution of x with ∂y", **symbols))
    if mask[2]:
        out = {f"S_{i}": s for i, s in enumerate(dy.shape[2:])}
        steps.append(step("∂b sums", f"N*C_out*{'*'.join(out) or '1'}", term=Term.REDUCTION.value,
                          N=dy.shape[0], C_out=dy.shape[1], **out))
    return tuple(steps)


def _norm_backward(n: int, mask: tuple[bool, ...], batch_stats: bool, scale_by_gamma: bool) -> Cost:
    norm = Term.NORM.value
    steps = []
    if mask[0]:
        if batch_stats:
            steps.append(step("∂x normalisation", "8*n", term=norm, n=n,
                              note="x̂ (2), Σ∂y and Σ∂y·x̂ (3), ∂y − mean(∂y) − x̂·mean(∂y·x̂) scaled by 1/σ (3)"))
        else:
            steps.append(step("∂x normalisation", "n", term=norm, n=n, note="∂y·γ/σ, one folded scale per channel"))
        if scale_by_gamma:
            steps.append(step("∂x times γ", "n", term=norm, n=n))
    if len(mask) > 1 and mask[1]:
        steps.append(step("∂γ = Σ ∂y·x̂", "2*n", term=norm, n=n))
    if len(mask) > 2 and mask[2]:
        steps.append(step("∂β = Σ ∂y", "n", term=norm, n=n))
    return tuple(steps)


@op_rule("aten.native_batch_norm_backward")
def batch_norm_backward(op: OpEvent) -> Cost:
    """Batch statistics: ∂x 8·n; running statistics: ∂x n; ∂γ 2·n; ∂β n (n input elements)."""
    return _norm_backward(op.args[1].numel, _mask(op, 9, 3), bool(op.arg(7, "train", True)), False)


@op_rule("aten.native_layer_norm_backward")
def layer_norm_backward(op: OpEvent) -> Cost:
    """∂x 8·n (+ n for ∂y·γ when affine); ∂γ 2·n; ∂β n (n input elements)."""
    return _norm_backward(op.args[1].numel, _mask(op, 7, 3), True, op.arg(5, "weight") is not None)


@op_rule("aten.native_group_norm_backward")
def group_norm_backward(op: OpEvent) -> Cost:
    """∂x 8·n (+ n for ∂y·γ when affine); ∂γ 2·n; ∂β n (n input elements)."""
    return _norm_backward(op.args[1].numel, _mask(op, 9, 3), True, op.arg(4, "weight") is not None)


@op_rule("aten._fused_rms_norm_backward")
def rms_norm_backward(op: OpEvent) -> Cost:
    """RMSNorm: ∂x 5·n (x̂, Σ∂y·x̂, combine and scale) + n for γ; ∂γ 2·n."""
    n, mask = op.args[1].numel, _mask(op, 5, 2)
    steps = []
    if mask[0]:
        steps.append(step("∂x normalisation (RMS)", "5*n", term=Term.NORM.value, n=n))
        if op.arg(4, "weight") is not None:
            steps.append(step("∂x times γ", "n", term=Term.NORM.value, n=n))
    if mask[1]:
        steps.append(step("∂γ = Σ ∂y·x̂", "2*n", term=Term.NORM.value, n=n))
    return tuple(steps)


@op_rule("aten._softmax_backward_data")
def softmax_backward(op: OpEvent) -> Cost:
    """∂x = y·(∂y − Σ ∂y·y): multiply, sum, subtract, multiply = 4 ops per element."""
    return (step("softmax ∂x ops", "4*n", term=Term.SOFTMAX.value, n=op.args[0].numel),)


@op_rule("aten._log_softmax_backward_data")
def log_softmax_backward(op: OpEvent) -> Cost:
    """∂x = ∂y − exp(y)·Σ ∂y: sum, exp, multiply, subtract = 4 ops per element."""
    return (step("log-softmax ∂x ops", "4*n", term=Term.SOFTMAX.value, n=op.args[0].numel),)


_ACTIVATION_BACKWARD = {
    "aten.threshold_backward": (1, "∂y where x > 0"), "aten.hardtanh_backward": (1, "∂y inside the range"),
    "aten.leaky_relu_backward": (1, "∂y or slope·∂y"), "aten.hardsigmoid_backward": (1, "∂y/6 inside the range"),
    "aten.hardshrink_backward": (1, "∂y outside ±λ"), "aten.softshrink_backward": (1, "∂y outside ±λ"),
    "aten.rrelu_with_noise_backward": (1, "∂y·noise"), "aten.native_dropout_backward": (1, "∂y·mask·scale"),
    "aten.elu_backward": (2, "∂y·(y + α) for x < 0"), "aten.hardswish_backward": (3, "∂y·(2x + 3)/6"),
    "aten.sigmoid_backward": (3, "∂y·y·(1 − y)"), "aten.tanh_backward": (3, "∂y·(1 − y²)"),
    "aten.softplus_backward": (4, "∂y·σ(βx)"), "aten.log_sigmoid_backward": (4, "∂y·σ(−x)"),
    "aten.silu_backward": (6, "∂y·σ(x)·(1 + x·(1 − σ(x)))"),
    "aten.gelu_backward": (8, "∂y·(Φ(x) + x·φ(x)): Φ 3, φ 3, combine 2"),
    "aten.mish_backward": (8, "∂y·(tanh(sp) + x·σ(x)·sech²(sp))"),
}


def _activation_backward(ops: int, what: str) -> object:
    def rule(op: OpEvent) -> Cost:
        term = Term.ELEMENTWISE if op.op == "aten.native_dropout_backward" else Term.ACTIVATION
        if ops == 1:
            return (step("∂x ops", "n", term=term.value, n=op.args[0].numel, note=what),)
        return (step("∂x ops", f"{ops}*n", term=term.value, n=op.args[0].numel, note=what),)

    rule.__doc__ = f"{what}: {ops} op(s) per element"
    return rule


for _name, (_ops, _what) in _ACTIVATION_BACKWARD.items():
    op_rule(_name)(_activation_backward(_ops, _what))  # type: ignore[arg-type]


@op_rule("aten.glu_backward")
def glu_backward(op: OpEvent) -> Cost:
    """GLU a·σ(b): ∂a = ∂y·σ(b) (1), ∂b = ∂y·a·σ(b)·(1 − σ(b)) (4) per output element."""
    return (step("∂x ops", "5*n", term=Term.ACTIVATION.value, n=op.args[0].numel),)


@op_rule("aten._prelu_kernel_backward")
def prelu_backward(op: OpEvent) -> Cost:
    """∂x = ∂y or a·∂y: n; ∂W = Σ ∂y·x over negative inputs: 2·n."""
    n = op.args[0].numel
    return (step("∂x ops", "n", term=Term.ACTIVATION.value, n=n),
            step("∂W = Σ ∂y·x", "2*n", term=Term.ACTIVATION.value, n=n))


@op_rule("aten.max_pool2d_with_indices_backward", "aten.max_pool3d_with_indices_backward",
         "aten.adaptive_max_pool2d_backward", "aten.adaptive_max_pool3d_backward")
def max_pool_backward(op: OpEvent) -> Cost:
    """Each ∂y element is added to the input position that was the max: n_out adds."""
    return (step("∂x adds", "n_out", term=Term.POOL.value, n_out=op.args[0].numel),)


@op_rule("aten.avg_pool2d_backward", "aten.avg_pool3d_backward")
def avg_pool_backward(op: OpEvent) -> Cost:
    """Each ∂y element is divided once and added to ∏K inputs: n_out·(∏K + 1)."""
    ks = op.arg(2, "kernel_size")
    kernel = {f"K_{i}": k for i, k in enumerate(ks)}
    return (step("∂x ops", f"n_out*({'*'.join(kernel)} + 1)", term=Term.POOL.value, n_out=op.args[0].numel,
                 **kernel),)


@op_rule("aten._adaptive_avg_pool2d_backward", "aten._adaptive_avg_pool3d_backward")
def adaptive_avg_pool_backward(op: OpEvent) -> Cost:
    """The mirror of the forward: n_out divisions and n_in adds."""
    return (step("∂x ops", "n_in + n_out", term=Term.POOL.value, n_in=op.args[1].numel, n_out=op.args[0].numel),)


@op_rule("aten.embedding_dense_backward")
def embedding_backward(op: OpEvent) -> Cost:
    """∂W: each ∂y row is added into the row of its token: n adds (n = ∂y elements)."""
    return (step("∂W scatter adds", "n", term=Term.ELEMENTWISE.value, n=op.args[0].numel),)


@op_rule("aten.upsample_nearest1d_backward", "aten.upsample_nearest2d_backward", "aten.upsample_nearest3d_backward")
def upsample_nearest_backward(op: OpEvent) -> Cost:
    """Each ∂y element is added to its source: n_out adds."""
    return (step("∂x adds", "n_out", term=Term.INTERPOLATE.value, n_out=op.args[0].numel),)


@op_rule("aten.upsample_linear1d_backward", "aten.upsample_bilinear2d_backward", "aten.upsample_trilinear3d_backward")
def upsample_linear_backward(op: OpEvent) -> Cost:
    """Each ∂y element is weighted and added to its P = 2^axes sources: 2·P·n_out."""
    axes = len(op.args[0].shape) - 2
    return (step("∂x ops", "2*P*n_out", term=Term.INTERPOLATE.value, P=2**axes, n_out=op.args[0].numel),)


def _attention_backward_core(b: int, h: int, lq: int, s: int, e: int, ev: int) -> list[Step]:
    return [
        step("MACs recompute q·kᵀ", "B*H*L*S*E", term=_MAC, B=b, H=h, L=lq, S=s, E=e,
             note="fused kernels keep only the log-sum-exp, not the probabilities"),
        step("recompute p", "2*B*H*L*S", term=Term.SOFTMAX.value, B=b, H=h, L=lq, S=s, note="subtract, exp"),
        step("MACs ∂x: ∂p = ∂o·vᵀ", "B*H*L*S*E_v", term=_MAC, B=b, H=h, L=lq, S=s, E_v=ev),
        step("MACs ∂x: ∂v = pᵀ·∂o", "B*H*L*S*E_v", term=_MAC, B=b, H=h, L=lq, S=s, E_v=ev),
        step("∂x: ∂s = p·(∂p − rowsum(∂o·o))", "2*B*H*L*E_v + 2*B*H*L*S", term=Term.SOFTMAX.value,
             B=b, H=h, L=lq, S=s, E_v=ev),
        step("MACs ∂x: ∂q = ∂s·k", "B*H*L*S*E", term=_MAC, B=b, H=h, L=lq, S=s, E=e),
        step("MACs ∂x: ∂k = ∂sᵀ·q", "B*H*L*S*E", term=_MAC, B=b, H=h, L=lq, S=s, E=e),
    ]


@op_rule("aten._scaled_dot_product_flash_attention_for_cpu_backward",
         "aten._scaled_dot_product_flash_attention_backward", "aten._scaled_dot_product_efficient_attention_backward",
         "aten._scaled_dot_product_cudnn_attention_backward",
         "aten._scaled_dot_product_fused_attention_overrideable_backward")
def sdpa_backward(op: OpEvent) -> Cost:
    """5 matmuls (q·kᵀ recomputed, ∂p, ∂v, ∂q, ∂k): MACs = 3·B·H·L·S·E + 2·B·H·L·S·E_v, as FlopCounterMode."""
    q, k, v = op.args[1], op.args[2], op.args[3]
    *batch, h, lq, e = q.shape
    b = 1
    for d in batch:
        b *= d
    return tuple(_attention_backward_core(b, h, lq, k.shape[-2], e, v.shape[-1]))


ignore("gradient of a view or selection: copies ∂y into zeros, no arithmetic",
       "aten.select_backward", "aten.diagonal_backward")
