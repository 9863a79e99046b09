"""The Graph client against a fake authority and Graph over real TLS: wire format and failures.

msal runs for real (in the client's worker thread) against the fake authority, so these
tests also pin what msal asks for: the tenant's OpenID configuration, then one token.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

import pytest
import trustme
from hypothesis import given
from hypothesis import strategies as st

from adapters.graph import PERSON_FIELDS, GraphClient, GraphUnavailable, Person, search_clause
from tests.fakes.graph import Running, Scripted, payload, start_fake_graph, user

KARI = user(
    "11111111-aaaa-4000-8000-000000000001",
    "Kari Nordmann",
    title="Rådgiver",
    department="Lønn",
    office="Rådhuset 3. etg",
    mail="kari.nordmann@example.org",
    phones=("+47 22 00 00 01",),
    mobile="+47 900 00 001",
)
KARIN = user("11111111-aaaa-4000-8000-000000000002", "Karin Nordmark", mail="karin@example.org")


@pytest.fixture
async def graph(aiohttp_server, tmp_path: Path) -> Running:
    running = await start_fake_graph(aiohttp_server, tmp_path)
    running.fake.add(KARI, KARIN)
    return running


def make_client(graph: Running, **overrides) -> GraphClient:
    options = {
        "tenant_id": graph.fake.tenant_id,
        "client_id": graph.fake.client_id,
        "client_secret": graph.fake.client_secret,
        "base_url": graph.url,
        "authority": graph.url,
        "ca_bundle": graph.tls.ca_file,
        "timeout": 5.0,
        "backoff": 0.01,
        "max_retry_wait": 0.3,
    }
    options.update(overrides)
    return GraphClient(**options)


@pytest.fixture
async def client(graph: Running):
    graph_client = make_client(graph)
    yield graph_client
    await graph_client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_search_sends_the_documented_request(graph: Running, client: GraphClient) -> None:
    people = await client.search_people("Kari Nordmann")

    assert people == [
        Person(
            id=KARI["id"],
            display_name="Kari Nordmann",
            job_title="Rådgiver",
            department="Lønn",
            office_location="Rådhuset 3. etg",
            mail="kari.nordmann@example.org",
            user_principal_name="kari.nordmann@example.org",
            business_phones=("+47 22 00 00 01",),
            mobile_phone="+47 900 00 001",
        )
    ]
    [request] = graph.fake.graph_requests()
    assert request.method == "GET"
    assert request.path == "/v1.0/users"
    assert request.query == {
        "$search": '"displayName:Kari Nordmann"',
        "$select": ",".join(PERSON_FIELDS),
        "$count": "true",
        "$orderby": "displayName",
        "$top": "5",
    }
    assert request.query["$select"] == (
        "id,displayName,jobTitle,department,officeLocation,mail,userPrincipalName,"
        "businessPhones,mobilePhone"
    )
    assert request.headers["ConsistencyLevel"] == "eventual"
    assert request.headers["Authorization"] == "Bearer fake-access-token-1"


async def test_msal_fetches_openid_configuration_then_one_token(
    graph: Running, client: GraphClient
) -> None:
    await client.search_people("Kari")

    authority = [r for r in graph.fake.requests if not r.path.startswith("/v1.0/")]
    tenant = graph.fake.tenant_id
    assert [(r.method, r.path) for r in authority] == [
        ("GET", f"/{tenant}/v2.0/.well-known/openid-configuration"),
        ("POST", f"/{tenant}/oauth2/v2.0/token"),
    ]  # and no instance discovery at /common/discovery/instance
    form = authority[1].form
    assert form["grant_type"] == "client_credentials"
    assert form["client_id"] == graph.fake.client_id
    assert form["client_secret"] == graph.fake.client_secret
    assert form["scope"] == f"{graph.url}/.default"


async def test_one_token_serves_many_calls(graph: Running, client: GraphClient) -> None:
    await asyncio.gather(*(client.search_people("Kari") for _ in range(6)))
    await client.search_people("Karin")
    await client.get_manager(KARI["id"])

    assert len(graph.fake.token_requests()) == 1
    auth = {r.headers["Authorization"] for r in graph.fake.graph_requests()}
    assert auth == {"Bearer fake-access-token-1"}


async def test_several_matches_sorted_and_limited(graph: Running, client: GraphClient) -> None:
    people = await client.search_people("Kar Nord")
    assert [p.display_name for p in people] == ["Kari Nordmann", "Karin Nordmark"]

    people = await client.search_people("Kar", limit=1)
    assert [p.display_name for p in people] == ["Kari Nordmann"]
    assert graph.fake.graph_requests()[-1].query["$top"] == "1"


async def test_documented_search_payload_users(graph: Running, client: GraphClient) -> None:
    """The users from Graph's own $search example, with their quirks (guest UPN, no phone)."""
    [oscar] = await client.search_people("wa")
    assert oscar.display_name == "Oscar Ward"
    assert oscar.phones == ()
    [admin] = await client.search_people("contosoAdmin1")
    assert admin.user_principal_name.endswith("#EXT#@microsoft.onmicrosoft.com")


