"""The contact lookup dialog, driven directly with a real GraphClient against the fake Graph.

No mocks: the directory is ``adapters.graph.GraphClient`` speaking HTTPS to the fake
authority and Graph in ``tests.fakes.graph``, and "who handles …" asks real knowledge
(loaded by ``knowledge.loader`` and prepared by ``knowledge.index``) from a tiny folder.
"""

from __future__ import annotations

import logging
import re
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from adapters.graph import GraphClient
from dialogs.base import DialogContext
from dialogs.contact import ContactDialog, finnish_nominative, recognise_contact
from dialogs.services import Services
from dialogs.texts import MESSAGES_DIR, text
from dialogs.turn import Message, Outcome, Reply, User
from knowledge.index import prepare
from knowledge.loader import load_folder
from tests.fakes.graph import Running, Scripted, payload, start_fake_graph, user
from tests.schemas import assert_valid_adaptive_card

AAD_ID = "aaaaaaaa-1111-4000-8000-00000000000a"
ME = user(AAD_ID, "Ida Ansatt", mail="ida@example.org")
KARI = user(
    "11111111-aaaa-4000-8000-000000000001",
    "Kari Nordmann",
    title="Rådgiver",
    department="Lønn",
    office="Rådhuset",
    mail="kari.nordmann@example.org",
    phones=("+47 22 00 00 01",),
)
ANNA_IT = user(
    "22222222-aaaa-4000-8000-000000000001",
    "Anna Svensson",
    title="Systemförvaltare",
    department="IT",
    mail="anna.svensson@example.se",
)
ANNA_EK = user(
    "22222222-aaaa-4000-8000-000000000002",
    "Anna Svensson",
    title="Controller",
    department="Ekonomi",
    mail="anna.svensson2@example.se",
)
ANNA_SB = user(
    "22222222-aaaa-4000-8000-000000000003",
    "Anna Svenberg",
    department="HR",
    mail="anna.svenberg@example.se",
    phones=("+46 8 123 456",),
)
MATTI = user(
    "33333333-aaaa-4000-8000-000000000001",
    "Matti Virtanen",
    title="Palkkasihteeri",
    department="Palkat",
    mobile="+358 40 123 4567",
    mail="matti.virtanen@example.fi",
)
SWITCHBOARD = "Sentralbordet, tlf. 22 00 00 00"

KNOWLEDGE = {
    "payroll.yaml": """
domain: payroll
owner: Lønn <lonn@example.org>
intents:
  - id: payroll.payday
    examples:
      nb: ["når kommer lønna", "når er lønningsdag", "utbetaling av lønn"]
      sv: ["när kommer lönen", "när är det löning", "utbetalning av lön"]
      en: ["when is payday", "when do I get my salary", "payroll dates"]
      fi: ["milloin palkka maksetaan", "palkkapäivä", "palkan maksu"]
    answer:
      nb: "Lønn utbetales den 12."
      en: "Salary is paid on the 12th."
""",
    "it.yaml": """
domain: it
owner: IT-servicedesk <servicedesk@example.org>
intents:
  - id: it.password_reset
    examples:
      nb: ["jeg har glemt passordet", "bytte passord"]
      en: ["I forgot my password", "change my password"]
    answer:
      nb: "Gå til minside."
      en: "Open My page."
""",
}


@pytest.fixture
def knowledge(tmp_path: Path) -> Any:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    for name, content in KNOWLEDGE.items():
        (folder / name).write_text(content, encoding="utf-8")
    result = load_folder(folder)
    assert result.ok, result.errors
    return prepare(result.knowledge)


@pytest.fixture
async def graph(aiohttp_server, tmp_path: Path) -> Running:
    running = await start_fake_graph(aiohttp_server, tmp_path)
    running.fake.add(ME, KARI, ANNA_IT, ANNA_EK, ANNA_SB, MATTI)
    return running


