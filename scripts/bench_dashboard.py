"""``make bench``, the dashboard: how long the page takes to show its data, in a real browser.

Debian's Chromium, driven by Playwright as the dashboard's end-to-end test drives it, opens
``/dashboard/`` of the running stack (``SWITCHYARD_HOME`` / ``SWITCHYARD_PORT_OFFSET``), signs
in with the stack's admin key, and times:

- the first load: from navigation to the page saying it is ready (assets, the first queries,
  the charts drawn);
- each time range, picked in the page's own range selector: from the pick until the view has
  loaded (every query it sends answered and drawn), p50 and max of ``--runs``.

The figures depend on what metering holds: ``make bench`` runs this over whatever the stack has;
for the issue's 10M rows, seed the stack's ClickHouse directory first (README, "Usage
analytics").
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time

from playwright.sync_api import Page, sync_playwright

from services.stack import StackLayout

TARGET_MS = 1000.0
RANGES = ("24h", "7d", "30d")
# Also the end-to-end test's (tests/e2e/test_dashboard.py). Without the background-networking
# flags Chromium keeps trying hosts a closed network refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _loads(page: Page) -> int:
    return int(page.evaluate("window.dashboard.loads"))


def _ready(page: Page, loads: int) -> None:
    page.wait_for_selector(f"html[data-loads='{loads}']", state="attached", timeout=120_000)
    status = page.evaluate("window.dashboard.status")
    if status != "ready":
        raise RuntimeError(
            f"the dashboard says {status}: {page.evaluate('window.dashboard.error')}"
        )


def first_load_ms(page: Page, url: str, key: str) -> float:
    started = time.perf_counter()
    page.goto(url)
    page.fill("#signin-key", key)
    page.click("#signin-form button[type=submit]")
    _ready(page, 1)
    return (time.perf_counter() - started) * 1000


def range_ms(page: Page, value: str) -> float:
    loads = _loads(page)
    started = time.perf_counter()
    page.select_option("#range", value)
    _ready(page, loads + 1)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("dashboard: skipped, no Chromium (scripts/bootstrap.sh installs it as root)")
        return 0
    layout = StackLayout.from_env()
    key = layout.admin_key_file.read_text().strip()
    url = layout.base_url.removesuffix("/v1") + "/dashboard/"
    print(f"\n== dashboard in Chromium ({url}), p50 of {args.runs} loads per range")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            print(f"{'first load, sign-in to ready':40}{first_load_ms(page, url, key):9.0f} ms")
            slow = 0
            for value in RANGES:
                # The range other than this one first, so that each pick is a change.
                other = RANGES[(RANGES.index(value) + 1) % len(RANGES)]
                times = []
                for _ in range(args.runs):
                    range_ms(page, other)
                    times.append(range_ms(page, value))
                p50 = statistics.median(times)
                slow += p50 > TARGET_MS
                flag = "" if p50 <= TARGET_MS else "  > target"
                print(f"{'range ' + value:40}{p50:9.0f} ms  (max {max(times):.0f}){flag}")
            print(f"{slow} ranges above the target of {TARGET_MS:.0f} ms (p50)")
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
