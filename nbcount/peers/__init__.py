"""Peer conventions: how torch, fvcore, thop, ptflops, torchinfo, torchscan, calflops, DeepSpeed and Paddle count.

One module per peer, each citing the peer source file and functions it mirrors; importing this package
registers them (nbcount.convention does so on import). The layer kinds the peers' rules are written for
(``KINDS``, their titles, a row's kinds) are shared with ``nbcount.compare``.
"""

from __future__ import annotations

from nbcount.peers import calflops, flop_counter, fvcore, paddle, ptflops, thop, torchinfo, torchscan  # noqa: F401
from nbcount.peers._common import KIND_TITLES, KINDS, row_kinds

__all__ = ["KINDS", "KIND_TITLES", "row_kinds"]
