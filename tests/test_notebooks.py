"""Every notebook in notebooks/ executed by nbclient in a real ipykernel, with assertions on its outputs.

Checked per notebook: no cell errors; each %netcount widget's saved state (tab titles, the layer table's
rows, a PNG chart, typeset-able TeX) and the static fallback mimes carried beside it; plus the seed numbers
each walkthrough exists to reproduce (from the seed documents, not from nbcount).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NAMES = [p.stem for p in NOTEBOOKS]
VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
TITLES = ["Summary", "Layers", "Charts", "Derivation", "Conventions", "Roofline", "Diagnostics"]
WORKERS = int(os.environ.get("NBCOUNT_NOTEBOOK_WORKERS", "2"))
VENV_JUPYTER = str(Path(sys.prefix) / "share" / "jupyter")
PREFIX_PROBE = "import sys; print('sys.prefix=' + sys.prefix)"

pytestmark = pytest.mark.notebook


def test_notebooks_exist() -> None:
    assert set(CHECKS) <= set(NAMES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_is_stored_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    assert "widgets" not in nb.metadata
    assert nb.metadata.kernelspec.name == "python3"


def test_notebooks_match_their_sources() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_notebooks.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# execution ------------------------------------------------------------------------------------------
async def _execute(paths: list[Path]) -> dict[str, Any]:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    gate = asyncio.Semaphore(WORKERS)
    env = {**os.environ, "MPLBACKEND": "Agg"}  # the charts must survive a non-interactive backend

    async def one(path: Path) -> tuple[str, Any]:
        async with gate:
            nb = nbformat.read(path, as_version=4)
            nb.cells.append(nbformat.v4.new_code_cell(PREFIX_PROBE))
            client = NotebookClient(nb, kernel_name="python3", timeout=300, store_widget_state=True,
                                    resources={"metadata": {"path": str(path.parent)}})
            try:
                await client.async_execute(env=env)
            except CellExecutionError as error:
                return path.stem, error
            return path.stem, nb

    return dict(await asyncio.gather(*(one(p) for p in paths)))


@pytest.fixture(scope="session")
def executed(request: Any) -> dict[str, Any]:
    """The selected notebooks, executed concurrently (WORKERS kernels at a time)."""
    wanted = {item.callspec.params["name"] for item in request.session.items
              if getattr(item, "module", None) is sys.modules[__name__] and hasattr(item, "callspec")
              and "name" in item.callspec.params}
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([VENV_JUPYTER, *([saved] if saved else [])])
    try:  # the venv's own python3 kernelspec first, whatever the user's ~/.local/share/jupyter holds
        return asyncio.run(_execute([p for p in NOTEBOOKS if p.stem in wanted]))
    finally:
        if saved is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = saved


def run_notebook(executed: dict[str, Any], name: str) -> Any:
    result = executed[name]
    if isinstance(result, Exception):
        pytest.fail(f"{name} failed:\n{result}")
    return result


# reading the saved widget state --------------------------------------------------------------------------
def widget_state(nb: Any) -> dict[str, Any]:
    return nb.metadata.get("widgets", {}).get(STATE, {}).get("state", {})


def child(state: dict[str, Any], ref: str) -> dict[str, Any]:
    return state[ref.removeprefix("IPY_MODEL_")]


def views(nb: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(fallback output data, widget model) of every nbcount widget the notebook displayed.

    The magic publishes the static fallback (text/html, text/plain) and then the widget, whose saved
    state holds the compact report model the front end draws.
    """
    state = widget_state(nb)
    found = []
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        for k, output in enumerate(outputs):
            data = output.get("data", {})
            model = state.get(data[VIEW]["model_id"], {}) if VIEW in data else {}
            if model.get("state", {}).get("_anywidget_id", "").endswith("ReportWidget"):
                fallback = outputs[k - 1].get("data", {}) if k else {}
                found.append((fallback, model["state"]["model"]))
    return found


def tab_parts(fallback: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    """What a reader sees: totals, findings, the fallback's layer table and chart, the opened derivation."""
    summary = model["summary"]
    derivation = model["derivations"].get(str(model["focus"]), {})
    return {"summary": "\n".join(f"{k}: {v}" for k, v in summary["items"]), "table": fallback["text/html"],
            "findings": [f[0] for f in summary["findings"]], "tex": derivation.get("latex", ""),
            "derivation": derivation, "tabs": [t["title"] for t in model["tabs"]]}


def text_of(nb: Any) -> str:
    """All stream and text/plain output of the notebook."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def check_views(nb: Any) -> list[dict[str, Any]]:
    """Assertions every nbcount widget must pass; returns each one's parts."""
    found = views(nb)
    assert found, "no nbcount widget in the outputs"
    parts = []
    for fallback, model in found:
        got = tab_parts(fallback, model)
        assert got["tabs"] == TITLES
        assert {"text/plain", "text/html"} <= set(fallback) and "application/json" not in fallback
        assert f"nbcount-fallback nbcount-key-{model['key']}" in fallback["text/html"]
        assert "data:image/png;base64," in fallback["text/html"] and "nbcount-table" in fallback["text/html"]
        assert got["table"].count("<tr>") >= 2
        tex = got["tex"]
        assert "\\begin{aligned}" in tex and tex.count("{") == tex.count("}")
        parts.append(got)
    return parts


def rows_of(table_html: str) -> list[str]:
    """The layer column of a rendered table."""
    return re.findall(r"<tr><td style='text-align:left;padding-left:[\d.]+em'>([^<]*)</td>", table_html)


# one test per notebook ------------------------------------------------------------------------------------
def check_quickstart_outputs(nb: Any) -> None:
    first = check_views(nb)[0]
    params = (8 * 3 * 9 + 8) + 2 * 8 + (16 * 8 * 9 + 16) + (16 * 8 * 8 * 10 + 10)
    assert f"{params:,}" in first["summary"]
    assert rows_of(first["table"]) == ["(root)", "conv1", "bn1", "pool", "conv2", "pool#1", "fc"]
    fc = check_views(nb)[1]
    assert fc["derivation"]["label"] == "fc" and f"{16 * 8 * 8 * 10 + 10:,}".replace(",", "{,}") in fc["tex"]
    static = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "execute_result"
              and "image/png" in o.get("data", {}) and VIEW not in o["data"]]
    assert static and {"text/plain", "text/html", "image/png", "text/markdown"} == set(static[0]["data"])


