"""The per-layer pandas DataFrame of a Report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from nbcount.subtotals import Figures, figures

if TYPE_CHECKING:
    from nbcount.report import Report, Row

COLUMNS = ("layer", "call", "type", "depth", "input_shape", "output_shape", "params", "params_incl", "shared",
           "buffers", "macs", "macs_incl", "flops", "flops_incl", "param_bytes", "buffer_bytes", "output_bytes", "rf",
           "jump", "start", "uncounted")


def _shapes(tensors: Any) -> Any:
    shapes = [t.shape for t in tensors]
    if len(shapes) == 1:
        return shapes[0]
    return shapes if shapes else None


def _record(report: Report, row: Row, field: Any, sums: Figures, k: int) -> dict[str, Any]:
    call = row.call
    return {
        "layer": call.path, "call": call.call_index, "type": call.module_type, "depth": call.depth,
        "input_shape": _shapes(call.in_tensors), "output_shape": _shapes(call.out_tensors),
        "params": sums.params[k], "params_incl": sums.params_incl[k],
        "shared": sum(p.numel for p in call.params_shared) > 0 or call.call_index > 0,
        "buffers": sum(b.numel for b in call.buffers_new),
        "macs": sums.macs[k], "macs_incl": sums.macs_incl[k],
        "flops": sums.headline[k], "flops_incl": sums.headline_incl[k],  # renamed by unit in _named_by_unit
        "param_bytes": sum(p.nbytes for p in call.params_new), "buffer_bytes": call.buffer_bytes,
        "output_bytes": row.output_bytes, "rf": field.rf if field else None, "jump": field.jump if field else None,
        "start": field.start if field else None, "uncounted": ", ".join(sorted(set(row.uncounted))),
    }


def report_frame(report: Report) -> pd.DataFrame:
    """The table: one row per module call; params / macs / flops are the call's own (self) figures, the
    ``*_incl`` columns add every call made inside it (the root's equal the totals).

    The convention's column is named by its unit (``Convention.column``): ``flops`` under a FLOP convention,
    ``macs_fvcore`` under fvcore's MACs; under nbcount's ``macs`` convention the ``macs`` column is its number."""
    fields: dict[int, Any] = report.receptive_field or {}  # rf / jump / start per row
    sums = figures(report)
    records = [_record(report, r, fields.get(k), sums, k) for k, r in enumerate(report.rows)]
    frame = pd.DataFrame(records, columns=list(COLUMNS))
    for column in ("rf", "jump", "start"):  # ints, per-axis tuples or None: keep them as they are
        frame[column] = pd.Series([rec[column] for rec in records], index=frame.index, dtype=object)
    return _named_by_unit(frame, report.convention.column)


def _named_by_unit(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    if key == "flops":
        return frame
    if key == "macs":  # nbcount's MAC convention: its numbers are the macs columns
        return frame.drop(columns=["flops", "flops_incl"])
    return frame.rename(columns={"flops": key, "flops_incl": key + "_incl"})
