"""The handoff and ticket status dialogs, driven turn by turn through ``DialogContext``.

Real connectors talk to the fakes in ``tests.fakes.servicedesk`` (TOPdesk, the webhook, an
SMTP server) and the ticket registry sits on SQLite. The dialog state goes through JSON
between turns, as the turn glue stores it. Norwegian and Swedish are the main languages
here, with English and the others where wording matters.
"""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from adapters.tickets import TicketSystem
from adapters.tickets.mail import MailTicketSystem
from adapters.tickets.topdesk import TopdeskTicketSystem
from adapters.tickets.webhook import WebhookTicketSystem
from bot.db import create_engine
from bot.ticket_registry import TicketRegistry, create_tables, tickets
from dialogs.base import Dialog, DialogContext
from dialogs.handoff import ANSWER_WORDS, HandoffDialog, answer_of, format_time
from dialogs.services import Services
from dialogs.texts import language_chain, text
from dialogs.ticket_status import TicketStatusDialog, ticket_number
from dialogs.turn import Message, Outcome, Reply, User
from tests.fakes.servicedesk import FakeTicketWebhook, FakeTopdesk, SmtpServer, free_port

KARI = "kari.nordmann@example.org"
OLA = "ola.nordmann@example.org"
SALT = "dialog-test-salt"
FAST = 0.3
SLOW = 0.8
TRANSCRIPT = [
    {"from": "user", "text": "vpn virker ikke"},
    {"from": "bot", "text": "Beklager, det fant jeg ikke svar på."},
]


class Conversation:
    """One user talking to one dialog; the state goes through JSON like the real storage's."""

    def __init__(
        self,
        dialog: Dialog,
        services: Services,
        language: str = "nb",
        principal: str = KARI,
        *,
        lazy_principal: bool = False,
        channel: str = "msteams",
    ) -> None:
        self.dialog = dialog
        self.services = services
        self.language = language
        self.principal = principal
        self.lazy_principal = lazy_principal
        self.channel = channel
        self.state: dict[str, Any] = {}
        self.active = False
        self.last: DialogContext | None = None
        self.transcript = list(TRANSCRIPT)

    def _context(self, said: str) -> DialogContext:
        user = User(
            channel=self.channel,
            id="29:1abc",
            principal_name="" if self.lazy_principal else self.principal,
        )

        async def lookup() -> str:
            return self.principal

        context = DialogContext(
            message=Message(text=said, language=self.language, user=user),
            services=self.services,
            state=json.loads(json.dumps(self.state)),
            transcript=list(self.transcript),
            principal_lookup=lookup if self.lazy_principal else None,
        )
        self.last = context
        return context

    async def begin(self, options: dict[str, Any], said: str = "") -> list[Reply]:
        dc = self._context(said)
        self.active = await self.dialog.begin(dc, options)
        return self._end_turn(dc, said)

    async def say(self, said: str) -> list[Reply]:
        assert self.active, "the dialog has ended"
        dc = self._context(said)
        self.active = await self.dialog.resume(dc)
        return self._end_turn(dc, said)

    def _end_turn(self, dc: DialogContext, said: str) -> list[Reply]:
        self.state = json.loads(json.dumps(dc.state)) if self.active else {}
        self.transcript += [{"from": "user", "text": said}] + [
            {"from": "bot", "text": reply.markdown} for reply in dc.result.replies
        ]
        return dc.result.replies

    @property
    def outcome(self) -> Outcome:
        assert self.last is not None
        return self.last.result.outcome


def t(key: str, language: str, **values: Any) -> str:
    return text(key, language, **values)


def titles(reply: Reply) -> list[str]:
    return [choice.title for choice in reply.choices]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[TicketRegistry]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}")
    await create_tables(engine)
    try:
        yield TicketRegistry(engine, SALT)
    finally:
        await engine.dispose()


@pytest.fixture
async def webhook(aiohttp_server: Any) -> tuple[FakeTicketWebhook, str]:
    fake = FakeTicketWebhook(secret="hook-secret")
    fake.answer = {"id": "WH-7"}
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("/tickets"))


