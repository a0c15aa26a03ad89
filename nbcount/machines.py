"""Hardware as cited data: dense peak FLOP/s per dtype, memory bandwidth and size, and the data sheet they come from.

Peaks are *dense* (no 2:4 structured sparsity): NVIDIA's data sheets print tensor-core throughput with sparsity
(marked *), so the dense figure is half of it; where the architecture white paper prints the dense figure we use it
as printed. Memory size is the data sheet's "GB" figure read as 10^9 bytes. ``"this CPU"`` is measured on the spot by
a matmul and a copy microbenchmark, once per process. fp64 is the tensor / matrix-core peak where there is one.
fp32 models run at the fp32 peak (PyTorch leaves TF32 matmuls off by default): pass ``dtype="tf32"`` for TF32.
"""

from __future__ import annotations

import functools
import os
import platform
import time
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    import pandas as pd

#: Peak columns, in the order shown; ``dtype_key`` maps a tensor dtype to one of them.
PEAK_KEYS = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")
_DTYPE_KEYS = {"float64": "fp64", "float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "int8": "int8",
               "uint8": "int8", "float8_e4m3fn": "fp8", "float8_e5m2": "fp8", "float8_e4m3fnuz": "fp8",
               "float8_e5m2fnuz": "fp8"}
_ALIASES = {"fp32": "fp32", "float": "fp32", "tf32": "tf32", "bf16": "bf16", "half": "fp16", "fp16": "fp16",
            "fp8": "fp8", "int8": "int8", "fp64": "fp64", "double": "fp64"}


