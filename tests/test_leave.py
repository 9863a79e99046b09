"""Leave balances: the HR client against a fake HR endpoint, and the one-turn dialog.

The client's request is checked exactly (``?upn=``, the bearer token); each failure (down,
late, 401, 500, an answer about someone else) is a ``LeaveServiceError`` the dialog turns
into a polite pointer to HR self-service. Answers are in nb, sv and en, with half days.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from adapters.leave import LeaveBalance, LeaveBalanceClient, LeaveServiceError
from dialogs.base import DialogContext
from dialogs.leave import LeaveDialog, format_days
from dialogs.services import Services
from dialogs.texts import text
from dialogs.turn import Message, Outcome, User
from tests.fakes.servicedesk import FakeHr, free_port

KARI = "Kari.Nordmann@example.org"
PORTAL = "https://hr.example.org/selvbetjening"
FAST = 0.3


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def hr(aiohttp_server: Any) -> tuple[FakeHr, str]:
    fake = FakeHr(token="hr-token")
    fake.balances[KARI.lower()] = {
        "upn": KARI.lower(),
        "days_left": 12.5,
        "days_total": 25,
        "year": 2026,
        "updated": "2026-11-20T05:00:00Z",
    }
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("/leave"))


def client(url: str, session: aiohttp.ClientSession, **kw: Any) -> LeaveBalanceClient:
    return LeaveBalanceClient(url, session, **({"token": "hr-token", "timeout": FAST} | kw))


async def ask(dialog: LeaveDialog, leave: Any, language: str, principal: str = KARI) -> Any:
    """One turn; returns the DialogContext so tests see replies and the outcome."""
    dc = DialogContext(
        message=Message(
            text="?", language=language, user=User("msteams", principal_name=principal)
        ),
        services=Services(knowledge=None, leave=leave),
    )
    assert await dialog.begin(dc, {}) is False
    return dc


# --- the client ---------------------------------------------------------------------------


async def test_client_asks_by_upn_with_the_token(
    hr: tuple[FakeHr, str], session: aiohttp.ClientSession
) -> None:
    fake, url = hr
    balance = await client(url, session).balance(KARI)
    assert balance == LeaveBalance(
        days_left=12.5,
        days_total=25,
        year=2026,
        updated=datetime.fromisoformat("2026-11-20T05:00:00+00:00"),
    )
    [request] = fake.requests
    assert (request.method, request.path, request.query) == ("GET", "/leave", {"upn": KARI})
    assert request.headers["Authorization"] == "Bearer hr-token"
    assert request.headers["Accept"] == "application/json"


async def test_unknown_person_is_none(
    hr: tuple[FakeHr, str], session: aiohttp.ClientSession
) -> None:
    _, url = hr
    assert await client(url, session).balance("ny@example.org") is None


@pytest.mark.parametrize("failure", ["down", "slow", "401", "500", "other_person", "garbage"])
async def test_client_failures(
    hr: tuple[FakeHr, str], session: aiohttp.ClientSession, failure: str
) -> None:
    fake, url = hr
    upn = KARI
    if failure == "down":
        url = f"http://127.0.0.1:{free_port()}/leave"
    elif failure == "slow":
        fake.delay = 0.8
    elif failure == "other_person":
        fake.balances[KARI.lower()]["upn"] = "ola@example.org"
    elif failure == "garbage":
        fake.balances[KARI.lower()]["days_left"] = "mange"
    else:
        fake.fail_with = int(failure)
    with pytest.raises(LeaveServiceError) as caught:
        await client(url, session).balance(upn)
    expected = {
        "down": "unavailable",
        "slow": "timeout",
        "401": "unauthorised",
        "500": "failed",
        "other_person": "wrong_person",
        "garbage": "bad_answer",
    }
    assert caught.value.reason == expected[failure]


# --- the dialog ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "said",
    [
        "hvor mange feriedager har jeg igjen",
        "Hur många semesterdagar har jag kvar?",
        "hvor mange feriedage har jeg tilbage",
        "paljonko minulla on lomapäiviä jäljellä",
        "How many vacation days do I have left?",
        "hva er feriesaldoen min",
        "my leave balance",
    ],
)
def test_balance_questions_are_recognised(said: str) -> None:
    assert LeaveDialog().recognise(Message(said, "nb", User("msteams"))) == {}


@pytest.mark.parametrize(
    "said",
    [
        "hvordan søker jeg om ferie",
        "how do I apply for vacation days",
        "semester i Spanien",
        "status på sak 1234",
    ],
)
def test_other_questions_are_not_balance_questions(said: str) -> None:
    assert LeaveDialog().recognise(Message(said, "nb", User("msteams"))) is None


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("nb", "Du har **12,5** av 25 feriedager igjen for 2026. (Oppdatert 20.11.2026 06:00.)"),
        ("sv", "Du har **12,5** av 25 semesterdagar kvar för 2026. (Uppdaterat 2026-11-20 06:00.)"),
        ("en", "You have **12.5** of 25 vacation days left for 2026. (Updated 20 Nov 2026 06:00.)"),
    ],
)
async def test_balance_answer(
    hr: tuple[FakeHr, str], session: aiohttp.ClientSession, language: str, expected: str
) -> None:
    _, url = hr
    dc = await ask(LeaveDialog(PORTAL), client(url, session), language)
    assert [reply.markdown for reply in dc.result.replies] == [expected]
    assert dc.result.outcome is Outcome.PERSONAL
    assert dc.result.intent is None  # the balance goes to the user only


async def test_balance_uses_the_lazy_principal_lookup(
    hr: tuple[FakeHr, str], session: aiohttp.ClientSession
) -> None:
    fake, url = hr

    async def lookup() -> str:
        return KARI

    dc = DialogContext(
        message=Message(text="?", language="nb", user=User("msteams")),
        services=Services(knowledge=None, leave=client(url, session)),
        principal_lookup=lookup,
    )
    await LeaveDialog().begin(dc, {})
    assert "**12,5**" in dc.result.replies[0].markdown
    assert fake.requests[0].query == {"upn": KARI}


async def test_not_configured_points_to_the_portal() -> None:
    dc = await ask(LeaveDialog(PORTAL), None, "nb")
    assert dc.result.replies[0].markdown == text("leave.not_configured", "nb", portal=PORTAL)
    assert PORTAL in dc.result.replies[0].markdown
    dc = await ask(LeaveDialog(), None, "sv")
    assert "personalportalen" in dc.result.replies[0].markdown


async def test_no_identity(hr: tuple[FakeHr, str], session: aiohttp.ClientSession) -> None:
    fake, url = hr
    dc = await ask(LeaveDialog(PORTAL), client(url, session), "sv", principal="")
    assert dc.result.replies[0].markdown == text("leave.no_identity", "sv", portal=PORTAL)
    assert fake.requests == []


@pytest.mark.parametrize("language", ["nb", "sv", "en"])
async def test_hr_failure_is_polite(
    hr: tuple[FakeHr, str], session: aiohttp.ClientSession, language: str
) -> None:
    fake, url = hr
    fake.fail_with = 500
    dc = await ask(LeaveDialog(PORTAL), client(url, session), language)
    assert dc.result.replies[0].markdown == text("leave.failed", language, portal=PORTAL)
    assert dc.result.outcome is Outcome.PERSONAL


async def test_unknown_to_hr(hr: tuple[FakeHr, str], session: aiohttp.ClientSession) -> None:
    _, url = hr
    dc = await ask(LeaveDialog(), client(url, session), "nb", principal="ny@example.org")
    assert dc.result.replies[0].markdown == text("leave.unknown", "nb")


def test_days_are_written_as_each_language_does() -> None:
    assert format_days(25.0, "nb") == "25"
    assert format_days(12.5, "fi") == "12,5"
    assert format_days(12.5, "en") == "12.5"
