"""Counting runs on a stand-in: the user's model, inputs and caches are only read — even while another thread
trains the model, when two models share a module, under Ctrl-C, with TorchScript children, FSDP2 and caches."""

from __future__ import annotations

import collections
import dataclasses
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch._subclasses.fake_tensor import FakeTensor
from torch.utils._python_dispatch import _len_torch_dispatch_stack

from nbcount import capture, count
from nbcount.capture import standin

ROOT = Path(__file__).resolve().parent.parent


def run_script(code: str, timeout: int = 300) -> str:
    """Run `code` in a fresh interpreter (a crash fails the test, not the session); return its stdout."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def reachable(root: Any, limit: int = 100_000) -> list[Any]:
    """Every object reachable from `root` through module / object attributes, containers and dataclasses."""
    seen: dict[int, Any] = {}
    todo = [root]
    while todo and len(seen) < limit:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None), type)):
            continue
        seen[id(obj)] = obj
        if isinstance(obj, dict):
            todo += list(obj.keys()) + list(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset, collections.deque)):
            todo += list(obj)
        elif not isinstance(obj, torch.Tensor) and hasattr(obj, "__dict__") and not callable(obj) or \
                isinstance(obj, nn.Module):
            todo += list(vars(obj).values())
    return list(seen.values())


def no_fake_left(root: Any) -> None:
    """No FakeTensor (and no meta tensor, unless the root had one before) anywhere below `root`."""
    fakes = [o for o in reachable(root) if isinstance(o, FakeTensor)]
    assert not fakes, f"{len(fakes)} fake tensors left behind"


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().reshape(-1).contiguous().view(torch.uint8)


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return list(a) == list(b) and all(torch.equal(bits(a[k]), bits(b[k])) for k in a)


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}


# --- threads -----------------------------------------------------------------------------------------

def test_counting_while_another_thread_trains_is_bitwise_harmless() -> None:
    """100 SGD steps (BatchNorm, dropout) on a thread while the main thread counts the same model in a loop:
    the final state_dict equals, bit for bit, the same training without counting. A crash fails the test."""
    out = run_script("""
        import threading, torch
        from torch import nn
        import nbcount
        torch.set_num_threads(1)

        def build():
            torch.manual_seed(0)
            return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(),
                                 nn.Linear(8 * 6 * 6, 4)).train()

        def train(model, steps=100):
            torch.manual_seed(1)
            data = [torch.randn(4, 3, 8, 8) for _ in range(5)]
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            for i in range(steps):
                opt.zero_grad()
                model(data[i % 5]).square().mean().backward()
                opt.step()

        alone = build()
        train(alone)
        shared = build()
        trainer = threading.Thread(target=train, args=(shared,))
        counts = 0
        trainer.start()
        while trainer.is_alive() or counts < 3:
            for execution, training in (("auto", False), ("real", False), ("auto", True)):
                nbcount.count(shared, (2, 3, 8, 8), execution=execution, training=training)
                counts += 1
        trainer.join()
        a, b = alone.state_dict(), shared.state_dict()
        assert list(a) == list(b)
        bad = [k for k in a if not torch.equal(a[k].view(-1).view(torch.uint8), b[k].view(-1).view(torch.uint8))]
        assert not bad, bad
        assert all(m.training for m in shared.modules())
        print("counts", counts)
    """)
    assert int(out.split()[-1]) >= 3


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class Head(nn.Module):
    def __init__(self, encoder: nn.Module, classes: int) -> None:
        super().__init__()
        self.encoder, self.fc = encoder, nn.Linear(4 * 6 * 6, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.encoder(x).flatten(1))


def test_shared_submodule_counted_on_two_threads_stays_in_train_mode() -> None:
    """Two models share an encoder; each is counted (eval mode) on its own thread, over and over: the encoder
    never leaves train mode, watched from a third thread, and both counts are the single-threaded ones."""
    encoder = Encoder().train()
    a, b = Head(encoder, 3).train(), Head(encoder, 5).train()
    expected = (count(a, (1, 3, 8, 8)).total_macs, count(b, (1, 3, 8, 8)).total_macs)
    flags: list[bool] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            flags.extend(m.training for m in encoder.modules())

    def loop(model: nn.Module) -> list[int]:
        return [count(model, (1, 3, 8, 8), mode="eval").total_macs for _ in range(12)]

    watcher = threading.Thread(target=watch)
    watcher.start()
    results: list[list[int]] = [[], []]
    threads = [threading.Thread(target=lambda i=i, m=m: results[i].extend(loop(m))) for i, m in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    assert flags and all(flags)
    assert results[0] == [expected[0]] * 12 and results[1] == [expected[1]] * 12
    assert expected[1] - expected[0] == (5 - 3) * 4 * 6 * 6  # the heads differ by their outputs only


# --- models a copy cannot take ----------------------------------------------------------------------

class WithScripted(nn.Module):
    """A traced and a scripted child (their flags and tensors live in C++), both with BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.traced = torch.jit.trace(nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6)).train(), torch.randn(3, 4))
        self.scripted = torch.jit.script(nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5)).train())
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.scripted(self.traced(x)))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("execution", ["auto", "real"])
def test_traced_and_scripted_children_keep_their_flags_and_buffers(execution: str) -> None:
    model = WithScripted().train()
    flags = [m.training for m in model.modules()]
    before = state_of(model)
    report = count(model, (3, 4), mode="eval", execution=execution)
    assert [m.training for m in model.modules()] == flags == [True] * len(flags)
    assert same_state(state_of(model), before)
    assert report.total_macs == 3 * (4 * 6 + 6 * 5 + 5 * 2)
    assert report.total_params == sum(p.numel() for p in model.parameters())
    notes = " ".join(d.message for d in report.diagnostics)
    assert "traced" in notes and "scripted" in notes and "TorchScript" in notes


