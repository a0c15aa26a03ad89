"""Matrix products: mm, addmm, bmm, baddbmm, mv, dot, grouped matmuls (mixture of experts), the bilinear form.

Their gradients are matrix products too (counted by these same rules in the backward pass).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from nbcount.derive import step
from nbcount.rules import args
from nbcount.rules.fields_layout import matmul as contract
from nbcount.rules.fields_layout import mix_all
from nbcount.rules.registry import Cost, check, expects, field_rule, kind, module_rule, op_rule, stand_in
from nbcount.types import LayerCall, OpEvent, Term

aten = torch.ops.aten

MATMUL = (aten.mm, aten.addmm, aten.bmm, aten.baddbmm, aten.mv, aten.addmv, aten.dot, aten.vdot)
GROUPED = (aten._grouped_mm, aten._scaled_grouped_mm)
LOW_PRECISION = (aten._int_mm, aten._weight_int8pack_mm, aten._weight_int4pack_mm, aten._weight_int4pack_mm_for_cpu,
                 aten._weight_int4pack_mm_with_scales_and_zeros, aten._scaled_mm, aten._scaled_mm_v2,
                 aten.mkldnn_linear, aten._mixed_dtypes_linear, aten._dyn_quant_matmul_4bit)

# (M×K)·(K×P): N is the batch in every layout, so a product's columns are P
_GEMM = {"M": "rows of the product (every leading dimension: batch × positions)",
         "K": "summed dimension (in_features of a Linear)", "P": "columns of the product (out_features of a Linear)"}
_BATCHED = {"B": "batch of matrices", "M": "rows of each product", "K": "summed dimension",
            "P": "columns of each product"}
_GROUPED = {"G": "groups (experts)", "M": "routed rows of each group", "K": "summed dimension",
            "P": "columns of each group's product"}


@op_rule(aten.mm)
def mm(op: OpEvent) -> Cost:
    """MACs = M·K·P for (M×K)·(K×P)."""
    a = args.matmul(op)
    return (step("MACs", "M*K*P", term=Term.MAC, where=_GEMM, M=a.m, K=a.k, P=a.n),)


@op_rule(aten.addmm)
def addmm(op: OpEvent) -> Cost:
    """MACs = M·K·P; bias adds = M·P (the added matrix, usually a Linear's bias)."""
    a = args.matmul(op)
    return (step("MACs", "M*K*P", term=Term.MAC, where=_GEMM, M=a.m, K=a.k, P=a.n),
            step("bias adds", "M*P", term=Term.BIAS, where=_GEMM, M=a.m, P=a.n))


@op_rule(aten.bmm)
def bmm(op: OpEvent) -> Cost:
    """MACs = B·M·K·P for a batch of B (M×K)·(K×P) products."""
    a = args.matmul(op)
    return (step("MACs", "B*M*K*P", term=Term.MAC, where=_BATCHED, B=a.batch, M=a.m, K=a.k, P=a.n),)


@op_rule(aten.baddbmm)
def baddbmm(op: OpEvent) -> Cost:
    """MACs = B·M·K·P; adds = B·M·P for the added batch of matrices."""
    a = args.matmul(op)
    return (step("MACs", "B*M*K*P", term=Term.MAC, where=_BATCHED, B=a.batch, M=a.m, K=a.k, P=a.n),
            step("adds", "B*M*P", term=Term.BIAS, where=_BATCHED, B=a.batch, M=a.m, P=a.n))


@op_rule(aten.mv)
def mv(op: OpEvent) -> Cost:
    """MACs = M·K for a (M×K) matrix times a K-vector."""
    a = args.matmul(op)
    return (step("MACs", "M*K", term=Term.MAC, where=_GEMM, M=a.m, K=a.k),)


@op_rule(aten.addmv)
def addmv(op: OpEvent) -> Cost:
    """MACs = M·K; adds = M."""
    a = args.matmul(op)
    return (step("MACs", "M*K", term=Term.MAC, where=_GEMM, M=a.m, K=a.k),
            step("adds", "M", term=Term.BIAS, where=_GEMM, M=a.m))


@op_rule(aten.dot, aten.vdot)
def dot(op: OpEvent) -> Cost:
    """MACs = K for two K-vectors."""
    return (step("MACs", "K", term=Term.MAC, where=_GEMM, K=args.matmul(op).k),)


@op_rule(aten.addbmm)
def addbmm(op: OpEvent) -> Cost:
    """Σ_b A_b·B_b + C: MACs = B·M·K·P; adds = M·P (the added matrix)."""
    b, a = op.args[1].shape[0], op.args[1].shape
    n = op.args[2].shape[-1]
    return (step("MACs", "B*M*K*P", term=Term.MAC, where=_BATCHED, B=b, M=a[1], K=a[2], P=n),
            step("adds", "M*P", term=Term.BIAS, where=_GEMM, M=a[1], P=n))


@op_rule(*LOW_PRECISION)
def low_precision_mm(op: OpEvent) -> Cost:
    """Quantized / scaled / packed-weight matmuls: MACs = n_out·K (one K-long dot product per output element)."""
    return (step("MACs", "n_out*K", term=Term.MAC, where={"n_out": "output elements", "K": "summed dimension"},
                 n_out=op.outputs[0].numel, K=op.args[0].shape[-1]),)


@op_rule(*GROUPED)
def grouped_mm(op: OpEvent) -> Cost:
    """Grouped matmul (MoE experts): MACs = M·K·P — each of the M routed rows meets exactly one group's K×P matrix.

    The split of the rows among the G groups (``offs``, the tokens each expert received) does not change the
    total, so the count is exact without the routing values: under fake or meta tensors as with real ones.
    """
    g = args.grouped_matmul(op)
    note = (f"M routed rows split among {g.groups} groups (experts) by offs: the total does not depend on the "
            "split, so it is the same with or without the routing values")
    if g.layout == "3d-3d":
        return (step("MACs", "G*M*K*P", term=Term.MAC, where=_GROUPED, G=g.groups, M=g.m, K=g.k, P=g.n, note=note),)
    return (step("MACs", "M*K*P", term=Term.MAC, where=_GEMM, M=g.m, K=g.k, P=g.n, note=note),)


@module_rule(nn.Bilinear)
def bilinear(call: LayerCall) -> Cost:
    """y_o = x1ᵀ·A_o·x2 + b_o: MACs = M·O·(I1·I2 + I1) (A_o·x2, then x1·(A_o·x2)); bias = M·O."""
    x1, x2 = call.in_tensors[0], call.in_tensors[1]
    out = call.out_tensors[0]
    n = out.numel // out.shape[-1]
    rows = {"M": "rows (every leading dimension)"}
    steps = [step("MACs", "M*O*(I_1*I_2 + I_1)", term=Term.MAC, where=rows, M=n, O=out.shape[-1], I_1=x1.shape[-1],
                  I_2=x2.shape[-1])]
    if call.attr("bias"):
        steps.append(step("bias adds", "M*O", term=Term.BIAS, where=rows, M=n, O=out.shape[-1]))
    return tuple(steps)


_SCALAR_TYPE = {torch.float32: "Float", torch.float64: "Double", torch.float16: "Half", torch.bfloat16: "BFloat16",
                torch.int64: "Long", torch.int32: "Int", torch.int16: "Short", torch.int8: "Char", torch.uint8: "Byte",
                torch.bool: "Bool", torch.complex64: "ComplexFloat", torch.complex128: "ComplexDouble"}


@check(*MATMUL, *GROUPED)
def same_dtype(func: object, values: tuple[object, ...], kwargs: dict[str, object]) -> None:
    """The CPU and CUDA kernels refuse operands of different dtypes (a bf16 Linear fed float32, a bool input)."""
    first = 1 if str(func).startswith(("aten.addmm", "aten.baddbmm", "aten.addmv")) else 0
    operands = [t for t in values[first:first + 2] if isinstance(t, torch.Tensor)]
    if len(operands) == 2 and operands[0].dtype != operands[1].dtype:
        a, b = (_SCALAR_TYPE.get(t.dtype, str(t.dtype)) for t in operands)
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {a} and {b}")


@stand_in(aten._grouped_mm)
def grouped_mm_any_dtype(func: Any, values: Any, kwargs: dict[str, Any]) -> Any:
    """torch's fake and meta kernels of _grouped_mm accept only bf16, its CPU kernel fp32 too: shape the call in bf16
    and give the result the operands' dtype (or out_dtype), so fp32 MoE models count without data."""
    a, b = values[0], values[1]
    if a.dtype == torch.bfloat16 and b.dtype == torch.bfloat16:
        return NotImplemented
    out_dtype = kwargs.get("out_dtype", values[4] if len(values) > 4 else None)
    rest = [v.to(torch.bfloat16) if isinstance(v, torch.Tensor) and v.is_floating_point() else v for v in values[2:4]]
    others = {k: v for k, v in kwargs.items() if k != "out_dtype"}
    out = func(a.to(torch.bfloat16), b.to(torch.bfloat16), *rest, **others)
    return out.to(out_dtype or a.dtype)


field_rule(*MATMUL)(contract)
field_rule(*GROUPED, *LOW_PRECISION, aten.addbmm)(mix_all)
kind("matmul", *MATMUL)
kind("linear", nn.Linear)


@expects(nn.Linear)
def linear_input(m: nn.Linear) -> str:
    """Linear expects (*, in_features)."""
    return f"(*, in_features={m.in_features}): any shape whose last dimension is {m.in_features}"


@expects(nn.Bilinear)
def bilinear_input(m: nn.Bilinear) -> str:
    """Bilinear expects two inputs with the last dimensions in1_features and in2_features."""
    return f"two inputs (*, in1_features={m.in1_features}) and (*, in2_features={m.in2_features})"
