"""The one label of a table row: its dotted path, ``#k`` for the k-th repeated call, never a bare index.

``conv1``, ``features.0``, ``pool#1`` (the second call of ``pool``), ``(root)`` for the model itself, and
``0 (Conv2d)`` for a direct child of a root ``nn.Sequential`` whose path is only a number. The same
spelling is accepted back by ``--derive`` and ``python -m nbcount --derive`` (:func:`parse_layer`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbcount.report import Row

ROOT = "(root)"
_TYPED = re.compile(r"^(?P<path>.*?) \((?P<type>[^()]*)\)$")


def layer_label(path: str, call: int = 0, module_type: str = "") -> str:
    """``path#call`` (``#call`` only for repeated calls); the root is ``(root)``; a bare index gets its type."""
    name = path or ROOT
    if call:
        name = f"{name}#{call}"
    if module_type and path.isdigit():
        name = f"{name} ({module_type})"
    return name


def row_label(row: Row) -> str:
    """The label of one Report row."""
    return layer_label(row.layer, row.call.call_index, row.call.module_type)


def parse_layer(text: str) -> tuple[str, int]:
    """``conv1`` → ('conv1', 0); ``conv1#1`` → ('conv1', 1); ``0 (Conv2d)`` → ('0', 0); ``(root)`` → ('', 0)."""
    text = text.strip()
    typed = _TYPED.match(text)
    if typed and text != ROOT:
        text = typed.group("path")
    layer, sep, call = text.rpartition("#")
    if not (sep and call.isdigit()):
        layer, call = text, "0"
    return ("" if layer == ROOT else layer), int(call)


_NUMBERED = re.compile(r"^(?P<stem>.*?)(?P<number>\d+)$")


def repeat_pattern(path: str, repeated: frozenset[str]) -> str:
    """The path with each number of a repeated block replaced by ``*`` (``h.3.mlp`` → ``h.*.mlp``).

    `repeated` holds block paths without their number (``h.``, ``encoder.layers.encoder_layer_``;
    nbcount.subtotals.repeated_parents).
    """
    parts = path.split(".") if path else []
    out = []
    for k, part in enumerate(parts):
        numbered = _NUMBERED.match(part)
        prefix = ".".join(parts[:k]) + ("." if k else "")
        if numbered and prefix + numbered.group("stem") in repeated:
            part = numbered.group("stem") + "*"
        out.append(part)
    return ".".join(out)