@pytest.fixture
async def topdesk(aiohttp_server: Any) -> tuple[FakeTopdesk, str]:
    fake = FakeTopdesk("kollega-api", "app-pass-123", persons={KARI, OLA})
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")


def webhook_system(url: str, session: aiohttp.ClientSession) -> WebhookTicketSystem:
    return WebhookTicketSystem(url=url, secret="hook-secret", session=session, timeout=FAST)


def topdesk_system(url: str, session: aiohttp.ClientSession) -> TopdeskTicketSystem:
    return TopdeskTicketSystem(
        base_url=url,
        user="kollega-api",
        app_password="app-pass-123",
        session=session,
        timeout=FAST,
    )


def services(tickets_system: TicketSystem | None, **kw: Any) -> Services:
    return Services(knowledge=None, tickets=tickets_system, **kw)


async def stored_rows(registry: TicketRegistry) -> list[dict[str, Any]]:
    async with registry.engine.connect() as connection:
        return [dict(row._mapping) for row in await connection.execute(select(tickets))]


# --- recognising requests -----------------------------------------------------------------


@pytest.mark.parametrize(
    "said",
    [
        "jeg vil snakke med noen",
        "Kan jeg snakke med et menneske?",
        "lag en sak",
        "Kan du opprette en sak for meg",
        "skapa ärende",
        "Jag vill prata med en människa",
        "kan jag skapa ett ärende?",
        "opret en sag",
        "Jeg vil gerne tale med en person",
        "luo tiketti",
        "haluan puhua ihmisen kanssa",
        "Voitko tehdä tukipyynnön",
        "create a ticket",
        "I want to talk to a human",
        "can I speak to someone",
        "please open a support ticket",
    ],
)
def test_handoff_requests_are_recognised(said: str) -> None:
    message = Message(text=said, language="nb", user=User(channel="msteams"))
    assert HandoffDialog().recognise(message) == {"reason": "request"}
    assert TicketStatusDialog().recognise(message) is None


@pytest.mark.parametrize(
    "said",
    [
        "hvordan lager jeg et møte i Teams",
        "status på sak 1234",
        "Jag har glömt mitt lösenord",
        "how do I create a Teams channel",
        "salaknack",
    ],
)
def test_other_messages_are_not_handoff_requests(said: str) -> None:
    message = Message(text=said, language="nb", user=User(channel="msteams"))
    assert HandoffDialog().recognise(message) is None


@pytest.mark.parametrize(
    ("said", "options"),
    [
        ("status på sak 1234", {"number": "1234"}),
        ("Hva er status på saken min?", {}),
        ("status för ärende 1234", {"number": "1234"}),
        ("ticket status KOL-20261123-0042", {"number": "KOL-20261123-0042"}),
        ("tiketin tila", {}),
        ("mikä on tiketin I 2611 001 tila", {"number": "I 2611 001"}),
        ("status på min sag", {}),
        ("what's the status of my ticket?", {}),
        ("KOL-20261123-0042", {"number": "KOL-20261123-0042"}),
    ],
)
def test_status_requests_are_recognised(said: str, options: dict[str, str]) -> None:
    message = Message(text=said, language="nb", user=User(channel="msteams"))
    assert TicketStatusDialog().recognise(message) == options
    assert HandoffDialog().recognise(message) is None


@pytest.mark.parametrize(
    ("said", "number"),
    [("sak 1234", "1234"), ("I2611-001 status", "I2611-001"), ("ingen tall her", None)],
)
def test_ticket_number_extraction(said: str, number: str | None) -> None:
    assert ticket_number(said) == number


@pytest.mark.parametrize("language", ["nb", "sv", "da", "fi", "en"])
def test_every_button_is_understood_in_every_language(language: str) -> None:
    for kind in ("yes", "no", "retry", "cancel"):
        title = t(f"handoff.choice.{kind}", language)
        message = Message(text=title, language=language, user=User(channel="msteams"))
        assert answer_of(message) == kind, (language, title)
    for kind, by_language in ANSWER_WORDS.items():
        for word in by_language[language]:
            message = Message(text=word.upper() + "!", language=language, user=User("msteams"))
            assert answer_of(message) == kind, (language, word)


