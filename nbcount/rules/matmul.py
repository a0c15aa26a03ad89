"""Matrix products: mm, addmm, bmm, baddbmm, mv, dot, and the bilinear form."""

from __future__ import annotations

import torch.nn as nn

from nbcount.derive import step
from nbcount.rules import Cost, module_rule, op_rule
from nbcount.types import LayerCall, OpEvent, Term

_MAC = Term.MAC.value
_BIAS = Term.BIAS.value
# (M×K)·(K×P): N is the batch in every layout, so a product's columns are P
_GEMM = {"M": "rows of the product (every leading dimension: batch × positions)",
         "K": "summed dimension (in_features of a Linear)", "P": "columns of the product (out_features of a Linear)"}
_BATCHED = {"B": "batch of matrices", "M": "rows of each product", "K": "summed dimension",
            "P": "columns of each product"}


@op_rule("aten.mm")
def mm(op: OpEvent) -> Cost:
    """MACs = M·K·P for (M×K)·(K×P)."""
    (m, k), n = op.args[0].shape, op.args[1].shape[-1]
    return (step("MACs", "M*K*P", term=_MAC, where=_GEMM, M=m, K=k, P=n),)


@op_rule("aten.addmm")
def addmm(op: OpEvent) -> Cost:
    """MACs = M·K·P; bias adds = M·P (the added matrix, usually a Linear's bias)."""
    (m, k), n = op.args[1].shape, op.args[2].shape[-1]
    return (step("MACs", "M*K*P", term=_MAC, where=_GEMM, M=m, K=k, P=n),
            step("bias adds", "M*P", term=_BIAS, where=_GEMM, M=m, P=n))


@op_rule("aten.bmm")
def bmm(op: OpEvent) -> Cost:
    """MACs = B·M·K·P for a batch of B (M×K)·(K×P) products."""
    (b, m, k), n = op.args[0].shape, op.args[1].shape[-1]
    return (step("MACs", "B*M*K*P", term=_MAC, where=_BATCHED, B=b, M=m, K=k, P=n),)


@op_rule("aten.baddbmm")
def baddbmm(op: OpEvent) -> Cost:
    """MACs = B·M·K·P; adds = B·M·P for the added batch of matrices."""
    (b, m, k), n = op.args[1].shape, op.args[2].shape[-1]
    return (step("MACs", "B*M*K*P", term=_MAC, where=_BATCHED, B=b, M=m, K=k, P=n),
            step("adds", "B*M*P", term=_BIAS, where=_BATCHED, B=b, M=m, P=n))


@op_rule("aten.mv")
def mv(op: OpEvent) -> Cost:
    """MACs = M·K for a (M×K) matrix times a K-vector."""
    m, k = op.args[0].shape
    return (step("MACs", "M*K", term=_MAC, where=_GEMM, M=m, K=k),)


@op_rule("aten.addmv")
def addmv(op: OpEvent) -> Cost:
    """MACs = M·K; adds = M."""
    m, k = op.args[1].shape
    return (step("MACs", "M*K", term=_MAC, where=_GEMM, M=m, K=k), step("adds", "M", term=_BIAS, where=_GEMM, M=m))


@op_rule("aten.dot", "aten.vdot")
def dot(op: OpEvent) -> Cost:
    """MACs = K for two K-vectors."""
    return (step("MACs", "K", term=_MAC, where=_GEMM, K=op.args[0].shape[0]),)


@module_rule(nn.Bilinear)
def bilinear(call: LayerCall) -> Cost:
    """y_o = x1ᵀ·A_o·x2 + b_o: MACs = M·O·(I1·I2 + I1) (A_o·x2, then x1·(A_o·x2)); bias = M·O."""
    x1, x2 = call.in_tensors[0], call.in_tensors[1]
    out = call.out_tensors[0]
    n = out.numel // out.shape[-1]
    rows = {"M": "rows (every leading dimension)"}
    steps = [step("MACs", "M*O*(I_1*I_2 + I_1)", term=_MAC, where=rows, M=n, O=out.shape[-1], I_1=x1.shape[-1],
                  I_2=x2.shape[-1])]
    if call.attr("bias"):
        steps.append(step("bias adds", "M*O", term=_BIAS, where=rows, M=n, O=out.shape[-1]))
    return tuple(steps)
