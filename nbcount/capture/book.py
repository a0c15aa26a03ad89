"""The tensor book: a stable identity for every tensor a run sees, its metadata, and live / peak bytes."""

from __future__ import annotations

import weakref
from typing import Any

import torch

from nbcount.capture.attrs import tensors_of
from nbcount.types import TensorMeta


class _TensorIds:
    """tensor -> int by identity, without keeping tensors alive: WeakIdKeyDictionary's contract at a tenth
    of its lookup cost (a lookup makes no weak reference; only an insertion does). A tensor inserted with
    ``nbytes`` counts as live memory until it dies."""

    __slots__ = ("entries", "drop", "live_bytes", "peak_bytes", "__weakref__")

    def __init__(self) -> None:
        self.entries: dict[int, tuple[weakref.KeyedRef, int, int]] = {}
        self.live_bytes = self.peak_bytes = 0
        selfref = weakref.ref(self)

        def drop(ref: weakref.KeyedRef) -> None:  # the tensor died: its id() may be reused, its bytes are free
            me = selfref()
            if me is not None and (entry := me.entries.get(ref.key)) is not None and entry[0] is ref:
                del me.entries[ref.key]
                me.live_bytes -= entry[2]

        self.drop = drop

    def get(self, t: Any, default: Any = None) -> Any:
        entry = self.entries.get(id(t))
        return entry[1] if entry is not None and entry[0]() is t else default

    def __contains__(self, t: Any) -> bool:
        return self.get(t) is not None

    def insert(self, t: Any, value: int, nbytes: int = 0) -> None:
        key = id(t)
        self.entries[key] = (weakref.KeyedRef(t, self.drop, key), value, nbytes)
        if nbytes:
            self.live_bytes += nbytes
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)


class TensorBook:
    """Numbers tensors in the order first seen (``tid``) and tracks the bytes of those alive."""

    def __init__(self) -> None:
        self.ids = _TensorIds()
        self.metas: dict[int, TensorMeta] = {}  # tid -> its last TensorMeta (reused while the shape holds)
        self.dtype_names: dict[torch.dtype, str] = {}
        self.next_id = 0

    @property
    def peak_bytes(self) -> int:
        """The most bytes allocated tensors held at once."""
        return self.ids.peak_bytes

    def tid(self, t: torch.Tensor) -> int | None:
        """The tensor's number, or None when the book has not seen it."""
        return self.ids.get(t)  # type: ignore[no-any-return]

    def meta(self, t: torch.Tensor, nbytes: int = 0) -> TensorMeta:
        """Shape, dtype name, bytes per element and identity of `t` (numbered on first sight; then its
        `nbytes` count as allocated until it dies)."""
        tid = self.ids.get(t)
        if tid is None:
            tid = self.next_id
            self.next_id += 1
            self.ids.insert(t, tid, nbytes)
        else:
            known = self.metas.get(tid)
            if known is not None and known.shape == t.shape:  # an in-place resize / view_ changes the shape
                return known
        dtype = t.dtype
        name = self.dtype_names.get(dtype)
        if name is None:
            name = self.dtype_names[dtype] = str(dtype).removeprefix("torch.")
        meta = self.metas[tid] = TensorMeta(tuple(t.shape), name, t.element_size(), tid)  # static shapes: ints
        return meta

    def tensors_in(self, value: Any) -> list[TensorMeta]:
        """TensorMeta of every tensor inside a nested value, in order."""
        return [self.meta(t) for t in tensors_of(value)]

    def allocate(self, t: torch.Tensor) -> TensorMeta:
        """`t`'s metadata; its bytes count as live until it dies, unless the book saw it before (an alias)."""
        return self.meta(t, t.numel() * t.element_size() or 0)
