"""nbcount: how big and how expensive is this network, layer by layer, and why."""

from __future__ import annotations

from nbcount import peers, views  # noqa: F401  (registers the peer conventions; binds the Report's views)
from nbcount.convention import Convention, conventions
from nbcount.counting import CountError, count
from nbcount.derive import Derivation, Step
from nbcount.extension import load_ipython_extension
from nbcount.inputs import InputError
from nbcount.machines import Hardware, get_hardware, hardware
from nbcount.report import Headline, Report, Row
from nbcount.report_diff import ReportDiff, diff

__all__ = ["Convention", "CountError", "Derivation", "Hardware", "Headline", "InputError", "Report", "ReportDiff",
           "Row", "Step", "conventions", "count", "diff", "get_hardware", "hardware", "load_ipython_extension"]
__version__ = "0.1.0"
