"""Bot Framework authentication: a verified token reaches the bot, anything else is a 401.

botbuilder 4.17.1 answers many bad tokens with a 500 (design.md); these tests pin that
kollega answers each with 401 and that nothing reaches the bot or the Bot Connector.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botbuilder.core import ActivityHandler, TurnContext

from adapters.bot_framework import BotFrameworkChannel
from app import create_app
from tests.conftest import payload
from tests.fakes.graph import start_fake_graph
from tests.fakes.openid import APP_ID, ISSUER, OpenIdServer, new_key, openid_server, unsigned_token


class RecordingBot(ActivityHandler):
    """Records what reaches it and never replies (so no outbound token is needed)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def on_turn(self, turn_context: TurnContext) -> None:
        self.seen.append(turn_context.activity.type)


@pytest.fixture
def openid() -> Iterator[OpenIdServer]:
    with openid_server() as server:
        yield server


@pytest.fixture
async def authority(aiohttp_server: Any, tmp_path: Any) -> Any:
    """Entra for the bot's own outbound token (a reply needs one; offline here)."""
    running = await start_fake_graph(aiohttp_server, tmp_path)
    running.fake.tenant_id = "botframework.com"
    running.fake.client_id = APP_ID
    running.fake.client_secret = "bot-secret"
    return running


def _auth_settings(settings_factory: Any, openid: OpenIdServer, authority: Any) -> Any:
    return settings_factory(
        APP_ID=APP_ID,
        APP_PASSWORD="bot-secret",
        APP_TYPE="MultiTenant",
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=openid.metadata_url,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=ISSUER,
        bot_authority=authority.url,
        bot_ca_bundle=str(authority.tls.ca_file),
    )


@pytest.fixture
async def channel_client(
    settings_factory: Any, openid: OpenIdServer, authority: Any
) -> AsyncIterator[tuple[TestClient, RecordingBot]]:
    bot = RecordingBot()
    channel = BotFrameworkChannel(_auth_settings(settings_factory, openid, authority))
    app = web.Application()

    async def messages(request: web.Request) -> web.Response:
        return await channel.handle(request, bot)

    app.router.add_post("/api/messages", messages)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield client, bot
    finally:
        await client.close()


def _activity(service_url: str = "https://smba.trafficmanager.net/emea/") -> dict[str, Any]:
    activity = copy.deepcopy(payload("teams/conversation-update-member-removed.json"))
    activity["serviceUrl"] = service_url
    return activity


async def test_a_token_signed_by_the_channel_reaches_the_bot(channel_client, openid) -> None:
    client, bot = channel_client
    activity = _activity()
    token = openid.token(activity["serviceUrl"])
    response = await client.post(
        "/api/messages", json=activity, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status in (200, 201), await response.text()
    assert bot.seen == ["conversationUpdate"]


@pytest.mark.parametrize(
    "make_header",
    [
        pytest.param(lambda o, url: None, id="no-header"),
        pytest.param(lambda o, url: "Bearer", id="empty-bearer"),
        pytest.param(lambda o, url: "Bearer not.a.jwt", id="garbage"),
        pytest.param(lambda o, url: f"Bearer {unsigned_token(url)}", id="alg-none"),
        pytest.param(lambda o, url: f"Bearer {o.token(url, key=new_key())}", id="wrong-key"),
        pytest.param(lambda o, url: f"Bearer {o.token(url, expires_in=-3600)}", id="expired"),
        pytest.param(
            lambda o, url: f"Bearer {o.token(url, audience='someone-else')}", id="wrong-audience"
        ),
        pytest.param(
            lambda o, url: f"Bearer {o.token(url, issuer='https://evil.example')}",
            id="wrong-issuer",
        ),
        pytest.param(
            lambda o, url: f"Bearer {o.token('https://evil.example/')}", id="other-service-url"
        ),
        pytest.param(lambda o, url: f"Bearer {o.token(url, kid='unknown-key')}", id="unknown-kid"),
        pytest.param(lambda o, url: f"Basic {o.token(url)}", id="wrong-scheme"),
    ],
)
async def test_every_bad_token_is_a_401_and_reaches_nothing(
    channel_client, openid, make_header
) -> None:
    client, bot = channel_client
    activity = _activity()
    header = make_header(openid, activity["serviceUrl"])
    headers = {"Authorization": header} if header is not None else {}
    response = await client.post("/api/messages", json=activity, headers=headers)
    assert response.status == 401, await response.text()
    assert bot.seen == []


async def test_the_full_app_refuses_bad_tokens_without_replying(
    settings_factory, openid, connector, authority
) -> None:
    fake, service_url = connector
    settings = _auth_settings(settings_factory, openid, authority)
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    try:
        activity = copy.deepcopy(payload("teams/personal-message-text.json"))
        activity["serviceUrl"] = service_url
        activity["text"] = "glemt passord"
        for headers in (
            {},
            {"Authorization": f"Bearer {unsigned_token(service_url)}"},
            {"Authorization": f"Bearer {openid.token(service_url, key=new_key())}"},
        ):
            response = await client.post("/api/messages", json=activity, headers=headers)
            assert response.status == 401
        assert fake.requests == []
        # …and the app still serves.
        assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()
