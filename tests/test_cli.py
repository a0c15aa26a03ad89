"""``python -m nbcount``: thousands separators, subtotals, call indices, friendly errors, conventions in --help.

Expected numbers are sum(p.numel()) of the zoo model or arithmetic over its layers.
"""

from __future__ import annotations

from typing import Any

import pytest

from nbcount import __main__ as cli
from nbcount import zoo
from nbcount.conventions import conventions


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_totals_and_subtotals_with_separators(capsys: Any) -> None:
    params = sum(p.numel() for p in zoo.lenet().parameters())
    code, out, _ = run(capsys, "lenet")
    assert code == 0
    assert f"total params     {params:>20,}" in out
    root = next(line for line in out.splitlines() if line.startswith("(root)"))
    total = next(line for line in out.splitlines() if line.startswith("total  "))
    assert f"{params:,}" in root and f"{params:,}" in total  # the root's subtotal is the model's total
    features = next(line for line in out.splitlines() if line.strip().startswith("features "))
    conv_and_pool = sum(p.numel() for p in zoo.lenet().features.parameters())
    assert f"{conv_and_pool:,}" in features  # a container row carries everything inside it


def test_repeated_calls_have_call_indices(capsys: Any) -> None:
    code, out, _ = run(capsys, "shared_conv", "--derive", "conv1#1")
    assert code == 0
    labels = [line.split()[0] for line in out.splitlines() if line.strip().startswith("conv1")]
    assert labels[:2] == ["conv1", "conv1#1"]
    assert "Derivation of conv1 (Conv2d, call 1)" in out and "params (new) = 0" in out  # the second call


def test_bad_convention_lists_the_valid_ones(capsys: Any) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["lenet", "-c", "flopz"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    assert "'flopz' is not a convention" in err and all(name in err for name in conventions())


def test_bad_derive_lists_the_layers(capsys: Any) -> None:
    code, _, err = run(capsys, "lenet", "--derive", "conv9")
    assert code == 2 and "no such layer" in err and "features.0" in err and "Traceback" not in err


def test_help_lists_the_conventions(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in conventions())
    assert "examples:" in out and "#1" in out
