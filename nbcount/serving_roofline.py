"""LLM serving on the roofline: prefill of a prompt against one decode step, per hardware.

The prefill is the model counted on the prompt, (B, T) token ids. A decode step is the model counted on one token
per sequence plus what the trace of one token cannot show: reading the KV cache of the T tokens before it (K and V
of every attention layer, ``nbcount.serving.kv_cache_bytes``), attending over them (q·kᵀ and p·v: 4·B·H·d·T FLOPs
per layer, softmax 5·B·H·T) and appending the new token's K and V. Decoding reads every weight to make B tokens, so
it sits far below the ridge point: memory-bound; prefill reuses each weight for B·T tokens: compute-bound.

Per phase: ``time_s`` is the roofline time layer after layer with no fusion (as ``Report.roofline``);
``best_time_s`` = max(all arithmetic at peak, the fused bytes — weights, cache and activations once — at full
bandwidth), so ``tokens_per_s_max`` = tokens / best_time_s is an upper bound on throughput for that hardware.
MFU = F / (t · P) and MBU = fused bytes / (t · BW) for a measured step time t.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from nbcount.again import count_at
from nbcount.derive import Derivation, Step, given, step
from nbcount.machines import Hardware, dtype_key, get_hardware
from nbcount.roofline import Roofline, roofline
from nbcount.serving import AttentionSite, attention_sites, kv_cache_bytes, layer_dtype
from nbcount.serving_derive import Utilisation

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from nbcount.report import Report

DEFAULT_HARDWARE = ("A100-SXM-80GB", "H100-SXM", "H200", "L4")
COLUMNS = ("hardware", "phase", "tokens", "flops", "bytes", "fused_bytes", "intensity", "bound", "time_s",
           "best_time_s", "tokens_per_s_max")


@dataclass(frozen=True)
class CacheCost:
    """What a decode step adds to the one-token count: the KV-cache read, the append, attention over the cache."""

    read: Derivation  # bytes of K and V for the T cached tokens
    append_bytes: int  # the new token's K and V written
    matrix_flops: int  # q·kᵀ and p·v over the cached tokens
    vector_flops: int  # softmax over the cached tokens
    steps: tuple[Step, ...]
    dtype: str | None  # the cache's peak column when given (kv_dtype), else the step's main matrix dtype

    @property
    def nbytes(self) -> int:
        """Cache bytes read plus appended."""
        return int(self.read.value) + self.append_bytes


def _cache_cost(report: Report, sites: list[AttentionSite], context: int, batch: int, kv_dtype: Any,
                n_kv_heads: int | None) -> CacheCost:
    """K and V of `context` tokens read, one token's appended, and attention over them, each as steps.

    The cache is stored in the attention layer's input dtype unless `kv_dtype` says otherwise (a math-path
    attention may upcast K to fp32 for its product; the cache does not).
    """
    lost = next((s for s in sites if not (s.k_width and s.v_width)), None)
    if lost is not None and n_kv_heads is None:
        raise ValueError(f"the key / value width cached per token was not found in the trace of {lost.layer!r} "
                         f"({lost.heads} heads of {lost.head_dim}): give n_kv_heads= (the K/V heads per layer)")
    stored = kv_dtype if kv_dtype is not None else layer_dtype(report, sites[0].layer)
    read = kv_cache_bytes(report, context, batch, stored, n_kv_heads=n_kv_heads).derivation
    itemsize = next(s.value for s in read.steps if s.label == "bytes per element b")
    first = sites[0]
    width = (2 * len(sites) * n_kv_heads * first.head_dim if n_kv_heads is not None
             else sum(s.k_width + s.v_width for s in sites))  # K + V elements per token, all layers
    matrix = sum(4 * batch * s.heads * s.head_dim * context for s in sites)
    vector = sum(5 * batch * s.heads * context for s in sites)
    uniform = all((s.heads, s.head_dim) == (first.heads, first.head_dim) for s in sites)
    steps = [*read.steps,
             step("KV append bytes", "W*B*b", W=width, B=batch, b=itemsize, note="the new token's K and V, all layers"),
             step("attention over the cache FLOPs", "L*(4*B*H*d*T + 5*B*H*T)", L=len(sites), B=batch, H=first.heads,
                  d=first.head_dim, T=context, note="q·kᵀ and p·v: 2 FLOPs per MAC; softmax 5 per score")
             if uniform else given("attention over the cache FLOPs", matrix + vector, note="layers differ: Σ")]
    return CacheCost(read, width * batch * int(itemsize), matrix, vector, tuple(steps),
                     dtype_key(kv_dtype) if kv_dtype is not None else None)


@dataclass(frozen=True)
class PhaseCost:
    """One phase on one hardware: the counted step's roofline plus, for decode, the cache's cost."""

    hardware: Hardware
    phase: str
    tokens: int
    view: Roofline
    cache: CacheCost | None

    @property
    def flops(self) -> int:
        """Real FLOPs of the step (with attention over the cache for decode)."""
        extra = self.cache.matrix_flops + self.cache.vector_flops if self.cache else 0
        return self.view.total_flops + extra

    @property
    def nbytes(self) -> int:
        """Bytes moved with no fusion (with the cache read and append for decode)."""
        return self.view.total_bytes + (self.cache.nbytes if self.cache else 0)

    @property
    def fused_bytes(self) -> int:
        """Bytes with each layer fused: weights, cache and activations once."""
        fused = sum(lay.traffic.fused_bytes for lay in self.view.layers)
        return fused + (self.cache.nbytes if self.cache else 0)

    @property
    def cache_compute_s(self) -> float:
        """Attention over the cache at peak: matrix FLOPs at the step's main matrix dtype, softmax at the vector."""
        if self.cache is None:
            return 0.0
        flops: dict[str, int] = {}
        for lay in self.view.layers:
            for peak, n in lay.compute:
                if peak.key != "vector":
                    flops[peak.key] = flops.get(peak.key, 0) + n
        key = self.cache.dtype or max(flops, key=lambda k: flops[k], default="fp32")
        return (self.cache.matrix_flops / self.hardware.peak(key).flops_per_s
                + self.cache.vector_flops / self.hardware.peak(key, vector=True).flops_per_s)

    @property
    def compute_s(self) -> float:
        """All arithmetic at peak: Σ layers' F/P, plus the attention over the cache."""
        return sum(lay.compute_s for lay in self.view.layers) + self.cache_compute_s

    @property
    def time_s(self) -> float:
        """Roofline time layer after layer with no fusion; the cache attention as one more layer."""
        if self.cache is None:
            return self.view.total_time_s
        cache_memory_s = self.cache.nbytes / self.hardware.bandwidth_bytes_per_s
        return self.view.total_time_s + max(self.cache_compute_s, cache_memory_s)

    @property
    def best_time_s(self) -> float:
        """max(all arithmetic at peak, fused bytes at full bandwidth): no step can be faster on this hardware."""
        return max(self.compute_s, self.fused_bytes / self.hardware.bandwidth_bytes_per_s)

    @property
    def bound(self) -> str:
        """Which side sets best_time_s."""
        return "compute" if self.compute_s >= self.fused_bytes / self.hardware.bandwidth_bytes_per_s else "memory"

    def record(self) -> dict[str, Any]:
        """One table row."""
        return {"hardware": self.hardware.name, "phase": self.phase, "tokens": self.tokens, "flops": self.flops,
                "bytes": self.nbytes, "fused_bytes": self.fused_bytes, "intensity": self.flops / self.fused_bytes,
                "bound": self.bound, "time_s": self.time_s, "best_time_s": self.best_time_s,
                "tokens_per_s_max": self.tokens / self.best_time_s}


