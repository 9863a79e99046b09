"""The web chat in a real browser: Debian's headless Chromium, driven by Playwright, keyboard only.

What only a browser can show: the page and the widget work with the keyboard alone, focus
goes where a person expects, screen readers get labels and a live log (axe-core finds no
WCAG 2.1 AA or best-practice problem), the widget works embedded on another origin (CORS),
reflows at 200% zoom, honours reduced motion, and HTML in the bot's answers or the user's
words is shown as text and never runs. A screenshot goes to ``artifacts/webchat.png``.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app import create_app
from bot.settings import Settings
from tests.fakes.browser import axe_violations, chromium, require_chromium, tab_to

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
BOT_MESSAGES = ".kollega-msg-bot"
TIMEOUT_MS = 15_000


@dataclass
class Servers:
    kollega: str  # where kollega (page, widget, API) is served
    intranet: str  # another origin, whose page embeds the widget


def intranet_page(kollega: str, lang: str) -> str:
    return textwrap.dedent(
        f"""\
        <!doctype html>
        <html lang="{lang}">
        <head><meta charset="utf-8"><title>Intranett</title>
        <meta name="viewport" content="width=device-width, initial-scale=1"></head>
        <body>
        <header><p>Kommunens intranett</p></header>
        <main><h1>Nyheter</h1><p>Velkommen til intranettet.</p>
        <p><a href="#nyheter">Alle nyheter</a></p></main>
        <script src="{kollega}/webchat/widget.js" defer></script>
        </body></html>
        """
    )


@pytest.fixture
async def servers(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings]
) -> AsyncIterator[Servers]:
    """kollega with the web chat, and an intranet on another port (so another origin)."""
    require_chromium()
    knowledge = getattr(request, "param", None)
    holder: dict[str, str] = {}

    async def intranet(request: web.Request) -> web.Response:
        lang = request.query.get("lang", "fi")
        return web.Response(text=intranet_page(holder["kollega"], lang), content_type="text/html")

    intranet_app = web.Application()
    intranet_app.router.add_get("/", intranet)
    intranet_server = TestServer(intranet_app, host="127.0.0.1")
    await intranet_server.start_server()
    intranet_origin = str(intranet_server.make_url("/")).rstrip("/")

    # The app wires its own web chat from settings, as in production.
    overrides: dict[str, Any] = {"webchat_allowed_origins": intranet_origin}
    if knowledge:
        overrides["knowledge_dir"] = knowledge
    settings = settings_factory(**overrides)
    app = create_app(settings)
    kollega_server = TestServer(app, host="127.0.0.1")
    await kollega_server.start_server()
    holder["kollega"] = str(kollega_server.make_url("/")).rstrip("/")
    try:
        yield Servers(holder["kollega"], intranet_origin)
    finally:
        await kollega_server.close()
        await intranet_server.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as browser:
        yield browser


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: errors.append(f"dialog opened: {dialog.message}"))
    try:
        yield page
    finally:
        await context.close()
    assert not errors, errors


async def bot_says(page: Any, count: int) -> Any:
    """The ``count``-th bot message (1-based), once it is there."""
    locator = page.locator(BOT_MESSAGES).nth(count - 1)
    await locator.wait_for()
    return locator


async def type_and_enter(page: Any, text: str) -> None:
    await page.keyboard.type(text)
    await page.keyboard.press("Enter")


async def assert_no_violations(page: Any) -> None:
    violations = await axe_violations(page)
    assert violations == [], "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']}\n  " + "\n  ".join(v["nodes"]) for v in violations
    )


async def test_the_chat_page_with_the_keyboard_only(servers: Servers, page: Any) -> None:
    response = await page.goto(servers.kollega + "/?lang=nb")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    await bot_says(page, 1)  # the welcome
    assert await page.locator("html").get_attribute("lang") == "nb"

    await tab_to(page, "el.tagName === 'TEXTAREA'")
    assert await page.evaluate("() => document.activeElement.labels[0].textContent") == "Melding"
    await type_and_enter(page, "glemt passord")
    answer = await bot_says(page, 2)
    assert await answer.get_attribute("lang") == "nb"
    assert "passord" in (await answer.inner_text()).lower()
    link = answer.locator('a[href="https://passord.example.org/"]')
    assert await link.get_attribute("target") == "_blank"
    assert "noopener" in await link.get_attribute("rel")
    assert await answer.locator("strong").count() >= 1  # **bold** became <strong>
    assert await answer.locator("ol > li").count() == 3  # the numbered steps

    # A follow-up choice, with the keyboard: Tab to it, Enter.
    await tab_to(page, "el.classList.contains('kollega-action') && !/^👍|^👎/.test(el.textContent)")
    choice = await page.evaluate("() => document.activeElement.textContent")
    await page.keyboard.press("Enter")
    user_bubbles = page.locator(".kollega-msg-user")
    await page.wait_for_function("() => document.querySelectorAll('.kollega-msg-user').length == 2")
    assert choice in await user_bubbles.nth(1).inner_text()
    await bot_says(page, 3)
    focused = await page.evaluate("() => document.activeElement.tagName")
    assert focused == "TEXTAREA"  # the buttons went away; focus went to the input

    # Finnish: the answer is Finnish, marked so, and the widget's own labels follow.
    await type_and_enter(page, "unohdin salasanani")
    finnish = await bot_says(page, 4)
    assert await finnish.get_attribute("lang") == "fi"
    assert "salasana" in (await finnish.inner_text()).lower()
    await page.wait_for_function(
        "() => document.querySelector('.kollega-send').textContent === 'Lähetä'"
    )

    # 👎 with the keyboard.
    await tab_to(page, "el.classList.contains('kollega-action') && el.textContent.startsWith('👎')")
    await page.keyboard.press("Enter")
    sorry = await bot_says(page, 5)
    assert "parantaa" in await sorry.inner_text()

    await assert_no_violations(page)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "webchat.png"), full_page=True)


async def test_the_widget_on_another_intranet_origin(servers: Servers, page: Any) -> None:
    await page.goto(servers.intranet + "/?lang=fi")
    launcher = page.locator(".kollega-launcher")
    await launcher.wait_for()
    assert (await launcher.inner_text()).strip().endswith("Avaa chat")
    assert await launcher.get_attribute("aria-expanded") == "false"
    await assert_no_violations(page)  # closed

    await tab_to(page, "el.classList.contains('kollega-launcher')")
    await page.keyboard.press("Enter")
    assert await launcher.get_attribute("aria-expanded") == "true"
    focused = await page.evaluate("() => document.activeElement.className")
    assert focused == "kollega-input"  # focus moves to the input on open
    welcome = await bot_says(page, 1)
    assert await welcome.get_attribute("lang") == "fi"

    await type_and_enter(page, "glemt passord")  # a Norwegian colleague on a Finnish page
    answer = await bot_says(page, 2)
    assert await answer.get_attribute("lang") == "nb"
    log = page.locator("[role=log]")
    assert await log.get_attribute("aria-live") == "polite"
    await assert_no_violations(page)  # open, with an answer and buttons
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "webchat-widget.png"))

    await page.keyboard.press("Escape")
    assert await page.locator(".kollega-panel").is_hidden()
    assert await page.evaluate("() => document.activeElement.className") == "kollega-launcher"

    # The conversation survives moving to another intranet page.
    await page.reload()
    await page.locator(".kollega-launcher").click()
    await page.wait_for_function("() => document.querySelectorAll('.kollega-msg-bot').length >= 2")


@pytest.mark.parametrize("width", [640, 320])
async def test_it_reflows_at_200_percent_zoom_and_on_a_phone(
    servers: Servers, browser: Any, width: int
) -> None:
    """1280 px at 200% zoom is a 640 px viewport; WCAG's reflow limit is 320 px."""
    context = await browser.new_context(
        viewport={"width": width, "height": 450}, reduced_motion="reduce"
    )
    try:
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        await page.goto(servers.intranet + "/?lang=sv")
        await page.locator(".kollega-launcher").click()
        await bot_says(page, 1)
        await page.keyboard.type("glömt lösenord")
        await page.keyboard.press("Enter")
        await bot_says(page, 2)
        box = await page.locator(".kollega-panel").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5
        assert box["y"] >= 0 and box["y"] + box["height"] <= 450 + 0.5
        overflow = await page.evaluate(
            "() => [...document.querySelectorAll('.kollega-root *:not(.kollega-sr)')]"
            ".filter(e => e.scrollWidth > e.clientWidth + 1 && !e.closest('.kollega-sr')"
            " && getComputedStyle(e).overflowX !== 'auto' && e.tagName !== 'TEXTAREA')"
            ".map(e => e.className || e.tagName)"
        )
        assert overflow == []
        send = page.locator(".kollega-send")
        assert await send.inner_text() == "Skicka"
        assert await send.is_visible()
        animation = await page.evaluate(
            "() => getComputedStyle(document.querySelector('.kollega-dots span')).animationName"
        )
        assert animation == "none"  # prefers-reduced-motion
    finally:
        await context.close()


