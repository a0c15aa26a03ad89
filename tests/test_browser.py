"""JupyterLab in Debian's chromium (Playwright): the widget as a reader meets it.

Each test starts JupyterLab on 127.0.0.1 with its own config, settings, workspace and runtime folders and
stops it afterwards; screenshots are saved to tests/artifacts/. Without /usr/bin/chromium the tests skip,
except under CI (the CI variable set), where they fail. Waits are on conditions, with generous timeouts
(the suite runs on two busy cores).

Checked: the quickstart runs; on GPT-2 and on a 2,000-layer MLP every tab stays within 900 px and the
page within 15,000 DOM nodes; the layer tree expands, collapses, sorts and folds repeated blocks; a row
click opens its derivation; copy buttons copy; chart text is at least 10 px at notebook width and in a
1024-px window; the dark theme keeps text readable (contrast ratio measured on computed colours); the Roofline
tab draws its chart, table and a decoder's serving view, and switching hardware rebuilds it with new numbers.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
TITLES = ["Summary", "Layers", "Charts", "Derivation", "Conventions", "Roofline", "Diagnostics"]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
MAX_TAB_PX = 900
MAX_DOM_NODES = 15_000
LONG = 180_000  # ms: counting + first render on two busy cores

pytestmark = pytest.mark.browser

MLP_CELL = """\
import torch, nbcount
from torch import nn

class DeepMLP(nn.Module):
    def __init__(self, depth=2000, width=256):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x

