"""``python -m nbcount``: thousands separators, subtotals, call indices, friendly errors, conventions in --help.

Expected numbers are sum(p.numel()) of the zoo model or arithmetic over its layers.
"""

from __future__ import annotations

from typing import Any

import pytest

from nbcount import __main__ as cli
from nbcount import zoo
from nbcount.convention import conventions


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


def test_hardware_prints_the_roofline(capsys: Any) -> None:
    """LeNet's fc.0 = Linear(400, 120) on one fp32 row, H100-SXM (3.35 TB/s, fp32 66.9 TFLOP/s): FLOPs
    2·400·120 + 120 = 96,120; bytes (input 400 + weight 48,000 + bias 120 + output 120)·4 = 194,560; intensity
    0.494 < ridge 66.9e12 / 3.35e12 = 20.0: memory-bound, 194,560 B / 3.35e12 B/s = 58.1 ns."""
    code, out, _ = run(capsys, "lenet", "--hardware", "H100-SXM", "--top", "3")
    assert code == 0
    assert "Roofline of LeNet on H100-SXM" in out and f"(ridge {66.9e12 / 3.35e12:,.1f} FLOP/B)" in out
    fc0 = next(line.split() for line in out.splitlines() if line.startswith("fc.0 "))
    assert fc0[3:5] == ["96.1", "k"] and fc0[5:7] == ["195", "k"] and fc0[7] == f"{96_120 / 194_560:.3g}"
    assert fc0[8] == "memory" and " ".join(fc0[9:11]) == f"{194_560 / 3.35e12 * 1e9:.3g} ns"
    rows = [line for line in out.split("FLOP/B  bound")[1].splitlines()[1:] if line.strip()]
    assert len(rows) == 3 + 1 and rows[-1].startswith("... ")  # --top 3, then how many more
    assert "prefill" not in out  # not a decoder: no serving view


def test_hw_dtype_forces_the_matrix_peak(capsys: Any) -> None:
    """--hw-dtype tf32 on an fp32 model: matrix ops at H100-SXM's tf32 peak 494.7 TFLOP/s, ridge 494.7 / 3.35."""
    code, out, _ = run(capsys, "lenet", "--hardware", "h100", "--hw-dtype", "tf32")
    assert code == 0 and f"tf32 495 TFLOP/s (ridge {494.7e12 / 3.35e12:,.1f} FLOP/B)" in out
    assert "every matrix op at the tf32 peak" in out


def test_decoder_gets_the_serving_view(capsys: Any) -> None:
    """llama_tiny on (1, 16) token ids: prefill of 16 tokens, one decode step of 1 token, memory-bound."""
    code, out, _ = run(capsys, "llama_tiny", "-i", "1,16", "--depth", "0", "--hardware", "L4")
    assert code == 0 and "Prefill of 16 tokens and one decode step after 16 (batch 1)" in out
    rows = {line.split()[1]: line.split() for line in out.splitlines() if line.startswith("L4 ")}
    assert rows["prefill"][2] == "16" and rows["decode"][2] == "1" and "memory" in rows["decode"]


def test_unknown_hardware_lists_the_presets(capsys: Any) -> None:
    from nbcount.machines import PRESETS

    with pytest.raises(SystemExit) as stop:
        cli.main(["lenet", "--hardware", "B200"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err and "'B200' is not a preset" in err
    assert all(p.name in err for p in PRESETS) and "this CPU" in err
    with pytest.raises(SystemExit) as stop:
        cli.main(["lenet", "--hw-dtype", "tf32"])
    assert stop.value.code == 2 and "give --hardware" in capsys.readouterr().err


def test_help_lists_the_hardware(capsys: Any) -> None:
    from nbcount.machines import PRESETS

    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(f"  {p.name} " in out for p in PRESETS) and "--hardware" in out and "--hw-dtype" in out
