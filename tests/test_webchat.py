"""The web chat channel over HTTP, without a browser: sessions, the event stream, the limits.

The real app (``create_app``) with the web chat's routes added, so every answer below comes
from the real bot, dialogs, matcher and storage; only the page is missing (that is
``test_webchat_browser.py``). Sign-in is checked against a real JWKS endpoint on loopback
serving a key made here, with tokens signed by it.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botbuilder.core import TurnContext
from botbuilder.schema import Activity
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.webchat import STATIC_DIR, EntraIdValidator, WebChatAdapter
from adapters.webchat.activities import for_page
from adapters.webchat.limits import RateLimiter
from adapters.webchat.sessions import SessionTokens
from app import KOLLEGA, create_app
from bot.incoming import user_of
from bot.kollega_bot import turn_error_handler
from bot.settings import Settings

INTRANET = "https://intranett.example.org"
TENANT = "11111111-2222-4333-8444-555555555555"
API_AUDIENCE = "api://kollega-test"
ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"


# -- helpers -----------------------------------------------------------------------------


@dataclass
class ChatSession:
    id: str
    token: str
    welcome: list[dict[str, Any]]


def parse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) for each server-sent event in ``body``, comments skipped."""
    events = []
    for block in body.split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events


class WebChat:
    """A page's side of the protocol: open a session, say something, read the stream."""

    def __init__(self, client: TestClient, adapter: WebChatAdapter) -> None:
        self.client = client
        self.adapter = adapter

    async def open(self, locale: str = "nb-NO", headers: dict[str, str] | None = None):
        response = await self.client.post(
            "/api/webchat/sessions", json={"locale": locale}, headers=headers
        )
        assert response.status == 200, await response.text()
        data = await response.json()
        return ChatSession(data["session"], data["token"], data["activities"])

    async def post(
        self,
        session: ChatSession,
        body: bytes | str | dict[str, Any],
        *,
        token: str | None = None,
        accept: str = "text/event-stream",
        headers: dict[str, str] | None = None,
    ):
        data = json.dumps(body) if isinstance(body, dict) else body
        return await self.client.post(
            f"/api/webchat/sessions/{session.id}/messages",
            data=data,
            headers={
                "Authorization": f"Bearer {token or session.token}",
                "Content-Type": "application/json",
                "Accept": accept,
                **(headers or {}),
            },
        )

    async def say(self, session: ChatSession, text: str, locale: str = "nb-NO"):
        response = await self.post(session, {"text": text, "locale": locale})
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = parse_events(await response.text())
        assert events and events[-1][0] == "end", events
        return [data for name, data in events if name == "message"]


def make_app(settings: Settings, **adapter_options: Any) -> tuple[web.Application, WebChatAdapter]:
    """The real app with a web chat adapter built by the test, so its limits can be tuned."""
    app = create_app(settings.model_copy(update={"webchat_enabled": False}))
    kollega = app[KOLLEGA]
    options: dict[str, Any] = {
        "bot": kollega.bot,
        "on_turn_error": turn_error_handler(settings.default_language),
        "default_language": settings.default_language,
    }
    options.update(adapter_options)
    adapter = WebChatAdapter(**options)
    adapter.add_routes(app)
    return app, adapter


@pytest.fixture
async def webchat_factory(
    settings_factory: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Any]]:
    clients: list[TestClient] = []

    async def make(settings: Settings | None = None, **adapter_options: Any) -> WebChat:
        adapter_options.setdefault("allowed_origins", [INTRANET])
        if "bot" in adapter_options:  # a recording bot: no need for the whole app
            app, adapter = web.Application(), WebChatAdapter(**adapter_options)
            adapter.add_routes(app)
        else:
            app, adapter = make_app(settings or settings_factory(), **adapter_options)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return WebChat(client, adapter)

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def webchat(webchat_factory: Callable[..., Any]) -> WebChat:
    return await webchat_factory()


def codes(message: dict[str, Any]) -> list[str]:
    return [a["code"] for a in message.get("actions", []) if a["type"] == "message"]


# -- conversations -----------------------------------------------------------------------


