"""Shared fixtures: kollega served over real HTTP, a fake Bot Connector, and a chat helper.

A behaviour test reads like errbot's: ``replies = await chat.say("glemt passord")`` sends
one Activity (shaped like a captured real one) through ``/api/messages``, the real
CloudAdapter, dialogs and storage, and returns what the fake Bot Connector received.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app import KOLLEGA, create_app
from bot.settings import Settings
from tests.fakes.connector import FakeConnector

PAYLOADS = Path(__file__).parent / "payloads"
SAMPLE_KNOWLEDGE = Path(__file__).resolve().parent.parent / "knowledge" / "sample"


def payload(name: str) -> dict[str, Any]:
    """A captured real payload from tests/payloads (see its README for what each teaches)."""
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


@pytest.fixture
async def connector() -> AsyncIterator[tuple[FakeConnector, str]]:
    fake = FakeConnector()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("/")).rstrip("/") + "/"
    finally:
        await server.close()


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the whole run: the sample is embedded once, not per app."""
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture
def settings_factory(tmp_path: Path, embedding_cache: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'kollega.db'}",
            "embedding_cache_dir": str(embedding_cache),
            "knowledge_dir": SAMPLE_KNOWLEDGE,
            "analytics_flush_seconds": 0.05,
            "log_json": False,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
async def kollega_client(
    settings_factory: Callable[..., Settings],
) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(create_app(settings_factory()), host="127.0.0.1"))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


class Chat:
    """One user's conversation with the bot over a given channel's activity shape."""

    def __init__(
        self,
        client: TestClient,
        connector: FakeConnector,
        service_url: str,
        template: str,
        locale: str | None = None,
        conversation_id: str | None = None,
    ) -> None:
        self.client = client
        self.connector = connector
        self.service_url = service_url
        self.template = payload(template)
        self.locale = locale
        self.conversation_id = conversation_id or f"conv-{uuid.uuid4().hex[:12]}"

    def activity(self, text: str | None = None, **changes: Any) -> dict[str, Any]:
        activity = copy.deepcopy(self.template)
        activity["serviceUrl"] = self.service_url
        activity["id"] = f"incoming-{uuid.uuid4().hex[:8]}"
        activity["conversation"]["id"] = self.conversation_id
        if text is not None:
            activity["text"] = text
        if self.locale is not None:
            activity["locale"] = self.locale
        activity.update(changes)
        return activity

    async def post(self, activity: dict[str, Any], headers: dict[str, str] | None = None):
        return await self.client.post("/api/messages", json=activity, headers=headers)

    async def say(self, text: str | None = None, **changes: Any) -> list[dict[str, Any]]:
        before = len(self.connector.requests)
        response = await self.post(self.activity(text, **changes))
        assert response.status in (200, 201), await response.text()
        return [r.body for r in self.connector.requests[before:]]

    async def messages(self, text: str | None = None, **changes: Any) -> list[dict[str, Any]]:
        return [a for a in await self.say(text, **changes) if a.get("type") == "message"]


@pytest.fixture
def chat_factory(
    kollega_client: TestClient, connector: tuple[FakeConnector, str]
) -> Callable[..., Chat]:
    fake, url = connector

    def make(template: str = "emulator/message-user-with-capabilities.json", **kwargs: Any) -> Chat:
        return Chat(kollega_client, fake, url, template, **kwargs)

    return make


@pytest.fixture
def kollega(kollega_client: TestClient):
    return kollega_client.server.app[KOLLEGA]
