"""Real JupyterLab in headless Chromium: open the widget notebook, run it, set a control, click Generate,
see a new preview appear. Starts and stops its own server on a free localhost port; skips without chromium."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB = "nbs/21_widgets.ipynb"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-quic",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions"]

pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
              pytest.mark.skipif(not (ROOT / NB).exists(), reason=f"{NB} is missing")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("jupyterlab")
    port = _free_port()
    cfg = tmp_path / "jupyter_test_config.py"
    cfg.write_text("from jupyterlab.galata import configure_jupyter_server\n"
                   "configure_jupyter_server(c)\n"
                   f"c.ServerApp.ip = '127.0.0.1'\nc.ServerApp.port = {port}\nc.ServerApp.port_retries = 0\n"
                   f"c.ServerApp.root_dir = {str(ROOT)!r}\nc.ServerApp.allow_root = True\n"
                   "c.ServerApp.open_browser = False\n")
    settings = tmp_path / "settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("MPLBACKEND", None)
    log = open(tmp_path / "lab.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", f"--config={cfg}"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=1)
                break
            except OSError:
                if proc.poll() is not None: break
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-2000:])
        if proc.poll() is not None:
            pytest.fail("JupyterLab exited:\n" + (tmp_path / "lab.log").read_text()[-2000:])
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(15)
        except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL)
        log.close()


KERNEL_IDLE = """() => { const w = window.jupyterapp.shell.currentWidget;
    return w?.sessionContext?.session?.kernel?.status === 'idle'; }"""
ALL_RUN = """() => { const ps = [...document.querySelectorAll('.jp-InputArea-prompt')].map(e => e.textContent);
    const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status;
    return ps.length && ps.every(t => !t.includes('*')) && ps.some(t => /\\[\\d+\\]/.test(t)) && k === 'idle'; }"""


def test_studio_generates_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import sync_playwright
    t0 = time.time()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{lab}/lab/tree/{NB}?reset")
            page.wait_for_function("window.jupyterapp && window.jupyterapp.shell", timeout=60_000)
            page.wait_for_function(KERNEL_IDLE, timeout=60_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(ALL_RUN, timeout=120_000, polling=500)
            errs = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
            tracebacks = [t for t in errs.all_text_contents() if "Traceback" in t or "Error" in t]
            assert not tracebacks, tracebacks[:1]
            studio = page.locator(".jupyter-widgets.widget-tab").first
            studio.scroll_into_view_if_needed()
            gen = studio.locator("button:has-text('Generate')").first
            assert gen.is_visible()
            imgs = studio.locator("img.widget-image")
            before = set(imgs.evaluate_all("els => els.map(e => e.src)"))
            # set a control: the seed (a new seed gives new charts) and the count
            seed = studio.locator(".widget-text:has(label:has-text('seed')) input").first
            seed.fill("4242"); seed.press("Enter")
            gen.click()
            page.wait_for_function(
                """([sel, before]) => { const srcs = [...document.querySelectorAll(sel)].map(e => e.src);
                    return srcs.length > 0 && srcs.some(s => !before.includes(s)); }""",
                arg=[".widget-tab img.widget-image", sorted(before)], timeout=60_000, polling=250)
            status = studio.locator(".widget-html").all_text_contents()
            assert any("seed=4242" in s for s in status), status
            page.screenshot(path=str(tmp_path / "studio.png"))
            assert not [e for e in errors if "widget" in e.lower()], errors
        finally:
            browser.close()
    assert time.time() - t0 < 90
