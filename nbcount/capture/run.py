"""run(): build the stand-in, run it once under the module-call tracker and the op stream, return the Trace.

The user's model is read, never run: the forward runs on a stand-in (``standin.build``) whose tensors are
fakes or copies. Only modules the stand-in cannot copy run live, under ``preserve.kept``. Ctrl-C is held
and raised at module calls and ops (``interrupts``): never inside a callback from C++, never between
entering a mode and leaving it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from nbcount import preserve
from nbcount.capture import interrupts, standin
from nbcount.capture.attrs import tensors_of
from nbcount.capture.book import TensorBook
from nbcount.capture.fake import Plumbing, is_fake_limitation
from nbcount.capture.observer import Observer, Run, overrides
from nbcount.capture.tracker import CallTracker, CaptureError
from nbcount.types import TensorMeta, Trace

Inputs = tuple[tuple[Any, ...], dict[str, Any]]
_DEVICE = torch.ops.prim.device.default


class CaughtLimitation(CaptureError):
    """The forward finished, but an op had failed without data and the forward caught that error itself:
    the trace follows whatever branch the failure took. `trace` is complete."""


class _OpStream(TorchDispatchMode):
    """Every aten op: run by the plumbing (a live parameter about to be written is copied first), then seen
    by each observer."""

    def __init__(self, plumbing: Plumbing, observers: Sequence[Observer], keeper: preserve.Keeper | None,
                 tracker: CallTracker, gate: interrupts.Gate):
        super().__init__()
        self.plumbing, self.tracker, self.gate = plumbing, tracker, gate
        self.execute = plumbing.execute
        self.before_write = keeper.before_write if keeper is not None else None
        self.watchers = [o.op for o in observers if overrides(o, "op") or isinstance(o, CallTracker)]

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # torch's documented opt-out: no compile-disabling wrapper around every op (it never compiles)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        if func is _DEVICE:  # FakeTensor.device asking the mode: not an op, and real execution never sees it
            return self.plumbing.device(args[0])
        if self.gate.pending:  # a held Ctrl-C: raised here, where it unwinds cleanly
            self.gate.check()
        kwargs = kwargs or {}
        if self.before_write is not None:
            self.before_write(func, args, kwargs)
        try:
            out = self.execute(func, args, kwargs)
        except Exception as error:
            if self.plumbing.fake:  # remembered even if the forward catches it
                self.plumbing.op_errors.append((error, self.tracker.current_layer))
            raise
        for watch in self.watchers:
            watch(func, args, kwargs, out)
        return out


@contextlib.contextmanager
def frozen_gc() -> Iterator[None]:
    """Within: the objects alive before the count (model, torch's modules) are out of the collector's way.

    A count allocates many small objects, and each full collection rescans the whole heap: ~20% of the
    time of a 2,000-layer count. Nothing is leaked: ``gc.unfreeze()`` hands them back afterwards.
    Skipped when the caller froze objects itself or disabled the collector.
    """
    if gc.get_freeze_count() or not gc.isenabled():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class _Hooks:
    """The forward pre/post hooks on every module of the stand-in: each observer's enter / leave, and a held
    Ctrl-C delivered (a safe point). A root whose class overrides ``__call__`` bypasses its own hooks: `call`
    enters it by hand, and its hooks are ignored should the override reach them."""

    def __init__(self, observers: Sequence[Observer], gate: interrupts.Gate):
        self.enters = [o.enter for o in observers if overrides(o, "enter") or isinstance(o, CallTracker)]
        self.leaves = [o.leave for o in observers if overrides(o, "leave") or isinstance(o, CallTracker)]
        self.check = gate.check
        self.manual_root: nn.Module | None = None

    def pre(self, m: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.check()
        if m is not self.manual_root:
            for enter in self.enters:
                enter(m, args, kwargs)

    def post(self, m: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if m is not self.manual_root:
            for leave in self.leaves:
                leave(m, output)
        self.check()

    def call(self, model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``model(*args, **kwargs)``, its call recorded even when its class overrides ``__call__``."""
        if type(model).__call__ is nn.Module.__call__:
            return model(*args, **kwargs)
        self.pre(model, args, kwargs)
        self.manual_root = model
        try:
            output = model(*args, **kwargs)
        except BaseException:
            self.manual_root = None
            for leave in self.leaves:
                leave(model, None)
            raise
        self.manual_root = None
        self.post(model, args, output)
        return output

    def attach(self, module: nn.Module, live: set[int], handles: list[Any]) -> None:
        """Hooks on every module of the stand-in; handles kept only for live modules (the stand-in is dropped)."""
        for m in _hookable(module):
            try:
                pre_handle = m.register_forward_pre_hook(self.pre, with_kwargs=True)
                post_handle = m.register_forward_hook(self.post, always_call=True)
            except RuntimeError:  # a scripted module takes no Python hooks: its ops go to the caller's row
                continue
            if id(m) in live:
                handles += [pre_handle, post_handle]


def _hookable(module: nn.Module) -> list[nn.Module]:
    """Every module once, except those inside a TorchScript module (their forward runs in C++)."""
    found: dict[int, nn.Module] = {}
    todo = [module]
    while todo:
        m = todo.pop()
        if id(m) in found:
            continue
        found[id(m)] = m
        if not isinstance(m, torch.jit.ScriptModule):
            todo.extend(c for c in reversed(list(m._modules.values())) if c is not None)
    return list(found.values())


def _set_mode(model: nn.Module, mode: str) -> None:
    """``model.train(mode == "train")`` on the stand-in (overrides of train() honoured); "same": as it is."""
    if mode == "same":
        return
    try:
        model.train(mode == "train")
    except RecursionError:  # a module nested in itself: flag by flag
        for m in model.modules():
            m.training = mode == "train"


def run(model: nn.Module, inputs: Inputs | Callable[[], Inputs], *, execution: str,
        observers: Sequence[Observer] = (), mode: str = "same", notes: tuple[str, ...] = ()) -> Trace:
    """Run a stand-in of `model` once on `inputs` and return what every observer saw, as a Trace.

    inputs: ``(args, kwargs)`` of the caller (copied or faked: never changed), or a function that makes
    them inside the execution context (example inputs: fakes cost no memory).
    execution: "fake" (no arithmetic), "meta" (a model built on meta: fake over meta) or "real" (real
    arithmetic on copies of the model's values). mode: "eval", "train" or "same" (the stand-in's flags).
    Raises CaptureError (with the partial Trace and the failing layer) when the forward raises, and
    CaughtLimitation when the forward caught an error of running without data.
    """
    with interrupts.deferred() as gate, preserve.process_state(execution == "real"), torch.no_grad():
        plumbing = Plumbing(execution)
        built = _build(model, plumbing)
        with contextlib.closing(built), preserve.kept([m for _, m, _ in built.live]) as keeper, plumbing:
            _set_mode(built.module, mode)
            args, kwargs = inputs() if callable(inputs) else built.copy(inputs)
            book = TensorBook()
            tracker = CallTracker(built.module, book)
            everyone = [tracker, *observers]
            state = Run(built, book, tracker, execution, (args, kwargs))
            for o in everyone:
                o.start(state)
            for t in tensors_of((args, kwargs)):
                book.allocate(t)
            in_meta = tuple(book.tensors_in((args, kwargs)))
            notes = (*notes, *built.notes())
            return _forward(state, everyone, (args, kwargs), in_meta, notes, plumbing, keeper, gate)


def _build(model: nn.Module, plumbing: Plumbing) -> standin.StandIn:
    try:
        return standin.build(model, plumbing.substitute)
    except Exception as error:  # the last resort: the live model itself, snapshotted and restored
        return standin.live(model, plumbing.substitute, f"its stand-in could not be built "
                                                        f"({type(error).__name__}: {error})")


def _forward(state: Run, observers: list[Observer], inputs: Inputs, in_meta: tuple[TensorMeta, ...],
             notes: tuple[str, ...], plumbing: Plumbing, keeper: preserve.Keeper | None,
             gate: interrupts.Gate) -> Trace:
    tracker, handles = state.tracker, list[Any]()
    out_meta: tuple[TensorMeta, ...] = ()
    try:
        hooks = _Hooks(observers, gate)
        hooks.attach(state.standin.module, {id(m) for _, m, _ in state.standin.live}, handles)
        with contextlib.ExitStack() as contexts:
            for o in observers:
                contexts.enter_context(o.context())
            contexts.enter_context(_OpStream(plumbing, observers, keeper, tracker, gate))
            output = hooks.call(state.standin.module, *inputs)
            out_meta = tuple(state.book.tensors_in(output))
            for o in observers:
                o.after_forward(output)
            del output
    except Exception as error:  # KeyboardInterrupt / SystemExit propagate as they are, after cleanup
        trace = _finish(observers, tracker.trace(state.execution, in_meta, out_meta, notes))
        phase = next((o.phase for o in observers if o.phase != "forward"), "forward")
        message = str(error) if phase == "forward" else f"{phase} pass failed: {error}"
        without_data = plumbing.fake and (bool(plumbing.op_errors) or is_fake_limitation(error))
        raise CaptureError(message, trace, tracker.failed_layer, error, without_data) from error
    finally:
        for h in handles:
            h.remove()
    trace = _finish(observers, tracker.trace(state.execution, in_meta, out_meta, notes))
    if plumbing.op_errors:
        caught, layer = plumbing.op_errors[0]
        raise CaughtLimitation(f"{type(caught).__name__}: {caught}", trace, layer, caught, True)
    return trace


def _finish(observers: list[Observer], trace: Trace) -> Trace:
    for o in observers:
        trace = o.finish(trace)
    return trace
