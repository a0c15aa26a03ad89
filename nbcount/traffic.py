"""Bytes moved: what each aten op reads and writes, per op and per layer, each with its derivation.

Assumption (stated on every derivation): no fusion and no cache reuse — every op reads each distinct tensor
input once from memory and writes each output once, at the tensors' real dtypes. That is an upper bound on a
layer's traffic. Views and metadata ops move nothing; an in-place op reads and writes its target; a gather
(embedding, index_select) reads only the rows it picks and a scatter writes only the elements it updates.

Beside it, per layer, the *fused* estimate: the layer as one kernel reads its weights and inputs once and writes
what leaves it once — W + I + O. Tensors made and used inside the layer's own ops cost nothing there.

A byte rule is a small pure function of an OpEvent, registered with ``@traffic_rule(aten.op, ...)`` (real torch
ops); its docstring is the formula. Ops without a rule read their inputs and write their outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from nbcount.derive import Derivation, Step, given, step
from nbcount.types import OpEvent, TensorMeta

if TYPE_CHECKING:
    from nbcount.report import Report

aten = torch.ops.aten
ASSUMPTION = "no fusion, no cache reuse: each op reads its inputs and writes its outputs once (an upper bound)"
FUSED = "fused: the layer as one kernel reads its weights and inputs once and writes what leaves it once"
PLAIN = "reads its inputs, writes its outputs"


@dataclass(frozen=True)
class Access:
    """Bytes of one tensor that an op reads or writes (fewer than the tensor's for a gather or scatter)."""

    tensor: TensorMeta
    nbytes: int


@dataclass(frozen=True)
class OpTraffic:
    """What one op reads and writes, and the rule that says so."""

    op: str
    reads: tuple[Access, ...]
    writes: tuple[Access, ...]
    rule: str

    @property
    def nbytes(self) -> int:
        """Bytes read plus bytes written."""
        return sum(a.nbytes for a in self.reads) + sum(a.nbytes for a in self.writes)

    def step(self) -> Step:
        """``aten.mm bytes = x0 + x1 + y0 = 8,192 + 33,554,432 + 8,192 = 33,570,816``."""
        symbols: dict[str, Any] = {f"x{i}": a.nbytes for i, a in enumerate(self.reads)}
        symbols.update({f"y{i}": a.nbytes for i, a in enumerate(self.writes)})
        listing = "; ".join(filter(None, (_listing("reads", "x", self.reads), _listing("writes", "y", self.writes))))
        note = listing if self.rule == PLAIN else f"{self.rule}; {listing}" if listing else self.rule
        if not symbols:
            return given(f"{self.op} bytes", 0, note=note)
        return step(f"{self.op} bytes", " + ".join(symbols), note=note, **symbols)


def _listing(verb: str, prefix: str, accesses: tuple[Access, ...]) -> str:
    parts = []
    for i, a in enumerate(accesses):
        shape = "×".join(map(str, a.tensor.shape)) or "scalar"
        part = f" of {a.tensor.nbytes:,}" if a.nbytes != a.tensor.nbytes else ""
        parts.append(f"{prefix}{i} {shape} {a.tensor.dtype}{part}")  # x1 4096×4096 bfloat16
    return f"{verb} {', '.join(parts)}" if parts else ""


TrafficRule = Callable[[OpEvent], OpTraffic]
TRAFFIC_RULES: dict[str, TrafficRule] = {}


def traffic_rule(*ops: Any) -> Callable[[TrafficRule], TrafficRule]:
    """Register a byte rule for real torch ops (``aten.embedding``); a name registered twice is an error."""
    def register(fn: TrafficRule) -> TrafficRule:
        for op in ops:
            key = str(op)
            if key in TRAFFIC_RULES:
                raise ValueError(f"byte rule for {key} registered twice")
            TRAFFIC_RULES[key] = fn
        return fn
    return register


def _tensors(value: Any) -> Iterator[TensorMeta]:
    if isinstance(value, TensorMeta):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)


def _distinct(tensors: Iterable[TensorMeta]) -> tuple[Access, ...]:
    seen: dict[int, TensorMeta] = {}
    for t in tensors:
        seen.setdefault(t.tid, t)
    return tuple(Access(t, t.nbytes) for t in seen.values() if t.nbytes)  # an empty tensor moves nothing


def inputs_of(op: OpEvent) -> list[TensorMeta]:
    """The op's tensor inputs, positional then keyword, without an ``out=`` destination."""
    return list(_tensors(op.args)) + [t for k, v in op.kwargs if k != "out" for t in _tensors(v)]


def read_and_write(op: OpEvent) -> OpTraffic:
    """bytes = Σ distinct inputs + Σ outputs (each at its dtype; an in-place target is read and written)."""
    return OpTraffic(op.op, _distinct(inputs_of(op)), _distinct(op.outputs), PLAIN)


