"""The rules: one op table (nbcount.rules.table) filled by the op family modules of this package.

A family module declares its ops once, as real torch ops (``aten = torch.ops.aten``; ``MATMUL = (aten.mm, ...)``),
and registers against them everything nbcount knows, each with one decorator:

- ``@op_rule(aten.mm)``: the cost of one op (forward or backward) as derivation steps;
- ``ignore("reason", aten.view, ...)``: ops that do no arithmetic, with the reason shown to users;
- ``@field_rule(aten.convolution)``: how the op moves receptive fields;
- ``kind("matmul", aten.mm, nn.Linear)``: the layer kind compare() groups a row under;
- ``@check(aten.mm)``: refuse on the fake path a call the real kernel refuses;
- ``@stand_in(aten._grouped_mm)``: shape on the fake path a call the real kernel accepts but torch's fake or
  meta kernel refuses;
- ``@module_rule(nn.LSTM)``: the cost of a whole module call (used only when the module's forward is the
  library's own: a subclass that overrides forward is counted op by op);
- ``@param_rule(nn.Conv2d)``, ``@shape_rule(nn.Conv2d)``, ``@expects(nn.Conv2d)``: a module type's parameter
  and output-shape derivations and the input it expects (error messages).

Ops are named by the op objects (or ``"aten.mm"``); an op torch does not have fails at import. Registering a
facet twice is an error. An op no family names is classified from torch's own metadata (nbcount.rules.classify).
"""

from __future__ import annotations

from nbcount.rules.registry import (
    Check,
    ClassOrOp,
    Cost,
    ModuleRule,
    OpLike,
    OpRule,
    check,
    expects,
    field_rule,
    find_module_rule,
    ignore,
    in_mro,
    kind,
    module_rule,
    op_rule,
    param_rule,
    shape_rule,
    stand_in,
)
from nbcount.rules.table import T, first_in_mro, qualname


def _load_families() -> None:
    from nbcount.rules import (  # noqa: F401  (registration side effects)
        attention,
        conv,
        elementwise,
        embedding,
        layout,
        loss,
        matmul,
        norm,
        params,
        pool,
        quantized,
        recurrent,
        resample,
        scatter,
        shapes,
        spectral,
        vision,
    )


__all__ = ["Check", "ClassOrOp", "Cost", "ModuleRule", "OpLike", "OpRule", "T", "check", "expects", "field_rule",
           "find_module_rule", "first_in_mro", "ignore", "in_mro", "kind", "module_rule", "op_rule", "param_rule",
           "qualname", "shape_rule", "stand_in"]

_load_families()