def make_directory(graph: Running, **overrides: Any) -> GraphClient:
    options: dict[str, Any] = {
        "tenant_id": graph.fake.tenant_id,
        "client_id": graph.fake.client_id,
        "client_secret": graph.fake.client_secret,
        "base_url": graph.url,
        "authority": graph.url,
        "ca_bundle": graph.tls.ca_file,
        "timeout": 3.0,
        "backoff": 0.01,
        "max_retry_wait": 0.1,
    }
    options.update(overrides)
    return GraphClient(**options)


@pytest.fixture
async def directory(graph: Running):
    client = make_directory(graph)
    yield client
    await client.close()


@pytest.fixture
def services(directory: GraphClient, knowledge: Any) -> Services:
    # The knowledge provider is being written elsewhere; dialogs read only ``.current``.
    return Services(
        knowledge=SimpleNamespace(current=knowledge),
        directory=directory,
        switchboard=SWITCHBOARD,
    )


def context(
    services: Services,
    said: str,
    language: str,
    *,
    channel: str = "msteams",
    aad: str = AAD_ID,
    state: dict[str, Any] | None = None,
    value: dict[str, Any] | None = None,
) -> DialogContext:
    who = User(channel=channel, id="29:x", aad_object_id=aad if channel == "msteams" else "")
    return DialogContext(
        message=Message(said, language, who, value=value),
        services=services,
        state=state if state is not None else {},
    )


async def ask(dialog: ContactDialog, dc: DialogContext) -> bool:
    options = dialog.recognise(dc.message)
    assert options is not None, f"not recognised: {dc.message.text!r}"
    return await dialog.begin(dc, options)


def only_reply(dc: DialogContext) -> Reply:
    assert len(dc.result.replies) == 1, dc.result.replies
    return dc.result.replies[0]


def assert_contact_outcome(dc: DialogContext) -> None:
    assert dc.result.outcome is Outcome.CONTACT
    assert dc.result.intent is None


def action_urls(card: dict[str, Any]) -> list[str]:
    return [a["url"] for a in card.get("actions", [])]


# Recognition ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("telefonnummeret til Kari Nordmann", {"kind": "person", "name": "Kari Nordmann"}),
        ("hva er nummeret til Ola?", {"kind": "person", "name": "Ola"}),
        ("vem är Anna Svensson", {"kind": "person", "name": "Anna Svensson"}),
        ("hvem er Lars Jensen", {"kind": "person", "name": "Lars Jensen"}),
        ("hvad er nummeret på Lars Jensen", {"kind": "person", "name": "Lars Jensen"}),
        ("kuka on Matti Virtanen", {"kind": "person", "name": "Matti Virtanen"}),
        ("Matin puhelinnumero", {"kind": "person", "name": "Mat"}),
        ("Matti Virtasen puhelinnumero", {"kind": "person", "name": "Matti Virtanen"}),
        ("Who is Kari Nordmann?", {"kind": "person", "name": "Kari Nordmann"}),
        ("what's Kari's phone number", {"kind": "person", "name": "Kari"}),
        ("Olas nummer", {"kind": "person", "name": "Ola"}),
        ("hvem er Kari van der Berg", {"kind": "person", "name": "Kari van der Berg"}),
        ("who is my manager", {"kind": "manager"}),
        ("hvem er sjefen min", {"kind": "manager"}),
        ("vem är min chef?", {"kind": "manager"}),
        ("hvem er min leder", {"kind": "manager"}),
        ("kuka on esimieheni", {"kind": "manager"}),
        ("telefonnummeret til sjefen min", {"kind": "manager"}),
        ("who do I report to", {"kind": "manager"}),
        ("hvem jobber med lønn", {"kind": "owner", "topic": "lønn"}),
        ("who handles payroll?", {"kind": "owner", "topic": "payroll"}),
        ("vem ansvarar för lön", {"kind": "owner", "topic": "lön"}),
        ("Hvem er ansvarlig for lønn?", {"kind": "owner", "topic": "lønn"}),
        ("hvem tager sig af løn", {"kind": "owner", "topic": "løn"}),
        ("kuka hoitaa palkat", {"kind": "owner", "topic": "palkat"}),
    ],
)
def test_recognised(said: str, expected: dict[str, Any]) -> None:
    assert recognise_contact(said) == expected