async def test_a_session_opens_with_a_welcome_in_the_pages_language(webchat: WebChat) -> None:
    first = await webchat.open("sv-SE")
    second = await webchat.open("sv-SE")
    assert first.id != second.id and len(first.id) >= 20  # 128 random bits, base64url
    assert first.welcome and first.welcome[0]["type"] == "message"
    assert first.welcome[0]["locale"] == "sv"
    assert "kollega" in first.welcome[0]["text"]


async def test_norwegian_question_gets_a_norwegian_answer_with_buttons(webchat: WebChat) -> None:
    session = await webchat.open("nb-NO")
    [answer] = await webchat.say(session, "glemt passord")
    assert answer["locale"] == "nb"
    assert "passord" in answer["text"].lower()
    assert "](https://passord.example.org/)" in answer["text"]  # links stay Markdown
    assert "feedback:+1:it.password_reset" in codes(answer)
    assert "feedback:-1:it.password_reset" in codes(answer)
    assert any(code.startswith("ask:") for code in codes(answer))
    labels = [a["label"] for a in answer["actions"]]
    assert any(label.startswith("👍") for label in labels)


async def test_finnish_question_gets_a_finnish_answer(webchat: WebChat) -> None:
    session = await webchat.open("nb-NO")  # a Norwegian intranet page, a Finnish colleague
    [answer] = await webchat.say(session, "unohdin salasanani")
    assert answer["locale"] == "fi"
    assert "salasana" in answer["text"].lower()
    assert "👍 Hyödyllinen" in [a["label"] for a in answer["actions"]]


async def test_pressing_a_choice_sends_its_code_and_gets_that_answer(webchat: WebChat) -> None:
    session = await webchat.open()
    [answer] = await webchat.say(session, "glemt passord")
    follow_up = next(code for code in codes(answer) if code.startswith("ask:"))
    [next_answer] = await webchat.say(session, follow_up)
    intent = follow_up.removeprefix("ask:")
    assert f"feedback:+1:{intent}" in codes(next_answer)
    [thanks] = await webchat.say(session, f"feedback:+1:{intent}")
    assert "takk" in thanks["text"].lower()


async def test_the_thumbs_down_asks_what_was_missing(webchat: WebChat) -> None:
    session = await webchat.open()
    await webchat.say(session, "glemt passord")
    [sorry] = await webchat.say(session, "feedback:-1:it.password_reset")
    assert "bedre" in sorry["text"]


async def test_json_clients_get_the_turn_as_one_document(webchat: WebChat) -> None:
    session = await webchat.open()
    response = await webchat.post(session, {"text": "glemt passord"}, accept="application/json")
    assert response.status == 200
    data = await response.json()
    assert [a["type"] for a in data["activities"]] == ["message"]


async def test_a_message_over_the_bots_limit_is_answered_politely(webchat: WebChat) -> None:
    session = await webchat.open()
    [answer] = await webchat.say(session, "passord " * 600)  # 4800 chars, under 16 kB
    assert "lang melding" in answer["text"]


async def test_control_characters_are_cleaned_not_refused(webchat: WebChat) -> None:
    session = await webchat.open()
    [answer] = await webchat.say(session, "glemt\x00 pass\x1bord\x7f\u0085")
    assert "passord" in answer["text"].lower()


async def test_a_script_tag_never_comes_back_as_html(webchat: WebChat) -> None:
    session = await webchat.open()
    response = await webchat.post(session, {"text": "<script>alert(1)</script> glemt passord"})
    assert response.status == 200
    # An event stream, never HTML, and the browser may not sniff it into HTML: the page
    # renders message text as text (test_webchat_browser.py proves that part).
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = await response.text()
    for _, data in parse_events(body):
        assert "<script" not in json.dumps(data.get("actions", []))


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"", 400),
        (b"[1, 2]", 400),
        (b'"glemt passord"', 400),
        (b"{}", 400),
        (b'{"text": 42}', 400),
        (b'{"text": null}', 400),
        (b'{"text": ["a"]}', 400),
        (b"[" * 100_000, 413),
        (json.dumps({"text": "x" * 20_000}).encode(), 413),
    ],
)
async def test_bad_bodies_are_refused_plainly(webchat: WebChat, body: bytes, status: int) -> None:
    session = await webchat.open()
    response = await webchat.post(session, body)
    assert response.status == status
    assert "error" in await response.json()


async def test_deep_nesting_is_a_400_not_a_crash(webchat: WebChat) -> None:
    session = await webchat.open()
    response = await webchat.post(session, b"[" * 8000 + b"]" * 8000)
    assert response.status == 400