@dataclasses.dataclass
class Memory:
    """A dataclass attribute the forward appends to."""

    seen: list[torch.Tensor] = dataclasses.field(default_factory=list)


class Hoarder(nn.Module):
    """Writes into nested containers, a deque, a dataclass and a dict keyed by tensors, in its forward."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.cache: dict[str, list[torch.Tensor]] = {"k": []}
        self.grid: list[list[Any]] = [[1], [2, [3]]]
        self.recent: collections.deque[torch.Tensor] = collections.deque(maxlen=3)
        self.memory = Memory()
        self.by_weight = {self.lin.weight: "w", self.lin.bias: "b"}
        self.scale = torch.ones(4)  # a plain tensor attribute (not a buffer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x) * self.scale
        self.cache["k"].append(y)
        self.grid[1][1].append(y)
        self.recent.append(y)
        self.memory.seen.append(y)
        assert self.by_weight[self.lin.weight] == "w"  # tensor-keyed lookup through the stand-in's own tensors
        self.by_weight[y] = "out"
        self.scale.mul_(2)
        return y


@pytest.mark.parametrize("execution", ["auto", "real"])
def test_nested_containers_and_tensor_keyed_dicts_unchanged(execution: str) -> None:
    model = Hoarder()
    weight, scale = model.lin.weight, model.scale
    report = count(model, (2, 4), execution=execution, training=execution == "real")
    assert report.total_macs == 2 * 4 * 4
    assert model.cache == {"k": []} and model.grid == [[1], [2, [3]]] and list(model.recent) == []
    assert model.memory.seen == [] and list(model.by_weight.values()) == ["w", "b"]
    assert next(iter(model.by_weight)) is weight and model.scale is scale and torch.equal(scale, torch.ones(4))
    no_fake_left(model)


class Locked(nn.Module):
    """Holds a lock, a C++ generator and a model-owned RNG it draws from in its forward."""

    def __init__(self) -> None:
        super().__init__()
        self.lin, self.lock = nn.Linear(4, 4), threading.Lock()
        self.rng = torch.Generator().manual_seed(7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.lock:
            return self.lin(x) + torch.rand(x.shape, generator=self.rng)


@pytest.mark.parametrize("execution", ["auto", "real"])
def test_uncopyable_attributes_are_shared_and_the_models_rng_does_not_advance(execution: str) -> None:
    model = Locked()
    state = model.rng.get_state()
    report = count(model, (2, 4), execution=execution)
    assert report.total_macs == 2 * 4 * 4
    assert torch.equal(model.rng.get_state(), state)
    assert not model.lock.locked()
    assert any("lock" in d.message and "shared with your model" in d.message for d in report.diagnostics)


def test_last_resort_runs_the_live_model_under_a_snapshot_of_every_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """When no stand-in can be built, the live model runs under preserve's snapshot, which puts back nested
    containers, tensor-keyed dicts, tensors written in place and the training flags — and says so."""
    def refuse(model: nn.Module, substitute: Any) -> Any:
        raise TypeError("cannot copy")

    monkeypatch.setattr(standin, "build", refuse)
    model = Hoarder().train()
    weight, scale, before = model.lin.weight, model.scale, state_of(model)
    x = torch.ones(2, 4)
    report = count(model, inputs=x, mode="eval", execution="real")
    assert report.total_macs == 2 * 4 * 4 and torch.equal(x, torch.ones(2, 4))
    assert count(model, (2, 4), mode="eval").total_macs == 2 * 4 * 4
    assert model.cache == {"k": []} and model.grid == [[1], [2, [3]]] and list(model.recent) == []
    assert model.memory.seen == [] and list(model.by_weight.values()) == ["w", "b"]
    assert next(iter(model.by_weight)) is weight and model.scale is scale and torch.equal(scale, torch.ones(4))
    assert all(m.training for m in model.modules()) and same_state(state_of(model), before)
    assert any("could not be built" in d.message and "TypeError" in d.message for d in report.diagnostics)


class Tied(nn.Module):
    """An embedding tied to the output projection, and one block registered (and called) twice."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.block = nn.Linear(8, 8)
        self.again = self.block
        self.out = nn.Linear(8, 10, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.again(self.block(self.emb(ids))))


