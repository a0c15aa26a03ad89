"""nbcount: how big and how expensive is this network, layer by layer, and why."""

from __future__ import annotations

from nbcount import peers, views  # noqa: F401  (registers the peer conventions; binds the Report's views)
from nbcount.conventions import Convention, conventions
from nbcount.count import CountError, count
from nbcount.derive import Derivation, Step
from nbcount.diff import ReportDiff, diff
from nbcount.extension import load_ipython_extension
from nbcount.hardware import Hardware, get_hardware, hardware
from nbcount.inputs import InputError
from nbcount.report import Headline, Report, Row

__all__ = ["Convention", "CountError", "Derivation", "Hardware", "Headline", "InputError", "Report", "ReportDiff",
           "Row", "Step", "conventions", "count", "diff", "get_hardware", "hardware", "load_ipython_extension"]
__version__ = "0.1.0"
