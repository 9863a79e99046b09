"""The dashboard in a real headless Chromium: log in, see the chart, copy an unanswered
question into an intent, and the bot answers that wording afterwards.

Uses Debian's ``/usr/bin/chromium`` through Playwright (``executable_path``); Playwright's
own browser download is never used. Without that browser the test is skipped, except
under CI, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from app import KOLLEGA
from bot.settings import REPO_ROOT
from tests.conftest import SAMPLE_KNOWLEDGE, Chat
from tests.fakes.browser import CHROMIUM, CHROMIUM_ARGS
from tests.fakes.connector import FakeConnector
from tests.test_admin import PRINTER_GAP, TOKEN, reply_texts, start_admin_app

ARTIFACTS = REPO_ROOT / "artifacts"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium); "
    "required under CI",
)


@pytest.fixture
async def served(
    settings_factory: Callable[..., Any], tmp_path: Path
) -> AsyncIterator[tuple[TestClient, Path]]:
    folder = tmp_path / "knowledge"
    shutil.copytree(SAMPLE_KNOWLEDGE, folder)
    client = await start_admin_app(settings_factory(admin_token=TOKEN, knowledge_dir=folder))
    try:
        yield client, folder
    finally:
        await client.close()


async def test_dashboard_in_chromium(
    served: tuple[TestClient, Path], connector: tuple[FakeConnector, str]
) -> None:
    from playwright.async_api import async_playwright, expect

    client, folder = served
    fake, url = connector
    template = "emulator/message-user-with-capabilities.json"
    asked = await Chat(client, fake, url, template, locale="nb-NO").messages(PRINTER_GAP)
    assert "skriver" not in reply_texts(asked).lower()  # a gap: the bot does not know it
    await client.server.app[KOLLEGA].analytics.flush()
    base = str(client.make_url("/")).rstrip("/")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1400})
            problems: list[str] = []
            failed: list[str] = []
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.on(
                "response",
                lambda response: failed.append(response.url) if response.status >= 400 else None,
            )
            await page.goto(f"{base}/admin")
            assert page.url.endswith("/admin/login")
            await page.fill("#token", TOKEN)
            await page.click("form.login button[type=submit]")
            await page.wait_for_url(f"{base}/admin")

            chart = page.locator("#trend-chart")
            await expect(chart).to_be_visible()
            await page.wait_for_function(
                "document.getElementById('trend-chart').complete"
                " && document.getElementById('trend-chart').naturalWidth > 0"
            )
            assert await chart.evaluate("img => img.naturalWidth") == 900

            row = page.locator("#unanswered tbody tr", has_text=PRINTER_GAP)
            await expect(row).to_have_count(1)
            await row.locator("select[name=intent]").select_option("it.printer")
            await row.locator("button").click()
            result = row.locator("output.result")
            await expect(result).to_have_class("result ok")
            await expect(result).to_contain_text("Added to it.printer (it.yaml:")

            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            # a CSP violation would show as a console error; the only 404 allowed is the
            # favicon the browser asks for on its own
            assert [u for u in failed if not u.endswith("/favicon.ico")] == []
            assert [p for p in problems if not p.startswith("Failed to load resource")] == []
        finally:
            await browser.close()

    assert f'"{PRINTER_GAP}"' in (folder / "it.yaml").read_text(encoding="utf-8")
    answered = await Chat(client, fake, url, template, locale="nb-NO").messages(PRINTER_GAP)
    assert "skriver" in reply_texts(answered).lower()
