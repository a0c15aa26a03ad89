"""The IPython extension: ``%load_ext nbcount`` registers the magics and the ``NetCount`` settings."""

from __future__ import annotations

from typing import Any

from nbcount.settings import NetCount

__all__ = ["NetCount", "load_ipython_extension", "unload_ipython_extension"]


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