def seconds(value: float) -> str:
    """A duration with its unit: 4.02 ms, 12.3 µs, 1.5 s."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def si(value: float) -> str:
    """A number with an SI prefix and a trailing space: 3.35e12 -> "3.35 T", 512 -> "512 "."""
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{value:.3g} "


def dtype_key(dtype: Any) -> str:
    """The peak column a dtype runs at: torch.bfloat16 / "bfloat16" / "bf16" -> "bf16"; other dtypes -> "fp32"."""
    name = str(dtype).removeprefix("torch.").lower()
    return _ALIASES.get(name) or _DTYPE_KEYS.get(name, "fp32")


@dataclass(frozen=True)
class Peak:
    """The peak FLOP/s an op runs at on some hardware, and why this one (a fallback is said in `note`)."""

    key: str
    flops_per_s: float
    note: str = ""


@dataclass(frozen=True)
class Hardware:
    """One accelerator: dense peak FLOP/s per dtype (None where the data sheet lists none), bandwidth, memory."""

    name: str
    bandwidth_bytes_per_s: float
    fp32_flops_per_s: float
    memory_bytes: float | None = None
    fp64_flops_per_s: float | None = None
    tf32_flops_per_s: float | None = None
    bf16_flops_per_s: float | None = None
    fp16_flops_per_s: float | None = None
    fp8_flops_per_s: float | None = None
    int8_ops_per_s: float | None = None
    source: str = "given by the user"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_per_s") and value is not None and not value > 0:
                raise ValueError(f"Hardware {self.name!r}: {f.name} must be a positive number, not {value!r}")

    def _column(self, key: str) -> float | None:
        value: float | None = getattr(self, "int8_ops_per_s" if key == "int8" else f"{key}_flops_per_s")
        return value

    def peak(self, dtype: Any, vector: bool = False) -> Peak:
        """Dense matrix peak for a dtype (torch dtype or "fp32", "tf32", "bf16", ...); fp32's when none is listed.

        vector: the peak of arithmetic that is not a multiply-accumulate (norms, activations, softmax), which runs
        on the vector units, not the tensor cores: the fp32 peak (conservative: some GPUs run bf16 vector math 2×).
        """
        if vector:
            return Peak("vector", self.fp32_flops_per_s, "not a multiply-accumulate: vector units at the fp32 peak")
        key = dtype_key(dtype)
        value = self._column(key)
        if value is not None:
            return Peak(key, value)
        note = f"{self.name} lists no {key} peak: its fp32 peak is used"
        return Peak("fp32", self.fp32_flops_per_s, note)

    def ridge(self, dtype: Any) -> float:
        """The ridge point in FLOPs per byte: peak / bandwidth. Layers below it are memory-bound."""
        return self.peak(dtype).flops_per_s / self.bandwidth_bytes_per_s

    def record(self) -> dict[str, Any]:
        """The fields as a plain dict (one DataFrame row, JSON-ready)."""
        return asdict(self)

    def to_text(self) -> str:
        """The peaks, bandwidth, ridge points and source in a few lines."""
        peaks = ", ".join(f"{key} {si(value)}FLOP/s" for key in PEAK_KEYS if (value := self._column(key)))
        ridges = ", ".join(f"{key} {self.ridge(key):,.1f}" for key in PEAK_KEYS if self._column(key))
        memory = f", {si(self.memory_bytes)}B memory" if self.memory_bytes else ""
        return (f"{self.name}: {si(self.bandwidth_bytes_per_s)}B/s{memory}\n  dense peaks: {peaks}\n"
                f"  ridge points (FLOPs per byte): {ridges}\n  source: {self.source}")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from nbcount.render import text_bundle

        return text_bundle(self.to_text())


_NV = "NVIDIA {} data sheet, {} (dense = the sparsity figure / 2)"
PRESETS: tuple[Hardware, ...] = (
    Hardware("A100-SXM-80GB", 2.039e12, 19.5e12, memory_bytes=80e9, fp64_flops_per_s=19.5e12, tf32_flops_per_s=156e12,
             bf16_flops_per_s=312e12, fp16_flops_per_s=312e12, int8_ops_per_s=624e12,
             source=_NV.format("A100 Tensor Core GPU", "https://www.nvidia.com/content/dam/en-zz/Solutions/"
                               "Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf")
             + "; HBM2e 2,039 GB/s; no fp8 tensor cores"),
    Hardware("H100-SXM", 3.35e12, 66.9e12, memory_bytes=80e9, fp64_flops_per_s=66.9e12, tf32_flops_per_s=494.7e12,
             bf16_flops_per_s=989.4e12, fp16_flops_per_s=989.4e12, fp8_flops_per_s=1978.9e12,
             int8_ops_per_s=1978.9e12,
             source="NVIDIA H100 Tensor Core GPU data sheet (https://resources.nvidia.com/en-us-tensor-core/"
                    "nvidia-tensor-core-gpu-datasheet): HBM3 3.35 TB/s, 80 GB; dense peaks as printed in the NVIDIA "
                    "H100 Tensor Core GPU Architecture white paper, table 'H100 SXM5'"),
    Hardware("H100-PCIe", 2.0e12, 51.2e12, memory_bytes=80e9, fp64_flops_per_s=51.2e12, tf32_flops_per_s=378e12,
             bf16_flops_per_s=756e12, fp16_flops_per_s=756e12, fp8_flops_per_s=1513e12, int8_ops_per_s=1513e12,
             source="NVIDIA H100 Tensor Core GPU data sheet (https://resources.nvidia.com/en-us-tensor-core/"
                    "nvidia-tensor-core-gpu-datasheet): HBM2e 2 TB/s, 80 GB; dense peaks as printed in the NVIDIA "
                    "H100 Tensor Core GPU Architecture white paper, table 'H100 PCIe'"),
    Hardware("H200", 4.8e12, 66.9e12, memory_bytes=141e9, fp64_flops_per_s=66.9e12, tf32_flops_per_s=494.7e12,
             bf16_flops_per_s=989.4e12, fp16_flops_per_s=989.4e12, fp8_flops_per_s=1978.9e12,
             int8_ops_per_s=1978.9e12,
             source="NVIDIA H200 Tensor Core GPU data sheet (https://www.nvidia.com/en-us/data-center/h200/): "
                    "H200 SXM, HBM3e 4.8 TB/s, 141 GB; same GH100 compute as H100 SXM (dense = sparsity figure / 2)"),
    Hardware("L4", 300e9, 30.3e12, memory_bytes=24e9, tf32_flops_per_s=60e12, bf16_flops_per_s=121e12,
             fp16_flops_per_s=121e12, fp8_flops_per_s=242.5e12, int8_ops_per_s=242.5e12,
             source=_NV.format("L4 Tensor Core GPU", "https://www.nvidia.com/en-us/data-center/l4/")
             + "; GDDR6 300 GB/s, 24 GB"),
    Hardware("A10", 600e9, 31.2e12, memory_bytes=24e9, tf32_flops_per_s=62.5e12, bf16_flops_per_s=125e12,
             fp16_flops_per_s=125e12, int8_ops_per_s=250e12,
             source=_NV.format("A10 Tensor Core GPU", "https://www.nvidia.com/en-us/data-center/products/a10-gpu/")
             + "; GDDR6 600 GB/s, 24 GB"),
    Hardware("T4", 320e9, 8.1e12, memory_bytes=16e9, fp16_flops_per_s=65e12, int8_ops_per_s=130e12,
             source="NVIDIA T4 Tensor Core GPU data sheet (https://www.nvidia.com/en-us/data-center/tesla-t4/): "
                    "FP16 mixed precision 65 TFLOPS, GDDR6 320 GB/s, 16 GB; no bf16 / tf32 tensor cores"),
    Hardware("RTX-4090", 1.008e12, 82.6e12, memory_bytes=24e9, tf32_flops_per_s=82.6e12, bf16_flops_per_s=165.2e12,
             fp16_flops_per_s=165.2e12, fp8_flops_per_s=330.3e12, int8_ops_per_s=660.6e12,
             source="NVIDIA Ada Lovelace GPU Architecture white paper, appendix table 'GeForce RTX 4090': dense "
                    "tensor peaks with FP32 accumulate (PyTorch's default), GDDR6X 1,008 GB/s, 24 GB"),
    Hardware("MI300X", 5.3e12, 163.4e12, memory_bytes=192e9, fp64_flops_per_s=163.4e12, tf32_flops_per_s=653.7e12,
             bf16_flops_per_s=1307.4e12, fp16_flops_per_s=1307.4e12, fp8_flops_per_s=2614.9e12,
             int8_ops_per_s=2614.9e12,
             source="AMD Instinct MI300X accelerator data sheet (https://www.amd.com/en/products/accelerators/"
                    "instinct/mi300/mi300x.html): dense peaks, HBM3 5.3 TB/s, 192 GB"),
)
_ALIASES_HW = {"a100": "A100-SXM-80GB", "h100": "H100-SXM", "h100-sxm5": "H100-SXM", "h200-sxm": "H200",
               "4090": "RTX-4090", "cpu": "this CPU"}


def _best_seconds(fn: Any, repeats: int) -> float:
    fn()  # warm-up: allocation, thread pool start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _matmul_flops_per_s(dtype: torch.dtype, n: int, repeats: int) -> float:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    return 2 * n**3 / _best_seconds(lambda: torch.mm(a, b), repeats)


def _copy_bytes_per_s(n_bytes: int, repeats: int) -> float:
    src = torch.ones(n_bytes // 4)
    dst = torch.empty_like(src)
    return 2 * n_bytes / _best_seconds(lambda: dst.copy_(src), repeats)  # each byte read once, written once


def _total_memory() -> float | None:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


@functools.lru_cache(maxsize=1)
def this_cpu(matmul_size: int = 512, copy_bytes: int = 64 * 2**20, repeats: int = 5) -> Hardware:
    """This machine's CPU, measured once per process: best of `repeats` n×n matmuls (2·n³ FLOPs) and copies.

    bf16 is measured at n/2 (CPUs without bf16 matrix units run it ~10× slower than fp32); ~0.3 s in all.
    """
    threads = torch.get_num_threads()
    fp32 = _matmul_flops_per_s(torch.float32, matmul_size, repeats)
    bf16 = _matmul_flops_per_s(torch.bfloat16, matmul_size // 2, repeats)
    bandwidth = _copy_bytes_per_s(copy_bytes, repeats)
    cpu = platform.processor() or platform.machine()
    source = (f"measured here ({cpu}, {threads} torch threads): best of {repeats} torch.mm of n×n matrices "
              f"(2·n³ FLOPs; fp32 n={matmul_size}, bf16 n={matmul_size // 2}) and of {repeats} copies of "
              f"{copy_bytes // 2**20} MiB (read + write); a busy machine measures below its peak")
    return Hardware("this CPU", bandwidth, fp32, memory_bytes=_total_memory(), bf16_flops_per_s=bf16, source=source)


def presets(measure_cpu: bool = True) -> tuple[Hardware, ...]:
    """The cited presets, then "this CPU" (measured) when `measure_cpu`."""
    return PRESETS + ((this_cpu(),) if measure_cpu else ())


def get_hardware(hardware: str | Hardware) -> Hardware:
    """A preset by name (case-insensitive; "H100" means H100-SXM, "cpu" this CPU), or a Hardware as it is."""
    if isinstance(hardware, Hardware):
        return hardware
    if not isinstance(hardware, str):
        raise TypeError(f"hardware must be a preset name or nbcount.Hardware, not {type(hardware).__name__}")
    wanted = _ALIASES_HW.get(hardware.lower(), hardware).lower()
    if wanted == "this cpu":
        return this_cpu()
    for preset in PRESETS:
        if preset.name.lower() == wanted:
            return preset
    names = ", ".join([p.name for p in PRESETS] + ["this CPU"])
    raise ValueError(f"unknown hardware {hardware!r}; presets: {names}; or pass nbcount.Hardware(name, "
                     "bandwidth_bytes_per_s=..., fp32_flops_per_s=..., bf16_flops_per_s=..., source=...)")


def hardware(measure_cpu: bool = True) -> pd.DataFrame:
    """Every preset as a DataFrame: name, dense peak FLOP/s per dtype, bandwidth, memory and source."""
    import pandas as pd

    order = ["name", *(f"{k}_flops_per_s" if k != "int8" else "int8_ops_per_s" for k in PEAK_KEYS),
             "bandwidth_bytes_per_s", "memory_bytes", "source"]
    return pd.DataFrame([h.record() for h in presets(measure_cpu)], columns=order)
