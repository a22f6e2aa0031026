"""Fixtures of the website test (`make test-site`): build/site/ served on a localhost port, and
headless Chromium with every request elsewhere refused, so the pages must work offline.

Not collected by `make test` or `make unit` (`--ignore=tests/site` in pyproject.toml); only
`pytest tests/site` runs it, after `make site`. Chromium is found as for the browser test
(tests/browser/conftest.py: $GAN_TUTORIAL_CHROMIUM, the system's, or Playwright's own); without
one every test skips and says how to get one. Screenshots go to build/site-screens/.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "build" / "site"
SCREENS = ROOT / "build" / "site-screens"

# The browser test's way of finding and launching Chromium, reused: its fixtures `chromium_path`
# (skips without a Chromium) and `browser` (headless, with its offline-friendly flags).
_spec = importlib.util.spec_from_file_location("browser_conftest", ROOT / "tests" / "browser" / "conftest.py")
browser_conftest = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(browser_conftest)
chromium_path = browser_conftest.chromium_path
browser = browser_conftest.browser


def pytest_report_header(config):
    chromium = browser_conftest.find_chromium()
    return [
        f"website test: {SITE.relative_to(ROOT)}/ in Chromium ({chromium or 'none found on the system'}), "
        f"every request off localhost refused; screenshots in {SCREENS.relative_to(ROOT)}/"
    ]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="session")
def site_url() -> str:
    """build/site/ served over HTTP on 127.0.0.1, as GitHub Pages serves it."""
    if not (SITE / "index.html").exists():
        pytest.fail(f"no website in {SITE.relative_to(ROOT)}/: build it first with `make site`")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def screens() -> Path:
    if SCREENS.exists():
        shutil.rmtree(SCREENS)
    SCREENS.mkdir(parents=True)
    return SCREENS


class SitePage:
    """One page of the site in a fresh browser context, with what went wrong while it loaded:
    JavaScript errors, console errors, refused requests (anything off the local server) and
    requests the server could not answer."""

    def __init__(self, browser, site_url: str) -> None:
        self.site_url = site_url
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
        self.context.set_default_timeout(30_000)
        self.errors: list[str] = []
        self.context.route("**/*", self._only_local)
        self.pw = self.context.new_page()
        self.pw.on("pageerror", lambda err: self.errors.append(f"page error: {err}"))
        self.pw.on(
            "console", lambda msg: msg.type == "error" and self.errors.append(f"console error: {msg.text}")
        )
        self.pw.on("response", self._response)

    def _only_local(self, route) -> None:
        url = route.request.url
        if url.startswith(self.site_url) or url.startswith("data:"):
            route.continue_()
        else:
            self.errors.append(f"request off the site refused: {url}")
            route.abort("blockedbyclient")

    def _response(self, response) -> None:
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status}: {response.url}")

    def site_file(self, url: str) -> Path | None:
        """The file under build/site/ that a URL of the served site names (None for another site)."""
        if not url.startswith(self.site_url):
            return None
        path = unquote(urlsplit(url).path).lstrip("/")
        file = SITE / path
        return file / "index.html" if path == "" or file.is_dir() else file

    def open(self, path: str) -> SitePage:
        self.pw.goto(self.site_url + path, wait_until="load")
        return self

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def new_page(browser, site_url):
    """``new_page().open("01_minimax.html")``: a SitePage, closed after the test."""
    pages: list[SitePage] = []

    def new() -> SitePage:
        pages.append(SitePage(browser, site_url))
        return pages[-1]

    yield new
    for page in pages:
        page.close()
