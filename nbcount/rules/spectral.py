"""Fast Fourier transforms (torch.fft): the usual 5·N·log₂N FLOPs of a complex FFT of length N.

FLOP counts of FFTs are conventions, not kernel facts: the radix-2 count is 5·N·log₂N for a complex
transform (FFTW's "mflops" use it), half of that for a real one (r2c, c2r). n is the number of points
transformed, L the length of one transform (the product of the transformed dimensions).
"""

from __future__ import annotations

import math

import torch

from nbcount.derive import step
from nbcount.rules.registry import Cost, op_rule
from nbcount.types import OpEvent, TensorMeta, Term

aten = torch.ops.aten


def _length(signal: TensorMeta, dims: object) -> int:
    picked = dims if isinstance(dims, (tuple, list)) else (dims,)
    return math.prod(signal.shape[int(d)] for d in picked) if picked else 1


@op_rule(aten._fft_c2c)
def fft_c2c(op: OpEvent) -> Cost:
    """Complex FFT: 5·n·log₂L."""
    x = op.args[0]
    length = _length(x, op.args[1])
    return (step("FFT ops", "floor(5*n*log2_L)", term=Term.ELEMENTWISE, n=x.numel, log2_L=math.log2(max(length, 1)),
                 note=f"transforms of length L = {length}"),)


@op_rule(aten._fft_r2c, aten._fft_c2r)
def fft_real(op: OpEvent) -> Cost:
    """Real FFT (r2c) or its inverse (c2r): 2.5·n·log₂L, n the real signal's points."""
    signal = op.args[0] if op.op == "aten._fft_r2c" else op.outputs[0]
    length = _length(signal, op.args[1])
    return (step("FFT ops", "floor(5*n*log2_L/2)", term=Term.ELEMENTWISE, n=signal.numel,
                 log2_L=math.log2(max(length, 1)), note=f"transforms of length L = {length}"),)
