"""The one op table: real ops only, one registrar, classification from torch's metadata, the coverage page."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import nbcount
from nbcount.rules import coverage, op_rule, table
from nbcount.rules.classify import NONE, RULE, UNCOUNTED, classify
from nbcount.rules.table import UnknownOp, resolve

ROOT = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"""["'`]((?:aten|prim|prims|profiler|quantized|torchvision)\.[A-Za-z_][A-Za-z0-9_]*)["'`]""")
OPTIONAL = ("torchvision.",)  # registered only when torchvision is importable


def test_every_op_name_nbcount_mentions_is_a_real_op() -> None:
    """Table keys are validated at import; any op spelled as a string anywhere in nbcount/ must exist too."""
    mentioned = {m.group(1) for path in (ROOT / "nbcount").rglob("*.py") for m in _NAME.finditer(path.read_text())}
    assert len(mentioned) > 5
    unknown = [name for name in sorted(mentioned) if not name.startswith(OPTIONAL) and not table.exists(name)]
    assert unknown == []
    for name in table.OPS:
        assert table.exists(name), name


def test_an_unknown_op_fails_at_registration() -> None:
    with pytest.raises(UnknownOp, match="aten.logsigmoid"):
        op_rule("aten.logsigmoid")(lambda op: ())
    with pytest.raises(UnknownOp):
        resolve("mm")
    assert resolve(torch.ops.aten.mm) == resolve(torch.ops.aten.mm.default) == resolve("aten.mm") == "aten.mm"


def test_a_facet_registered_twice_or_cost_with_a_reason_is_an_error() -> None:
    with pytest.raises(ValueError, match="twice"):
        op_rule(torch.ops.aten.mm)(lambda op: ())
    with pytest.raises(ValueError, match="twice"):
        table.register([torch.ops.aten.view], "cost", lambda op: ())  # it has a reason: no arithmetic


def test_every_aten_op_of_this_torch_is_classified() -> None:
    """Each op gets exactly one treatment; torch's own tags decide for the ops no family names."""
    treatments = {name: classify(name) for name in coverage.all_aten_ops()}
    assert all(t.how in (RULE, NONE, UNCOUNTED) for t in treatments.values())
    for name, t in treatments.items():
        overloads = [getattr(table.packet(name), o) for o in table.packet(name).overloads()
                     if hasattr(table.packet(name), o)]
        tags = {tag.name for o in overloads for tag in o.tags}
        view = any(o.is_view for o in overloads) or "inplace_view" in tags
        if view and not t.basis.startswith("declared"):
            assert t.how == NONE, name  # a view is never arithmetic (aten.positive is pointwise and an alias)
        elif "pointwise" in tags and not t.basis.startswith(("declared", "in-place", "a list")):
            assert t.how == RULE, name  # a pointwise op nbcount never named is still counted


def test_unnamed_ops_take_their_kind_from_torch() -> None:
    logit, view, inplace = classify("aten.logit"), classify("aten.as_strided_"), classify("aten.sigmoid_")
    assert (logit.how, logit.basis) == (RULE, "tag pointwise")
    assert (view.how, view.basis) == (NONE, "schema: view")
    assert inplace.how == RULE and inplace.basis.startswith("in-place form of aten.sigmoid")
    assert classify("aten.hamming_window").how == NONE  # a factory: no tensor input (its out= buffer aside)
    assert classify("aten._foreach_mul").how == RULE


def test_a_pointwise_op_no_family_names_is_counted_per_element() -> None:
    class Logit(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.logit(x, eps=1e-6) > 0

    report = nbcount.count(Logit(), (2, 3, 5))
    assert report.status == "complete"
    assert report.breakdown == {"elementwise": 2 * 3 * 5}  # logit: n; the comparison (a bool result): none


def test_an_op_torch_decomposes_is_counted_as_its_parts() -> None:
    """aten.linear reaches the table under inference_mode (autograd does not decompose it): its parts count it."""
    model = nn.Linear(8, 4)
    with torch.inference_mode():
        report = nbcount.count(model, (3, 8))
    assert report.status == "complete"
    assert report.total_macs == 3 * 8 * 4
    assert report.breakdown["bias"] == 3 * 4


def test_a_new_op_is_one_registration() -> None:
    """A custom op of the user's library: one op_rule, and counting sees it (the extension path of a new family)."""
    @torch.library.custom_op("nbcount_test::scaled_gemm", mutates_args=())
    def scaled_gemm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 2 * a @ b

    @scaled_gemm.register_fake
    def _(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a.new_empty(a.shape[0], b.shape[1])

    class Uses(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return scaled_gemm(x, torch.ones(6, 5))

    assert nbcount.count(Uses(), (4, 6)).status == "lower_bound"  # unknown: named, never zero

    from nbcount.derive import step
    from nbcount.types import Term

    @op_rule(torch.ops.nbcount_test.scaled_gemm)
    def scaled_gemm_cost(op: nbcount.types.OpEvent) -> tuple:
        """MACs = M·K·N."""
        (m, k), n = op.args[0].shape, op.args[1].shape[1]
        return (step("MACs", "M*K*N", term=Term.MAC, M=m, K=k, N=n),)

    classify.cache_clear()
    report = nbcount.count(Uses(), (4, 6))
    assert report.status == "complete" and report.total_macs == 4 * 6 * 5


def test_the_coverage_page_is_current() -> None:
    """The page lists the corpus's ops; re-rendering them with today's rules must give the page unchanged."""
    page = (ROOT / "docs" / "ops-coverage.md").read_text()
    seen = coverage.parse(page)
    assert len(seen) > 80 and "aten._grouped_mm" in seen and "aten.histc" in seen
    assert coverage.render(seen) == page, "stale: run .venv/bin/python scripts/ops_coverage.py"
    assert all(classify(op).how != UNCOUNTED for op in seen)  # nothing the corpus runs is left uncounted


def test_grouped_mm_counts_every_routed_row_once() -> None:
    """2-d × 3-d grouped matmul: M rows split among G experts by offs; MACs = M·K·N whatever the split."""
    m, k, n, g = 12, 8, 4, 3  # the CPU kernel wants rows of a multiple of 16 bytes
    a, b = torch.randn(m, k), torch.randn(g, k, n)
    offs = torch.tensor([5, 5, 12], dtype=torch.int32)  # expert 1 receives no row

    class Grouped(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor, offs: torch.Tensor) -> torch.Tensor:
            return torch._grouped_mm(a, b, offs=offs)

    report = nbcount.count(Grouped(), inputs=(a, b, offs), execution="real")
    assert report.status == "complete" and report.total_macs == m * k * n
    assert report.total_macs == sum(int(r) * k * n for r in torch.diff(offs, prepend=torch.tensor([0])))
    assert math.isclose(float(report.total_macs), float(m * k * n))
