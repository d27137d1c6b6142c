"""Screenshots of the web console for docs/console.md, taken from a running venue (the demo's, usually).

    perpx serve --demo                      # in another terminal, with PERPX_ADMIN_TOKEN set
    python scripts/console_screenshots.py --key KEY --secret SECRET --token TOKEN [--out docs/img]

It logs in to the trading screen with the key, fills the ticket (without sending it), and opens the
operator console with the token and the newest liquidation's explanation. Chromium is Debian's
(``/usr/bin/chromium``, or ``--chromium``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright


def trading(page: Page, base: str, key: str, secret: str, out: Path, name: str) -> None:
    page.goto(f"{base}/?symbol=BTCUSDT")
    expect(page.locator("#live")).to_have_text("live")
    page.fill("#api-key", key)
    page.fill("#api-secret", secret)
    page.click("#login button[type=submit]")
    expect(page.locator("#order")).to_be_visible()
    page.fill("#price", page.locator("#st-mark").inner_text().split(".")[0])
    page.fill("#qty", "0.05")
    page.wait_for_timeout(4000)
    page.screenshot(path=str(out / name), full_page=name.endswith("phone.png"))


def operator(page: Page, base: str, token: str, out: Path) -> None:
    page.goto(f"{base}/")
    page.fill("#token", token)
    page.click("#login button[type=submit]")
    expect(page.locator("#app")).to_be_visible()
    page.wait_for_timeout(2500)
    first = page.locator("#feed details").first
    if first.count():
        first.locator("summary").click()
    page.screenshot(path=str(out / "console-operator.png"), full_page=True)
    page.get_by_role("tab", name="Markets").click()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(out / "console-markets.png"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", default="http://127.0.0.1:8080")
    parser.add_argument("--admin-base", default="http://127.0.0.1:8081")
    parser.add_argument("--key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
        trading(
            browser.new_page(viewport={"width": 1280, "height": 720}),
            args.base,
            args.key,
            args.secret,
            args.out,
            "console-trading.png",
        )
        trading(
            browser.new_page(viewport={"width": 390, "height": 844}),
            args.base,
            args.key,
            args.secret,
            args.out,
            "console-trading-phone.png",
        )
        operator(
            browser.new_page(viewport={"width": 1280, "height": 720}), args.admin_base, args.token, args.out
        )
        browser.close()


if __name__ == "__main__":
    main()