def test_stand_in_keeps_tied_weights_shared_modules_and_parameter_names() -> None:
    model = Tied()
    report = count(model, (2, 3), dtype=torch.long)
    assert report.total_params == sum(p.numel() for p in model.parameters()) == 10 * 8 + 8 * 8 + 8
    assert [p.name for p in report.trace.registered_params] == [n for n, _ in model.named_parameters()]
    assert [r.call.call_index for r in report.rows if r.layer == "block"] == [0, 1]
    assert report.row("out").call.params_shared and not report.row("out").call.params_new
    assert report.total_macs == 2 * 3 * (8 * 8 * 2 + 8 * 10)


def test_user_hooks_shape_the_counted_outputs() -> None:
    """A user's forward hook that changes a layer's output changes what the next layer is counted on."""
    model = nn.Sequential(nn.Linear(4, 6), nn.Linear(3, 2))
    model[0].register_forward_hook(lambda m, args, out: out[..., :3])
    report = count(model, (5, 4))
    assert report.total_macs == 5 * (4 * 6 + 3 * 2)
    assert report.row("0").call.out_tensors[0].shape == (5, 3)


def test_functions_closing_over_the_model_run_on_the_stand_in() -> None:
    """``model.forward = lambda x: ... model ...`` and a hook writing to the layer it closes over: both act on
    the stand-in, so the children are counted as rows and the live layer keeps no trace of the count."""
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    model.forward = lambda x: model[2](model[1](model[0](x)))  # type: ignore[method-assign]
    layer = model[0]
    layer.seen = []  # type: ignore[assignment]
    layer.register_forward_hook(lambda m, args, out: layer.seen.append(out))
    report = count(model, (3, 4))
    assert [r.layer for r in report.rows] == ["", "0", "1", "2"]
    assert report.row("0").macs == 3 * 4 * 6 and report.total_macs == 3 * (4 * 6 + 6 * 2)
    assert layer.seen == []
    model(torch.randn(3, 4))
    assert len(layer.seen) == 1 and type(layer.seen[0]) is torch.Tensor


