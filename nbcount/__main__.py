"""Terminal demo: ``python -m nbcount resnet50 --input-size 1,3,224,224 --derive conv1 --hardware H100-SXM``."""

from __future__ import annotations

import argparse
import sys
import textwrap

import torch

import nbcount
from nbcount import formats, zoo
from nbcount.convention import conventions
from nbcount.labels import parse_layer, row_label
from nbcount.machines import PEAK_KEYS, PRESETS, get_hardware, si
from nbcount.table import layer_table

COLUMNS = ("layer", "type", "output_shape", "params_incl", "macs_incl", "flops_incl")


def _epilog() -> str:
    lines = ["conventions (-c NAME; NAME:strict adds the tool's known defects):"]
    for name, description in conventions().items():
        lines.append(f"  {name:<10} " + textwrap.shorten(description, width=96, placeholder=" …"))
    lines += ["", "hardware (--hardware NAME: the per-layer roofline, and for decoders prefill vs decode):"]
    for preset in PRESETS:
        peak = preset.bf16_flops_per_s or preset.fp16_flops_per_s or preset.fp32_flops_per_s
        lines.append(f"  {preset.name:<14} {si(preset.bandwidth_bytes_per_s)}B/s, {si(peak)}FLOP/s dense "
                     f"{'bf16' if preset.bf16_flops_per_s else 'fp16' if preset.fp16_flops_per_s else 'fp32'}")
    lines.append(f"  {'this CPU':<14} measured on the spot (--hardware cpu)")
    lines += ["", "examples:", "  python -m nbcount resnet50 --derive conv1",
              "  python -m nbcount gpt2 -i 1,128 -c torch --depth 1",
              "  python -m nbcount gpt2 -i 1,512 --hardware H100-SXM --top 10",
              "  python -m nbcount resnet50 --hardware A100-SXM-80GB --hw-dtype tf32",
              "  python -m nbcount alexnet --derive features.0    (a repeated call: LAYER#1)"]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m nbcount", formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description="Count a zoo model in the terminal: totals, the layer tree with "
                                                 "subtotals (each row includes everything inside it), findings, "
                                                 "and the worked derivation of a layer.", epilog=_epilog())
    parser.add_argument("model", choices=sorted(zoo.ZOO), metavar="MODEL",
                        help=f"a model of nbcount.zoo: {', '.join(sorted(zoo.ZOO))}")
    parser.add_argument("-i", "--input-size", help="comma-separated shape, batch first (default: the model's own)")
    parser.add_argument("-c", "--convention", default="nbcount", help="FLOP convention (listed below)")
    parser.add_argument("--depth", type=int, default=2, help="deepest level of the tree to list (default 2)")
    parser.add_argument("--all", action="store_true", help="list every repeated block instead of folding them")
    parser.add_argument("--derive", metavar="LAYER", help="print the worked derivation of one layer (LAYER#CALL for a "
                                                          "repeated call)")
    parser.add_argument("--meta", action="store_true", help="build the model on the meta device (no memory)")
    parser.add_argument("--hardware", metavar="NAME", help="print the roofline on this hardware (listed below): per "
                                                          "layer compute- or memory-bound and its time")
    parser.add_argument("--hw-dtype", choices=PEAK_KEYS, metavar="DTYPE",
                        help=f"run every matrix op at this peak ({', '.join(PEAK_KEYS)}; default: each op's own "
                             "dtype, fp32 without TF32)")
    parser.add_argument("--top", type=int, default=15, metavar="N", help="roofline rows to list (default 15)")
    return parser


def _size(parser: argparse.ArgumentParser, text: str) -> tuple[int, ...]:
    try:
        size = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        parser.error(f"-i {text!r}: write the shape as integers, e.g. -i 1,3,224,224")
    if not size or min(size) < 1:
        parser.error(f"-i {text!r}: every dimension must be a positive integer")
    return size


def main(argv: list[str] | None = None) -> int:
    """Count the chosen zoo model and print totals, the table, diagnostics and a derivation."""
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    known = list(conventions())
    if args.convention.removesuffix(":strict") not in known:
        parser.error(f"-c {args.convention!r} is not a convention; choose from {', '.join(known)} "
                     "(add :strict for bug-for-bug numbers)")
    hardware = _hardware(parser, args)
    size = _size(parser, args.input_size) if args.input_size else zoo.example_input_size(args.model)
    dtype = torch.long if args.model in zoo.TOKEN_MODELS else torch.float32
    if args.meta or args.model in ("llama_7b", "llama_70b"):
        with torch.device("meta"):
            model = zoo.ZOO[args.model]()
    else:
        model = zoo.ZOO[args.model]()
    try:
        report = nbcount.count(model, size, dtype=dtype, convention=args.convention)
    except (nbcount.CountError, nbcount.InputError) as error:
        print(f"python -m nbcount: {error}", file=sys.stderr)
        return 1
    print(summary(report, args.depth, group=not args.all))
    if args.derive:
        layer, call = parse_layer(args.derive)
        try:
            report.row(layer, call)
        except KeyError:
            names = [row_label(r) for r in report.rows]
            shown = ", ".join(names[:40]) + (f", … ({len(names) - 40} more)" if len(names) > 40 else "")
            print(f"python -m nbcount: --derive {args.derive!r}: no such layer; layers: {shown}", file=sys.stderr)
            return 2
        print()
        print(report.derive(layer, call).to_text())
    if hardware is not None:
        print()
        print(roofline_text(report, hardware, args.hw_dtype, args.top))
    return 0


def _hardware(parser: argparse.ArgumentParser, args: argparse.Namespace) -> nbcount.Hardware | None:
    """The --hardware preset (None without it); an unknown name or a --hw-dtype alone is a usage error."""
    if args.hardware is None:
        if args.hw_dtype is not None:
            parser.error("--hw-dtype chooses the peak of a roofline: give --hardware NAME too")
        return None
    if args.top < 1:
        parser.error(f"--top {args.top}: list at least one row")
    try:
        return get_hardware(args.hardware)
    except ValueError:
        names = ", ".join([p.name for p in PRESETS] + ["this CPU (or cpu)"])
        parser.error(f"--hardware {args.hardware!r} is not a preset; choose from {names}")


def roofline_text(report: nbcount.Report, hardware: nbcount.Hardware, dtype: str | None, top: int) -> str:
    """The roofline's summary and slowest layers; for a decoder, prefill vs one decode step on the same hardware."""
    from nbcount.serving_roofline import decoder_problem, serving_if_decoder

    parts = [report.roofline(hardware, dtype).to_text(top=top)]
    if decoder_problem(report) is None:
        serving, why_not = serving_if_decoder(report, [hardware])
        parts.append(serving.to_text() if serving is not None else f"(no serving view: {why_not})")
    return "\n\n".join(parts)


def summary(report: nbcount.Report, depth: int, group: bool = True) -> str:
    """Totals (thousands separators), the tree of subtotals down to `depth`, and the findings."""
    conv = report.convention
    lines = [
        f"total params     {report.total_params:>20,}   (used {report.used_params:,}, trainable "
        f"{report.trainable_params:,})",
        f"total MACs       {report.total_macs:>20,}",
        f"total {conv.unit:<10} {report.headline.value:>20,}   (convention {conv.name}, {report.status})",
        "",
        formats.to_text(layer_table(report, depth, COLUMNS, group=group)),
    ]
    lines += ["", *(f"! {d.message}" for d in report.diagnostics)] if report.diagnostics else []
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
