"""Open a generated HTML page in a real headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageReport:
    """What the browser saw: console errors, requests that left the file, and element counts."""

    errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    texts: dict[str, list[str]] = field(default_factory=dict)


def open_page(
    path: Path, screenshot: Path, *, selectors: tuple[str, ...], actions=None, viewport: tuple[int, int] = (1200, 900)
) -> PageReport:
    """Load ``path`` offline (every non-file request is blocked and recorded), count ``selectors``, screenshot."""
    playwright = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    report = PageReport()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.on("console", lambda msg: report.errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: report.errors.append(str(exc)))

            def route(r):
                if r.request.url.startswith("file://"):
                    r.continue_()
                else:
                    report.external_requests.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(path.resolve().as_uri(), wait_until="load")
            page.wait_for_timeout(300)
            if actions is not None:
                actions(page, report)
            for selector in selectors:
                report.counts[selector] = page.locator(selector).count()
                report.texts[selector] = page.locator(selector).all_text_contents()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return report
