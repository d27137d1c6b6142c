"""The README's first command gives an operator the console: ``perpx serve --demo`` without a token.

The demo makes an admin token for its data directory and prints the operator console's address with
it in the fragment; the page takes it into session storage and clears it from the address bar.
A configured token always wins and is never printed; a damaged token file is replaced, never used.
"""

from __future__ import annotations

import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from perpx.console.demo_token import TOKEN_FILE, demo_admin_token

from ..server.harness import ServerProcess
from .conftest import ONE_ADDRESS_MANY_PAGES, WatchedPages

LINK = re.compile(r"demo operator console, logged in: (http://127\.0\.0\.1:\d+/#token=([A-Za-z0-9_-]+))")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        tmp_path_factory.mktemp("console-demo") / "data",
        config_text=None,
        demo=True,
        env={**ONE_ADDRESS_MANY_PAGES, "PERPX_ADMIN_TOKEN": ""},
    ).start()
    try:
        yield process
    finally:
        process.stop()


def banner_link(process: ServerProcess, timeout_s: float = 30.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = LINK.search(process.log())
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no operator console link in the banner within {timeout_s} s:\n{process.log()}")


def test_the_demo_banner_link_opens_the_operator_console_logged_in(
    demo: ServerProcess, pages: WatchedPages
) -> None:
    link = banner_link(demo)
    page = pages.new()
    page.goto(link.group(1))
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#market-risk tr[data-symbol='BTCUSDT']")).to_be_visible()
    expect(page.locator("#live")).to_contain_text("updated")
    assert "token" not in page.url
    assert page.evaluate("Object.values({...sessionStorage})") == [link.group(2)]
    assert demo.admin("GET", "/state", token=link.group(2)).status_code == 200
    pages.shot(page, "operator-demo-1280x720")


def test_the_demo_token_is_kept_for_its_data_directory_and_only_its_owner_reads_it(
    demo: ServerProcess,
) -> None:
    link = banner_link(demo)
    path = demo.data_dir / TOKEN_FILE
    assert demo_admin_token(demo.data_dir) == link.group(2)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", ["", "short", "x" * 31 + "!", "a" * 40])
def test_a_damaged_demo_token_file_is_replaced_not_used(tmp_path: Path, content: str) -> None:
    # Arrange
    (tmp_path / TOKEN_FILE).write_text(content)

    # Act
    token = demo_admin_token(tmp_path)

    # Assert
    assert token != content.strip() and len(token) == 32
    assert demo_admin_token(tmp_path) == token


def test_a_configured_admin_token_is_used_and_never_printed(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Arrange
    process = ServerProcess(tmp_path_factory.mktemp("console-demo-own") / "data", config_text=None, demo=True)
    try:
        # Act
        process.start()
        deadline = time.monotonic() + 30
        while "perpx: ready" not in process.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = process.log()
    finally:
        process.stop()

    # Assert
    assert "perpx: ready" in log
    assert "operator console" in log and LINK.search(log) is None
    assert not (process.data_dir / TOKEN_FILE).exists()