async def test_unknown_and_foreign_sessions_are_refused(webchat: WebChat) -> None:
    mine, theirs = await webchat.open(), await webchat.open()
    body = {"text": "glemt passord"}
    # my token on their conversation
    assert (await webchat.post(theirs, body, token=mine.token)).status == 401
    # a session nobody issued
    ghost = ChatSession(uuid.uuid4().hex, mine.token, [])
    assert (await webchat.post(ghost, body)).status == 401
    # no token, a garbage token, a token signed by another server
    response = await webchat.client.post(f"/api/webchat/sessions/{mine.id}/messages", json=body)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await webchat.post(mine, body, token="not.a.token")).status == 401
    stranger = SessionTokens("s" * 40).issue(SessionTokens("s" * 40).new_session("nb"))
    assert (await webchat.post(mine, body, token=stranger)).status == 401
    # a session id that could never be ours
    odd = ChatSession("..%2F..", mine.token, [])
    assert (await webchat.post(odd, body)).status in (401, 404)
    assert (await webchat.post(ChatSession("a" * 200, mine.token, []), body)).status == 404


async def test_an_expired_session_is_refused() -> None:
    tokens = SessionTokens("k" * 40, ttl_seconds=-120)
    session = tokens.new_session("nb")
    assert tokens.check(tokens.issue(session), session.id) is None


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_wrong_methods_get_405(webchat: WebChat, method: str) -> None:
    session = await webchat.open()
    for path in ("/api/webchat/sessions", f"/api/webchat/sessions/{session.id}/messages"):
        response = await webchat.client.request(method, path)
        assert response.status == 405
        assert "error" in await response.json()


async def test_new_session_body_must_be_json_if_present(webchat: WebChat) -> None:
    response = await webchat.client.post("/api/webchat/sessions", data=b"{oops")
    assert response.status == 400
    response = await webchat.client.post("/api/webchat/sessions", data=b"")
    assert response.status == 200  # no body at all: the default language
    response = await webchat.client.post("/api/webchat/sessions", json={"locale": "<b>x</b>"})
    assert response.status == 200
    assert (await response.json())["activities"][0]["locale"] == "nb"


# -- limits ------------------------------------------------------------------------------


async def test_two_hundred_messages_a_second_are_rate_limited_politely(
    webchat: WebChat, caplog: pytest.LogCaptureFixture
) -> None:
    flooder, bystander = await webchat.open(), await webchat.open()
    started = time.monotonic()

    async def one() -> tuple[int, dict[str, str], Any]:
        response = await webchat.post(flooder, {"text": "glemt passord"}, accept="application/json")
        return response.status, dict(response.headers), await response.json()

    results = await asyncio.gather(*(one() for _ in range(200)))
    elapsed = time.monotonic() - started
    statuses = [status for status, _, _ in results]
    assert set(statuses) <= {200, 429}
    allowed = statuses.count(200)
    assert 10 <= allowed <= 10 + 2 * elapsed + 1  # the burst, plus what refilled meanwhile
    _, headers, body = next(r for r in results if r[0] == 429)
    assert int(headers["Retry-After"]) >= 1
    assert "wait" in body["error"]
    # Somebody else is not held up by the flood.
    [answer] = await webchat.say(bystander, "glemt passord")
    assert "passord" in answer["text"].lower()
    await webchat.adapter.drain()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_session_flood_from_one_address_is_limited(webchat_factory) -> None:
    chat = await webchat_factory(session_burst=3, sessions_per_second=0.01)
    statuses = []
    for _ in range(5):
        response = await chat.client.post("/api/webchat/sessions", json={})
        statuses.append(response.status)
    assert statuses == [200, 200, 200, 429, 429]
    assert int(response.headers["Retry-After"]) >= 1


def test_the_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 1.0, clock=lambda: now[0], max_keys=2)
    assert [limiter.allow("a") for _ in range(3)] == [0.0, 0.0, 1.0]
    now[0] += 1.0
    assert limiter.allow("a") == 0.0
    assert limiter.allow("b") == 0.0 and limiter.allow("c") == 0.0  # "a" forgotten: full again
    assert limiter.allow("a") == 0.0


