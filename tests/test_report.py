"""Report is a finished value: frozen, picklable, holding the model only weakly; names say their unit."""

from __future__ import annotations

import dataclasses
import gc
import pickle
import weakref

import pytest
from torch import nn

import nbcount


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))


def test_a_report_pickles_and_reads_the_same() -> None:
    model = _model()
    report = nbcount.count(model, (1, 3, 8, 8))
    again = pickle.loads(pickle.dumps(report))
    assert (again.total_params, again.total_macs, again.total_flops, again.status) == (
        sum(p.numel() for p in model.parameters()), 8 * 6 * 6 * 27 + 288 * 10, report.total_flops, "complete")
    assert again.table.equals(report.table)
    assert again.derive("0").to_text() == report.derive("0").to_text()
    assert again.receptive_field == report.receptive_field
    with pytest.raises(LookupError, match="pass the model"):  # the unpickled report does not reach the model
        again.model()
    fit = again.scaling(sizes=[8, 10, 12, 14], axis="N", model=model)  # given explicitly, it counts again
    assert fit.coefficients[1] == report.total_flops


def test_a_report_never_keeps_the_model_alive() -> None:
    model = _model()
    report = nbcount.count(model, (1, 3, 8, 8))
    assert report.model() is model
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None  # nothing in the report held it
    with pytest.raises(LookupError):
        report.model()


def test_a_report_is_frozen_and_hasattr_works() -> None:
    report = nbcount.count(nn.Linear(4, 2), (1, 4))
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.rows = ()  # type: ignore[misc]
    assert hasattr(report, "training") and report.training is None  # hasattr() never raises
    assert report.backward_macs is None


@pytest.mark.parametrize(("convention", "unit", "column"), [
    ("nbcount", "FLOPs", "flops"), ("torch", "FLOPs", "flops"), ("fvcore", "MACs", "macs_fvcore"),
    ("thop", "MACs", "macs_thop"), ("ptflops:strict", "MACs", "macs_ptflops_strict"), ("macs", "MACs", "macs")])
def test_a_figure_called_flops_is_flops(convention: str, unit: str, column: str) -> None:
    """Linear(16, 8) on 4 rows: 512 MACs; a FLOP convention's total is FLOPs, a MAC convention's is not
    called flops anywhere: its headline and column carry the unit."""
    report = nbcount.count(nn.Linear(16, 8, bias=False), (4, 16), convention=convention)
    assert report.headline.unit == unit and report.headline.convention == convention
    assert report.table[column].sum() == report.headline.value
    if unit == "MACs":
        assert report.total_flops is None and report.headline.value == 4 * 16 * 8
        assert "flops" not in report.table and "flops_incl" not in report.table
    else:
        assert report.total_flops == report.headline.value == 2 * 4 * 16 * 8
    assert str(report.headline) == f"{report.headline.value:,} {unit} ({convention})"


def test_counting_again_uses_the_counted_model_while_it_lives() -> None:
    model = nn.Linear(8, 8)
    report = nbcount.count(model, (2, 8))
    fit = report.scaling(sizes=[1, 2, 3, 4], axis="N", convention="macs")
    assert fit.coefficients == (0, 64)  # 8·8 MACs per row; the bias add is no MAC


def test_the_first_count_of_a_process_lets_the_model_go_at_once() -> None:
    """In a fresh process with the garbage collector off, the model is freed as soon as the user drops it, on
    every path: nothing of the count (the stand-in's copy memo, or torch's first FakeTensorMode, whose imports
    pin the frames below them for good) keeps it."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import gc, weakref, torch
        from torch import nn
        import nbcount
        gc.disable()
        freed = []
        for kwargs in (dict(), dict(execution="real"), dict(training=True), dict(mode="same")):
            model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
            alive = weakref.ref(model)
            report = nbcount.count(model, (2, 8), **kwargs)
            del model
            freed.append(alive() is None and report.total_params == 8 * 8 + 8 + 8 * 2 + 2)
        print(freed)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[True, True, True, True]", out.stderr[-2000:]
