"""The admin surface end to end: conversations through ``/api/messages``, then the JSON API
and the dashboard show the right counts, no personal data is stored, owners export and
delete days, and "copy to intent" edits the YAML file in place.

The app is built exactly as ``app.py`` builds it, plus ``add_admin_routes``; its knowledge
folder is a copy of the sample, since these tests edit it.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from app import KOLLEGA, create_app
from bot.admin import add_admin_routes
from bot.admin.routes import SECURITY_HEADERS
from bot.db import metadata
from bot.retention import report_timezone
from tests.conftest import SAMPLE_KNOWLEDGE, Chat
from tests.fakes.connector import FakeConnector

TOKEN = "s3cret-admin-token-for-tests"
EMAIL = "ola.nordmann@example.org"
FNR = "01017012343"  # a valid (check digits) Norwegian fødselsnummer, not a real person's
PHONE = "912 34 567"
# A printer problem in words the sample knowledge does not know (the matcher falls back).
PRINTER_GAP = "kopimaskinen spiser arkene"


@pytest.fixture
def knowledge_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    shutil.copytree(SAMPLE_KNOWLEDGE, folder)
    return folder


async def start_admin_app(settings: Any) -> TestClient:
    app = create_app(settings)
    add_admin_routes(app, app[KOLLEGA])
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    # until the lead adds the migration for report_targets, create what is missing
    async with app[KOLLEGA].analytics.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return client


@pytest.fixture
async def admin_client(
    settings_factory: Callable[..., Any], knowledge_copy: Path
) -> AsyncIterator[TestClient]:
    client = await start_admin_app(
        settings_factory(admin_token=TOKEN, knowledge_dir=knowledge_copy)
    )
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def chat(admin_client: TestClient, connector: tuple[FakeConnector, str]) -> Callable[..., Chat]:
    fake, url = connector

    def make(**kwargs: Any) -> Chat:
        return Chat(
            admin_client, fake, url, "emulator/message-user-with-capabilities.json", **kwargs
        )

    return make


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def today() -> str:
    return datetime.now(report_timezone()).date().isoformat()


async def flush(client: TestClient) -> None:
    await client.server.app[KOLLEGA].analytics.flush()


async def everything_stored(client: TestClient) -> str:
    """Every row of every table, as one string to search for leaks."""
    dump = []
    async with client.server.app[KOLLEGA].analytics.engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = (await conn.execute(text(f'SELECT * FROM "{table.name}"'))).all()  # noqa: S608
            dump.append(f"{table.name}: {rows!r}")
    return "\n".join(dump)


def reply_texts(replies: list[dict[str, Any]]) -> str:
    return " ".join(str(r.get("text") or r.get("attachments") or "") for r in replies)


# --- off and on --------------------------------------------------------------------------


async def test_admin_is_off_without_a_token(kollega_client: TestClient) -> None:
    app = kollega_client.server.app
    assert not app[KOLLEGA].settings.admin_token
    # built without the admin routes by conftest; build one with them, token empty
    for path in ("/admin", "/admin/login", "/api/admin/report", "/api/admin/events?day=2026-01-01"):
        response = await kollega_client.get(path)
        assert response.status == 404


async def test_admin_routes_answer_404_when_the_token_is_empty(
    settings_factory: Callable[..., Any],
) -> None:
    client = await start_admin_app(settings_factory(admin_token=""))
    try:
        for method, path in (
            ("GET", "/admin"),
            ("POST", "/admin/login"),
            ("GET", "/api/admin/report"),
            ("DELETE", "/api/admin/events?day=2026-01-01"),
            ("POST", "/api/admin/examples"),
        ):
            response = await client.request(method, path, headers=bearer())
            assert response.status == 404, path
            assert response.headers["X-Frame-Options"] == "DENY"
    finally:
        await client.close()


async def test_api_needs_the_bearer_token(admin_client: TestClient) -> None:
    assert (await admin_client.get("/api/admin/report")).status == 401
    wrong = await admin_client.get("/api/admin/report", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    basic = await admin_client.get("/api/admin/report", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status == 401
    ok = await admin_client.get("/api/admin/report", headers=bearer())
    assert ok.status == 200
    for name, value in SECURITY_HEADERS.items():
        assert ok.headers[name] == value


# --- end to end: conversations, report, no personal data ----------------------------------


async def test_conversations_reach_the_report_without_personal_data(
    admin_client: TestClient, chat: Callable[..., Chat]
) -> None:
    nb = chat(locale="nb-NO")
    assert "passord" in reply_texts(await nb.messages("jeg har glemt passordet mitt")).lower()
    await nb.messages("feedback:-1:it.password_reset")
    sv = chat(locale="sv-SE")
    await sv.messages("jag har glömt mitt lösenord")
    gap = chat(locale="nb-NO")
    await gap.messages(PRINTER_GAP)
    private = chat(locale="nb-NO")
    await private.messages(
        f"kantina er stengt, send svar til {EMAIL}, fødselsnummer {FNR}, ring {PHONE}"
    )
    await flush(admin_client)

    response = await admin_client.get(f"/api/admin/report?day={today()}", headers=bearer())
    assert response.status == 200
    report = await response.json()
    assert report["answered"] == 2
    assert report["fallback"] == 2
    assert report["volume"] == 4
    assert report["answer_rate"] == pytest.approx(2 / 4)
    assert report["languages"] == {"nb": 3, "sv": 1}
    assert {i["intent"]: i["count"] for i in report["top_intents"]} == {"it.password_reset": 2}
    assert report["feedback"] == [{"intent": "it.password_reset", "up": 0, "down": 1}]
    labels = [c["label"] for c in report["unanswered"]]
    assert PRINTER_GAP in labels
    scrubbed = next(label for label in labels if "kantina" in label)
    assert "[email]" in scrubbed and "[national-id]" in scrubbed and "[phone]" in scrubbed

    stored = await everything_stored(admin_client)
    assert "kantina er stengt" in stored  # the question is there, scrubbed …
    for raw in (EMAIL, FNR, PHONE, PHONE.replace(" ", ""), "ola.nordmann"):
        assert raw not in stored  # … and none of what identifies a person

    page = await logged_in(admin_client)
    html = await (await page.get(f"/admin?from={today()}&to={today()}")).text()
    assert PRINTER_GAP in html and EMAIL not in html and FNR not in html


# --- dashboard login ---------------------------------------------------------------------


async def login_form(client: TestClient) -> str:
    response = await client.get("/admin/login")
    assert response.status == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', await response.text())
    assert match
    return match.group(1)


async def logged_in(client: TestClient) -> TestClient:
    csrf = await login_form(client)
    response = await client.post(
        "/admin/login", data={"token": TOKEN, "csrf_token": csrf}, allow_redirects=False
    )
    assert response.status == 303, await response.text()
    return client


async def page_csrf(client: TestClient) -> str:
    html = await (await client.get("/admin")).text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


async def test_login_flow_and_cookie_flags(admin_client: TestClient) -> None:
    first = await admin_client.get("/admin", allow_redirects=False)
    assert first.status == 303 and first.headers["Location"] == "/admin/login"
    for name, value in SECURITY_HEADERS.items():
        assert first.headers[name] == value

    csrf = await login_form(admin_client)
    no_csrf = await admin_client.post("/admin/login", data={"token": TOKEN, "csrf_token": "x"})
    assert no_csrf.status == 403
    wrong = await admin_client.post("/admin/login", data={"token": "nope", "csrf_token": csrf})
    assert wrong.status == 401
    assert "Wrong token" in await wrong.text()

    response = await admin_client.post(
        "/admin/login", data={"token": TOKEN, "csrf_token": csrf}, allow_redirects=False
    )
    assert response.status == 303
    cookie = next(
        v for v in response.headers.getall("Set-Cookie") if v.startswith("kollega_admin=")
    )
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here

    dashboard = await admin_client.get("/admin")
    assert dashboard.status == 200
    html = await dashboard.text()
    assert '<img class="chart" id="trend-chart" src="/admin/chart.png?' in html
    assert "<script>" not in html and 'src="/admin/static/admin.js"' in html
    for name, value in SECURITY_HEADERS.items():
        assert dashboard.headers[name] == value
    chart = await admin_client.get("/admin/chart.png")
    assert chart.status == 200 and (await chart.read()).startswith(b"\x89PNG")

    # the session also works for the API's reads, but changes need the CSRF header
    assert (await admin_client.get("/api/admin/report")).status == 200
    refused = await admin_client.post(
        "/api/admin/examples", json={"intent": "it.vpn", "language": "nb", "text": "vpn tull"}
    )
    assert refused.status == 403

    token = await page_csrf(admin_client)
    out = await admin_client.post(
        "/admin/logout", data={"csrf_token": token}, allow_redirects=False
    )
    assert out.status == 303
    assert (await admin_client.get("/admin", allow_redirects=False)).status == 303


async def test_secure_cookie_behind_https_proxy(admin_client: TestClient) -> None:
    csrf = await login_form(admin_client)
    response = await admin_client.post(
        "/admin/login",
        data={"token": TOKEN, "csrf_token": csrf},
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    cookie = next(
        v for v in response.headers.getall("Set-Cookie") if v.startswith("kollega_admin=")
    )
    assert "Secure" in cookie


async def test_forged_session_cookie_is_refused(admin_client: TestClient) -> None:
    admin_client.session.cookie_jar.update_cookies({"kollega_admin": "eyJjc3JmIjoieCJ9.AAAA"})
    assert (await admin_client.get("/admin", allow_redirects=False)).status == 303
    assert (await admin_client.get("/api/admin/report")).status == 401


async def test_cross_origin_change_is_refused(admin_client: TestClient) -> None:
    await logged_in(admin_client)
    csrf = await page_csrf(admin_client)
    response = await admin_client.post(
        "/api/admin/examples",
        json={"intent": "it.vpn", "language": "nb", "text": "vpn tull"},
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert response.status == 403


# --- export and delete -------------------------------------------------------------------


async def test_export_and_delete_a_day(admin_client: TestClient, chat: Callable[..., Chat]) -> None:
    user = chat(locale="nb-NO")
    await user.messages("glemt passord")
    await user.messages('=HYPERLINK("https://evil.example") hvor er kantina')
    await flush(admin_client)
    day = today()

    as_json = await admin_client.get(f"/api/admin/events?day={day}&format=json", headers=bearer())
    assert as_json.status == 200
    assert f"kollega-events-{day}.json" in as_json.headers["Content-Disposition"]
    body = await as_json.json()
    assert [e["outcome"] for e in body["events"]] == ["answered", "fallback"]
    assert body["events"][0]["intent"] == "it.password_reset"

    as_csv = await admin_client.get(f"/api/admin/events?day={day}&format=csv", headers=bearer())
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await as_csv.text())))
    assert [r["outcome"] for r in rows] == ["answered", "fallback"]
    assert rows[1]["question"].startswith("'=HYPERLINK")  # no formula for spreadsheets

    assert (
        await admin_client.get("/api/admin/events?day=yesterday", headers=bearer())
    ).status == 400
    assert (
        await admin_client.get(f"/api/admin/events?day={day}&format=xml", headers=bearer())
    ).status == 400

    deleted = await admin_client.delete(f"/api/admin/events?day={day}", headers=bearer())
    assert await deleted.json() == {"day": day, "deleted": 2}
    again = await admin_client.get(f"/api/admin/events?day={day}", headers=bearer())
    assert (await again.json())["events"] == []


async def test_report_targets_are_listed(admin_client: TestClient) -> None:
    from bot.report_targets import remember_report_target

    engine = admin_client.server.app[KOLLEGA].analytics.engine
    await remember_report_target(
        engine,
        {
            "channelId": "msteams",
            "serviceUrl": "https://smba.trafficmanager.net/emea/",
            "conversation": {
                "id": "19:abc@thread.tacv2",
                "conversationType": "channel",
                "name": "IT",
            },
            "user": {"id": "29:someone", "name": "Kari Nordmann"},
        },
    )
    response = await admin_client.get("/api/admin/report-targets", headers=bearer())
    assert await response.json() == {
        "targets": [{"conversation_id": "19:abc@thread.tacv2", "name": "IT", "channel": "msteams"}]
    }


# --- copy to intent ----------------------------------------------------------------------


async def post_example(client: TestClient, **body: str):
    return await client.post("/api/admin/examples", json=body, headers=bearer())


async def test_example_lands_in_the_yaml_in_place_and_is_answered(
    admin_client: TestClient, chat: Callable[..., Chat], knowledge_copy: Path
) -> None:
    user = chat(locale="nb-NO")
    await user.messages(PRINTER_GAP)
    await flush(admin_client)
    kollega = admin_client.server.app[KOLLEGA]
    before = (knowledge_copy / "it.yaml").read_text(encoding="utf-8")
    version = kollega.knowledge.version

    response = await post_example(
        admin_client, intent="it.printer", language="nb", text=PRINTER_GAP
    )
    assert response.status == 200, await response.text()
    added = await response.json()
    assert added["file"] == "it.yaml" and added["intent"] == "it.printer"
    assert added["knowledge_version"] == version + 1

    after = (knowledge_copy / "it.yaml").read_text(encoding="utf-8")
    old_lines, new_lines = before.splitlines(), after.splitlines()
    assert len(old_lines) == len(new_lines)
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b]
    assert changed == [added["line"] - 1]  # one line, the nb examples of it.printer
    assert new_lines[changed[0]] == old_lines[changed[0]][:-1] + f', "{PRINTER_GAP}"]'
    assert before.startswith("# Sample knowledge shipped with kollega")  # comments kept
    assert not [p for p in knowledge_copy.iterdir() if p.name.startswith(".")]  # no temp left

    replies = await chat(locale="nb-NO").messages(PRINTER_GAP)
    assert kollega.knowledge.current.intents["it.printer"].examples["nb"][-1] == PRINTER_GAP
    assert "skriver" in reply_texts(replies).lower()
    await flush(admin_client)
    report = await (
        await admin_client.get(f"/api/admin/report?day={today()}", headers=bearer())
    ).json()
    assert {i["intent"] for i in report["top_intents"]} == {"it.printer"}


async def test_example_in_a_new_language_keeps_the_style(
    admin_client: TestClient, knowledge_copy: Path
) -> None:
    path = knowledge_copy / "travel.yaml"
    text = path.read_text(encoding="utf-8")
    # remove the Finnish examples of the first intent so "fi" is a new key there
    lines = text.splitlines(keepends=True)
    first_fi = next(i for i, line in enumerate(lines) if line.startswith("      fi: ["))
    path.write_text("".join(lines[:first_fi] + lines[first_fi + 1 :]), encoding="utf-8")
    await admin_client.server.app[KOLLEGA].knowledge.reload()

    response = await post_example(
        admin_client, intent="travel.expense_claim", language="fi", text="matkalasku ohje"
    )
    assert response.status == 200, await response.text()
    assert '      fi: ["matkalasku ohje"]\n' in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"intent": "it.nothing", "language": "nb", "text": "hei"}, 404, "no intent"),
        ({"intent": "it.printer", "language": "norsk", "text": "hei"}, 400, "ISO 639-1"),
        ({"intent": "it.printer; rm", "language": "nb", "text": "hei"}, 400, "intent id"),
        ({"intent": "it.printer", "language": "nb", "text": "  "}, 400, "printable"),
        ({"intent": "it.printer", "language": "nb", "text": "a\x00b"}, 400, "printable"),
        ({"intent": "it.printer", "language": "nb", "text": f"ring {PHONE}"}, 422, "personal"),
        ({"intent": "it.printer", "language": "nb", "text": "Skriver"}, 409, "already"),
    ],
)
async def test_refused_examples_leave_the_file_alone(
    admin_client: TestClient,
    knowledge_copy: Path,
    body: dict[str, str],
    status: int,
    message: str,
) -> None:
    before = {p.name: p.read_bytes() for p in knowledge_copy.iterdir()}
    response = await post_example(admin_client, **body)
    assert response.status == status
    assert message in (await response.json())["error"]
    assert {p.name: p.read_bytes() for p in knowledge_copy.iterdir()} == before


async def test_validation_failure_is_422_with_file_and_line(
    admin_client: TestClient, knowledge_copy: Path
) -> None:
    # another owner broke a file after the bot loaded: the folder must not be made live
    broken = knowledge_copy / "zz-broken.yaml"
    broken.write_text(
        "domain: broken\nowner: someone\nintents:\n  - id: it.printer\n"
        "    examples: {nb: [x]}\n    answer: {nb: y}\n",
        encoding="utf-8",
    )
    before = (knowledge_copy / "it.yaml").read_bytes()
    response = await post_example(
        admin_client, intent="it.printer", language="nb", text="printer tull"
    )
    assert response.status == 422
    answer = await response.json()
    assert answer["error"].startswith("the knowledge would not load")
    assert any(
        re.search(r"zz-broken\.yaml:4: intent id 'it.printer'", p) for p in answer["problems"]
    )
    assert all("kollega-validate-" not in p for p in answer["problems"])  # real paths
    assert (knowledge_copy / "it.yaml").read_bytes() == before


async def test_no_script_form_post_adds_the_example(
    admin_client: TestClient, knowledge_copy: Path
) -> None:
    await logged_in(admin_client)
    csrf = await page_csrf(admin_client)
    refused = await admin_client.post(
        "/admin/examples",
        data={"csrf_token": "nope", "intent": "it.vpn", "language": "nb", "text": "vpn tull"},
    )
    assert refused.status == 403
    response = await admin_client.post(
        "/admin/examples",
        data={
            "csrf_token": csrf,
            "back": "/admin?from=2026-01-01&to=2026-01-02&domain=it",
            "intent": "it.vpn",
            "language": "nb",
            "text": "vpn tull <b>fet</b>",
        },
    )
    assert response.status == 200
    html = await response.text()
    assert "Added to it.vpn (it.yaml:" in html
    assert 'value="2026-01-01"' in html  # the period it came from
    assert '"vpn tull <b>fet</b>"' in (knowledge_copy / "it.yaml").read_text(encoding="utf-8")


async def test_questions_are_escaped_in_the_dashboard(
    admin_client: TestClient, chat: Callable[..., Chat]
) -> None:
    await chat(locale="nb-NO").messages('<img src=x onerror="alert(1)"> kantine')
    await flush(admin_client)
    await logged_in(admin_client)
    html = await (await admin_client.get("/admin")).text()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; kantine" in html


async def test_reload_and_lockout_after_wrong_tokens(settings_factory, tmp_path) -> None:
    """POST /api/admin/reload reloads; five wrong tokens lock the client out for a while."""
    import shutil

    from aiohttp.test_utils import TestClient, TestServer

    from app import KOLLEGA, create_app
    from tests.conftest import SAMPLE_KNOWLEDGE

    folder = tmp_path / "knowledge"
    shutil.copytree(SAMPLE_KNOWLEDGE, folder)
    settings = settings_factory(admin_token="s3cret-token", knowledge_dir=folder)
    client = TestClient(TestServer(create_app(settings), host="127.0.0.1"))
    await client.start_server()
    try:
        good = {"Authorization": "Bearer s3cret-token"}
        response = await client.post("/api/admin/reload", headers=good)
        assert response.status == 200 and (await response.json())["ok"] is True
        version = client.server.app[KOLLEGA].knowledge.version
        (folder / "it.yaml").write_text("domain: [broken", encoding="utf-8")
        response = await client.post("/api/admin/reload", headers=good)
        body = await response.json()
        assert response.status == 422 and "it.yaml:" in body["errors"][0]
        assert client.server.app[KOLLEGA].knowledge.version == version  # last good kept
        for _ in range(5):
            wrong = await client.post("/api/admin/reload", headers={"Authorization": "Bearer x"})
            assert wrong.status == 401
        locked = await client.post("/api/admin/reload", headers=good)
        assert locked.status == 429  # even the right token waits out the lockout
        assert locked.headers["X-Frame-Options"] == "DENY"
    finally:
        await client.close()