@pytest.mark.parametrize(
    "said",
    [
        "hvem er du",
        "hva er Teams",
        "hvem er på vakt i dag",
        "how do I reset my password",
        "jeg må snakke med lederen min om ferie",
        "Hans nummer",
        "who is it",
        "kuka on",
        "",
    ],
)
def test_not_a_contact_question(said: str) -> None:
    assert recognise_contact(said) is None


def test_finnish_genitive_becomes_searchable() -> None:
    assert finnish_nominative("Virtasen") == "Virtanen"
    assert finnish_nominative("Matin") == "Mat"  # a prefix of Matti, whatever the gradation
    assert finnish_nominative("Pekka") == "Pekka"


# People -------------------------------------------------------------------------------


async def test_one_match_gives_a_card_and_markdown(services: Services, graph: Running) -> None:
    dialog = ContactDialog()
    dc = context(services, "telefonnummeret til Kari Nordmann", "nb")

    assert await ask(dialog, dc) is False

    reply = only_reply(dc)
    assert reply.card is not None
    assert_valid_adaptive_card(reply.card)
    assert action_urls(reply.card) == [
        "tel:+4722000001",
        "https://teams.microsoft.com/l/chat/0/0?users=kari.nordmann@example.org",
        "mailto:kari.nordmann@example.org",
    ]
    assert [a["title"] for a in reply.card["actions"]] == ["Ring", "Chat i Teams", "Send e-post"]
    facts = {f["title"]: f["value"] for f in reply.card["body"][-1]["facts"]}
    assert facts == {
        "Avdeling": "Lønn",
        "Kontor": "Rådhuset",
        "Telefon": "+47 22 00 00 01",
        "E-post": "kari.nordmann@example.org",
    }
    assert "**Kari Nordmann** – Rådgiver" in reply.markdown
    assert "[Ring](tel:+4722000001)" in reply.markdown
    assert "(mailto:kari.nordmann@example.org)" in reply.markdown
    assert_contact_outcome(dc)
    assert dc.state == {}
    [request] = graph.fake.graph_requests()
    assert request.query["$search"] == '"displayName:Kari Nordmann"'


def test_card_has_no_colours_or_fixed_widths() -> None:
    from adapters.graph import Person
    from dialogs.contact_card import person_card

    person = Person.from_graph(KARI)
    card = person_card(person, "en", "Your manager is:")
    assert_valid_adaptive_card(card)
    flat = str(card)
    for forbidden in ("color", "width", "px", "backgroundImage", "minHeight"):
        assert forbidden not in flat


async def test_finnish_genitive_name_is_found(services: Services) -> None:
    dialog = ContactDialog()
    dc = context(services, "Matin puhelinnumero", "fi")
    assert await ask(dialog, dc) is False
    reply = only_reply(dc)
    assert reply.card is not None
    assert_valid_adaptive_card(reply.card)
    assert "Matti Virtanen" in reply.markdown
    assert "[Soita](tel:+358401234567)" in reply.markdown
    assert reply.card["actions"][0]["title"] == "Soita"


async def test_several_matches_then_pick_by_number(services: Services, graph: Running) -> None:
    dialog = ContactDialog()
    dc = context(services, "vem är Anna Sven", "sv")
    assert await ask(dialog, dc) is True

    reply = only_reply(dc)
    assert reply.markdown.startswith("Jag hittade flera som passar in på ”Anna Sven”.")
    assert [c.title for c in reply.choices] == [
        "Anna Svenberg (HR)",
        "Anna Svensson (Ekonomi)",
        "Anna Svensson (IT)",
    ]
    assert [c.value for c in reply.choices] == ["1", "2", "3"]
    assert "1. **Anna Svenberg** – HR" in reply.markdown
    assert_contact_outcome(dc)
    # Only the user's own words are kept between turns, no names or ids from Graph.
    assert dc.state == {"query": "Anna Sven"}

    dc2 = context(services, "2", "sv", state=dc.state)
    assert await dialog.resume(dc2) is False
    picked = only_reply(dc2)
    assert picked.card is not None
    assert_valid_adaptive_card(picked.card)
    assert "**Anna Svensson** – Controller" in picked.markdown
    assert "mailto:anna.svensson2@example.se" in action_urls(picked.card)
    assert_contact_outcome(dc2)


