"""The bot's outbound token: from the configured authority, over our CA bundle, fetched once.

A correctly signed Teams message goes through the whole app; the reply must reach the fake
Bot Connector carrying the token the fake authority issued, and several turns must cost
the authority exactly one token request. msal runs for real against the fake authority
(``tests/fakes/graph.py``, HTTPS with a throwaway CA) and the SDK's JWT checks against the
fake OpenID metadata server.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp.test_utils import TestClient, TestServer

from adapters.bot_credentials import (
    KollegaAppCredentials,
    KollegaCredentialsFactory,
    bot_credentials_factory,
    default_scope,
)
from app import KOLLEGA, create_app
from bot.settings import Settings
from tests.conftest import payload
from tests.fakes.graph import Running, start_fake_graph
from tests.fakes.openid import APP_ID, ISSUER, OpenIdServer, openid_server

APP_PASSWORD = "bot-secret-for-tests"
SCOPE = "https://api.botframework.com/.default"


@pytest.fixture
def openid() -> Iterator[OpenIdServer]:
    with openid_server() as server:
        yield server


@pytest.fixture
async def authority(aiohttp_server: Any, tmp_path: Path) -> Running:
    """The fake Entra authority, set up to know the bot's app id and secret."""
    running = await start_fake_graph(aiohttp_server, tmp_path)
    running.fake.tenant_id = "botframework.com"
    running.fake.client_id = APP_ID
    running.fake.client_secret = APP_PASSWORD
    return running


def factory_for(authority: Running, **overrides: Any) -> KollegaCredentialsFactory:
    options: dict[str, Any] = {
        "app_id": APP_ID,
        "password": APP_PASSWORD,
        "authority": authority.url,
        "ca_bundle": authority.tls.ca_file,
        "timeout": 5.0,
    }
    options.update(overrides)
    return KollegaCredentialsFactory(**options)


def _wire(client: TestClient, settings: Settings) -> None:
    """The app builds its channel with kollega's credentials factory, not the SDK's."""
    inner = client.server.app[KOLLEGA].channel.authentication.inner._inner
    assert isinstance(getattr(inner, "_credentials_factory", None), KollegaCredentialsFactory)


