"""The IPython extension: ``%load_ext nbcount`` registers the magics and the ``NetCount`` settings."""

from __future__ import annotations

from typing import Any

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


def load_ipython_extension(ipython: Any) -> None:
    """Register %netcount / %%netcount and the NetCount configurable on `ipython`."""
    from nbcount.magic import NetCountMagics

    for old in [c for c in ipython.configurables if type(c).__name__ == "NetCount"]:
        ipython.configurables.remove(old)
    settings = NetCount(parent=ipython)
    ipython.configurables.append(settings)
    ipython.register_magics(NetCountMagics(ipython, settings))


def unload_ipython_extension(ipython: Any) -> None:
    """Forget the NetCount settings (the magics stay registered until the shell restarts)."""
    for old in [c for c in ipython.configurables if type(c).__name__ == "NetCount"]:
        ipython.configurables.remove(old)