# --- inputs and caches -------------------------------------------------------------------------------

class WritesInputs(nn.Module):
    """Writes into its input tensor (first op in place) and into a cache object passed in."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, cache: dict[str, Any]) -> torch.Tensor:
        x.add_(1)
        y = self.lin(x)
        cache["past"].append(y)
        cache["steps"] += 1
        return y


@pytest.mark.parametrize("execution", ["auto", "fake", "real"])
@pytest.mark.parametrize("training", [False, True])
def test_inputs_and_cache_objects_unchanged(execution: str, training: bool) -> None:
    x = torch.arange(8.0).reshape(2, 4)
    past = [torch.zeros(1)]
    cache = {"past": past, "steps": 0}
    report = count(WritesInputs(), inputs=(x, cache), execution=execution, training=training)
    assert report.total_macs == 2 * 4 * 4
    assert torch.equal(x, torch.arange(8.0).reshape(2, 4)) and x._version == 0
    assert cache == {"past": past, "steps": 0} and cache["past"] is past and len(past) == 1
    no_fake_left(cache)


def test_meta_model_inputs_given_on_cpu_are_not_moved() -> None:
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(4, 4))
    x = torch.randn(2, 4)
    assert count(model, inputs=x).total_macs == 2 * 4 * 4
    assert x.device.type == "cpu"


# --- Ctrl-C ------------------------------------------------------------------------------------------

def test_ctrl_c_at_random_points_leaves_nothing_behind() -> None:
    """Hundreds of SIGINTs (the real Ctrl-C path: the Python-level handler) at random moments of counts on
    every path: each interrupt surfaces as a KeyboardInterrupt or is delivered after a finished count; the
    model, dispatch stack, grad mode, SIGINT handler and hooks are as before every time."""
    out = run_script("""
        import _thread, random, signal, threading, time, torch
        from torch import nn
        from torch.utils._python_dispatch import _len_torch_dispatch_stack
        from torch._subclasses.fake_tensor import FakeTensor
        import nbcount

        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(),
                              nn.Linear(8 * 6 * 6, 4)).train()
        state = {k: v.clone() for k, v in model.state_dict().items()}
        handler = signal.getsignal(signal.SIGINT)
        paths = [dict(), dict(execution="real"), dict(training=True), dict(mode="same", execution="real")]
        spans = []
        for kwargs in paths:  # warm-up, then the length of one count on each path
            nbcount.count(model, (2, 3, 8, 8), **kwargs)
            start = time.perf_counter()
            nbcount.count(model, (2, 3, 8, 8), **kwargs)
            spans.append(1.2 * (time.perf_counter() - start))
        rng = random.Random(0)
        landed = {"before": 0, "count": 0, "after": 0}
        trials = 0
        while landed["count"] < 120 and trials < 3000:  # until enough interrupts landed inside a count
            trial, trials = trials, trials + 1
            timer = threading.Timer(rng.uniform(0, spans[trial % len(paths)]), _thread.interrupt_main)
            where = "before"
            try:
                timer.start()
                where = "count"
                nbcount.count(model, (2, 3, 8, 8), **paths[trial % len(paths)])
                where = "after"
                timer.join()  # the timer has fired: the interrupt lands here at the latest
                time.sleep(0.005)
                raise AssertionError(f"trial {trial}: the interrupt was lost")
            except KeyboardInterrupt:
                landed[where] += 1
            timer.join()
            assert _len_torch_dispatch_stack() == 0, trial
            assert torch.is_grad_enabled(), trial
            assert signal.getsignal(signal.SIGINT) is handler, trial
            assert all(m.training for m in model.modules()), trial
            assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules()), trial
            now = model.state_dict()
            assert all(torch.equal(now[k], v) and type(now[k]) is torch.Tensor for k, v in state.items()), trial
        print(landed["count"], landed["before"] + landed["after"], trials)
    """, timeout=600)
    interrupted, finished, trials = map(int, out.split())
    # every interrupt surfaced somewhere; 120 of them (a machine's speed decides how many trials that takes)
    # landed inside a count and each left the model and torch's state as they were
    assert interrupted + finished == trials and interrupted >= 120


def test_interrupt_gate_holds_sigint_until_a_safe_point() -> None:
    """Inside deferred(), a SIGINT is held until check() (or the exit) delivers it."""
    import _thread

    from nbcount.capture import interrupts

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred() as gate:
            _thread.interrupt_main()
            sum(range(1000))  # bytecodes run: a plain handler would have raised by now
            reached.append("held")
            gate.check()
            reached.append("not raised at the check")
    assert reached == ["held"]
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            _thread.interrupt_main()
            sum(range(1000))
    assert not any(isinstance(v, interrupts.Gate) for v in [signal_handler()])


def signal_handler() -> Any:
    import signal

    return getattr(signal.getsignal(signal.SIGINT), "__self__", None)


# --- FSDP2, memory -----------------------------------------------------------------------------------

def test_fsdp2_model_counts_whole_and_still_trains() -> None:
    pytest.importorskip("torch.distributed.fsdp")
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    out = run_script("""
        import tempfile, torch
        import torch.distributed as dist
        from torch import nn
        from torch.distributed.fsdp import fully_shard
        import nbcount

        dist.init_process_group("gloo", init_method=f"file://{tempfile.mktemp()}", rank=0, world_size=1)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
        params = sum(p.numel() for p in model.parameters())
        for layer in (model[0], model[2]):
            fully_shard(layer)
        fully_shard(model)
        full = lambda: {k: v.full_tensor().clone() for k, v in model.state_dict().items()}
        kinds = [type(p) for p in model.parameters()]
        before = full()
        for kwargs in (dict(), dict(training=True)):
            report = nbcount.count(model, (2, 8), **kwargs)
            assert report.total_params == params and report.total_macs == 2 * (8 * 16 + 16 * 4), report
            assert report.status == "complete"
        assert [type(p) for p in model.parameters()] == kinds
        after = full()
        assert all(torch.equal(before[k], after[k]) for k in before)
        model(torch.randn(2, 8)).sum().backward()  # the model still runs and trains
        assert all(p.grad is not None for p in model.parameters())
        print("FSDP" in " ".join(d.message for d in report.diagnostics))
        dist.destroy_process_group()
    """)
    assert out.strip() == "True"


def test_peak_memory_with_a_512_mib_buffer_grows_by_under_a_tenth_of_it() -> None:
    out = run_script("""
        import resource, torch
        from torch import nn
        import nbcount

        class Big(nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("table", torch.ones(128 * 2**20))  # 512 MiB, every page touched
                self.lin = nn.Linear(16, 16)

            def forward(self, x):
                return self.lin(x) + self.table[:16]

        nbcount.count(nn.Linear(16, 16), (2, 16)).table  # imports and first-call costs before measuring
        model = Big()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for kwargs in (dict(), dict(training=True), dict(mode="train")):
            report = nbcount.count(model, (2, 16), **kwargs)
            report.table, report.memory
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) * 1024)
    """)
    assert int(out.strip()) <= 0.10 * 512 * 2**20


# --- running without data: trusted only when nothing failed ------------------------------------------

class Cautious(nn.Module):
    """Reads a value in its forward and catches the error that running without data raises."""

    def __init__(self) -> None:
        super().__init__()
        self.small, self.big = nn.Linear(16, 16), nn.Linear(16, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            positive = bool(x.abs().sum().item() > 0)
        except Exception:
            positive = False
        return self.big(x) if positive else self.small(x)


def test_an_error_the_forward_caught_is_recounted_with_real_arithmetic() -> None:
    report = count(Cautious(), (1, 16))
    assert report.trace.execution == "real"
    assert report.total_macs == 16 * 128  # the branch a real forward takes (not 16 * 16)
    note = " ".join(d.message for d in report.diagnostics)
    assert "caught" in note and "real arithmetic" in note and "copies of your model" in note


@pytest.mark.parametrize("where", ["meta", "fake"])
def test_a_caught_error_without_values_is_a_warning(where: str) -> None:
    with torch.device("meta" if where == "meta" else "cpu"):
        model = Cautious()
    report = count(model, (1, 16), execution="fake" if where == "fake" else "auto")
    assert report.total_macs == 16 * 16
    assert any(d.message.startswith("warning:") and "caught" in d.message for d in report.diagnostics)


def test_fp32_grouped_mm_counts_without_data() -> None:
    """torch's fake kernel of _grouped_mm accepts bf16 only (a plain RuntimeError from inside the meta
    registrations, recognised by its origin: next test); the op table's stand-in shapes the fp32 call in bf16,
    so it counts without data and with the real kernel's output shape."""
    class Experts(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(3, 16, 8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            offsets = torch.tensor([4, 8, 12], dtype=torch.int32)
            return torch._grouped_mm(x, self.w, offs=offsets)

    model = Experts()
    report = count(model, (12, 16))
    assert report.trace.execution == "fake" and report.status == "complete"
    assert report.trace.output_tensors[0].shape == tuple(model(torch.randn(12, 16)).shape) == (12, 8)
    assert report.total_macs == 12 * 16 * 8  # each routed row meets one expert's 16×8 matrix


def test_is_fake_limitation_judges_the_origin_not_the_message() -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(), pytest.raises(RuntimeError) as kernel:
        torch._grouped_mm(torch.randn(12, 16), torch.randn(3, 16, 8), offs=torch.tensor([4, 8, 12]).int())
    assert capture.is_fake_limitation(kernel.value)
    with pytest.raises(RuntimeError) as plain:
        raise RuntimeError("Expected inputs of BF16 type, fake tensor, data-dependent, meta tensor")
    assert not capture.is_fake_limitation(plain.value)


# --- the observer API ----------------------------------------------------------------------------------

def test_run_composes_observers() -> None:
    """capture.run takes extra observers: this one sees every op and module call, and adds a note."""
    class Tally(capture.Observer):
        def __init__(self) -> None:
            self.ops: list[str] = []
            self.calls = 0

        def enter(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            self.calls += 1

        def op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
            self.ops.append(str(func.overloadpacket))

        def finish(self, trace: Any) -> Any:
            return dataclasses.replace(trace, notes=(*trace.notes, f"{len(self.ops)} ops"))

    tally = Tally()
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    trace = capture.run(model, ((torch.randn(2, 4),), {}), execution="fake", observers=[tally], mode="eval")
    assert tally.calls == 3 and "aten.relu" in tally.ops and trace.notes == (f"{len(tally.ops)} ops",)
    assert [c.path for c in trace.calls] == ["", "0", "1"] and trace.execution == "fake"
    assert _len_torch_dispatch_stack() == 0


def test_repeated_layers_from_the_output_cache_have_the_real_outputs() -> None:
    """Layers repeated within a count and across counts take their outputs from the cache: each attention's
    outputs are what the real forward returns (the fused eval path returns no weights)."""
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    model = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False).eval()
    real: dict[str, list[tuple[int, ...]]] = {}

    def record(name: str) -> Any:
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            outs = out if isinstance(out, tuple) else (out,)
            real[name] = [tuple(t.shape) for t in outs if isinstance(t, torch.Tensor)]
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in model.named_modules()
               if name.endswith("self_attn")]
    with torch.no_grad():
        model(torch.randn(2, 5, 8))
    for h in handles:
        h.remove()
    for _ in range(2):
        report = count(model, (2, 5, 8))
        counted = {r.layer: [t.shape for t in r.call.out_tensors] for r in report.rows if r.layer in real}
        assert counted == real and len(real) == 3