async def test_quotes_in_the_name_are_escaped(graph: Running, client: GraphClient) -> None:
    assert await client.search_people('Kari "the boss" \\ Nordmann') == []
    request = graph.fake.graph_requests()[-1]
    assert request.query["$search"] == '"displayName:Kari \\"the boss\\" \\\\ Nordmann"'


async def test_blank_name_asks_nothing(graph: Running, client: GraphClient) -> None:
    assert await client.search_people("   ") == []
    assert graph.fake.requests == []


@given(st.text(max_size=60))
def test_search_clause_round_trips(name: str) -> None:
    clause = search_clause(name)
    match = re.fullmatch(r'"displayName:((?:[^"\\]|\\.)*)"', clause, re.DOTALL)
    assert match, clause
    assert re.sub(r"\\(.)", r"\1", match.group(1), flags=re.DOTALL) == " ".join(name.split())


async def test_throttled_then_answered(graph: Running, client: GraphClient) -> None:
    graph.fake.script.append(Scripted(429, {"Retry-After": "1"}, payload("throttled-429.json")))
    started = time.monotonic()
    people = await client.search_people("Kari Nordmann")
    elapsed = time.monotonic() - started

    assert [p.display_name for p in people] == ["Kari Nordmann"]
    assert len(graph.fake.graph_requests()) == 2
    assert 0.3 <= elapsed < 1.0  # waited, but no longer than max_retry_wait


async def test_long_retry_after_is_capped(graph: Running, client: GraphClient) -> None:
    graph.fake.script.append(Scripted(429, {"Retry-After": "3600"}, payload("throttled-429.json")))
    started = time.monotonic()
    assert await client.search_people("Kari")
    assert time.monotonic() - started < 2


async def test_throttled_every_time_gives_up(graph: Running, client: GraphClient) -> None:
    for _ in range(5):
        graph.fake.script.append(Scripted(429, {"Retry-After": "0"}, payload("throttled-429.json")))
    with pytest.raises(GraphUnavailable, match="429"):
        await client.search_people("Kari")
    assert len(graph.fake.graph_requests()) == 3  # first try + max_retries


async def test_server_errors_retried_then_answered(graph: Running, client: GraphClient) -> None:
    graph.fake.script.extend([Scripted(500, body={}), Scripted(503, body={})])
    assert await client.get_manager(KARI["id"]) is None
    assert len(graph.fake.graph_requests()) == 3


async def test_server_errors_n_times_raise(graph: Running) -> None:
    client = make_client(graph, max_retries=3)
    try:
        for _ in range(10):
            graph.fake.script.append(
                Scripted(500, body={"error": {"code": "generalException", "message": "x"}})
            )
        with pytest.raises(GraphUnavailable, match="500"):
            await client.search_people("Kari")
        assert len(graph.fake.graph_requests()) == 4
    finally:
        await client.close()


async def test_client_errors_are_not_retried(graph: Running, client: GraphClient) -> None:
    graph.fake.script.append(
        Scripted(403, body={"error": {"code": "Authorization_RequestDenied", "message": "no"}})
    )
    with pytest.raises(GraphUnavailable, match="Authorization_RequestDenied"):
        await client.search_people("Kari")
    assert len(graph.fake.graph_requests()) == 1