@pytest.mark.parametrize(
    ("said", "kind"),
    [
        ("ja takk", "yes"),
        ("Nei, avbryt", "cancel"),
        ("glöm det", "cancel"),
        ("nej tack", "no"),
        ("no internet since monday", None),
        ("Ei verkkoa", None),
        ("Prøv igjen nå", "retry"),
        ("👍", None),
    ],
)
def test_answers_are_whole_messages(said: str, kind: str | None) -> None:
    message = Message(text=said, language="nb", user=User(channel="msteams"))
    assert answer_of(message) == kind


def test_button_value_wins_over_text() -> None:
    message = Message(text="", language="sv", user=User("msteams"), value={"value": "Avbryt"})
    assert answer_of(message) == "cancel"


def test_every_phrase_exists_in_all_five_languages() -> None:
    from dialogs.texts import _catalogue

    for key, by_language in _catalogue().items():
        if key.split(".")[0] in ("handoff", "tickets", "leave"):
            assert {"nb", "sv", "da", "fi", "en"} <= set(by_language), key
            for language in ("nb", "sv", "da", "fi", "en"):
                assert language_chain(language)[0] == language


# --- the handoff, all the way -------------------------------------------------------------


async def test_nb_fallback_question_becomes_a_webhook_ticket(
    webhook: tuple[FakeTicketWebhook, str],
    session: aiohttp.ClientSession,
    registry: TicketRegistry,
) -> None:
    fake, url = webhook
    chat = Conversation(HandoffDialog(registry), services(webhook_system(url, session)), "nb")
    question = "VPN virker ikke etter siste oppdatering, feilkode 809"
    [offer] = await chat.begin({"reason": "fallback", "question": question})
    assert chat.active and chat.outcome is Outcome.HANDOFF
    assert question in offer.markdown
    assert titles(offer) == ["Ja", "Nei", "Avbryt"]

    [summary] = await chat.say("Ja")
    assert chat.active and chat.outcome is Outcome.HANDOFF
    assert "**VPN virker ikke etter siste oppdatering, feilkode 809**" in summary.markdown
    assert "*Du:* vpn virker ikke" in summary.markdown  # the transcript that goes along
    assert "*kollega:* Beklager, det fant jeg ikke svar på." in summary.markdown
    assert "Skal jeg opprette saken?" in summary.markdown
    assert titles(summary) == ["Ja", "Nei"]
    assert fake.tickets == {}  # nothing is sent before the user says yes

    [done] = await chat.say("ja takk")
    assert not chat.active and chat.outcome is Outcome.HANDOFF
    assert chat.last is not None and chat.last.result.intent is None
    reference = f"KOL-{date.today():%Y%m%d}-0001"
    assert done.markdown == t(
        "handoff.created", "nb", number="WH-7", reference=reference, by_mail=False
    )
    assert "**WH-7**" in done.markdown and reference in done.markdown
    ticket = fake.tickets[reference]
    assert ticket["description"] == question
    assert ticket["summary"] == question
    assert (ticket["language"], ticket["channel"], ticket["reporter"]) == ("nb", "msteams", KARI)
    assert ticket["transcript"] == TRANSCRIPT
    [row] = await stored_rows(registry)
    assert (row["reference"], row["number"], row["system"]) == (reference, "WH-7", "webhook")


