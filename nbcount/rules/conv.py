"""Convolutions, plain and transposed, any number of spatial axes."""

from __future__ import annotations

from typing import Any

from nbcount.derive import step
from nbcount.rules import Cost, op_rule
from nbcount.types import OpEvent, Term

_AXES = ("D", "H", "W")


def _axis_names(n: int) -> tuple[str, ...]:
    return _AXES[-n:] if n <= 3 else tuple(f"S{i}" for i in range(n))


@op_rule("aten.convolution", "aten._convolution")
def convolution(op: OpEvent) -> Cost:
    """MACs = N·C_out·∏out·(C_in/groups·∏K); transposed: N·C_in·∏in·(C_out/groups·∏K); bias = N·C_out·∏out."""
    x, w, bias = op.args[0], op.args[1], op.args[2]
    transposed, groups = bool(op.args[6]), int(op.args[8])
    out = op.outputs[0]
    axes = _axis_names(len(w.shape) - 2)
    kernel: dict[str, Any] = {f"K_{a.lower()}": k for a, k in zip(axes, w.shape[2:])}
    k_prod = "*".join(kernel)
    steps = []
    if transposed:
        spatial: dict[str, Any] = {f"{a}_in": s for a, s in zip(axes, x.shape[2:])}
        formula = f"N*C_in*{'*'.join(spatial)}*(C_out/g*{k_prod})"
        symbols = {"N": x.shape[0], "C_in": x.shape[1], **spatial, "C_out": out.shape[1], "g": groups, **kernel}
        note = "each input element is scattered over C_out/g·∏K outputs"
        steps.append(step("MACs", formula, term=Term.MAC.value, note=note, **symbols))
    else:
        spatial = {f"{a}_out": s for a, s in zip(axes, out.shape[2:])}
        formula = f"N*C_out*{'*'.join(spatial)}*(C_in/g*{k_prod})"
        symbols = {"N": out.shape[0], "C_out": out.shape[1], **spatial, "C_in": x.shape[1], "g": groups, **kernel}
        steps.append(step("MACs", formula, term=Term.MAC.value, **symbols))
    if bias is not None:
        out_spatial: dict[str, Any] = {f"{a}_out": s for a, s in zip(axes, out.shape[2:])}
        steps.append(step("bias adds", f"N*C_out*{'*'.join(out_spatial)}", term=Term.BIAS.value,
                          N=out.shape[0], C_out=out.shape[1], **out_spatial))
    return tuple(steps)