async def test_slow_graph_hits_the_total_timeout(graph: Running) -> None:
    client = make_client(graph, timeout=0.5)
    try:
        graph.fake.script.append(Scripted(delay=5))
        started = time.monotonic()
        with pytest.raises(GraphUnavailable, match="within"):
            await client.search_people("Kari")
        assert time.monotonic() - started < 1.5
    finally:
        await client.close()


async def test_slow_authority_hits_the_total_timeout(graph: Running) -> None:
    client = make_client(graph, timeout=0.5)
    try:
        graph.fake.authority_delay = 2
        started = time.monotonic()
        with pytest.raises(GraphUnavailable):
            await client.search_people("Kari")
        assert time.monotonic() - started < 1.5
    finally:
        await client.close()


async def test_graph_connection_refused(graph: Running) -> None:
    client = make_client(graph, base_url=f"https://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(GraphUnavailable, match="unreachable"):
            await client.search_people("Kari")
    finally:
        await client.close()


async def test_authority_connection_refused(graph: Running) -> None:
    client = make_client(graph, authority=f"https://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(GraphUnavailable, match="authority"):
            await client.search_people("Kari")
        assert graph.fake.graph_requests() == []
    finally:
        await client.close()


async def test_wrong_secret_is_refused(graph: Running) -> None:
    client = make_client(graph, client_secret="wrong")
    try:
        with pytest.raises(GraphUnavailable, match="invalid_client"):
            await client.search_people("Kari")
    finally:
        await client.close()


async def test_requests_ca_bundle_does_not_override_ours(
    graph: Running, client: GraphClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))

    assert await client.search_people("Kari Nordmann")
    assert len(graph.fake.token_requests()) == 1


async def test_without_the_bundle_the_fake_is_not_trusted(graph: Running) -> None:
    client = make_client(graph, ca_bundle=None)
    try:
        with pytest.raises(GraphUnavailable):
            await client.search_people("Kari")
        assert graph.fake.token_requests() == []
    finally:
        await client.close()


async def test_manager_user(graph: Running, client: GraphClient) -> None:
    graph.fake.managers[KARI["id"]] = dict(
        payload("user-manager.json"), **{"@odata.type": "#microsoft.graph.user"}
    )
    manager = await client.get_manager(KARI["id"])
    assert manager is not None
    assert (manager.display_name, manager.job_title, manager.is_contact) == (
        "Sara Davis",
        "Finance VP",
        False,
    )
    assert manager.user_principal_name == "SaraD@contoso.onmicrosoft.com"
    request = graph.fake.graph_requests()[-1]
    assert request.path == f"/v1.0/users/{KARI['id']}/manager"


async def test_manager_documented_without_odata_type(graph: Running, client: GraphClient) -> None:
    graph.fake.managers[KARI["id"]] = payload("user-manager.json")
    manager = await client.get_manager(KARI["id"])
    assert manager is not None and manager.display_name == "Sara Davis"


async def test_manager_org_contact(graph: Running, client: GraphClient) -> None:
    graph.fake.managers[KARI["id"]] = {
        "@odata.type": "#microsoft.graph.orgContact",
        "id": "c0c0c0c0-0000-4000-8000-000000000001",
        "displayName": "Per Konsulent",
        "jobTitle": "Interim leader",
        "mail": "per@partner.example",
        "phones": [
            {"type": "business", "number": "+47 22 11 11 11"},
            {"type": "mobile", "number": "+47 911 11 111"},
            {"type": "businessFax", "number": "+47 22 11 11 12"},
        ],
        "addresses": [{"officeLocation": "Partner AS"}],
    }
    manager = await client.get_manager(KARI["id"])
    assert manager is not None
    assert manager.is_contact
    assert manager.user_principal_name == ""
    assert manager.phones == ("+47 22 11 11 11", "+47 911 11 111")
    assert manager.office_location == "Partner AS"


async def test_no_manager_is_none(graph: Running, client: GraphClient) -> None:
    assert await client.get_manager(KARI["id"]) is None


async def test_get_person(graph: Running, client: GraphClient) -> None:
    person = await client.get_person(KARIN["id"])
    assert person is not None and person.display_name == "Karin Nordmark"
    assert await client.get_person("no-such-user") is None


async def test_guest_ids_are_escaped_in_the_path(graph: Running, client: GraphClient) -> None:
    assert await client.get_manager("guest_example.org#EXT#@tenant.onmicrosoft.com") is None
    request = graph.fake.graph_requests()[-1]
    assert request.path == "/v1.0/users/guest_example.org#EXT#@tenant.onmicrosoft.com/manager"


async def test_transitive_groups_follow_pages(graph: Running, client: GraphClient) -> None:
    ids = [f"9999999{i}-0000-4000-8000-000000000000" for i in range(5)]
    graph.fake.groups[KARI["id"]] = ids

    assert await client.transitive_group_ids(KARI["id"]) == set(ids)

    requests = graph.fake.graph_requests()
    assert len(requests) == 3  # pages of 2
    assert requests[0].path == f"/v1.0/users/{KARI['id']}/transitiveMemberOf/microsoft.graph.group"
    assert requests[0].query["$select"] == "id"
    assert [r.query.get("$skiptoken") for r in requests] == [None, "2", "4"]
    assert all(r.headers["Authorization"] == "Bearer fake-access-token-1" for r in requests)


async def test_too_many_pages_is_an_error_not_a_partial_list(graph: Running) -> None:
    client = make_client(graph, max_pages=2)
    try:
        graph.fake.groups[KARI["id"]] = [f"g{i}" for i in range(7)]
        with pytest.raises(GraphUnavailable, match="pages"):
            await client.transitive_group_ids(KARI["id"])
        assert len(graph.fake.graph_requests()) == 2
    finally:
        await client.close()


async def test_next_link_to_another_host_is_not_followed(
    graph: Running, client: GraphClient
) -> None:
    graph.fake.script.append(
        Scripted(
            200,
            body={"value": [{"id": "g1"}], "@odata.nextLink": "https://evil.example/v1.0/x"},
        )
    )
    with pytest.raises(GraphUnavailable, match="another host"):
        await client.transitive_group_ids(KARI["id"])


async def test_concurrent_calls_are_capped(graph: Running) -> None:
    client = make_client(graph, max_concurrency=2)
    try:
        graph.fake.script.extend(Scripted(delay=0.1) for _ in range(6))
        await asyncio.gather(*(client.search_people("Kari") for _ in range(6)))
        assert graph.fake.max_in_flight == 2
    finally:
        await client.close()


async def test_own_session_is_closed(graph: Running) -> None:
    client = make_client(graph)
    await client.search_people("Kari")
    session = client._session
    assert session is not None
    await client.close()
    assert session.closed


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("authority", "http://login.example.org"),
        ("base_url", "http://graph.example.org"),
        ("base_url", "https://graph.microsoft.com/v1.0"),
        ("authority", "https://login.microsoftonline.com/tenant"),
    ],
)
def test_insecure_or_versioned_urls_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValueError):
        GraphClient(tenant_id="t", client_id="c", client_secret="s", **{field: value})


def test_host_without_scheme_means_https() -> None:
    client = GraphClient(
        tenant_id="t", client_id="c", client_secret="s", authority="login.microsoftonline.us"
    )
    assert client.authority == "https://login.microsoftonline.us"


@given(st.one_of(st.none(), st.text(max_size=40), st.floats().map(str)), st.integers(0, 5))
def test_retry_delay_is_always_bounded(retry_after: str | None, attempt: int) -> None:
    client = GraphClient(tenant_id="t", client_id="c", client_secret="s", max_retry_wait=2.0)
    assert 0.0 <= client._retry_delay(retry_after, attempt) <= 2.0


def test_retry_after_as_an_http_date() -> None:
    client = GraphClient(tenant_id="t", client_id="c", client_secret="s", max_retry_wait=60.0)
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= client._retry_delay(when, 0) <= 30
