"""JupyterLab in Debian's chromium (Playwright): run the quickstart and check the widget in the DOM.

The test starts JupyterLab on 127.0.0.1 with its own config, settings, workspace and runtime folders and
stops it afterwards; the screenshot is saved to tests/artifacts/. Without /usr/bin/chromium it skips,
except under CI (the CI variable set), where it fails.
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
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
TITLES = ["Summary", "Layers", "Charts", "Derivation", "Conventions", "Diagnostics"]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]

pytestmark = pytest.mark.browser


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

    def __init__(self, home: Path) -> None:
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.root = home / "root"
        self.root.mkdir()
        settings = home / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
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

    def wait_ready(self, timeout: float = 60) -> None:
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


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    _require_chromium()
    server = Lab(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


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


def test_quickstart_in_jupyterlab(lab: Lab) -> None:
    from playwright.sync_api import expect, sync_playwright

    name = f"quickstart-{secrets.token_hex(4)}.ipynb"  # a fresh path: no old kernel or autosaved outputs
    shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", lab.root / name)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(lab.url(f"/lab/tree/{name}"))
            # the kernel must be connected, not just shown idle, before Run All does anything
            expect(page.locator(".jp-Notebook")).to_be_visible(timeout=60_000)
            expect(page.get_by_text("(ipykernel) | Idle")).to_be_visible(timeout=60_000)
            _wait_for(lambda: lab.kernel_idle(name), 60, "the kernel session to be idle")
            _run_all(page)
            widget = page.locator(".nbcount-widget").first
            expect(widget).to_be_visible(timeout=120_000)

            labels = widget.locator(".lm-TabBar-tabLabel")
            expect(labels).to_have_text(TITLES)

            widget.locator(".lm-TabBar-tab", has_text="Layers").click()
            rows = widget.locator(".nbcount-layers-table tbody tr")
            expect(rows).to_have_count(7)
            layer_names = [t.strip() for t in rows.locator("td:first-child").all_inner_texts()]
            assert layer_names == ["(root)", "conv1", "bn1", "pool", "conv2", "pool [call 1]", "fc"]

            widget.locator(".lm-TabBar-tab", has_text="Charts").click()
            chart = widget.locator(".nbcount-charts img").first
            expect(chart).to_be_visible(timeout=20_000)
            assert (chart.get_attribute("src") or "").startswith("data:image/png;base64,")
            assert chart.evaluate("img => img.naturalWidth") > 100

            widget.locator(".lm-TabBar-tab", has_text="Derivation").click()
            typeset = widget.locator(".nbcount-derivation-math mjx-container")
            expect(typeset.first).to_be_visible(timeout=30_000)
            assert "begin{aligned}" not in typeset.first.inner_text()  # typeset, not raw TeX
            page.screenshot(path=str(ARTIFACTS / "browser-quickstart.png"), full_page=False)
        finally:
            browser.close()
