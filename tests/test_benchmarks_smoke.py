"""benchmarks/run.py --quick runs end to end on tiny models, so the benchmark cannot rot (no time is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--cases", "lenet,mlp_50,llama_tiny_meta",
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]

    data = json.loads(out.with_suffix(".json").read_text())
    lenet = data["cases"]["lenet"]["tools"]
    assert lenet["nbcount"]["error"] is None
    assert lenet["nbcount"]["execution"] == "fake"  # a real CPU model is counted without arithmetic
    assert lenet["FlopCounterMode"]["error"] is None  # torch's own counter, always installed: the oracle
    assert 2 * lenet["nbcount"]["macs"] == lenet["FlopCounterMode"]["value"]  # LeNet-5: convs and linears only
    assert lenet["forward"]["median_s"] is not None
    assert {"count", "table", "memory"} <= set(lenet["nbcount"]["parts_median_s"])
    big = data["big"]["llama_tiny_meta"]["tools"]["nbcount"]
    assert big.get("error") is None and big["peak_rss"] > 0 and big["rows"] > 0
    assert data["view"]["rows"] == 51 and data["view"]["dataframe_s"] is not None

    text = out.read_text()
    for heading in ("## Headline", "## Targets of issues #6 and #13", "## Machine", "## Seconds per tool",
                    "## nbcount part by part", "## Large models built on meta", "## Method"):
        assert heading in text
    assert "LeNet-5" in text and "Llama tiny on meta" in text