nbcount.count(DeepMLP(), (1, 256)).show()"""
GPT2_CELL = """\
import torch, nbcount
from nbcount import zoo
gpt2 = zoo.gpt2()  # kept: the Roofline tab's serving view counts it again (a report holds its model weakly)
nbcount.count(gpt2, (1, 64), dtype=torch.long).show()"""


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(message + " — required under CI")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own local server
        return json.loads(response.read() or b"null")


class Lab:
    """A JupyterLab server of our own on 127.0.0.1 (config, settings, workspaces, runtime under `home`)."""

    def __init__(self, home: Path, theme: str | None = None) -> None:
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.root = home / "root"
        self.root.mkdir()
        settings = home / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
        if theme:
            (settings / "themes.jupyterlab-settings").write_text(json.dumps({"theme": theme}))
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "run"),
               "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws"),
               "MPLBACKEND": "Agg", "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter")}
        self.log = (home / "lab.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={self.port}", f"--IdentityProvider.token={self.token}", "--ServerApp.open_browser=False",
             f"--ServerApp.root_dir={self.root}", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}?token={self.token}"

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}; see {self.log.name}")
            try:
                _get(self.url("/api/status"))
                return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError("JupyterLab did not answer /api/status")

    def kernel_idle(self, notebook: str) -> bool:
        sessions = _get(self.url("/api/sessions"))
        return any(s["path"] == notebook and s["kernel"]["execution_state"] == "idle" for s in sessions)

    def stop(self) -> None:
        try:
            for session in _get(self.url("/api/sessions")):
                request = urllib.request.Request(self.url(f"/api/sessions/{session['id']}"), method="DELETE")
                urllib.request.urlopen(request, timeout=5).close()  # noqa: S310
        except OSError:
            pass
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _lab(tmp_path: Path, theme: str | None = None) -> Iterator[Lab]:
    _require_chromium()
    server = Lab(tmp_path, theme)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from _lab(tmp_path)


@pytest.fixture
def dark_lab(tmp_path: Path) -> Iterator[Lab]:
    yield from _lab(tmp_path, "JupyterLab Dark")


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise TimeoutError(f"timed out waiting for {what}")


def _run_all(page: Any) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    item = page.locator('.lm-Menu-item[data-command="runmenu:run-all"]:not(.lm-mod-disabled)')
    item.wait_for(state="visible", timeout=10_000)
    item.click()


def _notebook(lab: Lab, cells: list[str]) -> str:
    """A fresh notebook path (no old kernel or autosaved outputs) holding `cells`."""
    name = f"nbcount-{secrets.token_hex(4)}.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, lab.root / name)
    return name


def _open_and_run(lab: Lab, page: Any, name: str, widgets: int) -> Any:
    """Open the notebook, wait for a connected idle kernel, Run All, wait for `widgets` nbcount widgets."""
    from playwright.sync_api import expect

    page.goto(lab.url(f"/lab/tree/{name}"))
    expect(page.locator(".jp-Notebook")).to_be_visible(timeout=90_000)
    expect(page.get_by_text("(ipykernel) | Idle")).to_be_visible(timeout=90_000)
    _wait_for(lambda: lab.kernel_idle(name), 90, "the kernel session to be idle")
    _run_all(page)
    found = page.locator(".nbcount-widget")
    expect(found).to_have_count(widgets, timeout=LONG)
    return found


def _browser(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@contextmanager
def _one_widget(lab: Lab, cell: str) -> Iterator[tuple[Any, Any]]:
    """A browser page (1400×1000) on a fresh notebook of one cell, run: (page, its nbcount widget)."""
    from playwright.sync_api import sync_playwright

    name = _notebook(lab, [cell])
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            yield page, _open_and_run(lab, page, name, 1).first
        finally:
            browser.close()


def _tab(widget: Any, title: str) -> None:
    from playwright.sync_api import expect

    button = widget.locator(".nb-tab", has_text=title)
    button.click()
    expect(button).to_have_attribute("aria-selected", "true")


def _labels(widget: Any) -> list[str]:
    return [t.strip() for t in widget.locator(".nb-body .nb-row .nb-label").all_inner_texts()]


def _height(widget: Any) -> float:
    return float(widget.evaluate("w => w.getBoundingClientRect().height"))


def _dom_nodes(page: Any) -> int:
    return int(page.evaluate("document.getElementsByTagName('*').length"))


def _shot(target: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    target.screenshot(path=str(ARTIFACTS / name))


# ----------------------------------------------------------------------------------------------------------
def test_quickstart_in_jupyterlab(lab: Lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    name = f"quickstart-{secrets.token_hex(4)}.ipynb"
    shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", lab.root / name)
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            widget = _open_and_run(lab, page, name, 2).first
            expect(widget.locator(".nb-tab")).to_have_text(TITLES)
            assert page.locator(".nbcount-fallback").first.is_hidden()  # the static copy gives way to the widget
            _tab(widget, "Layers")
            expect(widget.locator(".nb-body .nb-row")).to_have_count(7)
            assert _labels(widget) == ["(root)", "conv1", "bn1", "pool", "conv2", "pool#1", "fc"]
            widget.locator(".nb-body .nb-row", has_text="conv1").first.click()
            expect(widget.locator(".nb-tab", has_text="Derivation")).to_have_attribute("aria-selected", "true")
            steps = widget.locator(".nb-steps")
            expect(steps.first).to_be_visible(timeout=60_000)
            assert f"{8 * 3 * 3 * 3 + 8:,}" in widget.locator(".nb-deriv").inner_text()  # conv1's parameters
            _tab(widget, "Charts")
            expect(widget.locator("svg rect.nb-barrect").first).to_be_visible()
            _shot(page, "browser-quickstart.png")
        finally:
            browser.close()


def _check_tabs(page: Any, widget: Any, stem: str) -> None:
    """Every tab within MAX_TAB_PX and the page within MAX_DOM_NODES; a screenshot of each."""
    from playwright.sync_api import expect

    for title in TITLES:
        _tab(widget, title)
        if title == "Conventions":
            expect(widget.locator(".nb-conv")).to_be_visible(timeout=LONG)
        if title == "Roofline":
            expect(widget.locator(".nb-roof-main svg")).to_be_visible(timeout=LONG)
        if title == "Derivation":
            expect(widget.locator(".nb-steps").first).to_be_visible(timeout=LONG)
        height = _height(widget)
        assert height <= MAX_TAB_PX, f"{stem} {title} tab is {height:.0f} px tall"
        assert _dom_nodes(page) <= MAX_DOM_NODES, f"{stem} {title}: {_dom_nodes(page)} DOM nodes"
        _shot(widget, f"browser-{stem}-{title.lower()}.png")


def _chart_text_px(widget: Any) -> float:
    """The smallest rendered size of the visible chart's text (CSS px), the SVG's scale included."""
    return float(widget.evaluate("""w => {
        const svg = w.querySelector('.nb-panel .nb-chart svg');
        const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
        const sizes = [...svg.querySelectorAll('text')].map(t => parseFloat(getComputedStyle(t).fontSize));
        return Math.min(...sizes) * scale;
    }"""))


def test_gpt2_and_mlp_widgets(lab: Lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    name = _notebook(lab, [GPT2_CELL, MLP_CELL])
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                          permissions=["clipboard-read", "clipboard-write"])
            page = context.new_page()
            widgets = _open_and_run(lab, page, name, 2)
            gpt, mlp = widgets.nth(0), widgets.nth(1)
            expect(gpt.locator(".nb-head")).to_contain_text("124,439,808 params")
            expect(mlp.locator(".nb-head")).to_contain_text(f"{2000 * (256 * 256 + 256):,} params")
            _check_tabs(page, gpt, "gpt2")
            _check_tabs(page, mlp, "mlp2000")

            # GPT-2's tree: repeated blocks folded, expand / collapse, sort, row click -> derivation
            _tab(gpt, "Layers")
            rows = gpt.locator(".nb-body .nb-row")
            expect(rows).to_have_count(7)
            assert _labels(gpt)[4] == "h.0–h.11 ×12"
            gpt.locator(".nb-row[data-row^='g'] .nb-toggle").click()
            expect(rows).to_have_count(7 + 12)
            gpt.locator(".nb-body .nb-row", has_text="h.3").locator(".nb-toggle").click()
            expect(rows).to_have_count(7 + 12 + 4)
            gpt.locator(".nb-row[data-row^='g'] .nb-toggle").click()
            expect(rows).to_have_count(7)
            gpt.locator(".nb-hdr div", has_text="params").click()  # largest subtotal first, within each level
            expect(gpt.locator(".nb-hdr div", has_text="params")).to_contain_text("▼")
            assert _labels(gpt)[:3] == ["(root)", "h.0–h.11 ×12", "wte"]
            gpt.locator(".nb-bar-tools button", has_text="Copy Markdown").click()
            copied = page.evaluate("navigator.clipboard.readText()")
            assert "| layer |" in copied and "h.0–h.11 ×12" in copied and "124,439,808" in copied
            gpt.locator(".nb-body .nb-row", has_text="lm_head").click()
            expect(gpt.locator(".nb-deriv")).to_contain_text("lm_head (Linear)", timeout=LONG)
            expect(gpt.locator(".nb-deriv")).to_contain_text(f"{64 * 768 * 50257:,}")  # its MACs: T·d·vocab
            gpt.locator("button", has_text="Copy LaTeX").click()
            assert "\\begin{aligned}" in page.evaluate("navigator.clipboard.readText()")

            # the 2,000-layer MLP: one folded row, 2,000 rows after expanding, only the visible ones drawn
            _tab(mlp, "Layers")
            mlp_rows = mlp.locator(".nb-body .nb-row")
            expect(mlp_rows).to_have_count(2)
            mlp.locator(".nb-row[data-row^='g'] .nb-toggle").click()
            expect(mlp.locator(".nb-note").first).to_contain_text("2,001 of 2,001 rows shown")
            assert mlp_rows.count() < 80 and _dom_nodes(page) <= MAX_DOM_NODES
            mlp.locator(".nb-scroll").evaluate("s => { s.scrollTop = s.scrollHeight; }")
            expect(mlp.locator(".nb-body .nb-row", has_text="layers.1999")).to_be_visible()
            assert _height(mlp) <= MAX_TAB_PX
            _shot(mlp, "browser-mlp2000-layers-expanded.png")

            # charts readable at the notebook's width and in a 1024-px window
            _tab(gpt, "Charts")
            assert _chart_text_px(gpt) >= 10
            page.set_viewport_size({"width": 1024, "height": 900})
            _tab(gpt, "Layers")
            _tab(gpt, "Charts")
            assert _chart_text_px(gpt) >= 10
            assert gpt.evaluate("w => w.scrollWidth <= w.clientWidth + 1")  # nothing wider than the output
            _shot(gpt, "browser-gpt2-charts-1024px.png")
        finally:
            browser.close()


CONTRAST = """w => {
    const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (node) => {
        for (let n = node; n; n = n.parentElement) {
            const c = rgb(getComputedStyle(n).backgroundColor);
            if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
        }
        return [255, 255, 255];
    };
    const ratio = (node, colour) => {
        const a = lum(rgb(colour || getComputedStyle(node).color)), b = lum(background(node));
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    };
    const picks = [...w.querySelectorAll('.nb-head b, .nb-tab, .nb-body .nb-label, .nb-body .nb-num, .nb-hdr div')];
    const svgText = [...w.querySelectorAll('.nb-chart text')];
    return {
        text: Math.min(...picks.map((n) => ratio(n))),
        chart: Math.min(...svgText.map((t) => ratio(t.closest('.nb-chart'), getComputedStyle(t).fill))),
        background: getComputedStyle(w).backgroundColor,
    };
}"""


def test_dark_theme_is_readable(dark_lab: Lab) -> None:
    from playwright.sync_api import expect

    with _one_widget(dark_lab, GPT2_CELL) as (_, widget):
        _tab(widget, "Layers")
        expect(widget.locator(".nb-body .nb-row").first).to_be_visible()
        layers = widget.evaluate(CONTRAST)
        _tab(widget, "Charts")
        expect(widget.locator(".nb-chart text").first).to_be_visible()
        charts = widget.evaluate(CONTRAST)
        background = [float(v) for v in layers["background"].strip("rgba()").split(",")[:3]]
        assert sum(background) / 3 < 80, f"the widget is not dark: {layers['background']}"
        assert layers["text"] >= 4.5, layers
        assert charts["chart"] >= 4.5, charts
        _shot(widget, "browser-gpt2-dark-charts.png")
        _tab(widget, "Roofline")
        expect(widget.locator(".nb-roof-main svg circle").first).to_be_visible(timeout=LONG)
        roofline = widget.evaluate(CONTRAST)
        assert roofline["chart"] >= 4.5, roofline
        _shot(widget, "browser-gpt2-dark-roofline.png")
        _tab(widget, "Conventions")
        expect(widget.locator(".nb-conv")).to_be_visible(timeout=LONG)
        _shot(widget, "browser-gpt2-dark-conventions.png")


def _seconds(text: str) -> float:
    """'253 µs' -> 2.53e-4."""
    value, unit = text.split()
    return float(value.replace(",", "")) * {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "ns": 1e-9}[unit]


def _card(widget: Any, key: str) -> tuple[str, str]:
    """(title, value) of the Roofline tab's summary card whose title starts with `key`."""
    cards = widget.locator(".nb-roof-cards .nb-card")
    for k in range(cards.count()):
        title = cards.nth(k).locator(".nb-k").inner_text()
        if title.startswith(key):
            return title, cards.nth(k).locator(".nb-v").inner_text()
    raise AssertionError(f"no card {key!r}")


