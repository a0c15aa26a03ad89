"""Size on disk: the bytes of a saved ``state_dict`` (parameters and persistent buffers), derived.

``torch.save(model.state_dict(), f)`` writes every storage once, at its dtype: parameters (tied ones once,
though the state_dict lists each name) and the buffers registered as persistent (BatchNorm's running
statistics and its int64 step counter; not a non-persistent causal mask). Cast to a dtype, floating tensors
change width and integer buffers keep theirs. The file adds a zip entry per storage and the pickled names:
a few hundred bytes per tensor, not counted here (the payload is what grows with the model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from nbcount.derive import Derivation, Step, given, step, total
from nbcount.serving import DerivedBytes

if TYPE_CHECKING:
    from nbcount.report import Report

_FLOATING = ("float", "bfloat", "complex")


def _itemsize(dtype: Any) -> tuple[int, str]:
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."))
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype such as torch.float16, not {dtype!r}")
    return torch.empty((), dtype=dtype, device="meta").element_size(), str(dtype).removeprefix("torch.")


def _group(label: str, tensors: list[tuple[str, int, int, bool]], cast: tuple[int, str] | None) -> list[Step]:
    """One step per bytes-per-element group: elements·b (tensors: name, numel, itemsize, floating)."""
    groups: dict[tuple[int, str], int] = {}
    for _, numel, itemsize, floating in tensors:
        key = (cast[0], cast[1]) if cast is not None and floating else (itemsize, "as stored")
        groups[key] = groups.get(key, 0) + numel
    steps = [step(f"{label} bytes" + (f" ({how})" if len(groups) > 1 else ""), "n*b", n=n, b=b,
                  note=f"{how}, {b} bytes per element" if how != "as stored" else f"{b} bytes per element")
             for (b, how), n in groups.items()]
    if len(steps) > 1:
        steps.append(total(f"{label} bytes", [(s.label, s.value) for s in steps]))
    return steps or [given(f"{label} bytes", 0)]


def checkpoint_bytes(report: Report, dtype: Any = None) -> DerivedBytes:
    """Bytes of the saved state_dict: parameters (each tensor once) and persistent buffers, at their dtypes or cast."""
    cast = _itemsize(dtype) if dtype is not None else None
    params = [(p.name, p.numel, p.nbytes // max(p.numel, 1), True) for p in report.trace.registered_params]
    buffers = [(b.name, b.numel, b.nbytes // max(b.numel, 1), b.dtype.startswith(_FLOATING))
               for b in report.trace.registered_buffers if b.persistent]
    skipped = [b.name for b in report.trace.registered_buffers if not b.persistent]
    steps: list[Step] = [given("parameters", sum(p[1] for p in params), note="each tensor once")]
    steps += _group("parameter", params, cast)
    param_bytes = steps[-1].value
    tied = [f"{r.layer} reuses {', '.join(p.name for p in r.call.params_shared)}" for r in report.rows
            if r.call.params_shared and r.call.call_index == 0]
    if tied:
        steps.append(given("tied parameters", 0, note="; ".join(tied[:3]) + ": the state_dict lists both names, "
                           "torch.save writes the storage once"))
    note = "persistent buffers" + (f"; not saved (persistent=False): {', '.join(skipped[:3])}" if skipped else "")
    steps.append(given("buffer elements", sum(b[1] for b in buffers), note=note))
    steps += _group("buffer", buffers, cast)
    buffer_bytes = steps[-1].value
    if cast is not None:
        steps.append(given("cast", cast[0], note=f"floating tensors as {cast[1]}; integer buffers keep their dtype"))
    steps.append(total("checkpoint bytes", [("parameter bytes", param_bytes), ("buffer bytes", buffer_bytes)],
                       note="the payload of torch.save(model.state_dict()); the file adds a zip entry per storage and "
                            "the pickled names (a few hundred bytes per tensor)"))
    title = "Checkpoint size (state_dict)" + (f" cast to {cast[1]}" if cast else "")
    return DerivedBytes(Derivation(title, tuple(steps), "bytes"))
