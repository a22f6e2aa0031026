"""Fixtures of the browser test (`make test-browser`): JupyterLab on a temporary copy of the
notebooks, and a headless Chromium driven by Playwright, with helpers that read what a reader sees.

Not collected by `make test` or `make unit` (`--ignore=tests/browser` in pyproject.toml); only
`pytest tests/browser` runs it. Chromium comes from $GAN_TUTORIAL_CHROMIUM, the system (Debian's
`chromium` package) or Playwright's own download; without one every test skips and says how to
get one. Screenshots and the server's log go to build/browser/ (ignored by git).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "build" / "browser"
CHROMIUM_ENV = "GAN_TUTORIAL_CHROMIUM"
HOW_TO_GET_CHROMIUM = (
    "no Chromium found: install one (Debian/Ubuntu: `apt-get install chromium`) or point "
    f"{CHROMIUM_ENV} at a Chromium or Chrome binary; the browser tests are skipped"
)
# As root in a closed network: no sandbox, no GPU, and none of the background connections
# (updates, sync, QUIC) that the network refuses. Playwright gives each launch a new, empty profile.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Lab settings for a test: every cell attached to the page (the default "contentVisibility"
# windowing leaves off-screen cells unrendered), no news or update checks, no autosave.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"checkForUpdates": False, "fetchNews": "false"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
}


def find_chromium() -> str | None:
    """$GAN_TUTORIAL_CHROMIUM, else a system Chromium or Chrome (None if there is none)."""
    if os.environ.get(CHROMIUM_ENV):
        path = os.environ[CHROMIUM_ENV]
        if not os.access(path, os.X_OK):
            raise pytest.UsageError(f"{CHROMIUM_ENV}={path} is not an executable")
        return path
    candidates = [
        "/usr/lib/chromium/chromium",  # Debian's binary (/usr/bin/chromium is a shell wrapper)
        *(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")),
        "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
        "/Applications/Chromium.app/Contents/MacOS/Chromium",
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def pytest_report_header(config):
    chromium = find_chromium()
    if chromium:
        try:
            run = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=30)
            chromium_version = f"{run.stdout.strip()} ({chromium})"
        except (OSError, subprocess.TimeoutExpired) as err:
            chromium_version = f"{chromium}: {err}"
    else:
        chromium_version = "Chromium: none found (Playwright's own download is tried next)"
    return [
        f"browser test: JupyterLab {_version('jupyterlab')}, Playwright {_version('playwright')}, "
        f"ipywidgets {_version('ipywidgets')} (jupyterlab_widgets {_version('jupyterlab_widgets')}), "
        f"tqdm {_version('tqdm')}",
        f"browser test: {chromium_version}",
        f"browser test: screenshots in {ARTEFACTS.relative_to(ROOT)}/",
    ]


# -- the server ------------------------------------------------------------------------------


@dataclass
class LabServer:
    url: str
    root: Path  # the folder Lab serves: copies of notebooks/*.ipynb, and scratch notebooks
    process: subprocess.Popen = field(repr=False)

    def write_notebook(self, name: str, cells: list[dict]) -> str:
        """A scratch notebook in the served folder; returns its path for `LabPage.open`."""
        nb = {
            "cells": cells,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        for i, cell in enumerate(cells):
            cell.setdefault("id", f"cell-{i}")
            cell.setdefault("metadata", {})
            if cell["cell_type"] == "code":
                cell.setdefault("execution_count", None)
                cell.setdefault("outputs", [])
        (self.root / name).write_text(json.dumps(nb, indent=1))
        return name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def artefacts() -> Path:
    if ARTEFACTS.exists():
        shutil.rmtree(ARTEFACTS)
    ARTEFACTS.mkdir(parents=True)
    return ARTEFACTS


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        try:  # a browser that `playwright install chromium` downloaded, where a network allows it
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                bundled = p.chromium.executable_path
            path = bundled if os.access(bundled, os.X_OK) else None
        except Exception:  # any failure here means "no browser"
            path = None
    if path is None:
        pytest.skip(HOW_TO_GET_CHROMIUM)
    return path


@pytest.fixture(scope="session")
def lab(tmp_path_factory, artefacts, chromium_path) -> LabServer:
    """JupyterLab from this interpreter's environment, no token, on a free localhost port, serving
    a temporary copy of notebooks/. Its kernels run in quick mode on the CPU, with the
    repository's MNIST, and with tqdm's bars on (no TQDM_DISABLE)."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    root.mkdir()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy(nb, root / nb.name)
    settings = base / "settings"
    for plugin, values in LAB_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "MPLBACKEND")}
    env.update(
        GAN_TUTORIAL_QUICK="1",
        GAN_TUTORIAL_DEVICE="cpu",
        GAN_TUTORIAL_DATA=str(Path(os.environ.get("GAN_TUTORIAL_DATA", ROOT / "data")).resolve()),
        # the user's Jupyter and IPython set-up (config, kernels, startup files) stays out
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
    )
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: commands, cells, kernels
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.news_url=None",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(artefacts / "jupyterlab.log", "w")  # closed at teardown
    process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=base)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log.close()
                tail = (artefacts / "jupyterlab.log").read_text()[-3000:]
                pytest.fail(f"JupyterLab did not start (exit status {process.poll()}):\n{tail}")
            time.sleep(0.3)
    yield LabServer(url, root, process)
    process.terminate()  # the server shuts its kernels down on SIGTERM
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


