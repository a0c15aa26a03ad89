"""RESULTS.md from the benchmark's results: headline, targets of issues #6 and #13, tables, profiles, method."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

GB = 10**9
MIB = 2**20
TOOL_ORDER = ("forward", "fake forward", "nbcount", "FlopCounterMode", "torchinfo", "thop", "ptflops", "fvcore",
              "torchscan", "calflops")


def environment(root: Path | None = None) -> dict[str, Any]:
    """Machine, interpreter, library versions, commit and load: what a reader needs to weigh the numbers."""
    import torch
    from peers import versions

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    root = root or Path(__file__).resolve().parents[1]
    commit = _git(root, "rev-parse", "--short", "HEAD")
    dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    return {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "platform": platform.platform(),
            "cpu": cpu, "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "memory_bytes": mem, "python": sys.version.split()[0], "versions": versions(),
            "commit": commit + (" with uncommitted changes" if dirty else ""), "nbcount_root": str(root),
            "loadavg_start": os.getloadavg()}


def _git(root: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# helpers ---------------------------------------------------------------------------------------------------
def _s(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "—"
    return f"{x:.{digits}f}" if x < 100 else f"{x:.0f}"


def _x(x: float | None) -> str:
    return "—" if x is None else (f"{x:.2f}×" if x < 10 else f"{x:.0f}×")


def _median_of(case: dict[str, Any], tool: str) -> float | None:
    t = case["tools"].get(tool)
    return None if not t or t.get("error") else t.get("median_s")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    aligns = [":---"] + ["---:"] * (len(header) - 1)
    return [_row(header), _row(aligns), *(_row(r) for r in rows), ""]


def _nbcount_big(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    found = results["big"].get(key, {}).get("tools", {}).get("nbcount")
    return found if found and not found.get("error") else None


# targets ---------------------------------------------------------------------------------------------------
def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets of issue #6 with measured value, limit and verdict."""
    cases, out = results["cases"], []

    def add(name: str, value: float | None, limit: float, shown: str, bound: str = "",
            floor: float | None = None, why: str = "") -> None:
        verdict = "not measured" if value is None else ("met" if value <= limit else f"missed by {_x(value / limit)}")
        out.append({"target": name, "value": value, "limit": limit, "shown": shown, "verdict": verdict, "bound": bound,
                    "floor": floor, "why": why})

    small, large = cases.get("resnet50_224"), cases.get("resnet50_448x16")
    if small and large:
        a, b = _median_of(small, "nbcount"), _median_of(large, "nbcount")
        add("ResNet-50 at 16×448² counts within 1.5× of the time at 1×224²", _ratio(b, a), 1.5,
            f"{_x(_ratio(b, a))} ({_s(b)} s vs {_s(a)} s)", bound="resnet50_224")
    for key, label in (("resnet50_224", "ResNet-50 1×224²"), ("gpt2_1024", "GPT-2 1×1024")):
        case = cases.get(key)
        if not case:
            continue
        ours = _median_of(case, "nbcount")
        for peer, limit in (("FlopCounterMode", 1.0), ("torchinfo", 0.5)):
            if peer in case["tools"]:
                theirs = _median_of(case, peer)
                r = _ratio(ours, theirs)
                floor = _ratio(_median_of(case, "fake forward"), theirs)
                add(f"{label}: full count ≤ {limit}× {peer}'s time", r, limit,
                    f"{_x(r)} ({_s(ours)} s vs {_s(theirs)} s)", bound=key, floor=floor)
    b70 = _nbcount_big(results, "llama_70b")
    if b70:
        add("Llama-2-70B shape on meta: full report ≤ 5 s", b70["full_s"], 5.0,
            f"{_s(b70['full_s'], 2)} s (building the model on meta: another {_s(b70['build_s'], 2)} s)",
            bound="llama_70b")
        add("Llama-2-70B shape on meta: peak RSS ≤ 1 GB, torch's import included", b70["peak_rss"] / GB, 1.0,
            f"{b70['peak_rss'] / GB:.2f} GB ({b70['rss_after_import'] / GB:.2f} GB of it after the imports)")
    view = results.get("view")
    if view and view.get("total_s") is not None and "2,000" in view["title"]:
        fallback = view.get("fallback_s") or 0.0
        add("Widget + DataFrame for the 2,000-layer MLP built in ≤ 1 s", view["total_s"], 1.0,
            f"{_s(view['total_s'])} s ({view['rows']:,} rows: DataFrame {_s(view['dataframe_s'])} s, "
            f"widget {_s(view['widget_s'])} s, static fallback {_s(fallback)} s)", bound="view",
            why=f"the static fallback's matplotlib chart (two bar charts drawn to PNG) is most of the "
                f"{_s(fallback)} s; the widget's own model takes {_s(view['widget_s'])} s")
        mlp = cases.get("mlp_2000")
        if mlp and "FlopCounterMode" in mlp["tools"]:
            ours, theirs = _median_of(mlp, "nbcount"), _median_of(mlp, "FlopCounterMode")
            shown = ours + view["widget_s"] + fallback if ours is not None else None
            r = _ratio(shown, theirs)
            widget_part = _ratio(view["widget_s"] + fallback, theirs)
            add("2,000-layer MLP: count + widget ≤ 1.0× FlopCounterMode's forward", r, 1.0,
                f"{_x(r)} ({_s(ours)} s count + {_s(view['widget_s'])} s widget + "
                f"{_s(fallback)} s fallback vs {_s(theirs)} s)", bound="view",
                why=f"the count itself takes {_x(_ratio(ours, theirs))} FlopCounterMode's forward (capture of 2,000 "
                    f"module calls; the stand-in work of issue 13 makes it cheaper); the widget and its static "
                    f"fallback together take {_x(widget_part)}")
    _stand_in_targets(results, add)
    return out