async def test_sv_request_becomes_a_topdesk_incident(
    topdesk: tuple[FakeTopdesk, str],
    session: aiohttp.ClientSession,
    registry: TicketRegistry,
) -> None:
    fake, url = topdesk
    dialog = HandoffDialog(registry)
    chat = Conversation(dialog, services(topdesk_system(url, session)), "sv", lazy_principal=True)
    said = "Jag vill skapa ett ärende"
    options = dialog.recognise(Message(text=said, language="sv", user=User("msteams")))
    assert options is not None
    [ask] = await chat.begin(options, said)
    assert ask.markdown == t("handoff.ask_description", "sv")
    assert titles(ask) == ["Avbryt"]
    [summary] = await chat.say("Skrivaren på plan 3 skriver inte ut, lampan blinkar rött")
    assert "Ska jag skapa ärendet?" in summary.markdown
    [done] = await chat.say("Ja")
    assert not chat.active
    assert "Ärendenummer: **I 2611 001**" in done.markdown
    incident = fake.incidents["I 2611 001"]
    assert incident["caller"]["email"] == KARI  # found through the lazy principal lookup
    assert (
        incident["briefDescription"] == "Skrivaren på plan 3 skriver inte ut, lampan blinkar rött"
    )
    assert incident["externalNumber"].startswith("KOL-")


async def test_en_ticket_by_mail(session: aiohttp.ClientSession, registry: TicketRegistry) -> None:
    with SmtpServer("kollega", "smtp-pass") as server:
        mail = MailTicketSystem(
            host="127.0.0.1",
            port=server.port,
            sender="kollega@example.org",
            recipient="servicedesk@example.org",
            user="kollega",
            password="smtp-pass",
            tls_context=server.client_tls_context,
            timeout=5.0,
        )
        chat = Conversation(HandoffDialog(registry), services(mail), "en")
        await chat.begin({"reason": "feedback", "question": ""})
        await chat.say("Teams keeps signing me out every hour")
        [done] = await chat.say("yes")
    reference = f"KOL-{date.today():%Y%m%d}-0001"
    assert f"**{reference}**" in done.markdown and "by e-mail" in done.markdown
    message = email.message_from_bytes(server.mails[0].data, policy=email.policy.default)
    assert message["Subject"] == f"[{reference}] Teams keeps signing me out every hour"
    assert message["Reply-To"] == KARI
    body = message.get_body(("plain",)).get_content()
    assert "Teams keeps signing me out every hour" in body
    assert "User: vpn virker ikke" in body


async def test_the_user_may_write_a_description_instead_of_answering(
    webhook: tuple[FakeTicketWebhook, str], session: aiohttp.ClientSession
) -> None:
    fake, url = webhook
    chat = Conversation(HandoffDialog(), services(webhook_system(url, session)), "nb")
    await chat.begin({"reason": "fallback", "question": "hjelp med vpn"})
    [summary] = await chat.say("Jeg får ikke koblet til VPN hjemmefra siden mandag")
    assert "Jeg får ikke koblet til VPN hjemmefra siden mandag" in summary.markdown
    [again] = await chat.say("hmm, hva betyr det?")
    assert again.markdown == t("handoff.confirm_again", "nb") and chat.active
    await chat.say("ja")
    [ticket] = fake.tickets.values()
    assert ticket["description"] == "Jeg får ikke koblet til VPN hjemmefra siden mandag"


async def test_no_to_the_question_asks_for_a_description(
    webhook: tuple[FakeTicketWebhook, str], session: aiohttp.ClientSession
) -> None:
    _, url = webhook
    chat = Conversation(HandoffDialog(), services(webhook_system(url, session)), "sv")
    await chat.begin({"reason": "fallback", "question": "lösenord"})
    [ask] = await chat.say("Nej")
    assert ask.markdown == t("handoff.ask_description", "sv")
    [short] = await chat.say("ja")
    assert short.markdown == t("handoff.too_short", "sv") and chat.active


# --- cancel at every step -----------------------------------------------------------------

CANCEL_WORDS = {"nb": "avbryt", "sv": "Avbryt!", "en": "cancel", "da": "afbryd", "fi": "peruuta"}