async def test_after_close_new_messages_get_503(webchat: WebChat) -> None:
    session = await webchat.open()
    await webchat.adapter.close()
    response = await webchat.post(session, {"text": "glemt passord"})
    assert response.status == 503


# -- origins and headers ------------------------------------------------------------------


async def test_cors_for_the_configured_intranet_only(webchat: WebChat) -> None:
    path = "/api/webchat/sessions"
    preflight = {
        "Origin": INTRANET,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    response = await webchat.client.options(path, headers=preflight)
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == INTRANET
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "POST" in response.headers["Access-Control-Allow-Methods"]

    evil = {**preflight, "Origin": "https://evil.example.com"}
    response = await webchat.client.options(path, headers=evil)
    assert response.status == 403
    assert "Access-Control-Allow-Origin" not in response.headers

    response = await webchat.client.post(path, json={}, headers={"Origin": INTRANET})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == INTRANET
    assert "Retry-After" in response.headers["Access-Control-Expose-Headers"]
    response = await webchat.client.post(
        path, json={}, headers={"Origin": "https://evil.example.com"}
    )
    assert response.status == 403


async def test_same_origin_needs_no_configuration(webchat_factory) -> None:
    chat = await webchat_factory(allowed_origins=[])
    own = str(chat.client.make_url("/")).rstrip("/")
    response = await chat.client.post("/api/webchat/sessions", json={}, headers={"Origin": own})
    assert response.status == 200
    response = await chat.client.post(
        "/api/webchat/sessions", json={}, headers={"Origin": INTRANET}
    )
    assert response.status == 403


def test_allowed_origins_must_be_origins() -> None:
    with pytest.raises(ValueError, match="not an origin"):
        WebChatAdapter(bot=lambda context: None, allowed_origins=["intranett.example.org/path"])


async def test_the_page_has_strict_security_headers_and_no_inline_script(
    webchat: WebChat,
) -> None:
    response = await webchat.client.get("/")
    assert response.status == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "default-src 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = await response.text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)  # every script from a file
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline event handlers
    assert not re.search(r"\sstyle\s*=", page)


@pytest.mark.parametrize(
    ("query", "accept", "lang"),
    [
        ("", "sv-SE,sv;q=0.9,en;q=0.5", "sv"),
        ("", "de-DE,fi;q=0.8", "fi"),
        ("", "nn-NO", "nb"),
        ("?lang=da", "en", "da"),
        ("?lang=xx", "", "nb"),
    ],
)
async def test_the_page_speaks_the_browsers_language(
    webchat: WebChat, query: str, accept: str, lang: str
) -> None:
    response = await webchat.client.get("/" + query, headers={"Accept-Language": accept})
    assert f'<html lang="{lang}">' in await response.text()


async def test_widget_files_are_served_cacheable_and_small(webchat: WebChat) -> None:
    response = await webchat.client.get("/webchat/widget.js")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    etag = response.headers["ETag"]
    again = await webchat.client.get("/webchat/widget.js", headers={"If-None-Match": etag})
    assert again.status == 304
    css = await webchat.client.get("/webchat/widget.css")
    assert css.headers["Content-Type"].startswith("text/css")
    assert (await webchat.client.get("/webchat/../app.py")).status == 404
    assert (await webchat.client.get("/webchat/index.html")).status == 404


def test_the_widget_is_under_50_kb_gzipped() -> None:
    size = sum(
        len(gzip.compress((STATIC_DIR / name).read_bytes(), 9))
        for name in ("widget.js", "widget.css")
    )
    assert size < 50 * 1024, f"widget is {size} bytes gzipped"


def test_the_widget_never_uses_html_sinks() -> None:
    source = (STATIC_DIR / "widget.js").read_text(encoding="utf-8")
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)  # comments may name them
    source = re.sub(r"^\s*//.*$", "", source, flags=re.MULTILINE)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, sink
    assert "new Function" not in source


# -- page events ---------------------------------------------------------------------------