def _count_part(case: dict[str, Any]) -> float | None:
    ours = case["tools"].get("nbcount") or {}
    return None if ours.get("error") else (ours.get("parts_median_s") or {}).get("count")


def _stand_in_targets(results: dict[str, Any], add: Any) -> None:
    """The targets of issue #13 (counting on a stand-in must get cheaper)."""
    cases = results["cases"]
    mlp, resnet = cases.get("mlp_2000"), cases.get("resnet50_224")
    if mlp and "FlopCounterMode" in mlp["tools"]:
        theirs, count = _median_of(mlp, "FlopCounterMode"), _count_part(mlp)
        r = _ratio(count, theirs)
        add("MLP 2,000 layers: count() ≤ 1.0× FlopCounterMode's forward", r, 1.0,
            f"{_x(r)} ({_s(count)} s vs {_s(theirs)} s)", bound="mlp_2000")
    if resnet:
        ours, fake = _median_of(resnet, "nbcount"), _median_of(resnet, "fake forward")
        add("ResNet-50 1×224²: full count ≤ 1.5× the bare fake forward", _ratio(ours, fake), 1.5,
            f"{_x(_ratio(ours, fake))} ({_s(ours)} s vs {_s(fake)} s)", bound="resnet50_224")
    b70 = _nbcount_big(results, "llama_70b")
    if b70:
        add("Llama-2-70B shape on meta: peak RSS ≤ 0.6 GB, torch's import included", b70["peak_rss"] / GB, 0.6,
            f"{b70['peak_rss'] / GB:.2f} GB")


def _profile_of(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    if key == "view":
        return (results.get("view") or {}).get("profile")
    if key in results["big"]:
        return results["big"][key].get("profile")
    return (results.get("profiles") or {}).get(key)


#: entry points that hold everything: not informative as "heaviest functions"
_WRAPPERS = frozenset({"count.py:count", "count.py:_trace", "capture.py:run", "display.py:widget",
                       "capture.py:__torch_dispatch__", "execution.py:trace", "execution.py:attempt", "run.py:run",
                       "run.py:_forward", "run.py:__torch_dispatch__"})


def bound_sentence(results: dict[str, Any], key: str) -> str:
    """What the profile of `key` says takes the time: the top categories and nbcount's heaviest functions."""
    prof = _profile_of(results, key)
    if not prof:
        return ""
    total = prof["total_s"] or 1.0
    cats = list(prof["categories"].items())
    top = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in cats[:3])
    inclusive = [(n, t) for n, t in prof.get("nbcount_inclusive", []) if n not in _WRAPPERS and "<" not in n]
    heavy = "; ".join(f"`{n}` {100 * t / total:.0f}%" for n, t in inclusive[:4])
    return f"profile: {top}" + (f"; heaviest nbcount functions (callees included): {heavy}" if heavy else "")