async def test_pick_by_button_value(services: Services) -> None:
    dialog = ContactDialog()
    dc = context(services, "vem är Anna Sven", "sv")
    assert await ask(dialog, dc) is True
    dc2 = context(services, "", "sv", state=dc.state, value={"value": "3"})
    assert await dialog.resume(dc2) is False
    assert "**Anna Svensson** – Systemförvaltare" in only_reply(dc2).markdown


async def test_pick_by_typed_name(services: Services) -> None:
    dialog = ContactDialog()
    dc = context(services, "vem är Anna Sven", "sv")
    assert await ask(dialog, dc) is True
    dc2 = context(services, "Anna Svenberg", "sv", state=dc.state)
    assert await dialog.resume(dc2) is False
    reply = only_reply(dc2)
    assert "**Anna Svenberg**" in reply.markdown
    assert "tel:+468123456" in reply.markdown


async def test_unclear_pick_ends_politely(services: Services) -> None:
    dialog = ContactDialog()
    dc = context(services, "who is Anna Sven", "en")
    assert await ask(dialog, dc) is True
    for said in ("9", "Anna Svensson"):  # out of range; two namesakes
        dc2 = context(services, said, "en", state=dict(dc.state))
        assert await dialog.resume(dc2) is False
        assert only_reply(dc2).markdown == text("contact.pick_unclear", "en")
        assert dc2.reroute is False


@pytest.mark.parametrize("said", ["how do I reset my password", "who is Kari Nordmann", "Ola"])
async def test_anything_but_a_pick_goes_back_to_the_router(services: Services, said: str) -> None:
    dialog = ContactDialog()
    dc = context(services, "who is Anna Sven", "en")
    assert await ask(dialog, dc) is True
    dc2 = context(services, said, "en", state=dict(dc.state))
    assert await dialog.resume(dc2) is False
    assert dc2.reroute is True
    assert dc2.result.replies == []


async def test_a_new_question_instead_of_a_pick_through_the_router(
    services: Services,
) -> None:
    from dialogs.router import Router

    router = Router(skills=[ContactDialog()], slow=frozenset({"contact"}))
    conversation: dict[str, Any] = {}

    first = context(services, "hvem er Anna Sven", "nb")
    first.conversation = conversation
    await router.on_message(first)
    assert len(only_reply(first).choices) == 3
    assert conversation["active"] == {"name": "contact", "state": {"query": "Anna Sven"}}

    second = context(services, "hvem er Kari Nordmann", "nb")
    second.conversation = conversation
    await router.on_message(second)
    assert "**Kari Nordmann**" in only_reply(second).markdown
    assert "active" not in conversation
    assert_contact_outcome(second)


async def test_no_match_suggests_the_switchboard(services: Services) -> None:
    dialog = ContactDialog()
    dc = context(services, "hvem er Lars Jensen", "da")
    assert await ask(dialog, dc) is False
    reply = only_reply(dc)
    assert reply.markdown == (
        "Jeg fandt ingen med navnet »Lars Jensen« i personkataloget.\n\n"
        f"Omstillingen kan hjælpe dig videre: {SWITCHBOARD}"
    )
    assert reply.card is None
    assert_contact_outcome(dc)


async def test_no_match_without_switchboard(services: Services) -> None:
    services.switchboard = ""
    dialog = ContactDialog()
    dc = context(services, "who is Lars Jensen", "en")
    assert await ask(dialog, dc) is False
    assert only_reply(dc).markdown == "I found no one called “Lars Jensen” in the directory."


# Manager ------------------------------------------------------------------------------