@pytest.mark.parametrize("language", ["nb", "sv", "en", "da", "fi"])
@pytest.mark.parametrize("step", ["use_question", "describe", "confirm", "failed"])
async def test_cancel_works_at_every_step(
    webhook: tuple[FakeTicketWebhook, str],
    session: aiohttp.ClientSession,
    registry: TicketRegistry,
    language: str,
    step: str,
) -> None:
    fake, url = webhook
    chat = Conversation(HandoffDialog(registry), services(webhook_system(url, session)), language)
    if step == "use_question":
        await chat.begin({"reason": "fallback", "question": "vpn virker ikke"})
    else:
        await chat.begin({"reason": "request"})
    if step in ("confirm", "failed"):
        await chat.say("Outlook starter ikke")
    if step == "failed":
        fake.fail_with = 503
        await chat.say(t("handoff.choice.yes", language))
        assert chat.state["step"] == "failed"
    assert chat.state["step"] == step
    [reply] = await chat.say(CANCEL_WORDS[language])
    assert not chat.active and chat.outcome is Outcome.CANCELLED
    assert reply.markdown == t("handoff.cancelled", language)
    assert fake.tickets == {}
    assert await stored_rows(registry) == []  # a reservation given up is released


async def test_no_at_the_confirmation_creates_nothing(
    webhook: tuple[FakeTicketWebhook, str], session: aiohttp.ClientSession
) -> None:
    fake, url = webhook
    chat = Conversation(HandoffDialog(), services(webhook_system(url, session)), "nb")
    await chat.begin({"reason": "request"})
    await chat.say("Outlook starter ikke")
    [reply] = await chat.say("nei")
    assert reply.markdown == t("handoff.cancelled", "nb") and not chat.active
    assert fake.requests == []


# --- failures keep what the user typed ----------------------------------------------------


@pytest.mark.parametrize("failure", ["down", "slow", "401", "500"])
@pytest.mark.parametrize("language", ["nb", "sv"])
async def test_a_failed_ticket_keeps_the_description_and_retries_in_one_click(
    webhook: tuple[FakeTicketWebhook, str],
    session: aiohttp.ClientSession,
    registry: TicketRegistry,
    failure: str,
    language: str,
) -> None:
    fake, url = webhook
    working = services(webhook_system(url, session))
    broken = working
    if failure == "down":
        broken = services(webhook_system(f"http://127.0.0.1:{free_port()}/tickets", session))
    elif failure == "slow":
        fake.delay = SLOW
    else:
        fake.fail_with = int(failure)
    chat = Conversation(HandoffDialog(registry), broken, language)
    description = "Skjermen flimrer etter oppdateringen i går, særlig i Teams-møter"
    await chat.begin({"reason": "fallback", "question": description})
    await chat.say(t("handoff.choice.yes", language))
    [failed] = await chat.say(t("handoff.choice.yes", language))

    assert chat.active and chat.outcome is Outcome.HANDOFF
    key = "handoff.failed" if failure == "401" else "handoff.failed_retryable"
    assert failed.markdown == t(key, language, contact="")
    assert titles(failed) == [
        t("handoff.choice.retry", language),
        t("handoff.choice.cancel", language),
    ]
    assert chat.state["description"] == description  # nothing typed is lost
    reference = chat.state["reference"]

    fake.fail_with, fake.delay = None, 0
    chat.services = working
    [done] = await chat.say(failed.choices[0].value)  # the "Try again" button
    assert not chat.active and chat.outcome is Outcome.HANDOFF
    assert reference in done.markdown and "WH-7" in done.markdown
    assert fake.tickets[reference]["description"] == description
    posts = [r for r in fake.requests if r.method == "POST" and r.json()["reference"] == reference]
    assert {r.json()["reference"] for r in posts} == {reference}  # one reference, however often
    [row] = await stored_rows(registry)
    assert (row["reference"], row["number"]) == (reference, "WH-7")


async def test_topdesk_timeout_then_retry_creates_one_incident(
    topdesk: tuple[FakeTopdesk, str],
    session: aiohttp.ClientSession,
    registry: TicketRegistry,
) -> None:
    fake, url = topdesk
    chat = Conversation(HandoffDialog(registry), services(topdesk_system(url, session)), "nb")
    await chat.begin({"reason": "request"})
    await chat.say("Får ikke logget inn i fagsystemet")
    fake.delay = SLOW
    [failed] = await chat.say("ja")
    assert failed.markdown == t("handoff.failed_retryable", "nb", contact="")
    fake.delay = 0
    [done] = await chat.say("prøv igjen")
    assert "**I 2611 001**" in done.markdown
    assert len(fake.incidents) == 1


