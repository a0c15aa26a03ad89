"""Where nbcount's time goes: a sampling profile (pyinstrument) of one call, each sample's time given to
the innermost Python frame's file (a builtin or generated function counts for its caller) and grouped into
the layers of the system (torch's fake-tensor dispatch, torch decompositions, nbcount capture, rules,
report, pandas, the model's own Python)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: (category, path fragments); the first match wins, so specific entries come first
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("nbcount capture (stand-in, hooks, dispatch mode, recorder)", ("nbcount/capture", "nbcount/preserve.py",
                                                                    "nbcount/execution.py", "nbcount/inputs.py",
                                                                    "nbcount/errors.py")),
    ("nbcount receptive field", ("nbcount/receptive.py", "nbcount/rules/receptive.py")),
    ("nbcount rules, report, memory", ("nbcount/rules/", "nbcount/counting.py", "nbcount/report.py",
                                       "nbcount/memory.py", "nbcount/derive.py", "nbcount/types.py",
                                       "nbcount/frame.py", "nbcount/convention.py", "nbcount/peers/")),
    ("nbcount display (widget, charts)", ("nbcount/display.py", "nbcount/charts.py", "nbcount/export.py",
                                          "nbcount/widget", "nbcount/table.py", "nbcount/formats.py",
                                          "nbcount/subtotals.py", "nbcount/tabs.py", "nbcount/labels.py",
                                          "nbcount/escape.py", "nbcount/matrix.py")),
    ("model forward (its own Python)", ("nbcount/zoo/", "benchmarks/")),
    ("torch FakeTensorMode dispatch", ("torch/_subclasses/",)),
    ("torch decompositions / meta kernels", ("torch/_decomp/", "torch/_refs/", "torch/_prims", "torch/_meta_reg")),
    ("torch nn.Module call + dispatch machinery", ("torch/",)),
    ("pandas", ("pandas/",)),
    ("matplotlib / ipywidgets", ("matplotlib/", "ipywidgets/", "anywidget/", "traitlets/", "PIL/")),
)


def categorise(path: str | None) -> str:
    """The category of a source file path."""
    path = (path or "").replace("\\", "/")
    for name, fragments in CATEGORIES:
        if any(f in path for f in fragments):
            return name
    return "other (Python stdlib)"


def _walk(frame: Any, inherited: str | None, out: dict[str, float]) -> None:
    own_path = frame.file_path or ""
    # builtins ("<built-in>"), generated code ("<string>": dataclass __init__) and GC pauses count for the
    # Python code that called them
    path = inherited if frame.is_synthetic or not own_path or own_path.startswith("<") else own_path
    own = frame.time - sum(child.time for child in frame.children)
    if own > 0:
        key = categorise(path)
        out[key] = out.get(key, 0.0) + own
    for child in frame.children:
        _walk(child, path, out)


def profile(fn: Callable[[], Any], repeat: int = 3) -> dict[str, Any] | None:
    """Seconds per category over `repeat` calls of fn (after one unprofiled warm-up), or None without
    pyinstrument. Returned with the top five innermost functions, for the text of RESULTS.md."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return None
    fn()
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(repeat):
        fn()
    session = profiler.stop()
    root = session.root_frame()
    if root is None:
        return None
    by_category: dict[str, float] = {}
    _walk(root, None, by_category)
    functions: dict[str, float] = {}
    _leaves(root, functions)
    top = sorted(functions.items(), key=lambda kv: -kv[1])[:6]
    inclusive: dict[str, float] = {}
    _inclusive(root, frozenset(), inclusive)
    ours = sorted(inclusive.items(), key=lambda kv: -kv[1])[:12]
    total = sum(by_category.values())
    return {"total_s": total / repeat, "repeat": repeat,
            "categories": {k: v / repeat for k, v in sorted(by_category.items(), key=lambda kv: -kv[1])},
            "top_functions": [(name, t / repeat) for name, t in top],
            "nbcount_inclusive": [(name, t / repeat) for name, t in ours]}


def _inclusive(frame: Any, open_keys: frozenset[str], out: dict[str, float]) -> None:
    """Time under each nbcount function, callees included (recursion counted once)."""
    path = (frame.file_path or "").replace("\\", "/")
    key = None
    if "/nbcount/" in path and "/nbcount/zoo/" not in path and not frame.is_synthetic:
        key = f"{path.rsplit('/nbcount/', 1)[1]}:{frame.function}"
        if key not in open_keys:
            out[key] = out.get(key, 0.0) + frame.time
    for child in frame.children:
        _inclusive(child, open_keys | {key} if key else open_keys, out)


def _leaves(frame: Any, out: dict[str, float]) -> None:
    own = frame.time - sum(child.time for child in frame.children)
    if own > 0 and not frame.is_synthetic and frame.file_path:
        key = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
        out[key] = out.get(key, 0.0) + own
    for child in frame.children:
        if child.is_synthetic:  # "[self]": time of the parent's own line
            key = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
            out[key] = out.get(key, 0.0) + child.time
        else:
            _leaves(child, out)