INJECTION_KNOWLEDGE = """\
domain: test
owner: Test <test@example.org>
review_by: 2030-01-01
intents:
  - id: test.html
    examples:
      nb: ["vis html svaret", "html svar", "svar med html", "hva er html"]
      en: ["show the html answer", "html answer"]
    answer:
      nb: |
        Svar med <img src=x onerror="window.__pwned=1"> og <script>window.__pwned=2</script>.
        Se [klikk her](javascript:window.__pwned=3) eller [trygg lenke](https://example.org/ok).
        <a href="javascript:window.__pwned=4">rå lenke</a> **fet** og *kursiv*.
      en: "Answer with <img src=x onerror=window.__pwned=1>"
  - id: test.coffee
    examples:
      nb: ["kaffemaskinen er tom", "hvor er kaffen", "kaffe på kontoret"]
      en: ["coffee machine empty"]
    answer:
      nb: "Kaffen står i skapet."
      en: "The coffee is in the cupboard."
"""


@pytest.fixture
def injection_knowledge(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "test.yaml").write_text(INJECTION_KNOWLEDGE, encoding="utf-8")
    return folder


@pytest.fixture
async def injection_servers(
    injection_knowledge: Path, settings_factory: Callable[..., Settings]
) -> AsyncIterator[Servers]:
    require_chromium()
    settings = settings_factory(knowledge_dir=injection_knowledge)
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("/")).rstrip("/")
        yield Servers(url, url)
    finally:
        await server.close()


