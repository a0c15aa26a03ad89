"""The per-layer pandas DataFrame of a Report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from nbcount.report import Report, Row

COLUMNS = ("layer", "call", "type", "depth", "input_shape", "output_shape", "params", "shared", "macs", "flops",
           "param_bytes", "buffer_bytes", "output_bytes", "uncounted")


def _shapes(tensors: Any) -> Any:
    shapes = [t.shape for t in tensors]
    if len(shapes) == 1:
        return shapes[0]
    return shapes if shapes else None


def _record(report: Report, row: Row) -> dict[str, Any]:
    call = row.call
    return {
        "layer": call.path, "call": call.call_index, "type": call.module_type, "depth": call.depth,
        "input_shape": _shapes(call.in_tensors), "output_shape": _shapes(call.out_tensors),
        "params": row.params, "shared": sum(p.numel for p in call.params_shared) > 0 or call.call_index > 0,
        "macs": row.macs, "flops": report.convention.row_value(row),
        "param_bytes": sum(p.nbytes for p in call.params_new), "buffer_bytes": call.buffer_bytes,
        "output_bytes": row.output_bytes, "uncounted": ", ".join(sorted(set(row.uncounted))),
    }


def report_frame(report: Report) -> pd.DataFrame:
    """The table: one row per module call, self costs (children have their own rows)."""
    return pd.DataFrame([_record(report, r) for r in report.rows], columns=list(COLUMNS))
