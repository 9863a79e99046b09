"""Headless Chromium for the browser tests: Debian's chromium driven by Playwright, plus axe.

Playwright's own browser download is not used (``playwright install`` needs a network this
project does not have); Debian's ``chromium`` package is, by path. Without it the browser
tests skip on a developer's machine, and fail under CI (``CI`` set), where .ci/run installs it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("KOLLEGA_CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).resolve().parent.parent / "vendor" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# WCAG 2.0/2.1 A and AA rules plus axe's best practices (landmarks, headings, regions).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def require_chromium() -> None:
    """Skip (developer machine) or fail (CI) when Debian's chromium is not installed."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: apt-get install -y chromium"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must run the browser tests)")
    pytest.skip(message)


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A Playwright Chromium browser, closed afterwards."""
    from playwright.async_api import async_playwright

    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def axe_violations(page: Any, context: str = "document") -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (injected over CDP, so CSP allows it)."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    return await page.evaluate(
        """async ([context, tags]) => {
            const result = await axe.run(
                context === 'document' ? document : document.querySelector(context),
                {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}));
        }""",
        [context, AXE_TAGS],
    )


async def tab_to(page: Any, predicate: str, limit: int = 40) -> None:
    """Press Tab until ``predicate`` (JS, given the focused element ``el``) holds."""
    for _ in range(limit):
        if await page.evaluate(
            f"() => {{ const el = document.activeElement; return !!({predicate}); }}"
        ):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached an element where {predicate}")