#: Ops whose outputs share their first input's memory, like views (torch does not mark them as views).
ALIASES = frozenset(str(op) for op in (aten._unsafe_view, aten.alias, aten.lift_fresh, aten.detach))


def is_alias(op: OpEvent) -> bool:
    """A view or an alias: its outputs are the first input's memory under another shape."""
    return op.is_view or op.op in ALIASES


@traffic_rule(aten._unsafe_view, aten.alias, aten.lift_fresh, aten.detach, aten.empty, aten.empty_strided,
              aten.empty_like, aten.new_empty, aten.new_empty_strided, aten.resize_, aten.set_,
              aten._local_scalar_dense)
def nothing(op: OpEvent) -> OpTraffic:
    """bytes = 0 (an alias, an allocation or a metadata change: no element moves)."""
    return OpTraffic(op.op, (), (), "moves nothing (alias, allocation or metadata)")


@traffic_rule(aten.embedding, aten.index_select, aten.gather, aten.index, aten.take)
def gather(op: OpEvent) -> OpTraffic:
    """bytes = indices + picked rows (= the output) read + output written; the table itself is not read whole."""
    source, *indices = inputs_of(op)  # embedding(weight, indices), index_select(self, dim, index), ...
    picked = sum(t.nbytes for t in op.outputs)
    reads = (Access(source, min(picked, source.nbytes)),) + _distinct(t for t in indices if t.tid != source.tid)
    return OpTraffic(op.op, reads, _distinct(op.outputs), "reads the indices and only the rows it picks")


@traffic_rule(aten.index_put_, aten.index_copy_, aten.scatter_, aten.scatter_add_, aten.index_add_,
              aten.scatter_reduce_)
def scatter(op: OpEvent) -> OpTraffic:
    """bytes = indices + values read + the updated elements written (the rest of the target is untouched)."""
    target, *others = inputs_of(op)
    values = others[-1] if others else None
    updated = min(target.nbytes, values.numel * target.itemsize) if values is not None else target.nbytes
    accumulate = op.op in ("aten.scatter_add_", "aten.index_add_", "aten.scatter_reduce_") or bool(
        op.arg(3, "accumulate", False) if op.op == "aten.index_put_" else False)
    reads = _distinct(others) + ((Access(target, updated),) if accumulate else ())
    rule = "reads indices and values" + (" and the elements it adds to" if accumulate else "")
    return OpTraffic(op.op, reads, (Access(target, updated),), rule + ", writes only the updated elements")


@traffic_rule(aten.copy_)
def copy(op: OpEvent) -> OpTraffic:
    """bytes = source read + destination written (the destination's old values are not read)."""
    destination, source = op.args[0], op.args[1]
    reads = (Access(source, source.nbytes),) if isinstance(source, TensorMeta) else ()
    return OpTraffic(op.op, reads, (Access(destination, destination.nbytes),), "reads the source, writes the target")


@traffic_rule(aten.fill_, aten.zero_, aten.fill, aten.zeros_like, aten.ones_like, aten.full_like)
def fill(op: OpEvent) -> OpTraffic:
    """bytes = output written (a constant fill reads no tensor element; a fill value tensor is one scalar)."""
    scalars = tuple(Access(t, t.nbytes) for t in inputs_of(op)[1:])
    return OpTraffic(op.op, scalars, _distinct(op.outputs), "writes its output, reads no element of its target")


def op_traffic(op: OpEvent) -> OpTraffic:
    """The bytes one op moves: its rule's, or every distinct input read and every output written."""
    if op.is_view:
        return OpTraffic(op.op, (), (), "a view: moves nothing")
    rule = TRAFFIC_RULES.get(op.op, read_and_write)
    try:
        return rule(op)
    except (IndexError, AttributeError, TypeError, ValueError):  # an overload the rule cannot read: the plain rule
        return read_and_write(op)