async def test_manager_in_teams(services: Services, graph: Running) -> None:
    graph.fake.managers[AAD_ID] = dict(KARI)
    dialog = ContactDialog()
    dc = context(services, "kuka on esimieheni", "fi")
    assert await ask(dialog, dc) is False

    reply = only_reply(dc)
    assert reply.card is not None
    assert_valid_adaptive_card(reply.card)
    assert reply.card["body"][0]["text"] == "Esihenkilösi on:"
    assert reply.markdown.startswith("Esihenkilösi on:  \n**Kari Nordmann**")
    assert graph.fake.graph_requests()[-1].path == f"/v1.0/users/{AAD_ID}/manager"
    assert_contact_outcome(dc)


async def test_manager_from_the_documented_payload(services: Services, graph: Running) -> None:
    graph.fake.managers[AAD_ID] = payload("user-manager.json")
    dialog = ContactDialog()
    dc = context(services, "who is my manager", "en")
    assert await ask(dialog, dc) is False
    reply = only_reply(dc)
    assert reply.card is not None
    assert_valid_adaptive_card(reply.card)
    assert "**Sara Davis** – Finance VP" in reply.markdown


async def test_manager_outside_the_tenant_has_no_chat(services: Services, graph: Running) -> None:
    graph.fake.managers[AAD_ID] = {
        "@odata.type": "#microsoft.graph.orgContact",
        "id": "c0c0c0c0-0000-4000-8000-000000000001",
        "displayName": "Per Konsulent",
        "mail": "per@partner.example",
        "phones": [{"type": "business", "number": "+47 22 11 11 11"}],
    }
    dialog = ContactDialog()
    dc = context(services, "hvem er min leder", "nb")
    assert await ask(dialog, dc) is False
    card = only_reply(dc).card
    assert card is not None
    assert_valid_adaptive_card(card)
    assert action_urls(card) == ["tel:+4722111111", "mailto:per@partner.example"]


async def test_no_manager_on_record(services: Services) -> None:
    dialog = ContactDialog()
    dc = context(services, "vem är min chef", "sv")
    assert await ask(dialog, dc) is False
    assert only_reply(dc).markdown == "Personkatalogen har ingen chef registrerad för dig."


@pytest.mark.parametrize(
    ("said", "language"), [("hvem er sjefen min", "nb"), ("who is my manager", "en")]
)
async def test_manager_outside_teams_explains_why(
    services: Services, graph: Running, said: str, language: str
) -> None:
    dialog = ContactDialog()
    dc = context(services, said, language, channel="workplace")
    assert await ask(dialog, dc) is False
    assert only_reply(dc).markdown == text("contact.manager_needs_teams", language)
    assert graph.fake.requests == []  # nothing asked of Graph or the authority
    assert_contact_outcome(dc)


# Topic owners -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "language", "intro"),
    [
        ("who handles payroll", "en", "Questions about payroll are handled by:"),
        ("hvem jobber med lønn", "nb", "Spørsmål om lønn tas hånd om av:"),
        ("vem ansvarar för lön", "sv", "Frågor om lön hanteras av:"),
        ("kuka hoitaa palkat", "fi", "Kysymyksiin aiheesta palkat vastaa:"),
    ],
)
async def test_topic_owner(
    services: Services, graph: Running, said: str, language: str, intro: str
) -> None:
    dialog = ContactDialog()
    dc = context(services, said, language)
    assert await ask(dialog, dc) is False
    reply = only_reply(dc)
    assert reply.card is not None
    assert_valid_adaptive_card(reply.card)
    assert reply.card["body"][0]["text"] == intro
    assert reply.card["body"][1]["text"] == "Lønn"
    assert action_urls(reply.card) == ["mailto:lonn@example.org"]
    assert reply.markdown == f"{intro}  \n**Lønn**  \n[lonn@example.org](mailto:lonn@example.org)"
    assert graph.fake.requests == []  # owners come from the knowledge, not from Graph
    assert_contact_outcome(dc)
    assert dc.result.domain is None


async def test_unknown_topic(services: Services) -> None:
    dialog = ContactDialog()
    dc = context(services, "who handles spaceships", "en")
    assert await ask(dialog, dc) is False
    assert only_reply(dc).markdown.startswith(
        "Sorry, I don't know who is responsible for “spaceships”."
    )


