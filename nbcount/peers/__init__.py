"""Peer conventions: how torch, fvcore, thop, ptflops, torchinfo, torchscan, calflops, DeepSpeed and Paddle count.

One module per peer, each citing the peer source file and functions it mirrors; importing this package
registers them (nbcount.conventions does so on import).
"""

from __future__ import annotations

from nbcount.peers import calflops, flop_counter, fvcore, paddle, ptflops, thop, torchinfo, torchscan  # noqa: F401