async def test_text_after_a_failure_does_not_lose_the_ticket(
    webhook: tuple[FakeTicketWebhook, str], session: aiohttp.ClientSession
) -> None:
    fake, url = webhook
    chat = Conversation(HandoffDialog(), services(webhook_system(url, session)), "nb")
    await chat.begin({"reason": "request"})
    await chat.say("Printeren virker ikke")
    fake.fail_with = 500
    await chat.say("ja")
    [reminder] = await chat.say("hallo?")
    assert reminder.markdown == t("handoff.retry_or_cancel", "nb") and chat.active
    fake.fail_with = None
    await chat.say("Prøv igjen")
    assert [ticket["description"] for ticket in fake.tickets.values()] == ["Printeren virker ikke"]


# --- no ticket system, no identity --------------------------------------------------------


async def test_without_a_ticket_system_the_owner_is_offered() -> None:
    chat = Conversation(HandoffDialog(), services(None), "nb")
    owner = "Lønn og personal <lonn@example.org>"
    [reply] = await chat.begin({"reason": "fallback", "question": "lønnsslipp", "owner": owner})
    assert not chat.active and chat.outcome is Outcome.HANDOFF
    assert reply.markdown == t("handoff.contact_owner", "nb", owner=owner)


async def test_without_a_ticket_system_or_owner_the_switchboard_or_desk_is_named() -> None:
    chat = Conversation(
        HandoffDialog(), services(None, switchboard="Sentralbord 22 00 00 00"), "sv"
    )
    [reply] = await chat.begin({"reason": "request"})
    assert reply.markdown == t(
        "handoff.contact_switchboard", "sv", switchboard="Sentralbord 22 00 00 00"
    )
    chat = Conversation(HandoffDialog(), services(None), "en")
    [reply] = await chat.begin({"reason": "request"})
    assert reply.markdown == t("handoff.contact_general", "en")


async def test_without_identity_no_ticket_is_made(
    webhook: tuple[FakeTicketWebhook, str], session: aiohttp.ClientSession
) -> None:
    fake, url = webhook
    chat = Conversation(
        HandoffDialog(),
        services(webhook_system(url, session)),
        "nb",
        principal="",
        channel="webchat",
    )
    [reply] = await chat.begin({"reason": "request", "owner": "IT <it@example.org>"})
    assert not chat.active
    assert reply.markdown.startswith(t("handoff.no_identity", "nb"))
    assert "IT <it@example.org>" in reply.markdown
    assert fake.requests == []


async def test_dialog_state_never_holds_the_users_identity(
    webhook: tuple[FakeTicketWebhook, str], session: aiohttp.ClientSession
) -> None:
    _, url = webhook
    chat = Conversation(HandoffDialog(), services(webhook_system(url, session)), "nb")
    await chat.begin({"reason": "fallback", "question": "vpn"})
    await chat.say("VPN virker ikke")
    assert KARI not in json.dumps(chat.state)


async def test_registry_holds_no_text_and_no_plain_identity(
    webhook: tuple[FakeTicketWebhook, str],
    session: aiohttp.ClientSession,
    registry: TicketRegistry,
) -> None:
    _, url = webhook
    chat = Conversation(HandoffDialog(registry), services(webhook_system(url, session)), "nb")
    await chat.begin({"reason": "fallback", "question": "Hemmelig prosjekt Blåbær får ikke VPN"})
    await chat.say("ja")
    await chat.say("ja")
    rows = await stored_rows(registry)
    dumped = json.dumps(rows, default=str).lower()
    for forbidden in ("blåbær", "vpn", "kari", "example.org", "hemmelig"):
        assert forbidden not in dumped
    assert rows[0]["reporter_hash"] == registry.reporter_hash(KARI.upper())


