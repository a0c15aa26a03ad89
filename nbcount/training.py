"""One training step under the capture: forward, loss, backward; gradient kernels attributed per layer.

Attribution goes through autograd itself. Every autograd node gets a sequence number when the forward
creates it; the module hooks note the sequence number at each module boundary; during backward
``torch._C._current_autograd_node()`` names the node being run, so each gradient kernel lands on the
layer whose forward created its node (an op run while no node is current, such as the accumulation of
two gradients of a residual, goes to the layer of the node just run). Gradients are taken with
``torch.autograd.grad``, so the model's ``.grad`` fields are never touched. Activations saved for
backward are measured with ``torch.autograd.graph.saved_tensors_hooks``, once per storage, weights excluded.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import nn
from torch.autograd.graph import saved_tensors_hooks

from nbcount import capture
from nbcount.capture import CaptureError, tensors_of
from nbcount.types import LayerCall, OpEvent, TensorMeta, Trace

LossFn = Callable[[Any], torch.Tensor]


@dataclass(frozen=True)
class BackwardEvent:
    """One aten op of the backward pass, the call whose forward created its node, and the gradient it feeds."""

    call: int | None  # index in Trace.calls; None: outside the model (the loss)
    op: OpEvent
    part: str  # "weight" (computes a parameter's gradient) or "input" (an activation's gradient)


@dataclass(frozen=True)
class SavedTensor:
    """A storage autograd kept for backward, and the call that saved it first."""

    call: int | None
    nbytes: int
    itemsize: int
    floating: bool


@dataclass(frozen=True)
class TrainingTrace(Trace):
    """A Trace whose capture also ran the loss and the backward pass."""

    backward: tuple[BackwardEvent, ...] = ()
    loss_ops: tuple[OpEvent, ...] = ()
    saved: tuple[SavedTensor, ...] = ()


class _TrainingRecorder(capture._Recorder):
    """The forward recorder, plus module boundaries in autograd sequence numbers, backward ops and saves."""

    def __init__(self, model: nn.Module):
        super().__init__(model)
        self.phase = "forward"
        self.boundaries: list[int] = [-1]  # autograd sequence number at each module enter / leave
        self.owners: list[int | None] = [None]  # the innermost call from that boundary on
        self.backward: list[tuple[int | None, int, OpEvent]] = []  # (call, autograd node, op)
        self.loss_ops: list[OpEvent] = []
        self.saved: list[SavedTensor] = []
        self.saved_storages: set[int] = set()
        self.weight_tids: set[int] = set()  # parameters, buffers and tensors computed from them alone
        self.weight_nodes: set[int] = set()  # sequence numbers of the autograd nodes of such tensors
        self.weight_grads: set[int] = set()  # node outputs that are gradients of weights
        self.input_grads: set[int] = set()  # node outputs that are gradients of activations
        self.buffer_ids = {id(b) for b in model.buffers()}
        self.last: tuple[int | None, int] = (None, -1)
        self.seq = torch._C._autograd._get_sequence_nr()

    def mark(self) -> None:
        """Note the current autograd sequence number as the start of the innermost call's nodes."""
        self.boundaries.append(torch._C._autograd._get_sequence_nr())
        self.owners.append(self.stack[-1] if self.stack else None)

    def enter(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().enter(module, args, kwargs)
        self.mark()

    def leave(self, module: nn.Module, output: Any) -> None:
        super().leave(module, output)
        self.mark()

    def owner(self, node: Any) -> int | None:
        """The call whose forward created autograd node `node`."""
        return self.owners[bisect.bisect_right(self.boundaries, node._sequence_nr()) - 1]

    def is_weight(self, t: torch.Tensor) -> bool:
        """A parameter or buffer, or a view or cast of one."""
        return id(t) in self.param_names or id(t) in self.buffer_ids or self.ids.get(t) in self.weight_tids

    def op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        outs = [t for t in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(t, torch.Tensor)]
        if self.phase == "forward":
            ins = tensors_of((args, kwargs))
            seq = torch._C._autograd._get_sequence_nr()
            if ins and all(self.is_weight(t) for t in ins):  # W.t(), W.to(half), bias.expand(...)
                self.weight_tids.update(self.meta(t).tid for t in outs)
                if seq > self.seq:  # this op created an autograd node: seq - 1
                    self.weight_nodes.add(seq - 1)
            self.seq = seq
            super().op(func, args, kwargs, out)
            return
        event = OpEvent(str(func.overloadpacket), tuple(self.convert(a) for a in args),
                        tuple((k, self.convert(v)) for k, v in kwargs.items()),
                        tuple(self.meta(t) for t in outs), bool(getattr(func, "is_view", False)))
        if self.phase == "loss":
            self.loss_ops.append(event)
            return
        node = torch._C._current_autograd_node()
        if node is not None:
            self.last = (self.owner(node), node._sequence_nr())
        self.backward.append((*self.last, event))

    def node_done(self, node: Any, grad_inputs: tuple[Any, ...], _: tuple[Any, ...]) -> None:
        """Autograd node hook: file each gradient the node produced as a weight's or an activation's."""
        for grad, (target, _index) in zip(grad_inputs, node.next_functions):
            tid = self.ids.get(grad) if isinstance(grad, torch.Tensor) else None
            if tid is not None and target is not None:
                (self.weight_grads if self.feeds_weight(target) else self.input_grads).add(tid)

    def feeds_weight(self, target: Any) -> bool:
        """Whether autograd node `target` leads to a parameter (its AccumulateGrad or a view / cast of it)."""
        variable = getattr(target, "variable", None)
        if variable is not None:
            return id(variable) in self.param_names
        return target._sequence_nr() in self.weight_nodes

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        """saved_tensors_hooks pack: record each saved activation storage once; keep the tensor as is."""
        if self.phase == "backward" or self.is_weight(t):
            return t
        try:
            storage = t.untyped_storage()
            key, nbytes = int(storage._cdata), int(storage.nbytes())
        except Exception:  # a tensor without a storage (sparse, nested): its elements
            key, nbytes = id(t), t.numel() * t.element_size()
        if key not in self.saved_storages:
            self.saved_storages.add(key)
            call = self.stack[-1] if self.phase == "forward" and self.stack else None
            self.saved.append(SavedTensor(call, nbytes, t.element_size(), t.is_floating_point()))
        return t


def _unpack(t: torch.Tensor) -> torch.Tensor:
    return t


def _loss(output: Any, loss_fn: LossFn | None) -> torch.Tensor | None:
    """loss_fn(output), else the sum of every floating output that requires a gradient."""
    if loss_fn is not None:
        loss = loss_fn(output)
    else:
        parts = [t.sum() for t in tensors_of(output) if t.is_floating_point() and t.requires_grad]
        if not parts:
            return None
        loss = parts[0]
        for p in parts[1:]:
            loss = loss + p
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        return None
    return loss if loss.numel() == 1 else loss.sum()


def _unique_params(model: nn.Module) -> list[nn.Parameter]:
    return list({id(p): p for p in model.parameters()}.values())


def weight_parts(events: list[tuple[int, OpEvent]], weight_grads: set[int], input_grads: set[int]) -> list[str]:
    """Per backward op (autograd node, op): 'weight' when its outputs are weights' gradients, or only feed
    ops of the same node that are; 'input' otherwise (activations' gradients and what leads to them)."""
    consumers: dict[int, list[int]] = {}
    for i, (_, event) in enumerate(events):
        for t in tensor_metas((event.args, event.kwargs)) if event.outputs else ():  # prim.device passes nothing
            consumers.setdefault(t.tid, []).append(i)
    weight = [False] * len(events)
    for i in reversed(range(len(events))):
        node, event = events[i]
        outs = [t.tid for t in event.outputs]
        weight[i] = bool(outs) and all(
            tid in weight_grads or (tid not in input_grads and _feeds_only(consumers.get(tid, []), i, node, events,
                                                                           weight)) for tid in outs)
    return ["weight" if w else "input" for w in weight]


def _feeds_only(users: list[int], i: int, node: int, events: list[tuple[int, OpEvent]], weight: list[bool]) -> bool:
    later = [j for j in users if j > i]
    return bool(later) and all(weight[j] and events[j][0] == node for j in later)


def _hook_nodes(root: Any, recorder: _TrainingRecorder, handles: list[Any]) -> None:
    """Register recorder.node_done on every autograd node this count created, reachable from `root`."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen or hasattr(node, "variable"):  # AccumulateGrad: never run here
            continue
        seen.add(id(node))
        if node._sequence_nr() < recorder.boundaries[1]:  # the caller's own graph, upstream of the inputs
            continue
        handles.append(node.register_hook(functools.partial(recorder.node_done, node)))
        todo.extend(next_node for next_node, _ in node.next_functions)


def tensor_metas(value: Any) -> list[TensorMeta]:
    """The TensorMeta inside an op's nested args, in order."""
    if isinstance(value, TensorMeta):
        return [value]
    if isinstance(value, (tuple, list)):
        return [m for v in value for m in tensor_metas(v)]
    return []


def run(model: nn.Module, make_inputs: Callable[[], tuple[tuple[Any, ...], dict[str, Any]]], execution: str,
        notes: tuple[str, ...] = (), *, loss_fn: LossFn | None = None) -> TrainingTrace:
    """capture.run, then the loss and ``autograd.grad`` of it under the same recorder."""
    recorder = _TrainingRecorder(model)
    args, kwargs = make_inputs()
    for t in tensors_of((args, kwargs)):
        recorder.track_allocation(t)
    in_meta = tuple(recorder.tensors_in((args, kwargs)))
    out_meta: tuple[TensorMeta, ...] = ()
    handles: list[Any] = []
    params = [p for p in _unique_params(model) if p.requires_grad]
    grad_inputs = [t for t in tensors_of((args, kwargs)) if t.requires_grad]
    try:
        capture._attach(model, recorder, handles)
        with torch.enable_grad(), saved_tensors_hooks(recorder.pack, _unpack), capture._OpMode(recorder):
            recorder.mark()
            output = model(*args, **kwargs)
            out_meta = tuple(recorder.tensors_in(output))
            recorder.phase = "loss"
            loss = _loss(output, loss_fn)
            recorder.phase = "backward"
            wrt = params + grad_inputs
            if loss is not None and wrt:
                _hook_nodes(loss.grad_fn, recorder, handles)
                grads = torch.autograd.grad(loss, wrt, allow_unused=True)[:len(params)]
                found = (recorder.ids.get(g) for g in grads if g is not None)
                recorder.weight_grads.update(tid for tid in found if tid is not None)
            del output, loss
    except Exception as error:
        trace = capture._trace(model, recorder, execution, in_meta, out_meta, notes)
        layer = recorder.frames[recorder.failed_frame].path if recorder.failed_frame is not None else ""
        where = "forward" if recorder.phase == "forward" else f"{recorder.phase} pass"
        raise CaptureError(f"{where} failed: {error}", trace, layer, error) from error
    finally:
        for h in handles:
            h.remove()
    trace = capture._trace(model, recorder, execution, in_meta, out_meta, notes)
    parts = weight_parts([(node, event) for _, node, event in recorder.backward], recorder.weight_grads,
                         recorder.input_grads)
    events = tuple(BackwardEvent(call, event, part) for (call, _, event), part in zip(recorder.backward, parts))
    base = {f.name: getattr(trace, f.name) for f in fields(Trace)}
    return TrainingTrace(**base, backward=events, loss_ops=tuple(recorder.loss_ops), saved=tuple(recorder.saved))


def loss_call() -> LayerCall:
    """The pseudo-call that holds the loss and what ran outside the model."""
    return LayerCall(path="(loss)", call_index=0, module_type="loss", classes=(), depth=0, parent=None,
                     in_tensors=(), out_tensors=(), params_new=(), params_shared=(), buffer_bytes=0, attrs=(),
                     ops=(), is_leaf=True)


def with_ops(call: LayerCall, ops: tuple[OpEvent, ...]) -> LayerCall:
    """`call` carrying other ops and no class (so only op rules apply, never the module's forward rule)."""
    return replace(call, classes=(), ops=ops)
