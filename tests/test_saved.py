"""Notebooks as readers receive them, executed in a real kernel (nbclient) with widget state saved:
the README's notebook block run verbatim, nbconvert's HTML showing the table outside any script,
and a 2,000-layer model's saved cell kept lean."""

from __future__ import annotations

import json
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
VENV_JUPYTER = str(Path(sys.prefix) / "share" / "jupyter")

pytestmark = pytest.mark.notebook


def execute(cells: list[str], tmp_path: Path) -> Any:
    """Run `cells` in a fresh python3 kernel of this venv, saving widget state as Jupyter does by default."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([VENV_JUPYTER, *([saved] if saved else [])])
    try:
        NotebookClient(nb, kernel_name="python3", timeout=600, store_widget_state=True,
                       resources={"metadata": {"path": str(tmp_path)}}).execute(env={**os.environ, "MPLBACKEND": "Agg"})
    finally:
        if saved is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = saved
    return nb


def readme_cells() -> list[str]:
    """The fenced python blocks of the README's "In a notebook" section, verbatim: one cell each."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## In a notebook", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)\n```", section, flags=re.S)


def test_readme_notebook_block_runs_verbatim(tmp_path: Path) -> None:
    cells = readme_cells()
    assert len(cells) >= 3 and cells[1].startswith("%%netcount") and "# counts the model" in cells[1]
    nb = execute(cells + ["print(r.total_params, type(model[3]).__name__, r.convention.name)"], tmp_path)
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    views = [o for c in nb.cells for o in c.outputs if VIEW in o.get("data", {})]
    assert len(views) == 2  # the cell magic and the line magic each show the widget
    conv, linear = 8 * 3 * 9 + 8, (8 * 30 * 30) * 10 + 10  # LazyLinear(10) on a flattened 8×30×30
    assert f"{conv + linear} LazyLinear fvcore" in nb.cells[-1].outputs[0]["text"]  # the model stays lazy
    state = nb.metadata["widgets"][STATE]["state"]
    derived = state[views[1]["data"][VIEW]["model_id"]]["state"]["model"]
    assert derived["open"] == "Derivation" and derived["derivations"]["1"]["label"] == "0 (Conv2d)"


class _Visible(HTMLParser):
    """Text of an HTML page outside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.hidden += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def test_nbconvert_html_shows_the_table_outside_scripts(tmp_path: Path) -> None:
    from nbconvert import HTMLExporter

    cells = ["import torch, nbcount\nfrom torch import nn\nnet = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), "
             "nn.Flatten(), nn.Linear(8 * 6 * 6, 10))", "%load_ext nbcount", "%netcount net -i 1,3,8,8"]
    nb = execute(cells, tmp_path)
    assert nb.metadata["widgets"][STATE]["state"], "widget state was saved"
    html, _ = HTMLExporter().from_notebook_node(nb)
    reader = _Visible()
    reader.feed(html)
    text = " ".join(reader.parts)
    params = (8 * 3 * 9 + 8) + (8 * 6 * 6 * 10 + 10)
    for expected in ("parameters (unique)", f"{params:,} ({params / 1e3:.2f} k)", "0 (Conv2d)", "3 (Linear)", "total"):
        assert expected in text, expected
    assert "data:image/png;base64," in html  # the chart


def test_saved_cell_of_a_2000_layer_model_is_lean(tmp_path: Path) -> None:
    cell = ("import torch, nbcount\nfrom torch import nn\n"
            "net = nn.Sequential(*[nn.Linear(256, 256) for _ in range(2000)])\n"
            "nbcount.count(net, (1, 256)).show()")
    nb = execute([cell], tmp_path)
    outputs = nb.cells[0].outputs
    ids = {o["data"][VIEW]["model_id"] for o in outputs if VIEW in o.get("data", {})}
    state = nb.metadata["widgets"][STATE]["state"]
    widgets = {k: v for k, v in state.items() if k in ids or k in json.dumps([state[i] for i in ids])}
    size = len(json.dumps(outputs)) + len(json.dumps(widgets))
    assert size <= 250_000, f"the cell saves {size:,} bytes"
    model = state[next(iter(ids))]["state"]["model"]
    assert len(model["rows"]["parent"]) == 2001 and model["rows"]["runs"] == [[1, 2000, 1]]