# --- ticket status ------------------------------------------------------------------------


async def make_ticket(chat: Conversation, description: str) -> None:
    await chat.begin({"reason": "request"})
    await chat.say(description)
    await chat.say("ja")
    assert not chat.active


async def test_status_of_my_topdesk_ticket_in_nb_and_sv(
    topdesk: tuple[FakeTopdesk, str],
    session: aiohttp.ClientSession,
    registry: TicketRegistry,
) -> None:
    _, url = topdesk
    system = services(topdesk_system(url, session))
    await make_ticket(Conversation(HandoffDialog(registry), system, "nb"), "PC-en starter ikke")
    status = TicketStatusDialog(registry)
    said = "status på sak I 2611 001"
    chat = Conversation(status, system, "nb")
    [answer] = await chat.begin(status.recognise(Message(said, "nb", User("msteams"))) or {})
    assert not chat.active and chat.outcome is Outcome.PERSONAL
    assert chat.last is not None and chat.last.result.intent is None
    # TOPdesk's 08:41 UTC, shown in Norwegian time and format.
    assert format_time(datetime.fromisoformat("2026-11-23T08:41:07+00:00"), "nb") == (
        "23.11.2026 09:41"
    )
    assert answer.markdown.startswith("Sak **I 2611 001**")
    assert "Registrert" in answer.markdown and "Sist oppdatert 23.11.2026 09:41" in answer.markdown

    chat = Conversation(status, system, "sv")
    [answer] = await chat.begin({"number": "2611-001"})  # typed loosely, letter left out
    assert answer.markdown.startswith("Ärende **I 2611 001**")
    assert "Senast uppdaterat 2026-11-23 09:41" in answer.markdown


async def test_status_of_someone_elses_ticket_is_not_found_and_not_asked(
    topdesk: tuple[FakeTopdesk, str],
    session: aiohttp.ClientSession,
    registry: TicketRegistry,
) -> None:
    fake, url = topdesk
    system = services(topdesk_system(url, session))
    await make_ticket(Conversation(HandoffDialog(registry), system, "nb"), "PC-en starter ikke")
    asked_before = len(fake.requests)
    chat = Conversation(TicketStatusDialog(registry), system, "nb", principal=OLA)
    [answer] = await chat.begin({"number": "I 2611 001"})
    assert answer.markdown == t("tickets.not_found", "nb", number="I 2611 001")
    assert len(fake.requests) == asked_before  # the registry said no; TOPdesk was not asked


async def test_topdesk_checks_the_caller_too(
    topdesk: tuple[FakeTopdesk, str],
    session: aiohttp.ClientSession,
    registry: TicketRegistry,
) -> None:
    fake, url = topdesk
    system = services(topdesk_system(url, session))
    await make_ticket(Conversation(HandoffDialog(registry), system, "nb"), "PC-en starter ikke")
    fake.incidents["I 2611 001"]["caller"]["email"] = OLA  # the desk moved it to someone else
    chat = Conversation(TicketStatusDialog(registry), system, "nb")
    [answer] = await chat.begin({"number": "I 2611 001"})
    assert answer.markdown == t("tickets.not_found", "nb", number="I 2611 001")


async def test_status_without_a_number_lists_my_tickets(
    webhook: tuple[FakeTicketWebhook, str],
    session: aiohttp.ClientSession,
    registry: TicketRegistry,
) -> None:
    fake, url = webhook
    system = services(webhook_system(url, session))
    fake.answer = {"number": "WH-1"}
    await make_ticket(Conversation(HandoffDialog(registry), system, "sv"), "Skrivaren strular")
    fake.answer = {"number": "WH-2"}
    await make_ticket(Conversation(HandoffDialog(registry), system, "sv"), "Mejlen är borta")
    await make_ticket(Conversation(HandoffDialog(registry), system, "sv", principal=OLA), "Ola")
    fake.statuses["WH-2"] = {"number": "WH-2", "status": "Pågår", "updated": None}

    chat = Conversation(TicketStatusDialog(registry), system, "sv")
    [pick] = await chat.begin({})
    assert chat.active and pick.markdown == t("tickets.pick", "sv")
    day = f"{date.today():%Y%m%d}"
    assert titles(pick) == [f"WH-2 (KOL-{day}-0002)", f"WH-1 (KOL-{day}-0001)", "Avbryt"]
    [answer] = await chat.say(pick.choices[0].value)
    assert not chat.active
    assert answer.markdown == f"Ärende **WH-2** (KOL-{day}-0002): Pågår."
    status_request = fake.requests[-1]
    assert (status_request.method, status_request.path) == ("GET", "/tickets/WH-2")


