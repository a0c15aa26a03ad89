"""The three parameter-sharing nets of seed 004 (3x3 single-channel convs, no bias)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "SharedConv",
    "TwoConvs",
    "UnusedConv",
    "shared_conv",
    "two_convs",
    "unused_conv",
]


def _conv() -> nn.Conv2d:
    conv = nn.Conv2d(1, 1, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_uniform_(conv.weight)
    return conv


class TwoConvs(nn.Module):
    """Case 1: two separate convs, each called once (18 parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv()
        self.conv2 = _conv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class SharedConv(nn.Module):
    """Case 2: one conv called twice (9 parameters; torchsummary reports 18)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.conv1(x))


class UnusedConv(nn.Module):
    """Case 3: conv1 called twice, conv2 never called (18 registered, 9 used)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv()
        self.conv2 = _conv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.conv1(x))


def two_convs() -> TwoConvs:
    """Seed 004 case 1: two convs called once each (18 parameters)."""
    return TwoConvs()


def shared_conv() -> SharedConv:
    """Seed 004 case 2: one conv called twice (9 parameters)."""
    return SharedConv()


def unused_conv() -> UnusedConv:
    """Seed 004 case 3: conv2 is never called (18 registered, 9 used)."""
    return UnusedConv()
