"""Matrix products: mm, addmm, bmm, baddbmm, mv, dot, and the bilinear form."""

from __future__ import annotations

import torch.nn as nn

from nbcount.derive import step
from nbcount.rules import Cost, module_rule, op_rule
from nbcount.types import LayerCall, OpEvent, Term

_MAC = Term.MAC.value
_BIAS = Term.BIAS.value


@op_rule("aten.mm")
def mm(op: OpEvent) -> Cost:
    """MACs = M·K·N for (M×K)·(K×N)."""
    (m, k), n = op.args[0].shape, op.args[1].shape[-1]
    return (step("MACs", "M*K*N", term=_MAC, M=m, K=k, N=n),)


@op_rule("aten.addmm")
def addmm(op: OpEvent) -> Cost:
    """MACs = M·K·N; bias adds = M·N (the added matrix, usually a Linear's bias)."""
    (m, k), n = op.args[1].shape, op.args[2].shape[-1]
    return (step("MACs", "M*K*N", term=_MAC, M=m, K=k, N=n),
            step("bias adds", "M*N", term=_BIAS, M=m, N=n))


@op_rule("aten.bmm")
def bmm(op: OpEvent) -> Cost:
    """MACs = B·M·K·N for a batch of B (M×K)·(K×N) products."""
    (b, m, k), n = op.args[0].shape, op.args[1].shape[-1]
    return (step("MACs", "B*M*K*N", term=_MAC, B=b, M=m, K=k, N=n),)


@op_rule("aten.baddbmm")
def baddbmm(op: OpEvent) -> Cost:
    """MACs = B·M·K·N; adds = B·M·N for the added batch of matrices."""
    (b, m, k), n = op.args[1].shape, op.args[2].shape[-1]
    return (step("MACs", "B*M*K*N", term=_MAC, B=b, M=m, K=k, N=n),
            step("adds", "B*M*N", term=_BIAS, B=b, M=m, N=n))


@op_rule("aten.mv")
def mv(op: OpEvent) -> Cost:
    """MACs = M·K for a (M×K) matrix times a K-vector."""
    m, k = op.args[0].shape
    return (step("MACs", "M*K", term=_MAC, M=m, K=k),)


@op_rule("aten.addmv")
def addmv(op: OpEvent) -> Cost:
    """MACs = M·K; adds = M."""
    m, k = op.args[1].shape
    return (step("MACs", "M*K", term=_MAC, M=m, K=k), step("adds", "M", term=_BIAS, M=m))


@op_rule("aten.dot", "aten.vdot")
def dot(op: OpEvent) -> Cost:
    """MACs = K for two K-vectors."""
    return (step("MACs", "K", term=_MAC, K=op.args[0].shape[0]),)


@module_rule(nn.Bilinear)
def bilinear(call: LayerCall) -> Cost:
    """y_o = x1ᵀ·A_o·x2 + b_o: MACs = N·O·(I1·I2 + I1) (A_o·x2, then x1·(A_o·x2)); bias = N·O."""
    x1, x2 = call.in_tensors[0], call.in_tensors[1]
    out = call.out_tensors[0]
    n = out.numel // out.shape[-1]
    steps = [step("MACs", "N*O*(I_1*I_2 + I_1)", term=_MAC, N=n, O=out.shape[-1], I_1=x1.shape[-1], I_2=x2.shape[-1])]
    if call.attr("bias"):
        steps.append(step("bias adds", "N*O", term=_BIAS, N=n, O=out.shape[-1]))
    return tuple(steps)