async def test_topic_owner_works_without_graph(knowledge: Any) -> None:
    services = Services(knowledge=SimpleNamespace(current=knowledge), directory=None)
    dialog = ContactDialog()
    dc = context(services, "who handles payroll", "en")
    assert await ask(dialog, dc) is False
    assert "**Lønn**" in only_reply(dc).markdown


# Graph missing or down ----------------------------------------------------------------


async def test_directory_not_configured(knowledge: Any) -> None:
    services = Services(knowledge=SimpleNamespace(current=knowledge), directory=None)
    dialog = ContactDialog()
    dc = context(services, "hvem er Kari Nordmann", "nb")
    assert await ask(dialog, dc) is False
    assert only_reply(dc).markdown == text("contact.not_configured", "nb")
    assert_contact_outcome(dc)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_graph_refusing_connections(graph: Running, knowledge: Any) -> None:
    client = make_directory(graph, base_url=f"https://127.0.0.1:{_free_port()}")
    try:
        services = Services(SimpleNamespace(current=knowledge), directory=client)
        dialog = ContactDialog()
        dc = context(services, "who is Kari Nordmann", "en")
        assert await ask(dialog, dc) is False
        assert only_reply(dc).markdown == text("contact.unavailable", "en")
        assert_contact_outcome(dc)
    finally:
        await client.close()


async def test_graph_too_slow(graph: Running, knowledge: Any) -> None:
    client = make_directory(graph, timeout=0.5)
    try:
        graph.fake.script.append(Scripted(delay=3))
        services = Services(
            SimpleNamespace(current=knowledge), directory=client, switchboard="22 00"
        )
        dialog = ContactDialog()
        dc = context(services, "vem är min chef", "sv")
        assert await ask(dialog, dc) is False
        assert only_reply(dc).markdown == (
            text("contact.unavailable", "sv") + "\n\nVäxeln kan hjälpa dig vidare: 22 00"
        )
    finally:
        await client.close()


async def test_graph_failing_during_the_pick(services: Services, graph: Running) -> None:
    dialog = ContactDialog()
    dc = context(services, "hvem er Anna Sven", "nb")
    assert await ask(dialog, dc) is True
    graph.fake.script.extend(Scripted(503, body={}) for _ in range(5))
    dc2 = context(services, "1", "nb", state=dc.state)
    assert await dialog.resume(dc2) is False
    assert only_reply(dc2).markdown.startswith(text("contact.unavailable", "nb"))


# Privacy and phrases ------------------------------------------------------------------


async def test_nothing_personal_is_logged(
    services: Services, graph: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    graph.fake.managers[AAD_ID] = dict(KARI)
    dialog = ContactDialog()
    for said in ("hvem er Kari Nordmann", "hvem er sjefen min", "hvem er Anna Sven"):
        await ask(dialog, context(services, said, "nb"))
    graph.fake.script.append(Scripted(500, body={}))
    await ask(dialog, context(services, "hvem er Matti Virtanen", "nb"))

    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("aiohttp"))
    for secret in ("Kari", "Nordmann", "Anna", "Matti", AAD_ID, "example.org", "fake-access"):
        assert secret not in logged


def test_every_phrase_in_every_language() -> None:
    phrases = yaml.safe_load((MESSAGES_DIR / "contact.yaml").read_text(encoding="utf-8"))
    assert phrases
    for key, by_language in phrases.items():
        assert key.startswith("contact."), key
        assert set(by_language) == {"nb", "sv", "da", "fi", "en"}, key
        placeholders = {frozenset(re.findall(r"{{\s*(\w+)\s*}}", t)) for t in by_language.values()}
        assert len(placeholders) == 1, f"{key}: languages use different placeholders"


@given(st.text(max_size=300))
def test_recognition_never_fails_on_any_text(said: str) -> None:
    options = recognise_contact(said)
    if options is not None:
        assert options["kind"] in {"person", "manager", "owner"}
        assert options.get("name", "x").strip()
        assert options.get("topic", "x").strip()