async def test_status_pick_can_be_cancelled_and_does_not_hold_the_user(
    webhook: tuple[FakeTicketWebhook, str],
    session: aiohttp.ClientSession,
    registry: TicketRegistry,
) -> None:
    _, url = webhook
    system = services(webhook_system(url, session))
    await make_ticket(Conversation(HandoffDialog(registry), system, "nb"), "Skriveren tuller")
    chat = Conversation(TicketStatusDialog(registry), system, "nb")
    await chat.begin({})
    [reply] = await chat.say("avbryt")
    assert not chat.active and chat.outcome is Outcome.CANCELLED
    assert reply.markdown == t("tickets.cancelled", "nb")

    chat = Conversation(TicketStatusDialog(registry), system, "nb")
    await chat.begin({})
    [again] = await chat.say("hæ?")
    assert chat.active and again.markdown == t("tickets.pick", "nb")
    await chat.say("hvordan bytter jeg passord")
    assert not chat.active


async def test_status_with_no_tickets_no_system_no_identity(
    webhook: tuple[FakeTicketWebhook, str],
    session: aiohttp.ClientSession,
    registry: TicketRegistry,
) -> None:
    _, url = webhook
    system = services(webhook_system(url, session))
    chat = Conversation(TicketStatusDialog(registry), system, "nb")
    assert (await chat.begin({}))[0].markdown == t("tickets.none", "nb")
    chat = Conversation(TicketStatusDialog(registry), services(None), "sv")
    assert (await chat.begin({}))[0].markdown == t("tickets.no_system", "sv")
    chat = Conversation(TicketStatusDialog(registry), system, "en", principal="")
    assert (await chat.begin({"number": "WH-7"}))[0].markdown == t("tickets.no_identity", "en")


async def test_status_of_mail_tickets_is_explained(
    session: aiohttp.ClientSession, registry: TicketRegistry
) -> None:
    with SmtpServer("kollega", "smtp-pass") as server:
        mail = MailTicketSystem(
            host="127.0.0.1",
            port=server.port,
            sender="kollega@example.org",
            recipient="servicedesk@example.org",
            user="kollega",
            password="smtp-pass",
            tls_context=server.client_tls_context,
            timeout=5.0,
        )
        await make_ticket(Conversation(HandoffDialog(registry), services(mail), "nb"), "Hjelp")
    reference = f"KOL-{date.today():%Y%m%d}-0001"
    chat = Conversation(TicketStatusDialog(registry), services(mail), "nb")
    [reply] = await chat.begin({})
    assert reply.markdown == t("tickets.by_mail", "nb", references=[reference])
    [reply] = await Conversation(TicketStatusDialog(registry), services(mail), "nb").begin(
        {"number": reference}
    )
    assert reply.markdown == t("tickets.by_mail", "nb", references=[reference])


async def test_status_when_the_system_fails(
    webhook: tuple[FakeTicketWebhook, str],
    session: aiohttp.ClientSession,
    registry: TicketRegistry,
) -> None:
    fake, url = webhook
    system = services(webhook_system(url, session))
    await make_ticket(Conversation(HandoffDialog(registry), system, "nb"), "Skriveren tuller")
    fake.fail_with = 500
    chat = Conversation(TicketStatusDialog(registry), system, "nb")
    [reply] = await chat.begin({"number": "WH-7"})
    assert reply.markdown == t("tickets.failed", "nb") and chat.outcome is Outcome.PERSONAL
