"""The tools nbcount is measured against, each as `run(model, x) -> (headline number, unit)`.

Every runner does what a user of that tool types for one model and one input, silenced (no printing),
on the model's real weights (every peer runs the real arithmetic). A peer that is not installed is
skipped; a peer that fails on a model is reported with its error, never hidden.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

import torch
from torch import nn

Runner = Callable[[nn.Module, torch.Tensor], tuple[int, str]]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No stdout, stderr, warnings or log records from the tool being timed."""
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.CRITICAL)
        try:
            yield
        finally:
            logging.disable(previous)


def forward(model: nn.Module, x: torch.Tensor) -> tuple[int, str]:
    """A plain inference forward pass: the cost every hook-based peer pays at least once."""
    with torch.no_grad():
        model(x)
    return 0, ""


def flop_counter(model: nn.Module, x: torch.Tensor) -> tuple[int, str]:
    """torch.utils.flop_counter.FlopCounterMode around a no_grad forward."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops()), "FLOPs"


def torchinfo(model: nn.Module, x: torch.Tensor) -> tuple[int, str]:
    """torchinfo.summary(model, input_data=x, verbose=0)."""
    import torchinfo as ti

    stats = ti.summary(model, input_data=[x], verbose=0, device=x.device)
    return int(stats.total_mult_adds), "MACs"


def thop(model: nn.Module, x: torch.Tensor) -> tuple[int, str]:
    """thop.profile(model, inputs=(x,))."""
    import thop as th

    macs, _ = th.profile(model, inputs=(x,), verbose=False)
    return int(macs), "MACs"


def ptflops(model: nn.Module, x: torch.Tensor) -> tuple[int, str]:
    """ptflops.get_model_complexity_info with its default (pytorch hooks) backend."""
    from ptflops import get_model_complexity_info

    macs, _ = get_model_complexity_info(model, tuple(x.shape[1:]), input_constructor=lambda _: x,
                                        as_strings=False, print_per_layer_stat=False, ost=io.StringIO())
    return int(macs or 0), "MACs"


def fvcore(model: nn.Module, x: torch.Tensor) -> tuple[int, str]:
    """fvcore.nn.FlopCountAnalysis(model, x).total() (a torch.jit trace)."""
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, (x,)).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(analysis.total()), "MACs"


def torchscan(model: nn.Module, x: torch.Tensor) -> tuple[int, str]:
    """torchscan.crawl_module(model, args=(x,)) (what torchscan.summary prints)."""
    import torchscan as ts

    info = ts.crawl_module(model, args=(x,))
    if isinstance(info, dict) and "totals" in info:  # torchscan >= 0.2: a JSON-like report
        return int(info["totals"]["module_flops"]["known_value"] or 0), "FLOPs"
    overall = info["overall"]  # torchscan 0.1
    return int(overall["flops"]), "FLOPs"


def calflops(model: nn.Module, x: torch.Tensor) -> tuple[int, str]:
    """calflops.calculate_flops(model, args=[x])."""
    from calflops import calculate_flops

    flops, _, _ = calculate_flops(model, args=[x], print_results=False, print_detailed=False,
                                  output_as_string=False)
    return int(flops), "FLOPs"


#: name -> (distribution to look up, runner); the order of the columns in RESULTS.md
PEERS: dict[str, tuple[str, Runner]] = {
    "FlopCounterMode": ("torch", flop_counter),
    "torchinfo": ("torchinfo", torchinfo),
    "thop": ("thop", thop),
    "ptflops": ("ptflops", ptflops),
    "fvcore": ("fvcore", fvcore),
    "torchscan": ("torchscan", torchscan),
    "calflops": ("calflops", calflops),
}


def version(distribution: str) -> str | None:
    """The installed version of `distribution`, or None."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def installed() -> dict[str, Runner]:
    """The peers that can be imported here, in column order."""
    return {name: fn for name, (dist, fn) in PEERS.items() if version(dist) is not None}


def versions() -> dict[str, str]:
    """Versions of torch, nbcount's dependencies and every installed peer."""
    names = ["torch", "pandas", "ipywidgets", "numpy"] + [d for d, _ in PEERS.values() if d != "torch"]
    return {n: v for n in names if (v := version(n)) is not None}


def run_quietly(fn: Runner, model: nn.Module, x: torch.Tensor) -> Any:
    """fn(model, x) with the tool's output silenced."""
    with quiet():
        return fn(model, x)
