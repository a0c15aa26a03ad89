"""Regenerate docs/ops-coverage.md: count every model of the corpus and list how each op it ran is treated.

    .venv/bin/python scripts/ops_coverage.py           # writes docs/ops-coverage.md
    .venv/bin/python scripts/ops_coverage.py --check   # exits 1 when the page is stale

The corpus is tests/corpus.py (transformers models from configs, ConvNeXt, Swin, a channels-last CNN, torch.nn's
composite layers) and a few zoo models, counted on CPU (auto and real), on meta, and with training=True.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import corpus  # noqa: E402

import nbcount  # noqa: E402
from nbcount import zoo  # noqa: E402
from nbcount.rules.coverage import render  # noqa: E402

PAGE = ROOT / "docs" / "ops-coverage.md"
ZOO = {"lenet": (1, 1, 28, 28), "resnet18": (1, 3, 64, 64), "mobilenet_v2": (1, 3, 64, 64), "unet": (1, 1, 64, 64),
       "vit_b_16": (1, 3, 224, 224), "gpt2": (1, 32), "llama_tiny": (1, 16)}
TRAINING = ("lenet", "resnet18", "llama_tiny")


def _ops(report: Any) -> set[str]:
    found = {op.op for row in report.rows for op in row.call.ops}
    trace = report.trace
    found |= {e.op.op for e in getattr(trace, "backward", ())}
    found |= {op.op for op in getattr(trace, "loss_ops", ())}
    return found


def _record(seen: dict[str, set[str]], name: str, report: Any) -> None:
    for op in _ops(report):
        seen[op].add(name)


def _corpus(seen: dict[str, set[str]]) -> None:
    for name, build in corpus.CORPUS.items():
        for device, execution in (("cpu", "auto"), ("cpu", "real"), ("meta", "auto")):
            dtype = torch.bfloat16 if name in corpus.MOE and execution == "auto" else torch.float32
            model, inputs = corpus.hf_decoder(name, device, dtype) if name in corpus.HF_DECODERS else build(device)
            try:
                _record(seen, name, nbcount.count(model, inputs=inputs, execution=execution))
            except nbcount.CountError as error:
                print(f"{name} ({device}, {execution}): {str(error).splitlines()[0]}", file=sys.stderr)


def _zoo(seen: dict[str, set[str]]) -> None:
    for name, size in ZOO.items():
        model = zoo.ZOO[name]()
        dtype = torch.long if name in zoo.TOKEN_MODELS else torch.float32
        _record(seen, name, nbcount.count(model, size, dtype=dtype))
        if name in TRAINING:
            _record(seen, f"{name} (training)", nbcount.count(model, size, dtype=dtype, training=True))


def collect() -> dict[str, list[str]]:
    """{op: models it ran in} over the whole corpus."""
    seen: dict[str, set[str]] = defaultdict(set)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _corpus(seen)
        _zoo(seen)
    return {op: sorted(models) for op, models in seen.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/ops-coverage.md is stale")
    page = render(collect())
    if parser.parse_args().check:
        current = PAGE.read_text() if PAGE.exists() else ""
        print("docs/ops-coverage.md is " + ("current" if current == page else "stale: run scripts/ops_coverage.py"))
        return 0 if current == page else 1
    PAGE.write_text(page)
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