# markdown --------------------------------------------------------------------------------------------------
def write_markdown(results: dict[str, Any]) -> str:
    """The whole RESULTS.md."""
    env, lines = results["env"], []
    command = f"python benchmarks/run.py {' '.join(results['argv'])}".rstrip()
    lines += ["# nbcount benchmark results", "",
              f"Written by `{command}` on {env['date']} ({results['mode']} mode). Generated: re-run the script rather "
              "than editing this file. Raw numbers, CPU seconds included: `RESULTS.json` beside it.", ""]
    lines += [f"- Partly re-measured: {note}" for note in results.get("updates", [])]
    lines += [""] if results.get("updates") else []
    for section in (_headline, _targets_section, _machine, _times, _ratios, _parts, _big, _view, _values, _profiles,
                    _method, _roofline):
        lines += section(results)
    return "\n".join(lines).rstrip() + "\n"


def _roofline(results: dict[str, Any]) -> list[str]:
    """The roofline comparison written by benchmarks/roofline_cpu.py (ROOFLINE.json), when it has been run."""
    path = Path(__file__).resolve().parent / "ROOFLINE.json"
    if not path.exists():
        return []
    from roofline_cpu import markdown_section

    return markdown_section(json.loads(path.read_text()))


def headline_sentence(results: dict[str, Any]) -> str:
    """One sentence for the README."""
    cases, bits = results["cases"], []
    large, small = cases.get("resnet50_448x16"), cases.get("resnet50_224")
    if large and small:
        a, b = _median_of(small, "nbcount"), _median_of(large, "nbcount")
        fcm, fwd = _median_of(large, "FlopCounterMode"), _median_of(large, "forward")
        r = _ratio(b, a)
        scale = (f"no slower than at 1×224² ({_s(a, 2)} s)" if r is not None and r <= 1.1
                 else f"{_x(r)} its time at 1×224²")
        bits.append(f"nbcount counts ResNet-50 at 16×3×448² in {_s(b, 2)} s, {scale}"
                    + (f", where FlopCounterMode needs {_s(fcm, 1)} s" if fcm else "")
                    + (f" and a plain forward pass {_s(fwd, 1)} s" if fwd else ""))
    b70 = _nbcount_big(results, "llama_70b")
    if b70:
        bits.append(f"a Llama-2-70B-shaped decoder built on meta gets its full report in {_s(b70['full_s'], 1)} s "
                    f"within {b70['peak_rss'] / GB:.2f} GB peak RSS")
    if not bits:
        return "(run the full suite for the headline)"
    env = results["env"]
    return "; ".join(bits) + f" ({env['logical_cpus']} CPU cores, torch {env['versions'].get('torch', '?')})."


def _headline(results: dict[str, Any]) -> list[str]:
    return ["## Headline", "", headline_sentence(results), ""]


def _targets_section(results: dict[str, Any]) -> list[str]:
    found = targets(results)
    if not found:
        return ["## Targets of issues #6 and #13", "", "Not evaluated in this mode (run the full suite).", ""]
    rows = [[t["target"], t["shown"], t["verdict"]] for t in found]
    lines = ["## Targets of issues #6 and #13", "", *_table(["target", "measured (median)", "verdict"], rows)]
    for t in found:
        if t["verdict"].startswith("missed"):
            why = t.get("why") or (bound_sentence(results, t["bound"]) if t["bound"] else "")
            if t.get("floor") is not None:
                floor = (f"torch's FakeTensorMode forward alone (parameters faked beforehand, no hooks, no recording: "
                         f"the `fake forward` column) takes {_x(t['floor'])} that tool's time")
                why = f"{floor}; {why}" if why else floor
            lines.append(f"- **{t['target']}**: {t['verdict']}." + (f" What bounds it: {why}." if why else ""))
    return lines + [""]


def _machine(results: dict[str, Any]) -> list[str]:
    env = results["env"]
    mem = f"{env['memory_bytes'] / 2**30:.0f} GiB" if env.get("memory_bytes") else "?"

    def load(v: Any) -> str:
        return "/".join(f"{x:.1f}" for x in v) if v else "?"
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    return ["## Machine", "",
            f"- {env['cpu']}, {env['logical_cpus']} logical CPUs (torch uses {env['torch_threads']} threads), "
            f"{mem} RAM; {env['platform']}; Python {env['python']}",
            f"- {versions}",
            f"- nbcount at commit {env['commit'] or '?'} ({env.get('nbcount_root', '?')})",
            f"- load average (1/5/15 min) at start {load(env.get('loadavg_start'))}, at end "
            f"{load(env.get('loadavg_end'))}. On a shared virtual machine, other processes slow every tool; the "
            "round-robin order spreads that over all of them alike.", ""]


