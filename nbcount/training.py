"""One training step as a capture observer (``Backward``): forward, loss, backward; gradient kernels per layer.

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
import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import nn
from torch.autograd.graph import saved_tensors_hooks

from nbcount.capture import Observer, Run, tensors_of
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


class Backward(Observer):
    """Observer of a training step: module boundaries in autograd sequence numbers during the forward, then
    the loss and ``autograd.grad`` of it, with every backward op, the gradients' parts and saved activations."""

    def __init__(self, loss_fn: LossFn | None = None):
        self.loss_fn = loss_fn
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
        self.last: tuple[int | None, int] = (None, -1)
        self.seq = torch._C._autograd._get_sequence_nr()

    def start(self, run: Run) -> None:
        self.tracker, self.book, self.inputs = run.tracker, run.book, run.inputs
        self.model = run.standin.module
        self.buffer_ids = {id(b) for b in self.model.buffers()}

    def context(self) -> contextlib.AbstractContextManager[Any]:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.enable_grad())
        stack.enter_context(saved_tensors_hooks(self.pack, _unpack))
        self.mark()  # the forward's first boundary: autograd nodes from here on are the count's own
        return stack

    def mark(self) -> None:
        """Note the current autograd sequence number as the start of the innermost call's nodes."""
        stack = self.tracker.stack
        self.boundaries.append(torch._C._autograd._get_sequence_nr())
        self.owners.append(stack[-1] if stack else None)

    def enter(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.mark()

    def leave(self, module: nn.Module, output: Any) -> None:
        self.mark()

    def owner(self, node: Any) -> int | None:
        """The call whose forward created autograd node `node`."""
        return self.owners[bisect.bisect_right(self.boundaries, node._sequence_nr()) - 1]

    def is_weight(self, t: torch.Tensor) -> bool:
        """A parameter or buffer, or a view or cast of one."""
        return id(t) in self.tracker.param_names or id(t) in self.buffer_ids or self.book.tid(t) in self.weight_tids

    def op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        outs = [t for t in (out if isinstance(out, (tuple, list)) else (out,)) if isinstance(t, torch.Tensor)]
        if self.phase == "forward":
            ins = tensors_of((args, kwargs))
            seq = torch._C._autograd._get_sequence_nr()
            if ins and all(self.is_weight(t) for t in ins):  # W.t(), W.to(half), bias.expand(...)
                self.weight_tids.update(self.book.meta(t).tid for t in outs)
                if seq > self.seq:  # this op created an autograd node: seq - 1
                    self.weight_nodes.add(seq - 1)
            self.seq = seq
            return
        event = self.tracker.event(func, args, kwargs, out, forward=False)
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
            tid = self.book.tid(grad) if isinstance(grad, torch.Tensor) else None
            if tid is not None and target is not None:
                (self.weight_grads if self.feeds_weight(target) else self.input_grads).add(tid)

    def feeds_weight(self, target: Any) -> bool:
        """Whether autograd node `target` leads to a parameter (its AccumulateGrad or a view / cast of it)."""
        variable = getattr(target, "variable", None)
        if variable is not None:
            return id(variable) in self.tracker.param_names
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
            stack = self.tracker.stack
            call = stack[-1] if self.phase == "forward" and stack else None
            self.saved.append(SavedTensor(call, nbytes, t.element_size(), t.is_floating_point()))
        return t

    def after_forward(self, output: Any) -> None:
        """The loss of `output`, then ``autograd.grad`` of it with respect to the parameters (never ``.grad``)."""
        params = [p for p in _unique_params(self.model) if p.requires_grad]
        grad_inputs = [t for t in tensors_of(self.inputs) if t.requires_grad]
        self.phase = "loss"
        loss = _loss(output, self.loss_fn)
        self.phase = "backward"
        wrt = params + grad_inputs
        if loss is None or not wrt:
            return
        handles: list[Any] = []
        try:
            _hook_nodes(loss.grad_fn, self, handles)
            grads = torch.autograd.grad(loss, wrt, allow_unused=True)[:len(params)]
        finally:
            for h in handles:
                h.remove()
        found = (self.book.tid(g) for g in grads if g is not None)
        self.weight_grads.update(tid for tid in found if tid is not None)

    def finish(self, trace: Trace) -> TrainingTrace:
        parts = weight_parts([(node, event) for _, node, event in self.backward], self.weight_grads,
                             self.input_grads)
        events = tuple(BackwardEvent(call, event, part) for (call, _, event), part in zip(self.backward, parts))
        base = {f.name: getattr(trace, f.name) for f in fields(Trace)}
        return TrainingTrace(**base, backward=events, loss_ops=tuple(self.loss_ops), saved=tuple(self.saved))


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


def _hook_nodes(root: Any, recorder: Backward, handles: list[Any]) -> None:
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


def loss_call() -> LayerCall:
    """The pseudo-call that holds the loss and what ran outside the model."""
    return LayerCall(path="(loss)", call_index=0, module_type="loss", classes=(), depth=0, parent=None,
                     in_tensors=(), out_tensors=(), params_new=(), params_shared=(), buffer_bytes=0, attrs=(),
                     ops=(), is_leaf=True)


def with_ops(call: LayerCall, ops: tuple[OpEvent, ...]) -> LayerCall:
    """`call` carrying other ops and no class (so only op rules apply, never the module's forward rule)."""
    return replace(call, classes=(), ops=ops)
