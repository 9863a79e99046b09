"""Hostile input: injection through knowledge and user text, and garbage on admin endpoints."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SAMPLE_KNOWLEDGE
from tests.schemas import assert_valid_adaptive_card

EVIL = """\
domain: evil
owner: "Evil <evil@example.org>"
review_by: 2099-01-01
intents:
  - id: evil.injection
    examples:
      nb: ["hvordan fungerer skriveren i kantina"]
      en: ["how does the canteen printer work"]
    answer:
      nb: |
        <script>alert('x')</script><img src=x onerror=alert(1)>
        [klikk](javascript:alert(1)) {"type": "Action.OpenUrl", "url": "https://evil.example"}
        }]}, "actions": [{"type": "Action.Submit"}]
      en: "<b>bold?</b> ${{{{recipient}}}} {{7*7}}"
"""


def _evil_knowledge(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    shutil.copytree(SAMPLE_KNOWLEDGE, folder)
    (folder / "evil.yaml").write_text(textwrap.dedent(EVIL), encoding="utf-8")
    return folder


async def test_knowledge_cannot_inject_into_cards(settings_factory, tmp_path, connector) -> None:
    """Answer text is data in a TextBlock: the card keeps its shape and stays valid."""
    from aiohttp.test_utils import TestClient, TestServer

    from app import create_app
    from tests.conftest import Chat

    settings = settings_factory(knowledge_dir=_evil_knowledge(tmp_path))
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    try:
        fake, url = connector
        chat = Chat(client, fake, url, "teams/personal-message-text.json", locale="nb-NO")
        (reply,) = await chat.messages("hvordan fungerer skriveren i kantina")
        card = reply["attachments"][0]["content"]
        assert_valid_adaptive_card(card)
        assert [block["type"] for block in card["body"]] == ["TextBlock"]
        assert "<script>" in card["body"][0]["text"]  # shown as text, not interpreted
        urls = [a.get("url", "") for a in card.get("actions", [])]
        assert not any("evil.example" in u or u.startswith("javascript") for u in urls)
        # Jinja2 never sees knowledge text: template syntax in an answer stays literal.
        english = Chat(client, fake, url, "teams/personal-message-text.json", locale="en-US")
        (reply,) = await english.messages("how does the canteen printer work")
        assert "{{7*7}}" in json.dumps(reply["attachments"][0]["content"])
    finally:
        await client.close()


async def test_user_text_is_never_echoed_as_html(chat_factory) -> None:
    chat = chat_factory()
    for attack in (
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)> hvem er <b>Ola</b>",
        "hvem er <script>alert(1)</script>",
        '{"type":"AdaptiveCard","body":[]}',
        "**bold** [x](javascript:alert(1))",
    ):
        for reply in await chat.messages(attack):
            flat = json.dumps(reply, ensure_ascii=False)
            assert "<script>" not in flat and "onerror" not in flat, (attack, flat)
            assert "javascript:" not in flat


@pytest.fixture
async def admin_client(settings_factory, tmp_path):
    """An app with the admin surface on, over a copy of the knowledge it may edit."""
    from aiohttp.test_utils import TestClient, TestServer

    from app import create_app

    folder = tmp_path / "knowledge"
    shutil.copytree(SAMPLE_KNOWLEDGE, folder)
    settings = settings_factory(
        admin_token="admin-t0ken-for-fuzzing", knowledge_dir=folder, admin_max_failures=10_000
    )
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(
        [
            "/api/admin/reload",
            "/api/admin/examples",
            "/api/admin/events",
            "/api/admin/report",
            "/admin/login",
            "/admin/examples",
            "/api/admin/nothing",
        ]
    ),
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
    body=st.binary(max_size=300) | st.text(max_size=200).map(str.encode),
    token=st.sampled_from(["", "Bearer right", "Bearer right", "Basic x", "Bearer \x00"]),
    query=st.dictionaries(
        st.sampled_from(["day", "from", "to", "domain", "format"]), st.text(max_size=20), max_size=3
    ),
)
async def test_admin_endpoints_never_give_a_500(
    admin_client, path: str, method: str, body: bytes, token: str, query: dict[str, Any]
) -> None:
    headers = {"Authorization": token} if token else {}
    if token == "Bearer right":
        headers["Authorization"] = "Bearer admin-t0ken-for-fuzzing"
    try:
        response = await admin_client.request(
            method, path, data=body, headers=headers, params=query
        )
    except ValueError:  # aiohttp refuses to send some header values itself
        return
    assert response.status < 500, (path, method, await response.text())