def _tools(results: dict[str, Any]) -> list[str]:
    present = {t for c in results["cases"].values() for t in c["tools"]}
    return [t for t in TOOL_ORDER if t in present]


def _times(results: dict[str, Any]) -> list[str]:
    tools = _tools(results)
    rows, notes = [], []
    for case in results["cases"].values():
        cells = [case["title"]]
        for tool in tools:
            t = case["tools"].get(tool, {})
            runs = t.get("runs", 0)
            single = "¹" if not t.get("error") and runs < results["repeat"] else ""
            cells.append("failed" if t.get("error") else _s(t.get("median_s")) + single)
            if t.get("error"):
                notes.append(f"- {tool} on {case['title']}: {t['error']}")
        rows.append(cells)
    return ["## Seconds per tool (median wall time after a warm-up)", "",
            "nbcount = `count(model, inputs=x)` + `report.receptive_field` + `report.memory` + `report.table` on "
            "the real model (counted without arithmetic: fake tensors); forward = `model(x)` under `no_grad`; "
            "fake forward = the same forward under torch's FakeTensorMode with the parameters faked beforehand, no "
            "hooks and nothing recorded: the floor of any count that runs no arithmetic; every peer runs the real "
            "forward pass.", "",
            *_table(["case", *tools], rows),
            "¹ fewer runs than the others (the warm-up took more than the per-tool budget; see the method).", "",
            *notes, *([""] if notes else [])]


def _ratios(results: dict[str, Any]) -> list[str]:
    tools = [t for t in _tools(results) if t != "nbcount"]
    rows = [[case["title"], *(_x(_ratio(_median_of(case, "nbcount"), _median_of(case, t))) for t in tools)]
            for case in results["cases"].values()]
    return ["## nbcount's time ÷ each tool's time (below 1×: nbcount is faster)", "", *_table(["case", *tools], rows)]


def _parts(results: dict[str, Any]) -> list[str]:
    rows = []
    for case in results["cases"].values():
        t = case["tools"].get("nbcount")
        if t is None:
            continue
        if t.get("error"):
            rows.append([case["title"], "failed: " + t["error"]] + [""] * 9)
            continue
        p = t["parts_median_s"]
        rows.append([case["title"], str(t.get("execution")), f"{t.get('rows'):,}", f"{t.get('ops'):,}",
                     _s(p.get("count")), _s(p["receptive_field"]) if "receptive_field" in p else "n/a",
                     _s(p.get("memory")), _s(p.get("table")), _s(t["median_s"]), _s(t["first_s"]),
                     _s(t.get("cpu_median_s"))])
    return ["## nbcount part by part (median seconds)", "",
            "`first call` is the warm-up call (the first case also pays one-off imports such as pandas); `CPU s` is "
            "the process CPU time of the full count.", "",
            *_table(["case", "execution", "rows", "aten ops", "count()", "receptive field", "memory", "table",
                     "full", "first call", "CPU s"], rows)]


def _big(results: dict[str, Any]) -> list[str]:
    if not results["big"]:
        return []
    rows = []
    for big in results["big"].values():
        for tool, t in big["tools"].items():
            if t.get("full_s") is None:
                rows.append([big["title"], tool, "failed: " + str(t.get("error"))] + [""] * 7)
                continue
            hwm = f"{t['vm_hwm'] / MIB:,.0f}" if t.get("vm_hwm") else "—"
            rows.append([big["title"], tool + (f" (failed: {t['error']})" if t.get("error") else ""),
                         _s(t["full_s"], 2), _s(t["build_s"], 2), _s(t["import_s"], 2), _s(t["process_s"], 2),
                         f"{t['peak_rss'] / MIB:,.0f}", hwm, f"{t['rss_after_import'] / MIB:,.0f}",
                         f"{t['params']:,}" if t.get("params") else "—"])
    return ["## Large models built on meta (a fresh process per run, median of the runs)", "",
            "full report = what the tool does once the model exists (nbcount: count, receptive field, memory, "
            "table); build = `llama(preset)` under `torch.device(\"meta\")`; process = the child's whole wall time "
            "(interpreter start, imports, build, report). Peak RSS is `getrusage(RUSAGE_SELF).ru_maxrss` in the "
            "child (torch's import included), started through `/bin/sh` because Linux hands a parent's peak RSS to "
            "a child it execs directly; VmHWM from /proc cross-checks it.", "",
            *_table(["model", "tool", "full report s", "build s", "import s", "process s", "peak RSS MiB",
                     "VmHWM MiB", "RSS after imports MiB", "parameters"], rows)]


