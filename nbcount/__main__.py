"""Terminal demo: ``python -m nbcount resnet50 --input-size 1,3,224,224 --derive conv1``."""

from __future__ import annotations

import argparse
import sys

import torch

import nbcount
from nbcount import zoo


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m nbcount", description="Count a zoo model in the terminal.")
    parser.add_argument("model", choices=sorted(zoo.ZOO), help="a model of nbcount.zoo")
    parser.add_argument("-i", "--input-size", help="comma-separated shape, batch first (default: the model's own)")
    parser.add_argument("-c", "--convention", default="nbcount", help="FLOP convention (see nbcount.conventions())")
    parser.add_argument("--depth", type=int, default=2, help="deepest table rows to show")
    parser.add_argument("--derive", metavar="LAYER", help="print the worked derivation of one layer")
    parser.add_argument("--meta", action="store_true", help="build the model on the meta device (no memory)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Count the chosen zoo model and print totals, the table, diagnostics and a derivation."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    size = tuple(int(d) for d in args.input_size.split(",")) if args.input_size else zoo.example_input_size(args.model)
    dtype = torch.long if args.model in zoo.TOKEN_MODELS else torch.float32
    if args.meta or args.model in ("llama_7b", "llama_70b"):
        with torch.device("meta"):
            model = zoo.ZOO[args.model]()
    else:
        model = zoo.ZOO[args.model]()
    report = nbcount.count(model, size, dtype=dtype, convention=args.convention)
    print(_summary(report, args.depth))
    if args.derive:
        print()
        print(report.derive(args.derive).to_text())
    return 0


def _summary(report: nbcount.Report, depth: int) -> str:
    table = report.table[report.table.depth <= depth]
    columns = ["layer", "type", "output_shape", "params", "macs", "flops"]
    lines = [
        f"total params     {report.total_params:>20,}   (used {report.used_params:,}, trainable "
        f"{report.trainable_params:,})",
        f"total MACs       {report.total_macs:>20,}",
        f"total {report.convention.unit:<10} {report.total_flops:>20,}   (convention {report.convention.name}, "
        f"{report.status})",
        "",
        table[columns].to_string(index=False),
    ]
    lines += ["", *(f"! {d.message}" for d in report.diagnostics)] if report.diagnostics else []
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
