"""The settings of %netcount / %%netcount: ``%config NetCount.<name> = value``."""

from __future__ import annotations

from traitlets import Bool, Enum, Int, List, Unicode
from traitlets.config import Configurable


class NetCount(Configurable):
    """Defaults of %netcount / %%netcount, set once with ``%config NetCount.<name> = value``."""

    convention = Unicode("nbcount", help="Convention of the headline FLOPs number (see nbcount.conventions()).").tag(
        config=True)
    units = Enum(["both", "raw", "si"], default_value="both",
                 help="How totals are written: 'both' (11,038,081 (11.04 M)), 'raw' or 'si'.").tag(config=True)
    depth = Int(-1, help="Levels of the layer tree shown expanded at first (-1: as many as fit a screen).").tag(
        config=True)
    columns = List(Unicode(), default_value=[], help="Table columns shown by default ([]: nbcount's choice).").tag(
        config=True)
    dtype = Unicode("float32", help="dtype of the example inputs made from -i sizes.").tag(config=True)
    top = Int(10, help="Bars per chart before the rest is folded into 'others'.").tag(config=True)
    log_scale = Bool(False, help="Start the charts on a logarithmic axis.").tag(config=True)
    widget = Bool(True, help="Show the interactive widget (False: only the static table and chart).").tag(
        config=True)