def _view(results: dict[str, Any]) -> list[str]:
    v = results.get("view")
    if not v:
        return []
    rows = [[v["title"], f"{v['rows']:,}", _s(v["dataframe_s"]), _s(v["widget_s"]), _s(v.get("fallback_s")),
             _s(v["total_s"])]]
    return ["## DataFrame and widget of a large report (median seconds, after a warm-up)", "",
            "widget = `nbcount.widget.widget(report)` (the JSON model the browser draws: rows, subtotals, eager "
            "tabs, one derivation); static fallback = the escaped HTML table, text and matplotlib chart published "
            "before it for nbconvert / GitHub.", "",
            *_table(["case", "rows", "report.table", "widget", "static fallback", "all"], rows),
            *([f"Widget: {v['error']}", ""] if v.get("error") else [])]


def _values(results: dict[str, Any]) -> list[str]:
    tools = [t for t in _tools(results) if t != "forward"]
    rows = []
    for case in results["cases"].values():
        cells = [case["title"]]
        for tool in tools:
            t = case["tools"].get(tool, {})
            cells.append("—" if t.get("error") or t.get("value") is None else f"{t['value']:,} {t.get('unit', '')}")
        nb = case["tools"].get("nbcount", {})
        if "nbcount" in tools:
            cells.insert(2, f"{nb['macs']:,}" if nb.get("macs") is not None else "—")
        rows.append(cells)
    header = ["case", "nbcount", "nbcount MACs", *tools[1:]] if "nbcount" in tools else ["case", *tools]
    return ["## What each tool reported (its own headline number and unit)", "",
            "Each tool counts under its own convention (see `nbcount.conventions()`): listed to show that every tool "
            "counted the same model, not to be compared digit by digit.", "", *_table(header, rows)]


def _profiles(results: dict[str, Any]) -> list[str]:
    found = [(c["title"], p) for k, c in results["cases"].items() if (p := (results.get("profiles") or {}).get(k))]
    found += [(b["title"], b["profile"]) for b in results["big"].values() if b.get("profile")]
    view = results.get("view") or {}
    if view.get("profile"):
        found.append((f"nbcount.display.widget(report), {view['title']}", view["profile"]))
    if not found:
        return []
    lines = ["## Where the time goes (pyinstrument, a sample every 0.5 ms)", "",
             "Each sample's time goes to the innermost Python frame's file (builtins and generated code count for "
             "their caller), per call; the profiler's own overhead inflates the totals.", ""]
    for title, prof in found:
        total = prof["total_s"] or 1.0
        rows = [[k, _s(v), f"{100 * v / total:.0f}%"] for k, v in prof["categories"].items()]
        lines += [f"### {title}: {_s(prof['total_s'])} s per call under the profiler", "",
                  *_table(["where", "seconds", "share"], rows)]
        if prof.get("nbcount_inclusive"):
            lines.append("nbcount functions, callees included: " + "; ".join(
                f"`{n}` {100 * t / total:.0f}%" for n, t in prof["nbcount_inclusive"][:10]))
            lines.append("")
        lines += ["Hottest functions, own time: " + "; ".join(f"`{n}` {_s(t, 4)} s" for n, t in prof["top_functions"]),
                  ""]
    return lines


def _method(results: dict[str, Any]) -> list[str]:
    return ["## Method", "",
            f"- Every tool on a case runs once as a warm-up, then up to {results['repeat']} rounds in round-robin "
            "order (one call of each tool per round, so a change in machine load hits all tools alike); the median "
            f"wall time of the rounds is shown. A tool whose warm-up took longer than {results['budget_s']:.0f} s "
            "gets budget ÷ warm-up runs (at least one; none if the warm-up alone exceeded the budget, and then the "
            "warm-up is the number).",
            "- Same process, same model object, same input tensor for every tool; `gc.collect()` before each call; "
            "peers' printing and warnings are silenced (redirected).",
            "- nbcount is called as a notebook user calls it: `count(model, inputs=x)` on the real CPU model (auto "
            "execution: fake tensors, no arithmetic), then the receptive field, memory figures and DataFrame.",
            "- Large models are built and counted in a fresh interpreter per run, so the peak RSS is one count's.",
            ""]