def test_page_events_carry_only_what_the_page_needs() -> None:
    from botbuilder.schema import CardAction, SuggestedActions

    activity = Activity(
        type="message",
        text="**hei**",
        locale="nb",
        channel_data={"secret": "x"},
        suggested_actions=SuggestedActions(
            actions=[
                CardAction(type="messageBack", title="T", text="ask:x", display_text="Vis"),
                CardAction(type="imBack", title="Ja", value="ja"),
                CardAction(type="openUrl", title="Åpne", value="https://example.org/"),
                CardAction(type="signin", title="?", value="https://example.org/"),
            ]
        ),
    )
    event = for_page(activity)
    assert event is not None and "secret" not in json.dumps(event)
    assert event["actions"] == [
        {"type": "message", "label": "Vis", "code": "ask:x"},
        {"type": "message", "label": "Ja", "code": "ja"},
        {"type": "openUrl", "label": "Åpne", "url": "https://example.org/"},
    ]
    assert for_page(Activity(type="typing")) == {"type": "typing"}
    assert for_page(Activity(type="event", name="x")) is None
    assert for_page(Activity(type="message", text="")) is None


# -- sign-in -------------------------------------------------------------------------------


@dataclass
class Keys:
    url: str
    key: rsa.RSAPrivateKey
    kid: str

    def token(self, *, key: Any = None, algorithm: str = "RS256", **changes: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": API_AUDIENCE,
            "tid": TENANT,
            "oid": "aaaaaaaa-0000-4000-8000-000000000001",
            "preferred_username": "kari.nordmann@kommune.example.org",
            "name": "Kari Nordmann",
            "iat": now - 10,
            "nbf": now - 10,
            "exp": now + 3600,
        }
        claims.update(changes)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key or self.key, algorithm=algorithm, headers={"kid": self.kid})


