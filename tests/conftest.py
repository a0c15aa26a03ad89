"""Shared test fixtures: the independent oracles (tests/oracles.py) nbcount's numbers are checked against."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import oracles
import pytest


@pytest.fixture
def torch_flops() -> Callable[..., int]:
    """FlopCounterMode's total for one forward (``torch_flops(model, inputs, meta=False, grad=False)``)."""
    return oracles.torch_flops


@pytest.fixture
def torch_macs() -> Callable[..., int]:
    """Half of FlopCounterMode's total: torch's MACs of mm / bmm / conv / attention."""
    return oracles.torch_macs


@pytest.fixture
def unique_params() -> Callable[[Any], int]:
    """Parameter elements, each tensor once."""
    return oracles.unique_params