async def test_html_from_knowledge_or_users_is_shown_as_text(
    injection_servers: Servers, page: Any
) -> None:
    await page.goto(injection_servers.kollega + "/?lang=nb")
    await bot_says(page, 1)
    await tab_to(page, "el.tagName === 'TEXTAREA'")
    typed = "<img src=x onerror=window.__pwned=5> hva er html"
    await type_and_enter(page, typed)
    answer = await bot_says(page, 2)
    assert typed in await page.locator(".kollega-msg-user").first.inner_text()
    text = await answer.inner_text()
    assert "<script>window.__pwned=2</script>" in text  # literally, as text
    assert '<img src=x onerror="window.__pwned=1">' in text
    log = page.locator("[role=log]")
    assert await log.locator("img, script, iframe").count() == 0
    hrefs = await log.locator("a").evaluate_all("links => links.map(a => a.href)")
    assert hrefs == ["https://example.org/ok"]  # the javascript: links stayed text
    assert await answer.locator("strong").count() == 1
    assert await answer.locator("em").count() == 1
    assert await page.evaluate("() => window.__pwned") is None


MARKDOWN_CASES = [
    (
        "**fet** og *kursiv* og __fet__ og _kursiv_",
        "<p><strong>fet</strong> og <em>kursiv</em> og <strong>fet</strong> og <em>kursiv</em></p>",
    ),
    ("snake_case_name og 2*3*4", "<p>snake_case_name og 2<em>3</em>4</p>"),  # as CommonMark
    ("linje en\nlinje to", "<p>linje en<br>linje to</p>"),
    ("a\n\nb", "<p>a</p><p>b</p>"),
    (
        "- en\n- to\n\n1. tre\n2. fire",
        "<ul><li>en</li><li>to</li></ul><ol><li>tre</li><li>fire</li></ol>",
    ),
    ("3. tre\n4. fire", '<ol start="3"><li>tre</li><li>fire</li></ol>'),
    ("[mail](mailto:a@b.no) [tlf](tel:+4712345678)", None),
    ("[x](javascript:void(0)) [y](data:text/html,hi) [z](//evil.example.com)", None),
    ("[x](javascript:alert`1`) [y](data:text/html,hi) [z](//evil.example.com)", "<p>x y z</p>"),
    ("`<b>kode</b>`", "<p><code>&lt;b&gt;kode&lt;/b&gt;</code></p>"),
    ("<b onclick=x>hei</b>", "<p>&lt;b onclick=x&gt;hei&lt;/b&gt;</p>"),
    ("\\*ikke kursiv\\*", "<p>*ikke kursiv*</p>"),
    ("se https://example.org/a_b_c. ferdig", None),
    ("# Overskrift", "<p><strong>Overskrift</strong></p>"),
]


async def test_the_markdown_subset_renders_safely(injection_servers: Servers, page: Any) -> None:
    await page.goto(injection_servers.kollega + "/?lang=en")
    await bot_says(page, 1)
    for markdown, expected in MARKDOWN_CASES:
        rendered = await page.evaluate(
            """(md) => { const d = document.createElement('div');
                window.kollegaWebChat.renderMarkdown(md, d);
                d.querySelectorAll('.kollega-sr').forEach(s => s.remove());
                return d.innerHTML; }""",
            markdown,
        )
        if expected is not None:
            assert rendered == expected, markdown
    no_links = await page.evaluate(
        """() => { const d = document.createElement('div');
            window.kollegaWebChat.renderMarkdown('[x](javascript:void(0)) [y](JAVASCRIPT:x)', d);
            return d.querySelectorAll('a').length; }"""
    )
    assert no_links == 0
    links = await page.evaluate(
        """() => { const d = document.createElement('div');
            window.kollegaWebChat.renderMarkdown(
                '[mail](mailto:a@b.no) [tlf](tel:+4712345678) se https://example.org/a_b_c. ok', d);
            return [...d.querySelectorAll('a')].map(a => [a.href, a.rel, a.target]); }"""
    )
    assert links == [
        ["mailto:a@b.no", "noopener noreferrer", "_blank"],
        ["tel:+4712345678", "noopener noreferrer", "_blank"],
        ["https://example.org/a_b_c", "noopener noreferrer", "_blank"],
    ]
