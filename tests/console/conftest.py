"""Debian's chromium driven by Playwright, and the rule that a page may log no error.

Browser downloads are not reachable where the tests run, so Playwright launches the system
chromium (``apt-get install chromium``; ``PERPX_CHROMIUM`` names another binary). Without it, or
without the ``playwright`` package, the browser tests are skipped with the reason.

Every page is watched: a console message of type ``error`` or an uncaught exception fails the
test at teardown, unless the test declared that exact kind of message (``expect_console``), as a
test of a refusal does for the browser's own "Failed to load resource: ... 400" line.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("PERPX_CHROMIUM") or "/usr/bin/chromium"

ONE_ADDRESS_MANY_PAGES = {"PERPX_RATE_LIMIT_WEIGHT_1M": "100000"}
"""Every page of a test module and the harness's own calls come from 127.0.0.1 within a minute, as a
dozen traders behind one address would; Binance's 2,400 weight a minute per address is for one client."""


def chromium_or_skip() -> str:
    """The chromium binary, or skip the test with the reason and the fix."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[test]')")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install -y chromium (or set PERPX_CHROMIUM)")
    return CHROMIUM


@dataclass
class WatchedPages:
    """Pages whose console errors fail the test, and where their screenshots go."""

    browser: Browser
    shots: Path
    errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)

    def new(self, width: int = 1280, height: int = 720) -> Page:
        page = self.browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(15_000)
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.pages.append(page)
        return page

    def expect_console(self, fragment: str) -> None:
        """Console errors containing ``fragment`` are expected by this test (e.g. a refused request's status)."""
        self.allowed.append(fragment)

    def shot(self, page: Page, name: str, full_page: bool = False) -> Path:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module.

    Playwright's sync API runs an event loop on this thread while it is open, and every later
    ``asyncio.run`` in the session would fail ("cannot be called from a running event loop"), so it is
    closed at the end of each module, never kept for the session.
    """
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def shots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``PERPX_CONSOLE_SHOTS`` or a temporary directory: the screenshots every test writes."""
    named = os.environ.get("PERPX_CONSOLE_SHOTS")
    path = Path(named) if named else tmp_path_factory.mktemp("console-shots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def pages(browser: Browser, shots_dir: Path) -> Iterator[WatchedPages]:
    watched = WatchedPages(browser, shots_dir)
    yield watched
    for page in watched.pages:
        page.close()
    assert watched.unexpected() == [], "the browser logged errors"