@dataclass(frozen=True)
class ServingRoofline:
    """Prefill of the prompt and one decode step of a decoder, on each hardware."""

    prefill: Report
    decode: Report
    prompt_len: int
    context_len: int
    batch: int
    phases: tuple[PhaseCost, ...]

    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per (hardware, phase): FLOPs, bytes, fused bytes, bound, times and tokens/s at most."""
        import pandas as pd

        return pd.DataFrame([p.record() for p in self.phases], columns=list(COLUMNS))

    def phase(self, phase: str = "decode", hardware: str | Hardware | None = None) -> PhaseCost:
        """The cost of 'prefill' or 'decode' on one hardware (the first when None)."""
        if phase not in ("prefill", "decode"):
            raise ValueError(f"phase must be 'prefill' or 'decode', not {phase!r}")
        name = get_hardware(hardware).name if hardware is not None else self.phases[0].hardware.name
        for p in self.phases:
            if p.phase == phase and p.hardware.name == name:
                return p
        shown = ", ".join(dict.fromkeys(p.hardware.name for p in self.phases))
        raise ValueError(f"{name} is not in this view: {shown}")

    def derive(self, phase: str = "decode", hardware: str | Hardware | None = None) -> Derivation:
        """Tokens, FLOPs, bytes (with the KV cache for decode), the times and the tokens/s bound, worked out."""
        from nbcount.serving_derive import derive_phase

        return derive_phase(self, self.phase(phase, hardware))

    def utilisation(self, measured_s: float, phase: str = "decode",
                    hardware: str | Hardware | None = None) -> Utilisation:
        """MFU = F / (t·P) and MBU = fused bytes / (t·BW) for a step that took `measured_s` seconds."""
        from nbcount.serving_derive import utilisation

        return utilisation(self.phase(phase, hardware), measured_s)

    def to_text(self) -> str:
        """The table as plain text with units."""
        from nbcount.serving_derive import serving_text

        return serving_text(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from nbcount.render import text_bundle

        return text_bundle(self.to_text())


def _token_shapes(report: Report, batch: int, tokens: int) -> tuple[list[tuple[int, ...]], list[Any]]:
    import torch

    inputs = report.trace.input_tensors
    b0, t0 = inputs[0].shape[0], inputs[0].shape[-1]
    shapes = []
    for t in inputs:
        shape = list(t.shape)
        if shape and shape[0] == b0:
            shape[0] = batch
        if len(shape) > 1 and shape[-1] == t0:
            shape[-1] = tokens
        shapes.append(tuple(shape))
    return shapes, [getattr(torch, t.dtype) for t in inputs]


def decoder_problem(report: Report) -> str | None:
    """Why `report` cannot have a serving view (None: it was counted on (batch, tokens) token ids and can)."""
    inputs = report.trace.input_tensors
    if not inputs or len(inputs[0].shape) != 2 or inputs[0].dtype.startswith(
            ("float", "bfloat", "complex")):
        return ("the serving view needs a decoder counted on (batch, tokens) token ids by nbcount.count(), "
                "e.g. nbcount.count(model, (1, 512), dtype=torch.long)")
    return None


def serving_roofline(report: Report, hardware: str | Hardware | Sequence[str | Hardware] = DEFAULT_HARDWARE,
                     prompt_len: int | None = None, context_len: int | None = None, batch: int | None = None,
                     kv_dtype: Any = None, n_kv_heads: int | None = None,
                     model: nn.Module | None = None) -> ServingRoofline:
    """Prefill of `prompt_len` tokens and one decode step after `context_len` tokens (default: the prompt),
    counting `model` (by default the one `report` counted) again at those lengths.

    The attention layers, their heads and the K/V width per token are found in the trace (n_kv_heads=: given).
    """
    problem = decoder_problem(report)
    if problem is not None:
        raise ValueError(problem)
    b0, t0 = report.trace.input_tensors[0].shape
    batch, prompt_len = batch or b0, prompt_len or t0
    context_len = context_len if context_len is not None else prompt_len
    again = count_at(report, model)
    shapes, dtypes = _token_shapes(report, batch, prompt_len)
    prefill = report if (batch, prompt_len) == (b0, t0) else again(shapes, dtypes)
    decode = again(_token_shapes(report, batch, 1)[0], dtypes)
    found = next(((r, sites) for r in (prefill, decode) if (sites := attention_sites(r))), None)
    if found is None:
        raise ValueError("no attention found in the counted forward pass: the serving view is for decoders")
    cache = _cache_cost(found[0], found[1], context_len, batch, kv_dtype, n_kv_heads)
    machines = [hardware] if isinstance(hardware, (str, Hardware)) else list(hardware)
    phases = []
    for machine in map(get_hardware, machines):
        phases.append(PhaseCost(machine, "prefill", batch * prompt_len, roofline(prefill, machine), None))
        phases.append(PhaseCost(machine, "decode", batch, roofline(decode, machine), cache))
    return ServingRoofline(prefill, decode, prompt_len, context_len, batch, tuple(phases))


def serving_if_decoder(report: Report, hardware: str | Hardware | Sequence[str | Hardware] = DEFAULT_HARDWARE,
                       **options: Any) -> tuple[ServingRoofline | None, str]:
    """The serving view when `report` is a decoder's, else (None, why not): for views that show it where it applies.

    A failure of the decode count is said in the reason, never raised.
    """
    problem = decoder_problem(report)
    if problem is not None:
        return None, problem
    try:
        return serving_roofline(report, hardware=hardware, **options), ""
    except Exception as error:  # a view must not fail for a model the serving view does not fit
        return None, f"{type(error).__name__}: {error}"