# layers ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerTraffic:
    """The bytes one table row's own ops move: the sum over its ops, and the fused estimate W + I + O."""

    ops: tuple[OpTraffic, ...]  # the ops that move bytes, in call order
    idle: tuple[str, ...]  # views, aliases and allocations (move nothing)
    weight_bytes: int  # W: parameters, buffers and constants the layer reads
    input_bytes: int  # I: activations made outside the layer (or model inputs) that it reads
    output_bytes: int  # O: what the layer writes that is read elsewhere, returned, or persistent state
    counts: tuple[int, int, int]  # how many tensors make up W, I and O

    @property
    def nbytes(self) -> int:
        """Bytes with no fusion and no cache reuse: the sum over the layer's ops."""
        return sum(t.nbytes for t in self.ops)

    @property
    def fused_bytes(self) -> int:
        """Bytes if the layer ran as one kernel: W + I + O."""
        return self.weight_bytes + self.input_bytes + self.output_bytes

    def steps(self) -> tuple[Step, ...]:
        """One step per op that moves bytes, the views in one line, the sum, then the fused estimate."""
        found = [t.step() for t in self.ops]
        if self.idle:
            found.append(given("views and allocations", 0, note=f"move nothing: {_tally(self.idle)}"))
        parts: dict[str, Any] = {f"b{i}": t.nbytes for i, t in enumerate(self.ops)}
        found.append(step("bytes (no fusion)", " + ".join(parts) or "0", note=ASSUMPTION, **parts))
        w, i, o = self.counts
        found.append(step("fused bytes", "W + I + O", W=self.weight_bytes, I=self.input_bytes, O=self.output_bytes,
                          note=f"{FUSED} (W: {w} weight / buffer tensors, I: {i} inputs, O: {o} leaving)"))
        return tuple(found)

    def derivation(self, subject: str) -> Derivation:
        """The steps under a title."""
        return Derivation(subject, self.steps(), "bytes")


def _tally(names: Iterable[str]) -> str:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{n}×{c}" if c > 1 else n for n, c in counts.items())


class _Dataflow:
    """Every tensor's memory root (through views), which rows read each root, and which roots ops created."""

    def __init__(self, report: Report):
        self.root: dict[int, int] = {}
        self.readers: dict[int, set[int]] = {}
        self.created: set[int] = set()
        self.inputs = {t.tid for t in report.trace.input_tensors}
        self.traffic: list[list[OpTraffic]] = []
        self.idle: list[list[str]] = []
        for index, row in enumerate(report.rows):
            moving: list[OpTraffic] = []
            idle: list[str] = []
            for op in row.call.ops:
                self._visit(index, op, moving, idle)
            self.traffic.append(moving)
            self.idle.append(idle)

    def find(self, tid: int) -> int:
        """The tensor whose memory `tid` shares (itself unless it is a view or alias)."""
        return self.root.get(tid, tid)

    def _visit(self, index: int, op: OpEvent, moving: list[OpTraffic], idle: list[str]) -> None:
        first = next(iter(inputs_of(op)), None)
        if is_alias(op) and first is not None:
            for out in op.outputs:
                self.root[out.tid] = self.find(first.tid)
        seen = {self.find(t.tid) for t in _tensors((op.args, tuple(v for _, v in op.kwargs)))}  # out= too
        for out in op.outputs:  # a fresh tensor: first seen as this op's output
            if self.find(out.tid) not in seen and not is_alias(op):
                self.created.add(self.find(out.tid))
        traffic = op_traffic(op)
        if not traffic.nbytes:
            idle.append(op.op)
            return
        moving.append(traffic)
        for access in traffic.reads:
            self.readers.setdefault(self.find(access.tensor.tid), set()).add(index)

    def layer(self, index: int, outputs: tuple[TensorMeta, ...]) -> LayerTraffic:
        """The row's traffic, with W, I and O found through the dataflow."""
        made: set[int] = set()
        reads: dict[int, int] = {}
        writes: dict[int, int] = {}
        for traffic in self.traffic[index]:
            for access in traffic.reads:
                root = self.find(access.tensor.tid)
                if root not in made:
                    reads[root] = max(reads.get(root, 0), access.nbytes)
            for access in traffic.writes:
                root = self.find(access.tensor.tid)
                made.add(root)
                writes[root] = max(writes.get(root, 0), access.nbytes)
        returned = {self.find(t.tid) for t in outputs}
        leaving = {r: b for r, b in writes.items()
                   if r in returned or self.readers.get(r, set()) - {index} or r not in self.created}
        state = {r: b for r, b in reads.items() if r not in self.created and r not in self.inputs}
        inputs = {r: b for r, b in reads.items() if r not in state}
        return LayerTraffic(tuple(self.traffic[index]), tuple(self.idle[index]), sum(state.values()),
                            sum(inputs.values()), sum(leaving.values()), (len(state), len(inputs), len(leaving)))


def layer_traffic(report: Report) -> tuple[LayerTraffic, ...]:
    """Per table row (same order as report.rows): the bytes its own ops move, and the fused estimate."""
    flow = _Dataflow(report)
    return tuple(flow.layer(i, row.call.out_tensors) for i, row in enumerate(report.rows))


FLOPS_NOTE = "real FLOPs: 2 per multiply-accumulate + every other floating-point op (nbcount convention)"
PEAKS_NOTE = "multiply-accumulates at the dtype's dense matrix peak, other arithmetic at the vector (fp32) peak"


def op_dtype(op: OpEvent) -> str:
    """The dtype an op computes in: its first floating-point tensor input's, else its first output's."""
    tensors = inputs_of(op) + list(op.outputs)
    floating = next((t.dtype for t in tensors if t.is_floating), None)
    return floating or (tensors[0].dtype if tensors else "float32")
