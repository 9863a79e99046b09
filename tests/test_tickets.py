"""Ticket connectors against real servers on loopback, and the ticket registry on both databases.

Mail goes to an aiosmtpd server that insists on STARTTLS and AUTH; TOPdesk and the webhook
are aiohttp fakes that record the exact requests (auth header, JSON body, HMAC signature).
Each failure a user can meet (refused connection, an answer too late, 401, 500) must come
back as a ``TicketSystemError`` with the right ``retryable``, and a retry must never create
a TOPdesk incident twice.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.tickets import (
    NewTicket,
    TicketSystemError,
    build_ticket_system,
    format_reference,
    http_failure,
    summary_of,
)
from adapters.tickets.mail import MailTicketSystem
from adapters.tickets.topdesk import TopdeskTicketSystem
from adapters.tickets.webhook import WebhookTicketSystem, payload
from bot.settings import Settings
from bot.ticket_registry import TicketRegistry, create_tables, tickets
from tests.fakes.databases import database_engine, database_url  # noqa: F401
from tests.fakes.servicedesk import FakeTicketWebhook, FakeTopdesk, SmtpServer, free_port

REPORTER = "Kari.Nordmann@example.org"
SALT = "test-salt-not-for-production"
FAST = 0.3  # client timeout in tests; fakes that are "slow" answer after SLOW
SLOW = 0.8
SMTP_PASSWORD = "smtp-pass"


def new_ticket(**changes: Any) -> NewTicket:
    values: dict[str, Any] = {
        "reference": "KOL-20261123-0042",
        "summary": "VPN virker ikke etter oppdatering",
        "description": "VPN virker ikke etter oppdatering.\nFeilkode 809 <script>",
        "language": "nb",
        "channel": "msteams",
        "reporter": REPORTER,
        "transcript": (
            {"from": "user", "text": "vpn virker ikke"},
            {"from": "bot", "text": "Beklager, det fant jeg ikke svar på."},
        ),
        "created": datetime.fromisoformat("2026-11-23T09:41:07+01:00"),
    }
    values.update(changes)
    return NewTicket(**values)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def topdesk(aiohttp_server: Any) -> tuple[FakeTopdesk, str]:
    fake = FakeTopdesk("kollega-api", "app-pass-123", persons={REPORTER})
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def webhook(aiohttp_server: Any) -> tuple[FakeTicketWebhook, str]:
    fake = FakeTicketWebhook(secret="hook-secret")
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("/tickets"))


def topdesk_client(url: str, session: aiohttp.ClientSession, **kw: Any) -> TopdeskTicketSystem:
    values = {"user": "kollega-api", "app_password": "app-pass-123", "timeout": FAST} | kw
    return TopdeskTicketSystem(base_url=url, session=session, **values)


# --- the interface ------------------------------------------------------------------------


def test_reference_and_summary() -> None:
    assert format_reference(date(2026, 11, 23), 42) == "KOL-20261123-0042"
    assert format_reference(date(2026, 11, 23), 12345) == "KOL-20261123-12345"
    long = "Outlook krasjer hver gang jeg åpner en kalenderinvitasjon fra en ekstern avsender i dag"
    short = summary_of(long)
    assert len(short) <= 80 and short.endswith("…") and long.startswith(short[:-1])
    assert summary_of("  two\nlines  ") == "two lines"


@pytest.mark.parametrize(
    ("status", "reason", "retryable"),
    [
        (401, "unauthorised", False),
        (403, "unauthorised", False),
        (500, "server_error", True),
        (503, "server_error", True),
        (429, "unavailable", True),
        (422, "rejected", False),
    ],
)
def test_http_failure_kinds(status: int, reason: str, retryable: bool) -> None:
    error = http_failure(status)
    assert (error.reason, error.retryable, error.status) == (reason, retryable, status)


async def test_factory_builds_the_configured_connector(session: aiohttp.ClientSession) -> None:
    assert build_ticket_system(Settings(_env_file=None, tickets=""), session) is None
    built = build_ticket_system(
        Settings(_env_file=None, tickets="webhook", ticket_webhook_url="http://127.0.0.1:9/t"),
        session,
    )
    assert isinstance(built, WebhookTicketSystem) and built.tracks_status
    built = build_ticket_system(
        Settings(
            _env_file=None,
            tickets="mail",
            smtp_host="127.0.0.1",
            servicedesk_mail="servicedesk@example.org",
            mail_from="kollega@example.org",
        ),
        session,
    )
    assert isinstance(built, MailTicketSystem) and not built.tracks_status
    with pytest.raises(ValueError, match="KOLLEGA_TOPDESK_URL"):
        build_ticket_system(Settings(_env_file=None, tickets="topdesk"), session)


# --- mail ---------------------------------------------------------------------------------


def mail_client(server: SmtpServer, password: str = SMTP_PASSWORD, **kw: Any) -> MailTicketSystem:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "sender": "kollega@example.org",
        "recipient": "servicedesk@example.org",
        "user": "kollega",
        "password": password,
        "starttls": True,
        "tls_context": server.client_tls_context,
        "timeout": 5.0,
    } | kw
    return MailTicketSystem(**values)


async def test_mail_arrives_over_starttls_with_reference_and_reply_to() -> None:
    with SmtpServer("kollega", "smtp-pass") as server:
        created = await mail_client(server).create(new_ticket())
    assert created.number == created.reference == "KOL-20261123-0042"
    assert created.system == "mail"
    assert server.logins == [("kollega", True)]  # AUTH, which aiosmtpd allows only after TLS
    [mail] = server.mails
    assert mail.recipients == ["servicedesk@example.org"]
    assert mail.sender == "kollega@example.org"
    message = email.message_from_bytes(mail.data, policy=email.policy.default)
    assert message["Subject"] == "[KOL-20261123-0042] VPN virker ikke etter oppdatering"
    assert message["Reply-To"] == REPORTER
    assert message["To"] == "servicedesk@example.org"
    assert message["X-Kollega-Reference"] == "KOL-20261123-0042"
    body = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "VPN virker ikke etter oppdatering.\nFeilkode 809 <script>" in body
    assert "User: vpn virker ikke" in body
    assert "kollega: Beklager, det fant jeg ikke svar på." in body
    assert "Language: nb" in body and "Channel: msteams" in body


async def test_mail_subject_cannot_carry_extra_headers() -> None:
    with SmtpServer("kollega", "smtp-pass") as server:
        await mail_client(server).create(new_ticket(summary="hjelp\r\nBcc: evil@example.com"))
    message = email.message_from_bytes(server.mails[0].data, policy=email.policy.default)
    assert message["Subject"] == "[KOL-20261123-0042] hjelp Bcc: evil@example.com"
    assert message["Bcc"] is None


async def test_mail_without_a_usable_reporter_address_has_no_reply_to() -> None:
    with SmtpServer("kollega", "smtp-pass") as server:
        await mail_client(server).create(new_ticket(reporter="not an address"))
    message = email.message_from_bytes(server.mails[0].data, policy=email.policy.default)
    assert message["Reply-To"] is None


async def test_mail_wrong_password_is_not_retryable() -> None:
    with SmtpServer("kollega", "smtp-pass") as server, pytest.raises(TicketSystemError) as caught:
        await mail_client(server, password="wrong").create(new_ticket())
    assert caught.value.reason == "unauthorised" and not caught.value.retryable
    assert server.mails == []


async def test_mail_server_down_is_retryable() -> None:
    client = MailTicketSystem(
        host="127.0.0.1",
        port=free_port(),
        sender="k@example.org",
        recipient="s@example.org",
        timeout=FAST,
    )
    with pytest.raises(TicketSystemError) as caught:
        await client.create(new_ticket())
    assert caught.value.retryable and caught.value.reason in ("unavailable", "timeout")


async def test_mail_server_too_slow_is_a_retryable_timeout() -> None:
    with SmtpServer("kollega", "smtp-pass") as server:
        server.handler.delay = SLOW
        with pytest.raises(TicketSystemError) as caught:
            await mail_client(server, timeout=FAST).create(new_ticket())
    assert caught.value.reason == "timeout" and caught.value.retryable


@pytest.mark.parametrize(
    ("reply", "reason", "retryable"),
    [("451 4.3.0 try again later", "unavailable", True), ("554 5.7.1 rejected", "rejected", False)],
)
async def test_mail_server_refusals(reply: str, reason: str, retryable: bool) -> None:
    with SmtpServer("kollega", "smtp-pass") as server:
        server.handler.fail_with = reply
        with pytest.raises(TicketSystemError) as caught:
            await mail_client(server).create(new_ticket())
    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)


async def test_mail_has_no_status() -> None:
    client = MailTicketSystem(host="h", port=25, sender="k@example.org", recipient="s@example.org")
    with pytest.raises(TicketSystemError) as caught:
        await client.status("KOL-20261123-0042", REPORTER)
    assert caught.value.reason == "not_supported"


# --- TOPdesk ------------------------------------------------------------------------------


async def test_topdesk_create_sends_the_documented_request(
    topdesk: tuple[FakeTopdesk, str], session: aiohttp.ClientSession
) -> None:
    fake, url = topdesk
    created = await topdesk_client(url, session).create(new_ticket())
    assert (created.number, created.reference, created.system) == (
        "I 2611 001",
        "KOL-20261123-0042",
        "topdesk",
    )
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/tas/api/incidents")
    assert request.headers["Authorization"] == "Basic a29sbGVnYS1hcGk6YXBwLXBhc3MtMTIz"
    body = request.json()
    assert body["callerLookup"] == {"email": REPORTER}
    assert body["briefDescription"] == "VPN virker ikke etter oppdatering"
    assert body["externalNumber"] == "KOL-20261123-0042"
    assert "Feilkode 809 &lt;script&gt;" in body["request"]  # TOPdesk reads some HTML
    assert "<br>" in body["request"] and "vpn virker ikke" in body["request"]


async def test_topdesk_brief_description_is_cut_to_80(
    topdesk: tuple[FakeTopdesk, str], session: aiohttp.ClientSession
) -> None:
    fake, url = topdesk
    await topdesk_client(url, session).create(new_ticket(summary="x" * 120))
    assert len(fake.requests[0].json()["briefDescription"]) == 80


async def test_topdesk_unknown_caller_becomes_an_unregistered_caller(
    topdesk: tuple[FakeTopdesk, str], session: aiohttp.ClientSession
) -> None:
    fake, url = topdesk
    created = await topdesk_client(url, session).create(new_ticket(reporter="ny@example.org"))
    assert created.number == "I 2611 001"
    first, second = (request.json() for request in fake.requests)
    assert first["callerLookup"] == {"email": "ny@example.org"}
    assert "callerLookup" not in second
    assert second["caller"] == {"dynamicName": "ny@example.org", "email": "ny@example.org"}
    assert len(fake.incidents) == 1


async def test_topdesk_status_only_for_the_caller(
    topdesk: tuple[FakeTopdesk, str], session: aiohttp.ClientSession
) -> None:
    fake, url = topdesk
    client = topdesk_client(url, session)
    created = await client.create(new_ticket())
    status = await client.status(created.number, REPORTER.lower())
    assert status is not None
    assert status.status == "Registrert"
    assert status.updated == datetime.fromisoformat("2026-11-23T08:41:07+00:00")
    assert fake.requests[-1].path == "/tas/api/incidents/number/I 2611 001"
    assert await client.status(created.number, "ola.nordmann@example.org") is None
    assert await client.status("I 2611 999", REPORTER) is None


@pytest.mark.parametrize(
    ("fail_with", "reason", "retryable"),
    [(401, "unauthorised", False), (500, "server_error", True)],
)
async def test_topdesk_http_failures(
    topdesk: tuple[FakeTopdesk, str],
    session: aiohttp.ClientSession,
    fail_with: int,
    reason: str,
    retryable: bool,
) -> None:
    fake, url = topdesk
    fake.fail_with = fail_with
    with pytest.raises(TicketSystemError) as caught:
        await topdesk_client(url, session).create(new_ticket())
    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)
    assert len(fake.requests) == 1  # a failed create is never repeated by itself


async def test_topdesk_wrong_password_is_401(
    topdesk: tuple[FakeTopdesk, str], session: aiohttp.ClientSession
) -> None:
    _, url = topdesk
    with pytest.raises(TicketSystemError) as caught:
        await topdesk_client(url, session, app_password="wrong").create(new_ticket())
    assert (caught.value.reason, caught.value.status) == ("unauthorised", 401)


async def test_topdesk_down_is_retryable(session: aiohttp.ClientSession) -> None:
    client = topdesk_client(f"http://127.0.0.1:{free_port()}", session)
    with pytest.raises(TicketSystemError) as caught:
        await client.create(new_ticket())
    assert caught.value.reason == "unavailable" and caught.value.retryable


async def test_topdesk_retry_after_timeout_does_not_create_twice(
    topdesk: tuple[FakeTopdesk, str], session: aiohttp.ClientSession
) -> None:
    fake, url = topdesk
    client = topdesk_client(url, session)
    fake.delay = SLOW
    with pytest.raises(TicketSystemError) as caught:
        await client.create(new_ticket())
    assert caught.value.reason == "timeout" and caught.value.retryable
    fake.delay = 0
    assert len(fake.incidents) == 1  # the slow system did create it
    again = await client.create(new_ticket(attempt=1))
    assert again.number == "I 2611 001"
    assert len(fake.incidents) == 1
    lookup = fake.requests[-1]
    assert (lookup.method, lookup.query["query"]) == (
        "GET",
        'externalNumber=="KOL-20261123-0042"',
    )


async def test_topdesk_retry_creates_when_the_first_try_never_arrived(
    topdesk: tuple[FakeTopdesk, str], session: aiohttp.ClientSession
) -> None:
    fake, url = topdesk
    created = await topdesk_client(url, session).create(new_ticket(attempt=2))
    assert created.number == "I 2611 001"
    assert [r.method for r in fake.requests] == ["GET", "POST"]


# --- webhook ------------------------------------------------------------------------------


async def test_webhook_posts_the_contract_signed(
    webhook: tuple[FakeTicketWebhook, str], session: aiohttp.ClientSession
) -> None:
    fake, url = webhook
    fake.answer = {"id": "WH-7"}
    client = WebhookTicketSystem(url=url, secret="hook-secret", session=session, timeout=FAST)
    created = await client.create(new_ticket())
    assert (created.number, created.reference, created.system) == (
        "WH-7",
        "KOL-20261123-0042",
        "webhook",
    )
    [request] = fake.requests
    expected = hmac.new(b"hook-secret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Kollega-Signature"] == f"sha256={expected}"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.json() == {
        "reference": "KOL-20261123-0042",
        "summary": "VPN virker ikke etter oppdatering",
        "description": "VPN virker ikke etter oppdatering.\nFeilkode 809 <script>",
        "language": "nb",
        "channel": "msteams",
        "reporter": REPORTER,
        "transcript": [
            {"from": "user", "text": "vpn virker ikke"},
            {"from": "bot", "text": "Beklager, det fant jeg ikke svar på."},
        ],
        "created": "2026-11-23T09:41:07+01:00",
    }
    assert request.json() == payload(new_ticket())


@pytest.mark.parametrize(
    ("answer", "number"),
    [({"number": 42}, "42"), ({"id": "abc", "number": "N-1"}, "N-1"), (None, "KOL-20261123-0042")],
)
async def test_webhook_answer_gives_the_number(
    webhook: tuple[FakeTicketWebhook, str],
    session: aiohttp.ClientSession,
    answer: dict[str, Any] | None,
    number: str,
) -> None:
    fake, url = webhook
    fake.answer = answer
    client = WebhookTicketSystem(url=url, secret="hook-secret", session=session, timeout=FAST)
    assert (await client.create(new_ticket())).number == number


async def test_webhook_without_secret_is_unsigned(
    aiohttp_server: Any, session: aiohttp.ClientSession
) -> None:
    fake = FakeTicketWebhook()
    server = await aiohttp_server(fake.app())
    client = WebhookTicketSystem(url=str(server.make_url("/tickets")), session=session)
    await client.create(new_ticket())
    assert "X-Kollega-Signature" not in fake.requests[0].headers


async def test_webhook_wrong_secret_is_refused(
    webhook: tuple[FakeTicketWebhook, str], session: aiohttp.ClientSession
) -> None:
    fake, url = webhook
    client = WebhookTicketSystem(url=url, secret="other", session=session, timeout=FAST)
    with pytest.raises(TicketSystemError) as caught:
        await client.create(new_ticket())
    assert (caught.value.reason, caught.value.retryable) == ("unauthorised", False)
    assert fake.tickets == {}


async def test_webhook_status(
    webhook: tuple[FakeTicketWebhook, str], session: aiohttp.ClientSession
) -> None:
    fake, url = webhook
    fake.statuses["WH 7"] = {
        "number": "WH 7",
        "status": "Under arbeid",
        "updated": "2026-11-24T10:00:00Z",
    }
    client = WebhookTicketSystem(url=url, secret="hook-secret", session=session, timeout=FAST)
    status = await client.status("WH 7", REPORTER)
    assert status is not None and status.status == "Under arbeid"
    assert status.updated == datetime.fromisoformat("2026-11-24T10:00:00+00:00")
    request = fake.requests[-1]
    assert (request.method, request.path) == ("GET", "/tickets/WH 7")
    expected = hmac.new(b"hook-secret", b"", hashlib.sha256).hexdigest()
    assert request.headers["X-Kollega-Signature"] == f"sha256={expected}"
    assert await client.status("nope", REPORTER) is None


@pytest.mark.parametrize("failure", ["down", "slow", "401", "500"])
async def test_webhook_failures(
    webhook: tuple[FakeTicketWebhook, str], session: aiohttp.ClientSession, failure: str
) -> None:
    fake, url = webhook
    if failure == "down":
        url = f"http://127.0.0.1:{free_port()}/tickets"
    elif failure == "slow":
        fake.delay = SLOW
    else:
        fake.fail_with = int(failure)
    client = WebhookTicketSystem(url=url, secret="hook-secret", session=session, timeout=FAST)
    with pytest.raises(TicketSystemError) as caught:
        await client.create(new_ticket())
    expected = {
        "down": ("unavailable", True),
        "slow": ("timeout", True),
        "401": ("unauthorised", False),
        "500": ("server_error", True),
    }[failure]
    assert (caught.value.reason, caught.value.retryable) == expected


async def test_connectors_log_no_ticket_text(
    webhook: tuple[FakeTicketWebhook, str],
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake, url = webhook
    client = WebhookTicketSystem(url=url, secret="hook-secret", session=session, timeout=FAST)
    caplog.set_level("DEBUG")
    await client.create(new_ticket())
    fake.fail_with = 500
    with pytest.raises(TicketSystemError):
        await client.create(new_ticket())
    logged = caplog.text
    assert "KOL-20261123-0042" in logged
    for secret in ("VPN", "Feilkode", "vpn virker", REPORTER, "Kari"):
        assert secret not in logged


# --- the registry -------------------------------------------------------------------------


@pytest.fixture
async def registry(database_engine: AsyncEngine) -> TicketRegistry:  # noqa: F811
    await create_tables(database_engine)
    return TicketRegistry(database_engine, SALT)


async def test_registry_references_count_up_per_day(registry: TicketRegistry) -> None:
    day = date(2026, 11, 23)
    first = await registry.reserve("topdesk", REPORTER, day)
    second = await registry.reserve("topdesk", "ola@example.org", day)
    other_day = await registry.reserve("topdesk", REPORTER, date(2026, 11, 24))
    assert (first, second, other_day) == (
        "KOL-20261123-0001",
        "KOL-20261123-0002",
        "KOL-20261124-0001",
    )


async def test_registry_finds_only_the_reporters_tickets(registry: TicketRegistry) -> None:
    reference = await registry.reserve("topdesk", REPORTER, date(2026, 11, 23))
    assert await registry.recent(REPORTER) == []  # not created yet
    await registry.confirm(reference, "I 2611 001")
    other = await registry.reserve("topdesk", "ola@example.org", date(2026, 11, 23))
    await registry.confirm(other, "I 2611 002")
    mine = await registry.recent("kari.nordmann@EXAMPLE.org")
    assert [(r.reference, r.number) for r in mine] == [(reference, "I 2611 001")]
    for typed in ("I 2611 001", "i2611-001", "2611 001", reference, reference.lower()):
        found = await registry.find(REPORTER, typed)
        assert found is not None and found.number == "I 2611 001", typed
    assert await registry.find(REPORTER, "I 2611 002") is None  # Ola's
    assert await registry.find("ola@example.org", "I 2611 001") is None


async def test_registry_release_and_retention(registry: TicketRegistry) -> None:
    kept = await registry.reserve("webhook", REPORTER, date(2026, 1, 1))
    await registry.confirm(kept, "WH-1")
    given_up = await registry.reserve("webhook", REPORTER, date(2026, 11, 23))
    await registry.release(given_up)
    await registry.release(kept)  # a created ticket is never released
    assert [r.reference for r in await registry.recent(REPORTER)] == [kept]
    assert await registry.forget_older_than(90, today=date(2026, 11, 23)) == 1
    assert await registry.recent(REPORTER) == []


async def test_registry_holds_no_text_and_no_plain_identity(registry: TicketRegistry) -> None:
    reference = await registry.reserve("webhook", REPORTER, date(2026, 11, 23))
    await registry.confirm(reference, "WH-7")
    async with registry.engine.connect() as connection:
        rows = [dict(row._mapping) for row in await connection.execute(select(tickets))]
    assert set(rows[0]) == {"reference", "number", "system", "reporter_hash", "created"}
    assert rows[0]["created"] == date(2026, 11, 23)  # a day, not a time
    expected = hmac.new(SALT.encode(), REPORTER.lower().encode(), hashlib.sha256).hexdigest()
    assert rows[0]["reporter_hash"] == expected
    dumped = json.dumps(rows, default=str).lower()
    assert "kari" not in dumped and "example.org" not in dumped
    with pytest.raises(ValueError, match="KOLLEGA_TICKET_SALT"):
        TicketRegistry(registry.engine, "")


async def test_registry_replicas_never_share_a_reference(
    database_url: str,  # noqa: F811
) -> None:
    import asyncio

    from bot.db import create_engine

    engines = [create_engine(database_url) for _ in range(3)]
    try:
        await create_tables(engines[0])
        replicas = [TicketRegistry(engine, SALT) for engine in engines]
        day = date(2026, 11, 23)
        references = await asyncio.gather(
            *(replicas[i % 3].reserve("webhook", REPORTER, day) for i in range(12))
        )
    finally:
        for engine in engines:
            await engine.dispose()
    assert sorted(references) == [format_reference(day, n) for n in range(1, 13)]