def test_roofline_tab_switches_hardware(lab: Lab) -> None:
    """GPT-2 (1, 64) on the roofline: chart, slowest layers (lm_head: 64·768·50,257 MACs, the largest matmul),
    the serving view (prefill of 64 tokens, one decode step); L4 (300 GB/s, fp32 30.3 TFLOP/s) is below H100-SXM
    (3.35 TB/s, 66.9 TFLOP/s) on both roofs, so every layer's max(F/P, B/BW) and the total grow."""
    from playwright.sync_api import expect

    with _one_widget(lab, GPT2_CELL) as (page, widget):
        _tab(widget, "Roofline")
        expect(widget.locator(".nb-roof-main svg circle").first).to_be_visible(timeout=LONG)
        title, h100 = _card(widget, "time on")
        assert title == "time on H100-SXM"
        rows = widget.locator(".nb-roof-table tbody tr")
        assert rows.first.locator("td").nth(1).inner_text() == "lm_head"
        assert "h.*.mlp.c_fc ×12" in widget.locator(".nb-roof-table").inner_text()
        phases = widget.locator(".nb-serving tbody tr")
        expect(phases).to_have_count(2)
        assert [phases.nth(k).locator("td").nth(1).inner_text() for k in range(2)] == ["64", "1"]
        assert "decode" in phases.nth(1).inner_text() and "memory" in phases.nth(1).inner_text()
        decode_h100 = float(phases.nth(1).locator("td").nth(7).inner_text().replace(",", ""))
        assert _height(widget) <= MAX_TAB_PX and _dom_nodes(page) <= MAX_DOM_NODES
        assert _chart_text_px(widget) >= 10
        expect(widget.locator(".nb-why")).to_contain_text("roofline of lm_head")  # the slowest, worked out
        _shot(widget, "browser-gpt2-roofline.png")

        widget.locator(".nb-roof select").first.select_option("L4")
        expect(widget.locator(".nb-roof-cards")).to_contain_text("time on L4", timeout=LONG)
        l4 = _card(widget, "time on")[1]
        assert _seconds(l4) > _seconds(h100), (l4, h100)
        decode_l4 = float(phases.nth(1).locator("td").nth(7).inner_text().replace(",", ""))
        assert decode_l4 < decode_h100  # tokens/s of one decode step: less bandwidth, fewer tokens
        rows.nth(1).click()
        label = rows.nth(1).locator("td").nth(1).inner_text()
        expect(widget.locator(".nb-why")).to_contain_text(f"roofline of {label} on L4")
        assert _height(widget) <= MAX_TAB_PX
        _shot(widget, "browser-gpt2-roofline-l4.png")

        widget.locator(".nb-roof select").first.select_option("H100-SXM")  # received before: no new request
        expect(widget.locator(".nb-roof-cards")).to_contain_text("time on H100-SXM")
        assert _card(widget, "time on")[1] == h100
        widget.locator(".nb-roof-main .nb-dot").first.dispatch_event("click")  # drawn first: the biggest
        expect(widget.locator(".nb-roof-table tr.nb-picked")).to_contain_text("lm_head")
