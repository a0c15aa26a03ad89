"""Binds the Report's convenience methods to the views that implement them.

Every view is a function of a finished Report, in its own module; ``Report.derive()`` and the rest are thin
delegations through ``nbcount.report.VIEWS``, filled here, so the Report imports none of its views. A new view
that deserves a method: write the function in its module, bind it below, add the one-line method to Report.
"""

from __future__ import annotations

from nbcount import (
    analysis,
    charts,
    checkpoint,
    compare,
    display,
    explain,
    export,
    frame,
    roofline,
    scaling,
    serving,
    serving_roofline,
    training_memory,
)
from nbcount.report import VIEWS

VIEWS.update(
    recount=analysis.recount,
    table=frame.report_frame,
    derive=explain.derive,
    compare=compare.compare,
    to_csv=export.to_csv,
    to_markdown=export.to_markdown,
    to_latex=export.to_latex,
    to_json=export.to_json,
    mimebundle=export.mimebundle,
    show=display.widget,
    chart=charts.chart,
    training_memory=training_memory.training_memory,
    kv_cache_bytes=serving.kv_cache_bytes,
    checkpoint_bytes=checkpoint.checkpoint_bytes,
    roofline=roofline.roofline,
    scaling=scaling.scaling,
    serving_roofline=serving_roofline.serving_roofline,
)
