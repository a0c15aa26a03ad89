#!/usr/bin/env python
"""nbcount's performance benchmark (issue #6): nbcount's full count beside a plain forward pass and every
installed peer, side by side in one process, median of several runs after a warm-up; Llama decoders built
on ``meta`` in fresh processes for their peak RSS. Writes benchmarks/RESULTS.md (and RESULTS.json).

    python benchmarks/run.py            # the full suite: about a quarter of an hour on 2 cores
    python benchmarks/run.py --quick    # tiny models, one run each: a smoke run (the tests use it)
    python benchmarks/run.py --nbcount ../other-checkout --cases resnet50_224 --tools nbcount   # before/after

Not a test: nothing here asserts a time. The targets of issue #6 are evaluated and reported.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [p for p in (str(ROOT), str(HERE)) if p not in sys.path]
NBCOUNT_ROOT = ROOT  # the checkout whose nbcount is measured (--nbcount: another one, for before/after)
PROFILED = ("resnet50_224", "gpt2_1024", "mlp_2000", "lenet")  # cases whose full count is profiled


# timing ------------------------------------------------------------------------------------------------
@dataclass
class Timing:
    """Wall and CPU seconds of one tool on one case; `first` is the warm-up call."""

    first: float = 0.0
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    value: int | None = None
    unit: str = ""
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        """Median wall seconds of the runs after the warm-up (the warm-up alone when it was too slow)."""
        return _median(self.wall) if self.wall else (None if self.error else self.first)

    def as_dict(self) -> dict[str, Any]:
        """JSON form, with the medians."""
        return {"median_s": self.median, "cpu_median_s": _median(self.cpu) if self.cpu else None,
                "first_s": self.first, "runs": len(self.wall), "wall_s": self.wall, "cpu_s": self.cpu,
                "parts_median_s": {k: _median(v) for k, v in self.parts.items()}, "value": self.value,
                "unit": self.unit, "error": self.error, **self.extra}


def _median(values: list[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def _error_text(error: BaseException) -> str:
    first_line = str(error).splitlines()[0][:120] if str(error) else ""
    return f"{type(error).__name__}: {first_line}"


Job = Callable[[], tuple[int, str, dict[str, float]]]


def _call(job: Job, timing: Timing) -> tuple[float, float]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    value, unit, parts = job()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    timing.value, timing.unit = value, unit
    for k, v in parts.items():
        timing.parts.setdefault(k, []).append(v)
    return wall, cpu


def measure_round_robin(jobs: dict[str, Job], repeat: int, budget: float) -> dict[str, Timing]:
    """A warm-up call of every job, then up to `repeat` rounds, one call of each job per round (so a
    change in machine load hits every tool alike). A job whose warm-up took longer than `budget`
    seconds gets fewer runs: budget // warm-up, at least one (none if the warm-up alone took > budget)."""
    timings = {name: Timing() for name in jobs}
    runs: dict[str, int] = {}
    for name, job in jobs.items():
        t = timings[name]
        try:
            t.first, _ = _call(job, t)
            t.parts.clear()
        except Exception as error:  # a peer that cannot count this model: reported, never hidden
            t.error = _error_text(error)
            continue
        runs[name] = 0 if t.first > budget else max(1, min(repeat, int(budget // max(t.first, 1e-6))))
    for round_ in range(max(runs.values(), default=0)):
        for name, n in runs.items():
            if round_ < n:
                wall, cpu = _call(jobs[name], timings[name])
                timings[name].wall.append(wall)
                timings[name].cpu.append(cpu)
    return timings


# nbcount -------------------------------------------------------------------------------------------------
def nbcount_full(model: Any, x: Any = None, size: Any = None, dtype: Any = None) -> tuple[Any, dict[str, float]]:
    """count() + report.receptive_field + report.memory + report.table, timed part by part (the table
    shows the receptive field, so it is computed first and the table's time is the DataFrame's own)."""
    from nbcount import count

    parts: dict[str, float] = {}
    t = time.perf_counter()
    report = count(model, inputs=x) if x is not None else count(model, size, dtype=dtype)
    parts["count"] = time.perf_counter() - t
    for name in ("receptive_field", "memory", "table"):
        t = time.perf_counter()
        try:
            getattr(report, name)
        except (ImportError, AttributeError):
            continue  # not written yet on this checkout
        parts[name] = time.perf_counter() - t
    return report, parts


def nbcount_job(model: Any, x: Any, facts: dict[str, Any]) -> Job:
    def job() -> tuple[int, str, dict[str, float]]:
        report, parts = nbcount_full(model, x)
        facts.update(rows=len(report.rows), ops=sum(len(r.call.ops) for r in report.rows),
                     execution=report.trace.execution, status=report.status, macs=report.total_macs,
                     params=report.total_params)
        return int(report.total_flops), "FLOPs", parts
    return job


def fake_floor_job(model: Any, x: Any) -> Job:
    """The floor of counting without arithmetic on this torch: a bare FakeTensorMode forward with the
    parameters converted once beforehand; no hooks, no recording, no rules, no report."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    state = dict(model.named_parameters(remove_duplicate=False))
    state.update(model.named_buffers(remove_duplicate=False))
    with mode:
        fakes: dict[str, torch.Tensor] = {name: mode.from_tensor(t) for name, t in state.items()}
        fake_x = mode.from_tensor(x)

    def job() -> tuple[int, str, dict[str, float]]:
        with torch.no_grad(), mode:
            torch.func.functional_call(model, fakes, (fake_x,))
        return 0, "", {}
    return job


def peer_job(fn: Callable[..., tuple[int, str]], model: Any, x: Any) -> Job:
    from peers import run_quietly

    def job() -> tuple[int, str, dict[str, float]]:
        value, unit = run_quietly(fn, model, x)
        return value, unit, {}
    return job


def run_case(case: Any, peer_runners: dict[str, Any], repeat: int, budget: float,
             tools: set[str] | None = None) -> dict[str, Any]:
    """Every tool on one model and input, in this process."""
    import peers
    import torch

    model, x = case.build().eval(), case.make_input()
    facts: dict[str, Any] = {}
    jobs: dict[str, Job] = {"forward": peer_job(peers.forward, model, x), "fake forward": fake_floor_job(model, x),
                            "nbcount": nbcount_job(model, x, facts)}
    jobs.update({name: peer_job(fn, model, x) for name, fn in peer_runners.items()})
    jobs = {name: job for name, job in jobs.items() if tools is None or name in tools}
    with torch.no_grad():
        timings = measure_round_robin(jobs, repeat, budget)
    if "nbcount" in timings:
        timings["nbcount"].extra.update(facts)
    print(f"  {case.title}: " + ", ".join(f"{k} {v.median:.3f}s" if v.median is not None else f"{k} failed"
                                        for k, v in timings.items()), flush=True)
    return {"title": case.title, "shape": list(case.shape), "tools": {k: v.as_dict() for k, v in timings.items()}}


def _display(report: Any) -> None:
    """Everything a notebook output of the report needs: the widget's model and the static fallback."""
    from nbcount.widget import static_fallback, widget

    view = widget(report)
    static_fallback(report, view.options, view.key)


def run_view(case: Any, repeat: int, profile: bool) -> dict[str, Any]:
    """DataFrame (report.table), widget (its JSON model) and static fallback (table + chart) of a fresh report."""
    from nbcount import count

    model, x = case.build().eval(), case.make_input()
    parts: dict[str, list[float]] = {"dataframe_s": [], "widget_s": [], "fallback_s": []}
    error: str | None = None
    try:
        from nbcount.widget import static_fallback, widget
    except ImportError as e:
        widget = static_fallback = None  # type: ignore[assignment]
        error = f"nbcount.widget not available ({e})"
    for i in range(repeat + 1):
        report = count(model, inputs=x)
        gc.collect()
        times: dict[str, float] = {}
        t = time.perf_counter()
        _ = report.table
        times["dataframe_s"] = time.perf_counter() - t
        if widget is not None and static_fallback is not None:
            try:
                t = time.perf_counter()
                view = widget(report)
                times["widget_s"] = time.perf_counter() - t
                t = time.perf_counter()
                static_fallback(report, view.options, view.key)
                times["fallback_s"] = time.perf_counter() - t
            except Exception as e:  # report the failure instead of losing the other numbers
                error, widget = _error_text(e), None
        if i:  # the first is the warm-up (imports of pandas, matplotlib, anywidget)
            for key, value in times.items():
                parts[key].append(value)
    total = [sum(v) for v in zip(*parts.values())] if parts["widget_s"] else []
    out: dict[str, Any] = {"title": case.title, "rows": len(report.rows), "error": error,
                           "total_s": _median(total) if total else None}
    out.update({key: _median(values) if values else None for key, values in parts.items()})
    if profile and widget is not None:
        from profiling import profile as run_profile

        out["profile"] = run_profile(functools.partial(_display, report), repeat=1 if repeat == 1 else 3)
    return out


# big models on meta, each in a fresh process ------------------------------------------------------------
def child_main(preset: str, tokens: int, tool: str, profile: bool) -> None:
    """Runs in the child: import, build on meta, count; prints one JSON line with times and peak RSS."""
    t0 = time.perf_counter()
    import torch

    from nbcount.zoo import llama
    out: dict[str, Any] = {"import_s": time.perf_counter() - t0, "rss_after_import": _peak_rss()}
    t = time.perf_counter()
    with torch.device("meta"):
        model = llama(preset)
    out["build_s"] = time.perf_counter() - t
    out["params"] = sum(p.numel() for p in model.parameters())
    if profile:
        from profiling import profile as run_profile

        out["profile"] = run_profile(lambda: nbcount_full(model, size=(1, tokens), dtype=torch.long), repeat=1)
    elif tool == "nbcount":
        t = time.perf_counter()
        report, parts = nbcount_full(model, size=(1, tokens), dtype=torch.long)
        out["full_s"] = time.perf_counter() - t
        out.update(parts=parts, rows=len(report.rows), value=int(report.total_flops), unit="FLOPs",
                   status=report.status, execution=report.trace.execution)
    else:
        import peers

        x = torch.zeros((1, tokens), dtype=torch.long, device="meta")
        t = time.perf_counter()
        try:
            out["value"], out["unit"] = peers.run_quietly(peers.installed()[tool], model, x)
        except Exception as error:
            out["error"] = _error_text(error)
        out["full_s"] = time.perf_counter() - t
    out["peak_rss"], out["vm_hwm"] = _peak_rss(), _vm_hwm()
    print("NBCOUNT-BENCH " + json.dumps(out), flush=True)


def _peak_rss() -> int:
    """Peak resident set size of this process in bytes (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def _vm_hwm() -> int | None:
    """Linux's own peak RSS of this address space (/proc/self/status VmHWM), to cross-check ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def run_child(big: Any, tool: str, profile: bool = False) -> dict[str, Any]:
    """One fresh interpreter counting `big` with `tool`; its JSON line, plus the parent-side wall time."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--nbcount", str(NBCOUNT_ROOT), "--child", big.preset,
           "--tokens", str(big.tokens), "--tool", tool] + (["--profile"] if profile else [])
    if os.name == "posix" and Path("/bin/sh").exists():
        # Linux carries the parent's peak RSS into ru_maxrss across fork + exec (the exec'd image inherits
        # the high-water mark of the copied address space): a shell in between forks the child from a
        # small process, so the child's getrusage is its own.
        cmd = ["/bin/sh", "-c", '"$0" "$@"; exit $?', *cmd]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(NBCOUNT_ROOT), str(HERE), os.environ.get("PYTHONPATH", "")]))
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    wall = time.perf_counter() - t
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("NBCOUNT-BENCH ")]
    if proc.returncode or not lines:
        return {"error": f"child exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}", "process_s": wall}
    return {**json.loads(lines[-1][len("NBCOUNT-BENCH "):]), "process_s": wall}


def _summarise(tool: str, good: list[dict[str, Any]]) -> dict[str, Any]:
    last = good[-1]
    summary: dict[str, Any] = {k: _median([r[k] for r in good]) for k in ("import_s", "build_s", "full_s", "process_s")}
    summary.update(peak_rss=max(r["peak_rss"] for r in good), vm_hwm=max((r.get("vm_hwm") or 0) for r in good) or None,
                   rss_after_import=max(r["rss_after_import"] for r in good), runs=len(good),
                   **{k: last.get(k) for k in ("value", "unit", "error", "params", "rows", "status")})
    if tool == "nbcount":
        summary["parts_median_s"] = {k: _median([r["parts"][k] for r in good]) for k in good[0]["parts"]}
    return summary


def run_big(big: Any, tools: Sequence[str], repeat: int, profile: bool) -> dict[str, Any]:
    """`repeat` fresh processes per tool; medians of their times, the largest peak RSS."""
    out: dict[str, Any] = {"title": big.title, "preset": big.preset, "tokens": big.tokens, "tools": {}}
    for tool in tools:
        runs = [run_child(big, tool) for _ in range(repeat)]
        good = [r for r in runs if "full_s" in r]
        if not good:
            out["tools"][tool] = {"error": runs[0].get("error")}
            continue
        summary = out["tools"][tool] = _summarise(tool, good)
        print(f"  {big.title} [{tool}]: {summary['full_s']:.2f}s, peak RSS {summary['peak_rss'] / 2**20:.0f} MiB",
              flush=True)
    if profile:
        out["profile"] = run_child(big, "nbcount", profile=True).get("profile")
    return out


def profile_cases(cases: list[Any], quick: bool) -> dict[str, Any]:
    """A pyinstrument profile of nbcount's full count on each case in PROFILED."""
    import torch
    from profiling import profile

    found = {}
    for case in cases:
        if case.key in PROFILED:
            model, x = case.build().eval(), case.make_input()
            with torch.no_grad():
                found[case.key] = profile(functools.partial(nbcount_full, model, x), repeat=1 if quick else 5)
    return found


# main ------------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models, one run each (a smoke run)")
    parser.add_argument("--repeat", type=int, help="runs after the warm-up (default 7; 1 with --quick)")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="seconds one tool may spend on one case before it gets fewer runs (default 30)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="the Markdown report to write")
    parser.add_argument("--cases", help="comma-separated case keys to run (default: all)")
    parser.add_argument("--tools", help="comma-separated tools to run (forward, nbcount, peer names; default: all)")
    parser.add_argument("--no-peers", action="store_true", help="only the forward pass and nbcount")
    parser.add_argument("--no-profile", action="store_true", help="skip the pyinstrument attribution")
    parser.add_argument("--nbcount", type=Path, help="measure the nbcount of another checkout (before/after)")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite the Markdown from the JSON beside it (after editing results.py)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=int, default=4096, help=argparse.SUPPRESS)
    parser.add_argument("--tool", default="nbcount", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_suite(args: argparse.Namespace) -> dict[str, Any]:
    """Every selected case and tool; the results as one JSON-able dict."""
    import cases as case_defs
    import peers
    from results import environment

    mode = "quick" if args.quick else "full"
    repeat = args.repeat or (1 if args.quick else 7)
    chosen = set(args.cases.split(",")) if args.cases else None
    in_process = [c for c in (case_defs.QUICK_CASES if args.quick else case_defs.CASES)
                  if not chosen or c.key in chosen]
    big_cases = [b for b in (case_defs.QUICK_BIG_CASES if args.quick else case_defs.BIG_CASES)
                 if not chosen or b.key in chosen]
    peer_runners = {} if args.no_peers else peers.installed()
    tools = set(args.tools.split(",")) if args.tools else None
    results: dict[str, Any] = {"mode": mode, "repeat": repeat, "budget_s": args.budget, "argv": sys.argv[1:],
                               "env": environment(NBCOUNT_ROOT), "cases": {}, "big": {}}
    print(f"nbcount benchmark ({mode}), {len(in_process)} cases, peers: {', '.join(peer_runners) or 'none'}",
          flush=True)
    for case in in_process:
        results["cases"][case.key] = run_case(case, peer_runners, repeat, args.budget, tools)
    wide = next((c for c in in_process if c.key == case_defs.WIDE_CASE[mode]), None)
    if wide is not None and (tools is None or "nbcount" in tools):
        results["view"] = run_view(wide, repeat, not args.no_profile)
        print(f"  DataFrame + widget, {wide.title}: DataFrame {results['view']['dataframe_s']:.3f}s, "
              f"widget {results['view']['widget_s'] or float('nan'):.3f}s", flush=True)
    big_tools = [t for t in ("nbcount", "FlopCounterMode", "torchinfo")
                 if (t == "nbcount" or (t in peer_runners and not args.quick)) and (tools is None or t in tools)]
    for big in big_cases:
        results["big"][big.key] = run_big(big, big_tools, 1 if args.quick else 3, not args.no_profile)
    if not args.no_profile and (tools is None or "nbcount" in tools):
        results["profiles"] = profile_cases(in_process, args.quick)
    results["env"]["loadavg_end"] = os.getloadavg()
    return results


def main(argv: list[str] | None = None) -> int:
    global NBCOUNT_ROOT
    args = parse_args(argv)
    if args.nbcount:
        NBCOUNT_ROOT = args.nbcount.resolve()
        sys.path.insert(0, str(NBCOUNT_ROOT))
    if args.child:
        child_main(args.child, args.tokens, args.tool, args.profile)
        return 0
    from results import write_markdown

    if args.render:
        args.out.write_text(write_markdown(json.loads(args.out.with_suffix(".json").read_text())))
        print(f"wrote {args.out}", flush=True)
        return 0
    results = run_suite(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str))
    args.out.write_text(write_markdown(results))
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