@pytest.fixture
async def jwks() -> AsyncIterator[Keys]:
    """Entra's key endpoint on loopback. PyJWKClient fetches in a worker thread, so serving it
    from the test's own event loop cannot deadlock."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = uuid.uuid4().hex
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig"})

    async def keys(_: web.Request) -> web.Response:
        return web.json_response({"keys": [jwk]})

    app = web.Application()
    app.router.add_get("/discovery/v2.0/keys", keys)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Keys(str(server.make_url("/discovery/v2.0/keys")), key, kid)
    finally:
        await server.close()


@pytest.fixture
async def signed_chat(jwks: Keys, webchat_factory) -> tuple[WebChat, list[Activity]]:
    """The web chat with sign-in on, and a bot that records what it received."""
    seen: list[Activity] = []

    async def bot(context: TurnContext) -> None:
        seen.append(context.activity)
        if context.activity.type == "message":
            await context.send_activity(f"hei {user_of(context.activity).name}")

    validator = EntraIdValidator(tenant_id=TENANT, audiences=[API_AUDIENCE], jwks_url=jwks.url)
    chat = await webchat_factory(bot=bot, sign_in=validator)
    return chat, seen


async def test_a_valid_entra_token_puts_the_user_on_the_activity(
    signed_chat: tuple[WebChat, list[Activity]], jwks: Keys
) -> None:
    chat, seen = signed_chat
    response = await chat.client.post(
        "/api/webchat/sessions", json={}, headers={"Authorization": f"Bearer {jwks.token()}"}
    )
    assert response.status == 200, await response.text()
    data = await response.json()
    assert data["signedIn"] is True
    session = ChatSession(data["session"], data["token"], [])
    [answer] = await chat.say(session, "hei")
    assert answer["text"] == "hei Kari Nordmann"
    activity = seen[-1]
    assert activity.channel_id == "webchat"
    assert activity.from_property.aad_object_id == "aaaaaaaa-0000-4000-8000-000000000001"
    assert activity.from_property.properties == {
        "userPrincipalName": "kari.nordmann@kommune.example.org"
    }
    assert activity.conversation.tenant_id == TENANT
    user = user_of(activity)
    assert user.aad_object_id == "aaaaaaaa-0000-4000-8000-000000000001"
    assert user.tenant_id == TENANT and not user.is_guest
    assert activity.from_property.id.startswith("anon-")  # the channel id stays anonymous


async def test_without_a_token_the_session_is_anonymous(
    signed_chat: tuple[WebChat, list[Activity]],
) -> None:
    chat, seen = signed_chat
    session = await chat.open()
    await chat.say(session, "hei")
    assert not seen[-1].from_property.aad_object_id
    assert user_of(seen[-1]).aad_object_id == ""


def _other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda k: k.token(key=_other_key()), id="wrong-key"),
        pytest.param(lambda k: k.token(exp=int(time.time()) - 3600), id="expired"),
        pytest.param(lambda k: k.token(aud="api://someone-else"), id="wrong-audience"),
        pytest.param(lambda k: k.token(iss="https://evil.example.com/v2.0"), id="wrong-issuer"),
        pytest.param(lambda k: k.token(tid="99999999-2222-4333-8444-555555555555"), id="tenant"),
        pytest.param(lambda k: k.token(oid=None), id="no-oid"),
        pytest.param(
            lambda k: jwt.encode({"oid": "x", "aud": API_AUDIENCE, "iss": ISSUER}, None, "none"),
            id="alg-none",
        ),
        pytest.param(lambda k: k.token(key="s" * 40, algorithm="HS256"), id="hs256"),
        pytest.param(lambda k: "garbage", id="garbage"),
        pytest.param(lambda k: "", id="empty"),
    ],
)
async def test_an_invalid_token_is_a_401_not_an_anonymous_chat(
    signed_chat: tuple[WebChat, list[Activity]], jwks: Keys, make_token
) -> None:
    chat, seen = signed_chat
    response = await chat.client.post(
        "/api/webchat/sessions",
        json={},
        headers={"Authorization": f"Bearer {make_token(jwks)}"},
    )
    assert response.status == 401
    assert "error" in await response.json()
    assert not seen  # nothing reached the bot, not even the welcome


async def test_sign_in_off_ignores_bearer_tokens(webchat: WebChat) -> None:
    response = await webchat.client.post(
        "/api/webchat/sessions", json={}, headers={"Authorization": "Bearer whatever"}
    )
    assert response.status == 200
    assert (await response.json())["signedIn"] is False


async def test_an_unreachable_key_set_refuses_sign_in(webchat_factory, jwks: Keys) -> None:
    validator = EntraIdValidator(
        tenant_id=TENANT,
        audiences=[API_AUDIENCE],
        jwks_url="http://127.0.0.1:9/keys",
        fetch_timeout_seconds=2,
    )
    chat = await webchat_factory(sign_in=validator)
    response = await chat.client.post(
        "/api/webchat/sessions", json={}, headers={"Authorization": f"Bearer {jwks.token()}"}
    )
    assert response.status == 401


# -- property test ---------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_bodies = (
    st.binary(max_size=300)
    | _json.map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries(
        {"text": st.text(max_size=200)},
        optional={"locale": st.text(max_size=12) | _json, "value": _json},
    ).map(lambda v: json.dumps(v).encode())
    | st.text(max_size=200).map(lambda t: json.dumps({"text": t}, ensure_ascii=False).encode())
)


def test_message_endpoint_never_answers_500(
    settings_factory: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    """Random bodies through the real bot: 200 or 4xx every time, no error logged."""

    async def start() -> tuple[TestClient, WebChatAdapter, ChatSession]:
        app, adapter = make_app(
            settings_factory(), message_burst=100_000, messages_per_second=1000.0
        )
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        session = await WebChat(client, adapter).open()
        return client, adapter, session

    with asyncio.Runner() as runner:
        client, adapter, session = runner.run(start())
        chat = WebChat(client, adapter)
        try:

            @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(body=_bodies, stream=st.booleans())
            def check(body: bytes, stream: bool) -> None:
                async def post() -> int:
                    accept = "text/event-stream" if stream else "application/json"
                    response = await chat.post(session, body, accept=accept)
                    text = await response.text()
                    if response.status == 200 and stream:
                        assert parse_events(text)[-1][0] == "end"
                    await adapter.drain()
                    return response.status

                assert runner.run(post()) in {200, 400, 413}

            check()
        finally:
            runner.run(client.close())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors[0].getMessage()


async def test_the_app_serves_the_web_chat_on_its_defaults(kollega_client: TestClient) -> None:
    page = await kollega_client.get("/")
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    opened = await kollega_client.post("/api/webchat/sessions", json={"locale": "fi-FI"})
    assert opened.status == 200
    session = await opened.json()
    response = await kollega_client.post(
        f"/api/webchat/sessions/{session['session']}/messages",
        json={"text": "unohdin salasanani", "locale": "fi-FI"},
        headers={"Authorization": f"Bearer {session['token']}", "Accept": "application/json"},
    )
    assert response.status == 200, await response.text()
    assert "salasana" in json.dumps(await response.json(), ensure_ascii=False).lower()