def check_unet_outputs(nb: Any) -> None:
    assert "7,765,442" in check_views(nb)[0]["summary"]
    assert "UNet without BN: 7,759,554" in text_of(nb)


def check_dcgan_outputs(nb: Any) -> None:
    assert "11,038,081" in check_views(nb)[0]["summary"]
    text = text_of(nb)
    assert "input 0.05 MB · forward/backward 4.63 MB · params 42.11 MB · total 46.78 MB" in text
    assert "Total params: 11,038,081" in text or "torchsummary is not installed" in text


def check_lenet_paddle_outputs(nb: Any) -> None:
    single, lenet = check_views(nb)[:2]
    assert "76" in single["summary"] and "61,610" in lenet["summary"]
    assert "paddle.flops:         347,560" in text_of(nb)


def check_alexnet_outputs(nb: Any) -> None:
    view = check_views(nb)[0]
    assert view["derivation"]["label"] == "features.0"
    text = text_of(nb)
    assert "correct:        [11, 19, 51, 67, 99, 131, 163, 195]" in text
    assert f"= {105_705_600:,}" in text


def check_sharing_outputs(nb: Any) -> None:
    case1, case2, case3 = check_views(nb)
    assert "shared parameters" in case2["findings"] and "unused module" in case3["findings"]
    assert rows_of(case2["table"]) == ["(root)", "conv1", "conv1#1"]
    assert "registered: 18, used by forward: 9" in text_of(nb)


def check_conventions_outputs(nb: Any) -> None:
    check_views(nb)
    assert f"FlopCounterMode: {2 * 8 * 4}" in text_of(nb)


def check_llm_outputs(nb: Any) -> None:
    gpt = check_views(nb)[0]
    assert "124,439,808" in gpt["summary"] and "shared parameters" in gpt["findings"]
    text = text_of(nb)
    assert "6,738,415,616 parameters" in text and "68,976,648,192 parameters" in text


def check_drill_reveals_on_demand(nb: Any) -> None:
    """≥ 20 questions, each a prompt, a text box, a Check button, a verdict and a folded derivation; the three
    answered in the notebook (by clicking Check in the kernel) show their verdict and the derivation unfolded."""
    state = widget_state(nb)
    cards = [m["state"] for m in state.values() if "nbcount-drill" in m["state"].get("_dom_classes", ())]
    assert len(cards) >= 20
    opened, verdicts = 0, []
    for card in cards:
        prompt, row, feedback, reveal = (child(state, ref) for ref in card["children"])
        assert prompt["model_name"] == "HTMLModel" and prompt["state"]["value"].startswith("<b>Q")
        kinds = [child(state, ref)["model_name"] for ref in row["state"]["children"]]
        assert kinds == ["TextModel", "ButtonModel"]
        (math,) = (child(state, ref) for ref in reveal["state"]["children"])
        assert math["model_name"] == "HTMLMathModel" and "\\(" in math["state"]["value"]
        if reveal["state"]["selected_index"] is not None:  # answered: the verdict shown, the derivation open
            opened += 1
            verdicts.append(feedback["state"]["value"])
        else:
            assert feedback["state"]["value"] == ""
    assert opened == 3 and any("✓ Right: 73,856" in v for v in verdicts)
    assert any("✗ Not quite" in v and "FLOPs (2 per MAC)" in v for v in verdicts)
    text = text_of(nb)
    assert f"{len(cards)} questions, every answer key matches the hand calculation" in text
    first = json.dumps([m["state"] for m in state.values() if m["model_name"] == "HTMLMathModel"])
    assert f"{128 * 64 * 9 + 128:,}".replace(",", "{,}") in first  # Q1's derivation: C_out·C_in·K² + C_out


CHECKS = {"quickstart": check_quickstart_outputs, "01_unet_parameters": check_unet_outputs,
          "02_dcgan_vs_torchsummary": check_dcgan_outputs, "03_lenet_paddle_rules": check_lenet_paddle_outputs,
          "04_alexnet_receptive_field": check_alexnet_outputs, "05_sharing_and_unused": check_sharing_outputs,
          "06_why_tools_disagree": check_conventions_outputs, "07_transformers_and_llms": check_llm_outputs,
          "08_interview_drill": check_drill_reveals_on_demand}


@pytest.mark.parametrize("name", NAMES)
def test_notebook(executed: dict[str, Any], name: str) -> None:
    """Runs without errors in the venv's kernel, then the notebook's own output checks (if it has any)."""
    nb = run_notebook(executed, name)
    assert f"sys.prefix={sys.prefix}" in text_of(nb)
    check = CHECKS.get(name)
    if check is not None:
        check(nb)
    elif views(nb):  # a notebook written elsewhere: every nbcount widget it shows must still be whole
        check_views(nb)