async def test_replies_carry_the_token_from_the_configured_authority(
    settings_factory: Any,
    openid: OpenIdServer,
    authority: Running,
    connector: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests lets this variable replace a session's trust; the bundle must still win.
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other_ca))
    fake_connector, service_url = connector
    base = settings_factory(
        APP_ID=APP_ID,
        APP_PASSWORD=APP_PASSWORD,
        APP_TYPE="MultiTenant",
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=openid.metadata_url,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=ISSUER,
    )
    settings = base.model_copy(
        update={"bot_authority": authority.url, "bot_ca_bundle": str(authority.tls.ca_file)}
    )
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    try:
        _wire(client, settings)
        texts = ["glemt passord", "jag har glömt mitt lösenord", "I forgot my password"]
        for number, words in enumerate(texts):
            activity = copy.deepcopy(payload("teams/personal-message-text.json"))
            activity["serviceUrl"] = service_url
            activity["id"] = f"incoming-{number}"
            activity["text"] = words
            token = openid.token(service_url)
            response = await client.post(
                "/api/messages", json=activity, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status in (200, 201), await response.text()
    finally:
        await client.close()

    issued = authority.fake.tokens_issued
    assert len(issued) == 1
    sent = [r for r in fake_connector.requests if r.method == "POST"]
    assert len(sent) >= len(texts)
    assert {r.headers.get("Authorization") for r in sent} == {f"Bearer {issued[0]}"}
    token_requests = authority.fake.token_requests()
    assert len(token_requests) == 1
    assert token_requests[0].path == "/botframework.com/oauth2/v2.0/token"
    assert token_requests[0].form["scope"].split() == [SCOPE]
    # Instance discovery is off: nothing was asked of /common/discovery/instance.
    assert not [r for r in authority.fake.requests if "discovery/instance" in r.path]


async def test_many_turns_at_a_cold_start_make_one_token_request(authority: Running) -> None:
    factory = factory_for(authority)
    credentials = await asyncio.gather(
        *(factory.create_credentials(APP_ID, None, None, True) for _ in range(20))
    )
    tokens = {c.get_access_token() for c in credentials}
    assert tokens == set(authority.fake.tokens_issued)
    assert len(authority.fake.token_requests()) == 1
    assert all(isinstance(c, KollegaAppCredentials) for c in credentials)


async def test_the_warm_path_is_a_memo_read(authority: Running) -> None:
    factory = factory_for(authority)
    await factory.warm_up()
    credentials = await factory.create_credentials(APP_ID, None, None, True)
    started = time.perf_counter()
    for _ in range(1000):
        credentials.get_access_token()
    per_call = (time.perf_counter() - started) / 1000
    # Generous bound for a loaded 2-core machine; it is ~1 µs (msal's own lookup is ~50 µs).
    assert per_call < 200e-6
    assert factory.source.fetches == 1


async def test_an_ageing_token_is_refreshed_in_the_background(authority: Running) -> None:
    factory = factory_for(authority)
    await factory.warm_up()
    scope = default_scope(None)
    old = factory.source._tokens[scope]
    old.refresh_at = time.time() - 1  # as if msal's refresh_on had passed
    # The old token is still handed out at once while the refresh runs in a thread.
    assert factory.source.get(scope) == old.value
    for _ in range(200):
        if len(authority.fake.tokens_issued) == 2 and not factory.source._refreshing:
            break
        await asyncio.sleep(0.01)
    assert len(authority.fake.tokens_issued) == 2
    assert factory.source.get(scope) == authority.fake.tokens_issued[1]


async def test_single_tenant_asks_its_own_tenant(authority: Running) -> None:
    tenant = "6c3a4b1e-2f9d-4a7c-8e5b-0d1f2a3b4c5d"
    authority.fake.tenant_id = tenant
    factory = bot_credentials_factory(
        Settings(
            _env_file=None,
            APP_ID=APP_ID,
            APP_PASSWORD=APP_PASSWORD,
            APP_TYPE="SingleTenant",
            APP_TENANTID=tenant,
            bot_authority=authority.url,
            bot_ca_bundle=str(authority.tls.ca_file),
        )
    )
    assert factory is not None
    credentials = await factory.create_credentials(APP_ID, "https://api.botframework.com", "", True)
    assert credentials.get_access_token() == authority.fake.tokens_issued[0]
    assert authority.fake.token_requests()[0].path == f"/{tenant}/oauth2/v2.0/token"


async def test_a_refused_secret_names_the_error_code_not_the_secret(authority: Running) -> None:
    factory = factory_for(authority, password="wrong-secret")
    with pytest.raises(PermissionError) as caught:
        await factory.create_credentials(APP_ID, None, None, True)
    assert "invalid_client" in str(caught.value)
    assert "wrong-secret" not in str(caught.value)


async def test_an_unreachable_authority_is_a_permission_error(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    factory = KollegaCredentialsFactory(
        app_id=APP_ID, password=APP_PASSWORD, authority="https://127.0.0.1:9", ca_bundle=ca
    )
    with pytest.raises(PermissionError, match="could not be reached"):
        await factory.create_credentials(APP_ID, None, None, True)


async def test_other_app_ids_and_auth_off() -> None:
    factory = KollegaCredentialsFactory(app_id=APP_ID, password=APP_PASSWORD)
    assert await factory.is_valid_app_id(APP_ID)
    assert not await factory.is_valid_app_id("someone-else")
    assert not await factory.is_valid_app_id("")
    assert not await factory.is_authentication_disabled()
    with pytest.raises(PermissionError):
        await factory.create_credentials("someone-else", None, None, True)

    off = KollegaCredentialsFactory(app_id="", password="")
    assert await off.is_authentication_disabled()
    empty = await off.create_credentials("", None, None, True)
    assert not empty.microsoft_app_id


def test_the_sdk_keeps_auth_off_and_managed_identities() -> None:
    assert bot_credentials_factory(Settings(_env_file=None)) is None
    msi = Settings(_env_file=None, APP_ID=APP_ID, APP_TYPE="UserAssignedMSI")
    assert bot_credentials_factory(msi) is None


@pytest.mark.parametrize(
    "authority",
    ["http://login.example.org", "https://login.example.org/tenant", "ftp://x"],
)
def test_only_an_https_host_is_an_authority(authority: str) -> None:
    with pytest.raises(ValueError, match="KOLLEGA_BOT_AUTHORITY"):
        KollegaCredentialsFactory(app_id=APP_ID, password=APP_PASSWORD, authority=authority)


def test_a_missing_ca_bundle_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CA bundle"):
        KollegaCredentialsFactory(
            app_id=APP_ID, password=APP_PASSWORD, ca_bundle=tmp_path / "missing.pem"
        )
