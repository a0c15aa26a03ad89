"""What each symbol of a layer's derivation means: one meaning per symbol, said once per derivation.

Tensor layouts name their axes: images (N, C, H, W) and (N, C, D, H, W), sequences (N, L, E), attention
(B, H, L, S, E). A rule whose symbol means something else (``H`` = attention heads, ``K`` = the summed
dimension of a matrix product) says so with ``step(..., where={"H": "heads"})``; that meaning wins for
its derivation. A row's derivation opens with ``where N = batch, C_in = input channels, …``.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbcount.derive import Step

GLOSSARY: dict[str, str] = {
    # layouts
    "N": "batch", "C": "channels", "D": "depth", "H": "height", "W": "width", "L": "sequence length",
    "E": "embedding width", "F": "features", "B": "batch (every leading dimension)", "S": "key/value length",
    "E_v": "value width per head", "T": "batch × time steps",
    # layer hyper-parameters
    "F_in": "in_features", "F_out": "out_features", "O": "out_features", "I_1": "in1_features",
    "I_2": "in2_features", "V": "vocabulary size (num_embeddings)", "K": "kernel size", "s": "stride",
    "p": "padding", "d": "dilation", "g": "groups", "op": "output padding", "f": "scale factor",
    "u": "upscale factor",
    # element and byte counts
    "n": "elements", "numel": "elements of the tensor", "b": "bytes per element", "MB": "2^20 bytes",
    "P": "parameters",
    # receptive field
    "r": "receptive field size", "j": "jump (product of the strides so far)",
    "start": "centre of the first output unit's field", "c": "centre of the first unit's field",
    "r_prev": "the field so far, as the classic mistake computes it", "r_in": "receptive field of the input",
    "j_in": "jump of the input (product of the earlier strides)", "c_in": "centre of the input's first unit's field",
    # breakdown terms (a convention's weights)
    "mac": "multiply-accumulates", "bias": "bias additions", "norm": "normalisation ops",
    "activation": "activation ops", "pool": "pooling ops", "softmax": "softmax ops",
    "elementwise": "elementwise ops", "reduction": "reduction ops", "interpolate": "interpolation ops",
}

_AXIS_NAMES = {"d": "depth", "h": "height", "w": "width", "l": "length"}
_SUBSCRIPTS = {"in": "input", "out": "output"}
_FIELD = ("r", "j", "c", "start")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def meaning(symbol: str) -> str | None:
    """The glossary meaning of `symbol`, read through its subscripts (``K_h``, ``H_out``, ``j_in``, ``lo_2``)."""
    if symbol in GLOSSARY:
        return GLOSSARY[symbol]
    head, _, tail = symbol.partition("_")
    base = GLOSSARY.get(head)
    if base is None or not tail:
        return _span(symbol)
    if tail in _SUBSCRIPTS:
        return f"{base}, of the {_SUBSCRIPTS[tail]}" if head in _FIELD else f"{_SUBSCRIPTS[tail]} {base}"
    if tail in _AXIS_NAMES:
        return f"{base} along the {_AXIS_NAMES[tail]}"
    return None


def _span(symbol: str) -> str | None:
    found = re.fullmatch(r"(lo|hi)_(\d+)", symbol)
    if found is None:
        return None
    side = "first" if found.group(1) == "lo" else "last"
    return f"{side} input pixel seen by unit 0 of input {found.group(2)}"


def step_symbols(st: Step) -> list[str]:
    """The symbols a step uses: its label when it is one (``H_out``), then its formula's (named parts excluded)."""
    named = dict(st.names)
    used = [st.label] if _IDENTIFIER.fullmatch(st.label) and (st.label in dict(st.where) or meaning(st.label)) else []
    values = dict(st.symbols)
    used += [m.group(0) for m in _IDENTIFIER.finditer(st.formula) if m.group(0) in values and m.group(0) not in named]
    return used


def legend(steps: Iterable[Step], glossary: bool = True) -> tuple[tuple[str, str], ...]:
    """(symbol, meaning) for every symbol of `steps` in order of first use; a step's own `where` wins."""
    found: dict[str, str] = {}
    for st in steps:
        own = dict(st.where)
        for symbol in step_symbols(st):
            if symbol in found:
                continue
            text = own.get(symbol) or (meaning(symbol) if glossary else None)
            if text:
                found[symbol] = text
    return tuple(found.items())


def conflicts(steps: Iterable[Step]) -> dict[str, set[str]]:
    """Symbols given two meanings within the same steps (a derivation must define each symbol once)."""
    seen: dict[str, set[str]] = {}
    for st in steps:
        own = dict(st.where)
        for symbol in step_symbols(st):
            text = own.get(symbol) or meaning(symbol)
            if text:
                seen.setdefault(symbol, set()).add(text)
    return {k: v for k, v in seen.items() if len(v) > 1}


_AXIS_WORDS = ("depth", "height", "width")


def _grouped(pairs: Iterable[tuple[str, str]]) -> list[tuple[list[str], str, list[str]]]:
    """Per-axis symbols together: (K_h, K_w) = kernel size along the (height, width)."""
    groups: list[tuple[list[str], str, list[str]]] = []
    index: dict[str, int] = {}
    for symbol, text in pairs:
        head, _, last = text.rpartition(" ")
        if head and last in _AXIS_WORDS and head in index:
            symbols, _, axes = groups[index[head]]
            symbols.append(symbol)
            axes.append(last)
            continue
        if head and last in _AXIS_WORDS:
            index[head] = len(groups)
            groups.append(([symbol], head, [last]))
        else:
            groups.append(([symbol], text, []))
    return groups


def where_text(pairs: Iterable[tuple[str, str]]) -> str:
    """``where N = batch, C_in = input channels, K_h, K_w = kernel size along the height, width``, or ''."""
    items = [f"{', '.join(symbols)} = {text}" + (f" {', '.join(axes)}" if axes else "")
             for symbols, text, axes in _grouped(pairs)]
    return "where " + "; ".join(items) if items else ""


def where_lines(pairs: Iterable[tuple[str, str]], indent: str) -> list[str]:
    """The where-line wrapped for a terminal, each line starting with `indent`."""
    text = where_text(pairs)
    return textwrap.wrap(text, 110, initial_indent=indent, subsequent_indent=indent + "  ") if text else []