# -- the browser -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, lab, artefacts, request):
    """A fresh JupyterLab page (a new browser context, the workspace reset) for one test; the
    page's JavaScript errors and console errors go to build/browser/<test>.console.txt."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    pg = context.new_page()
    messages: list[str] = []
    pg.on("pageerror", lambda err: messages.append(f"page error: {err}"))
    pg.on("console", lambda msg: msg.type == "error" and messages.append(f"console error: {msg.text}"))
    pg.goto(f"{lab.url}/lab?reset")
    pg.wait_for_function("window.jupyterapp !== undefined")
    pg.evaluate("async () => { await window.jupyterapp.restored; window.jupyterapp.shell.collapseLeft(); }")
    yield LabPage(pg, lab, artefacts)
    if messages:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        (artefacts / f"{name}.console.txt").write_text("\n".join(messages) + "\n")
    context.close()


# The notebook panel with this id, from JupyterLab's shell.
FIND = "const w = Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.id === id);"

PROBLEMS_JS = """([id, mathCells]) => {
  const root = document.getElementById(id), found = [];
  const short = (s) => s.replace(/\\s+/g, ' ').trim().slice(0, 160);
  for (const e of root.querySelectorAll('mjx-merror, [data-mjx-error]'))
    found.push('MathJax error: ' + short(e.getAttribute('data-mjx-error') || e.textContent));
  for (const e of root.querySelectorAll('mjx-container.mjx-output-error'))
    found.push('MathJax output error: ' + short(e.textContent));
  // noundefined typesets an unknown macro as its name in red, not as an error
  for (const e of root.querySelectorAll('mjx-container *')) {
    const red = (n) => n && getComputedStyle(n).color === 'rgb(255, 0, 0)';
    if (red(e) && !red(e.parentElement) && e.textContent.trim())
      found.push('undefined TeX macro (red): ' + short(e.textContent));
  }
  const shown = root.querySelectorAll('.jp-RenderedMarkdown, .jp-OutputArea-output, .jupyter-widgets');
  for (const e of shown) {
    for (const text of ['Math input error', 'Math output error', 'Error displaying widget'])
      if (e.textContent.includes(text) && !found.some(f => f.includes(text)))
        found.push(short(e.textContent.slice(e.textContent.indexOf(text))));
  }
  if (document.body.textContent.includes('Error displaying widget')
      && !found.some(f => f.includes('Error displaying widget')))
    found.push('"Error displaying widget" on the page, outside this notebook');
  const w = Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.id === id);
  w.content.widgets.forEach((cell, i) => {
    if (cell.model.type === 'markdown' && !cell.rendered) found.push(`markdown cell ${i} not rendered`);
    if (mathCells.includes(i) && !cell.node.querySelector('mjx-container'))
      found.push(`markdown cell ${i} has TeX but no typeset math: ` + short(cell.node.textContent));
  });
  for (const img of root.querySelectorAll('.jp-OutputArea-output img'))
    if (!(img.complete && img.naturalWidth > 0)) found.push('an output image did not load');
  return found;
}"""


def math_cells(nb_json: dict) -> list[int]:
    """Indices of the markdown cells whose source has TeX ($, \\(, \\[ or \\begin, outside code)."""
    found = []
    for i, cell in enumerate(nb_json["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = re.sub(r"```.*?```|`[^`]*`", "", "".join(cell["source"]), flags=re.S)
        if re.search(r"\$|\\\(|\\\[|\\begin\{", text):
            found.append(i)
    return found


class Notebook:
    """One open notebook in a LabPage, read and driven through JupyterLab's own objects."""

    def __init__(self, page: LabPage, path: str, widget_id: str) -> None:
        self.page, self.path, self.id = page, path, widget_id
        self.pw = page.pw
        self.node = self.pw.locator(f"#{widget_id}")

    def js(self, body: str, arg=None):
        """Run ``body`` (JavaScript with ``w``, the NotebookPanel, and ``arg`` in scope)."""
        return self.pw.evaluate(f"async ([id, arg]) => {{ {FIND} {body} }}", [self.id, arg])

    def json(self) -> dict:
        return json.loads((self.page.lab.root / self.path).read_text())

    def wait_rendered(self, timeout: float = 60) -> int:
        """Until every output image has loaded and MathJax has stopped adding typeset formulas;
        returns the number of typeset formulas."""
        deadline, last, stable = time.monotonic() + timeout, -1, 0
        while time.monotonic() < deadline:
            state = self.pw.evaluate(
                """(id) => { const r = document.getElementById(id);
                  const imgs = Array.from(r.querySelectorAll('.jp-OutputArea-output img'));
                  return [r.querySelectorAll('mjx-container').length, imgs.every(i => i.complete)]; }""",
                self.id,
            )
            stable = stable + 1 if state[0] == last and state[1] else 0
            if stable >= 4:
                return last
            last = state[0]
            time.sleep(0.3)
        return last

    def problems(self) -> list[str]:
        """What a reader would see as broken: MathJax errors, undefined macros, TeX left raw,
        "Error displaying widget", markdown left unrendered, images that did not load."""
        return self.pw.evaluate(PROBLEMS_JS, [self.id, math_cells(self.json())])

    def output_images(self) -> int:
        return self.node.locator(".jp-OutputArea-output img").count()

    def trust(self) -> None:
        """What "Trust Notebook" does (without its dialog): outputs render as trusted, which is
        what lets widget views render, from the kernel or from the saved widget state."""
        self.js("for (const c of w.content.widgets) c.model.trusted = true;")

    def run_all(self, timeout: float = 180) -> dict:
        """Run all cells and wait until the run is over (or a cell fails) and the kernel is idle.
        Returns the execution counts of the non-empty code cells, the errors and the stderr
        outputs."""
        self.js(
            """window.__runAll = null;
            window.jupyterapp.shell.activateById(w.id);
            window.jupyterapp.commands.execute('notebook:run-all-cells')
              .then(ok => { window.__runAll = {ok}; },
                    err => { window.__runAll = {ok: false, err: String(err)}; });"""
        )
        deadline = time.monotonic() + timeout
        while True:
            state = self.js(
                """const code = w.content.widgets.filter(c => c.model.type === 'code'
                                                            && c.model.sharedModel.getSource().trim());
                const outs = code.map(c => c.model.outputs.toJSON());
                return {done: window.__runAll, status: w.sessionContext.kernelDisplayStatus,
                  counts: code.map(c => c.model.executionCount),
                  errors: outs.flat().filter(o => o.output_type === 'error')
                             .map(o => `${o.ename}: ${o.evalue}`),
                  stderr: outs.flat().filter(o => o.output_type === 'stream' && o.name === 'stderr')
                             .map(o => String(o.text).slice(0, 300))};"""
            )
            if state["errors"] or (state["done"] and state["status"] == "idle"):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.path}: run all did not finish in {timeout:.0f} s: {state}")
            time.sleep(0.5)

    def cell(self, source_pattern: str):
        """The cell (a Playwright locator) whose source matches the regular expression."""
        index = self.js(
            """const re = new RegExp(arg, 'm');
            const i = w.content.widgets.findIndex(c => re.test(c.model.sharedModel.getSource()));
            if (i >= 0) w.content.widgets[i].node.dataset.testCell = String(i);
            return i;""",
            source_pattern,
        )
        assert index >= 0, f"{self.path}: no cell matches {source_pattern!r}"
        return self.node.locator(f'[data-test-cell="{index}"]')

    def screenshot(self, name: str, at=None) -> Path:
        """A screenshot of the page, scrolled to the top of the notebook or to ``at`` (a locator)."""
        if at is None:
            self.js("w.content.node.scrollTop = 0; w.content.scrollToItem && w.content.scrollToItem(0);")
        else:
            at.scroll_into_view_if_needed()
        time.sleep(0.3)
        path = self.page.artefacts / name
        self.pw.screenshot(path=str(path))
        return path

    def close(self) -> None:
        self.js("await w.sessionContext.shutdown(); w.dispose();")


class LabPage:
    def __init__(self, pw, lab: LabServer, artefacts: Path) -> None:
        self.pw, self.lab, self.artefacts = pw, lab, artefacts

    def open(self, path: str) -> Notebook:
        """Open a notebook of the served folder, wait for its kernel, show it."""
        widget_id = self.pw.evaluate(
            """async (path) => { const app = window.jupyterapp;
              const w = await app.commands.execute('docmanager:open', {path});
              await w.context.ready; await w.sessionContext.ready; await w.revealed;
              app.shell.activateById(w.id); return w.id; }""",
            path,
        )
        return Notebook(self, path, widget_id)
