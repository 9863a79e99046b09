"""Contact lookup through /api/messages: Teams cards with call/chat/mail, and nothing stored."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from app import KOLLEGA
from bot.analytics import events
from tests.conftest import Chat, payload
from tests.fakes.graph import start_fake_graph, user
from tests.schemas import assert_valid_adaptive_card
from tests.test_faults import kollega_app

KARI = user(
    "11111111-aaaa-4000-8000-000000000001",
    "Kari Nordmann",
    title="Rådgiver",
    department="Lønn",
    office="Rådhuset",
    mail="kari.nordmann@example.org",
    upn="kari.nordmann@example.org",
    phones=("+47 22 00 00 00",),
)


def _card(reply: dict[str, Any]) -> dict[str, Any]:
    return reply["attachments"][0]["content"]


async def test_a_colleague_and_my_manager_as_teams_cards(
    aiohttp_server, tmp_path, settings_factory, connector
) -> None:
    graph = await start_fake_graph(aiohttp_server, tmp_path)
    graph.fake.add(KARI)
    me = payload("teams/personal-message-text.json")["from"]["aadObjectId"]
    graph.fake.add(user(me, "Jacob Tomlinson"))  # the asking Teams user is in the directory
    graph.fake.managers[me] = dict(KARI)
    settings = settings_factory(
        graph_tenant_id=graph.fake.tenant_id,
        graph_client_id=graph.fake.client_id,
        graph_client_secret=graph.fake.client_secret,
        graph_url=graph.url,
        graph_authority=graph.url,
        graph_ca_bundle=str(graph.tls.ca_file),
    )
    fake, service_url = connector
    async with kollega_app(settings) as client:
        chat = Chat(client, fake, service_url, "teams/personal-message-text.json", locale="nb-NO")
        replies = await chat.messages("hvem er Kari Nordmann")
        card = _card(replies[-1])
        assert_valid_adaptive_card(card)
        shown = json.dumps(card, ensure_ascii=False)
        assert "Kari Nordmann" in shown and "Rådgiver" in shown
        urls = [a.get("url", "") for a in card.get("actions", [])]
        assert any(u.startswith("tel:") for u in urls)
        assert any(u.startswith("mailto:kari.nordmann@example.org") for u in urls)
        assert any("teams.microsoft.com/l/chat" in u for u in urls)

        replies = await chat.messages("hvem er sjefen min")
        assert "Kari Nordmann" in json.dumps(_card(replies[-1]), ensure_ascii=False)

        swedish = Chat(client, fake, service_url, "teams/personal-message-text.json")
        replies = await swedish.messages("vem är Kari Nordmann")
        assert "Kari Nordmann" in json.dumps(_card(replies[-1]), ensure_ascii=False)

        # Only the search fields shown were asked for, with the header $search needs.
        search = next(r for r in graph.fake.graph_requests() if "$search" in r.query)
        assert search.headers.get("ConsistencyLevel") == "eventual"
        assert '"displayName:Kari Nordmann"' in search.query["$search"]

        kollega = client.server.app[KOLLEGA]
        await kollega.analytics.flush()
        async with kollega.analytics.engine.connect() as conn:
            rows = [dict(r) for r in (await conn.execute(select(events))).mappings().all()]
        lookups = [r for r in rows if r["outcome"] == "contact_lookup"]
        assert len(lookups) == 3
        stored = json.dumps(rows, default=str, ensure_ascii=False)
        assert "Kari" not in stored and "Nordmann" not in stored and "22 00" not in stored
