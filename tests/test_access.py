"""Access rules: access.yaml validation, audience resolution through a fake Graph, tenants.

Group membership is asked of a fake Microsoft Graph over real TLS on 127.0.0.1 (the same
fake the contact lookup is tested with), through the real ``GraphClient``: pilots, nested
groups, paging, a guest, Graph failing, the cache. The tenant check runs on the captured
Teams payloads in ``tests/payloads/teams``.

The helpers at the top (``knowledge_with_access``, ``teams_activity``, ``PILOT`` …) are
meant for the end-to-end tests through ``/api/messages`` as well.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from botbuilder.schema import Activity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.graph import GraphClient
from adapters.tenants import REFUSED_STATUS, parse_tenants, tenant_allowed, tenants_of
from bot.audience import (
    Access,
    AudienceResolver,
    degraded_text,
    kind_of,
    note_degraded,
    refusal_text,
    refuse,
    role_is_guest,
)
from bot.incoming import user_of
from dialogs.base import DialogContext
from dialogs.texts import text
from dialogs.turn import Message, Outcome, User
from knowledge.access import ACCESS_FILE, AccessRules, Kind, Verdict, load_access
from knowledge.loader import load_folder
from tests.conftest import PAYLOADS, SAMPLE_KNOWLEDGE
from tests.fakes.graph import Running, Scripted, start_fake_graph

# -- helpers (also for the end-to-end tests) -----------------------------------------------

HOME_TENANT = "a0e78124-8cd4-4887-a704-1d4c829cf888"  # the captured personal message's tenant
OTHER_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PILOT = "3f2c1a9e-0d4a-4e63-9a51-6c0e7d3b2a10"  # pilot-economy group
PILOT_NESTED = "4e7d2b10-5a6c-4f21-8b3e-9c0d1e2f3a4b"  # a group inside the pilot group
OTHER_GROUP = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
IN_PILOT = "aaaaaaaa-0000-4000-8000-000000000001"
NESTED_MEMBER = "aaaaaaaa-0000-4000-8000-000000000002"
OUTSIDER = "aaaaaaaa-0000-4000-8000-000000000003"
GUEST = "aaaaaaaa-0000-4000-8000-000000000004"
SAMPLE_DOMAINS = ("hr", "it", "payroll", "travel")

RULES = f"""\
who_may_use: everyone
contact: "IT-servicedesk <servicedesk@example.org>"
audiences:
  - name: pilot-economy
    groups: ["{PILOT}"]
    domains: [it, hr, payroll, travel]
  - name: employees
    groups: ["*"]
    domains: [it, hr, travel]
  - name: guests
    guests: true
    domains: [it]
  - name: anonymous
    anonymous: true
    domains: [it, travel]
"""

PILOT_ONLY = f"""\
who_may_use:
  groups: ["{PILOT}"]
contact: "IT-servicedesk <servicedesk@example.org>"
audiences:
  - name: pilot
    groups: ["{PILOT}"]
    domains: [it, hr, payroll, travel]
"""


def knowledge_with_access(tmp_path: Path, access_yaml: str | None = RULES) -> Path:
    """A copy of the sample knowledge folder with ``access_yaml`` as its access.yaml."""
    folder = tmp_path / "knowledge"
    shutil.copytree(SAMPLE_KNOWLEDGE, folder)
    if access_yaml is not None:
        (folder / ACCESS_FILE).write_text(textwrap.dedent(access_yaml), encoding="utf-8")
    return folder


def teams_activity(
    aad_object_id: str | None = IN_PILOT,
    tenant_id: str = HOME_TENANT,
    *,
    role: str | None = None,
    template: str = "teams/personal-message-text.json",
) -> dict[str, Any]:
    """A captured Teams personal message, sent by ``aad_object_id`` in ``tenant_id``."""
    activity = json.loads((PAYLOADS / template).read_text(encoding="utf-8"))
    sender = activity["from"]
    if aad_object_id is None:
        sender.pop("aadObjectId", None)
    else:
        sender["aadObjectId"] = aad_object_id
    if role is not None:
        sender["role"] = role
    activity["conversation"]["tenantId"] = tenant_id
    activity["channelData"]["tenant"]["id"] = tenant_id
    return activity


async def start_access_setup(
    aiohttp_server: Any, tmp_path: Path, access_yaml: str | None = RULES
) -> tuple[Running, dict[str, Any]]:
    """For end-to-end tests: a fake Graph knowing the pilot users, and Settings overrides.

    ``settings_factory(**overrides)`` then builds an app whose knowledge folder has
    ``access_yaml`` and whose Graph client asks the fake; ``home_tenant_id`` is the tenant
    of the captured Teams payloads, so their senders are members, not guests.
    """
    running = await start_fake_graph(aiohttp_server, tmp_path)
    running.fake.groups.update(
        {IN_PILOT: [OTHER_GROUP, PILOT], NESTED_MEMBER: [PILOT_NESTED, PILOT], OUTSIDER: []}
    )
    running.fake.groups[GUEST] = []
    overrides = {
        "knowledge_dir": knowledge_with_access(tmp_path, access_yaml),
        "graph_tenant_id": running.fake.tenant_id,
        "graph_client_id": running.fake.client_id,
        "graph_client_secret": running.fake.client_secret,
        "graph_url": running.url,
        "graph_authority": running.url,
        "graph_ca_bundle": str(running.tls.ca_file),
        "home_tenant_id": HOME_TENANT,
        "allowed_tenants": HOME_TENANT,
    }
    return running, overrides


def sender(aad_object_id: str | None, *, role: str | None = None) -> dict[str, Any]:
    """``Chat.say(text, **sender(IN_PILOT))``: the message comes from this Entra user."""
    account: dict[str, Any] = {"id": f"29:{aad_object_id or 'anonymous'}", "name": "Test User"}
    if aad_object_id:
        account["aadObjectId"] = aad_object_id
    if role:
        account["role"] = role
    return {"from": account}


def user_from(activity: dict[str, Any]) -> User:
    """The ``User`` the turn glue builds from an activity (bot.incoming, unchanged)."""
    return user_of(Activity().deserialize(activity))


def rules_of(access_yaml: str = RULES) -> AccessRules:
    rules, errors, _ = _load(access_yaml)
    assert rules is not None, errors
    return rules


def _load(access_yaml: str, domains=SAMPLE_DOMAINS, folder: Path | None = None):
    if folder is None:
        import tempfile

        with tempfile.TemporaryDirectory() as name:
            Path(name, ACCESS_FILE).write_text(textwrap.dedent(access_yaml), encoding="utf-8")
            return load_access(name, domains)
    (folder / ACCESS_FILE).write_text(textwrap.dedent(access_yaml), encoding="utf-8")
    return load_access(folder, domains)


def problems(access_yaml: str, domains=SAMPLE_DOMAINS) -> list[tuple[int, str]]:
    rules, errors, _ = _load(access_yaml, domains)
    assert rules is None
    return [(p.line, p.message) for p in errors]


# -- access.yaml validation ------------------------------------------------------------------


def test_no_access_file_means_everyone_sees_everything(tmp_path: Path) -> None:
    assert load_access(tmp_path, SAMPLE_DOMAINS) == (None, [], [])


def test_sample_folder_loads_with_access_yaml_beside_it(tmp_path: Path) -> None:
    folder = knowledge_with_access(tmp_path)
    result = load_folder(folder)
    assert result.ok, result.errors  # access.yaml is not mistaken for a domain file
    rules, errors, warnings = load_access(folder, result.knowledge.domains)
    assert errors == [] and warnings == []
    assert [a.name for a in rules.audiences] == [
        "pilot-economy",
        "employees",
        "guests",
        "anonymous",
    ]
    assert rules.referenced_groups == {PILOT}
    assert rules.contact == "IT-servicedesk <servicedesk@example.org>"


def test_unknown_domain_is_an_error_on_its_line() -> None:
    found = problems(RULES.replace("[it, hr, travel]", "[it, hr, travel, procurement]"))
    assert found == [
        (9, "domain 'procurement' is not in this knowledge folder (known: hr, it, payroll, travel)")
    ]


def test_unknown_keys_are_errors_at_any_depth() -> None:
    text_ = RULES.replace("    guests: true", "    guest: true").replace(
        "who_may_use: everyone", "who_may_use: everyone\npilot: yes"
    )
    found = problems(text_)
    assert (2, "unknown key 'pilot' (check the spelling; see the format in the README)") in found
    assert (12, "unknown key 'guest' (check the spelling; see the format in the README)") in found


def test_empty_lists_are_errors() -> None:
    assert problems(RULES.replace("domains: [it]\n", "domains: []\n")) == [
        (12, "'domains' is empty")
    ]
    assert problems(RULES.replace('groups: ["*"]', "groups: []")) == [(8, "'groups' is empty")]
    empty = "who_may_use: everyone\ncontact: x\naudiences: []\n"
    assert problems(empty) == [(3, "'audiences' is empty")]
    gate = (
        "who_may_use:\n  groups: []\ncontact: x\n"
        "audiences:\n  - {name: a, anonymous: true, domains: [it]}\n"
    )
    assert problems(gate) == [(2, "'groups' is empty")]


def test_duplicate_audience_names_point_at_the_second() -> None:
    found = problems(RULES.replace("name: guests", "name: employees"))
    assert found == [(10, "audience name 'employees' is already used on line 7")]


def test_duplicate_yaml_keys_and_repeated_list_items() -> None:
    found = problems(RULES.replace("    guests: true\n", "    guests: true\n    guests: true\n"))
    assert (12, "key 'guests' appears twice") in found
    found = problems(RULES.replace("[it, travel]", "[it, travel, it]"))
    assert found == [(15, "'domains': domain 'it' is listed twice")]


def test_group_names_instead_of_ids_are_caught() -> None:
    found = problems(RULES.replace(f'["{PILOT}"]', '["Pilot økonomi"]'))
    assert len(found) == 1 and found[0][0] == 5
    assert "'Pilot økonomi' is not a group id" in found[0][1] and "Object ID" in found[0][1]


def test_star_beside_ids_and_in_the_gate_are_errors() -> None:
    found = problems(RULES.replace('groups: ["*"]', f'groups: ["*", "{OTHER_GROUP}"]'))
    assert found == [
        (8, "'groups': '*' already means every signed-in member; list no ids beside it")
    ]
    gate = RULES.replace("who_may_use: everyone", 'who_may_use:\n  groups: ["*"]')
    found = problems(gate)
    assert found == [(2, "'groups': '*' is not allowed here: write who_may_use: everyone instead")]


def test_an_audience_needs_exactly_one_selector() -> None:
    found = problems(RULES.replace("    guests: true\n", "    guests: true\n    anonymous: true\n"))
    assert found == [
        (
            10,
            "'audiences': an audience needs exactly one of 'groups', 'guests: true' or "
            "'anonymous: true' (it has guests, anonymous)",
        )
    ]
    found = problems(RULES.replace("    guests: true\n", ""))
    assert found == [
        (
            10,
            "'audiences': an audience needs exactly one of 'groups', 'guests: true' or "
            "'anonymous: true'",
        )
    ]


def test_who_may_use_must_be_everyone_or_groups() -> None:
    found = problems(RULES.replace("who_may_use: everyone", "who_may_use: alle"))
    assert found == [
        (1, "'who_may_use': must be 'everyone' or a mapping {groups: [<group id>, ...]}")
    ]
    found = problems(RULES.replace("who_may_use: everyone", "who_may_use:\n  grupper: [x]"))
    assert (2, "unknown key 'grupper' (check the spelling; see the format in the README)") in found


def test_missing_keys_and_yaml_errors_have_lines() -> None:
    no_contact = RULES.replace('contact: "IT-servicedesk <servicedesk@example.org>"\n', "")
    assert (1, "missing 'contact'") in problems(no_contact)
    found = problems(RULES.replace("domains: [it]\n", "domains: [it\n"))
    assert len(found) == 1 and found[0][1].startswith("YAML syntax error")
    assert problems("- just\n- a list\n") == [
        (1, "must be a mapping with who_may_use, contact and audiences")
    ]


def test_every_problem_is_reported_at_once() -> None:
    broken = (
        RULES.replace("name: guests", "name: employees")
        .replace("[it, hr, travel]", "[it, hr, travel, procurement]")
        .replace("    anonymous: true\n", "    anonymous: true\n    colour: blue\n")
    )
    lines = [line for line, _ in problems(broken)]
    assert lines == [9, 10, 15]


def test_a_domain_in_no_audience_is_a_warning() -> None:
    rules, errors, warnings = _load(RULES.replace("[it, hr, payroll, travel]", "[it, hr, travel]"))
    assert rules is not None and errors == []
    assert [(w.line, w.message) for w in warnings] == [
        (3, "domain 'payroll' is in no audience: nobody sees it until one lists it")
    ]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=300))
def test_any_text_gives_rules_or_problems_never_an_exception(content: str) -> None:
    rules, errors, _ = _load(content)
    assert (rules is None) == bool(errors)
    assert all(p.line >= 1 for p in errors)


# -- the decision, without a directory ---------------------------------------------------------


def test_union_of_every_matching_audience() -> None:
    rules = rules_of()
    member = rules.decide(Kind.MEMBER, {PILOT})
    assert member.domains == {"it", "hr", "payroll", "travel"}
    assert member.audiences == ("employees", "pilot-economy")
    assert rules.decide(Kind.MEMBER, set()).domains == {"it", "hr", "travel"}
    assert rules.decide(Kind.GUEST, set()).domains == {"it"}
    assert rules.decide(Kind.ANONYMOUS, None).domains == {"it", "travel"}


def test_order_of_audiences_does_not_matter() -> None:
    reordered = RULES.split("  - name: ")
    shuffled = reordered[0] + "".join("  - name: " + part for part in reversed(reordered[1:]))
    for kind, groups in ((Kind.MEMBER, {PILOT}), (Kind.MEMBER, set()), (Kind.GUEST, {PILOT})):
        assert (
            rules_of(shuffled).decide(kind, groups).domains
            == rules_of().decide(kind, groups).domains
        )


def test_a_guest_in_a_listed_group_gets_it_but_star_never_means_guests() -> None:
    rules = rules_of()
    assert rules.decide(Kind.GUEST, {PILOT}).domains == {"it", "hr", "payroll", "travel"}
    assert "hr" not in rules.decide(Kind.GUEST, set()).domains


def test_gate_by_group_refuses_outsiders_and_anonymous_users() -> None:
    rules = rules_of(PILOT_ONLY)
    assert rules.decide(Kind.MEMBER, {PILOT}).allowed
    assert rules.decide(Kind.MEMBER, {OTHER_GROUP}).verdict is Verdict.NOT_ALLOWED
    assert rules.decide(Kind.ANONYMOUS, None).verdict is Verdict.NOT_ALLOWED
    assert rules.decide(Kind.MEMBER, None).verdict is Verdict.UNVERIFIABLE
    opened = (
        PILOT_ONLY.replace(
            f'  groups: ["{PILOT}"]\ncontact', f'  groups: ["{PILOT}"]\n  anonymous: true\ncontact'
        )
        + "  - {name: anon, anonymous: true, domains: [it]}\n"
    )
    assert rules_of(opened).decide(Kind.ANONYMOUS, None).domains == {"it"}


def test_in_the_gate_but_in_no_audience_is_not_allowed() -> None:
    audience_of_others = PILOT_ONLY.replace(
        f'groups: ["{PILOT}"]\n    domains', f'groups: ["{OTHER_GROUP}"]\n    domains'
    )
    rules = rules_of(audience_of_others)
    assert rules.decide(Kind.MEMBER, {PILOT}).verdict is Verdict.NOT_ALLOWED


def test_unknown_groups_grant_only_what_needs_no_lookup() -> None:
    decision = rules_of().decide(Kind.MEMBER, None)
    assert decision.allowed and decision.degraded
    assert decision.domains == {"it", "hr", "travel"}  # payroll needs the pilot group
    # Rules without a group id never need the directory, so nothing is degraded.
    open_rules = rules_of(RULES.replace(f'["{PILOT}"]', '["*"]'))
    assert not open_rules.needs_groups(Kind.MEMBER)
    assert not open_rules.decide(Kind.MEMBER, None).degraded


# -- audience resolution through the fake Graph ----------------------------------------------


@pytest.fixture
async def graph(aiohttp_server, tmp_path: Path) -> Running:
    running = await start_fake_graph(aiohttp_server, tmp_path)
    fake = running.fake
    fake.page_size = 2
    # As Graph answers transitiveMemberOf: direct and nested groups alike.
    fake.groups[IN_PILOT] = [OTHER_GROUP, PILOT]
    fake.groups[NESTED_MEMBER] = [PILOT_NESTED, PILOT]
    fake.groups[OUTSIDER] = [OTHER_GROUP]
    fake.groups[GUEST] = []
    return running


@pytest.fixture
async def directory(graph: Running):
    client = GraphClient(
        tenant_id=graph.fake.tenant_id,
        client_id=graph.fake.client_id,
        client_secret=graph.fake.client_secret,
        base_url=graph.url,
        authority=graph.url,
        ca_bundle=graph.tls.ca_file,
        timeout=5.0,
        max_retries=0,
    )
    yield client
    await client.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Rules:
    """A stand-in for the knowledge provider's current rules, swappable like a reload."""

    def __init__(self, rules: AccessRules | None) -> None:
        self.rules = rules

    def __call__(self) -> AccessRules | None:
        return self.rules


def resolver(directory, rules: AccessRules | None, **options) -> AudienceResolver:
    options.setdefault("home_tenant", HOME_TENANT)
    return AudienceResolver(Rules(rules), directory, **options)


async def test_pilot_member_sees_the_pilot_domains(graph: Running, directory) -> None:
    access = await resolver(directory, rules_of()).resolve(user_from(teams_activity(IN_PILOT)))
    assert access.allowed and not access.degraded
    assert access.domains == {"it", "hr", "payroll", "travel"}
    request = graph.fake.graph_requests()[-1]
    assert request.path == f"/v1.0/users/{IN_PILOT}/transitiveMemberOf/microsoft.graph.group"
    assert request.query["$select"] == "id"


async def test_nested_membership_counts(directory) -> None:
    access = await resolver(directory, rules_of()).resolve(user_from(teams_activity(NESTED_MEMBER)))
    assert "payroll" in access.domains


async def test_outsider_gets_the_employee_set(directory) -> None:
    access = await resolver(directory, rules_of()).resolve(user_from(teams_activity(OUTSIDER)))
    assert access.domains == {"it", "hr", "travel"}
    assert access.audiences == ("employees",)


async def test_membership_on_a_later_page_is_found(graph: Running, directory) -> None:
    graph.fake.groups[OUTSIDER] = [f"9999999{i}-0000-4000-8000-000000000000" for i in range(5)]
    graph.fake.groups[OUTSIDER].append(PILOT)
    access = await resolver(directory, rules_of()).resolve(user_from(teams_activity(OUTSIDER)))
    assert "payroll" in access.domains
    assert len(graph.fake.graph_requests()) == 3  # six groups, two a page


async def test_outside_the_pilot_is_told_whom_to_ask(directory) -> None:
    access = await resolver(directory, rules_of(PILOT_ONLY)).resolve(
        user_from(teams_activity(OUTSIDER))
    )
    assert not access.allowed and access.domains == frozenset()
    assert access.verdict is Verdict.NOT_ALLOWED and access.outcome is Outcome.NOT_ALLOWED
    sentence = refusal_text(access, "nb")
    assert "ikke tilgjengelig for deg ennå" in sentence
    assert "[servicedesk@example.org](mailto:servicedesk@example.org)" in sentence
    inside = await resolver(directory, rules_of(PILOT_ONLY)).resolve(
        user_from(teams_activity(IN_PILOT))
    )
    assert inside.allowed and inside.outcome is None


async def test_teams_guest_gets_the_guest_audience(graph: Running, directory) -> None:
    user = user_from(teams_activity(GUEST, role="guest"))
    assert user.is_guest and kind_of(user, HOME_TENANT) is Kind.GUEST
    access = await resolver(directory, rules_of()).resolve(user)
    assert access.domains == {"it"} and access.audiences == ("guests",)


async def test_user_of_another_tenant_is_a_guest_and_not_looked_up(
    graph: Running, directory
) -> None:
    user = user_from(teams_activity(OUTSIDER, tenant_id=OTHER_TENANT))
    assert kind_of(user, HOME_TENANT) is Kind.GUEST
    access = await resolver(directory, rules_of()).resolve(user)
    assert access.domains == {"it"}
    assert graph.fake.graph_requests() == []  # their object id is not in our directory


async def test_anonymous_channels_get_their_own_audience(graph: Running, directory) -> None:
    for user in (
        User(channel="webchat", id="anon-1"),
        User(channel="workplace", id="100012345"),
        user_from(teams_activity(None)),
    ):
        access = await resolver(directory, rules_of()).resolve(user)
        assert access.domains == {"it", "travel"}
    assert graph.fake.graph_requests() == []


def test_guest_roles_are_read_from_role_and_user_role() -> None:
    assert role_is_guest({"role": "guest"})
    assert role_is_guest({"userRole": "Guest"})
    assert role_is_guest(Activity().deserialize(teams_activity(role="guest")).from_property)
    raw = teams_activity()
    raw["from"]["userRole"] = "guest"
    assert role_is_guest(Activity().deserialize(raw).from_property)
    assert not role_is_guest(Activity().deserialize(teams_activity()).from_property)
    assert not role_is_guest(None)


async def test_graph_down_restricted_domains_fail_closed_open_ones_work(
    graph: Running, directory
) -> None:
    graph.fake.script.append(Scripted(status=503))
    clock = Clock()
    audiences = resolver(directory, rules_of(), clock=clock, outage_seconds=30)
    access = await audiences.resolve(user_from(teams_activity(IN_PILOT)))
    assert access.allowed and access.degraded
    assert access.domains == {"it", "hr", "travel"}  # payroll withheld
    assert "midlertidig utilgjengelige" in degraded_text("nb")
    # The open sets keep working: a guest's (a guest could also be in the pilot group, so
    # theirs is degraded too) and the anonymous channels', which never need the directory.
    guest = await audiences.resolve(user_from(teams_activity(GUEST, role="guest")))
    assert guest.allowed and guest.domains == {"it"}
    anonymous = await audiences.resolve(User(channel="webchat", id="anon"))
    assert anonymous.domains == {"it", "travel"} and not anonymous.degraded
    # Within the outage window Graph is not asked again; after it, it is.
    calls = len(graph.fake.graph_requests())
    again = await audiences.resolve(user_from(teams_activity(IN_PILOT)))
    assert again.degraded and len(graph.fake.graph_requests()) == calls
    clock.now += 31
    recovered = await audiences.resolve(user_from(teams_activity(IN_PILOT)))
    assert not recovered.degraded and "payroll" in recovered.domains


async def test_graph_down_with_a_pilot_gate_refuses_politely(graph: Running, directory) -> None:
    graph.fake.script.append(Scripted(status=503))
    access = await resolver(directory, rules_of(PILOT_ONLY)).resolve(
        user_from(teams_activity(IN_PILOT))
    )
    assert not access.allowed and access.verdict is Verdict.UNVERIFIABLE
    assert "try again in a few minutes" in refusal_text(access, "en")


async def test_unreachable_graph_fails_closed(graph: Running) -> None:
    client = GraphClient(
        tenant_id=graph.fake.tenant_id,
        client_id=graph.fake.client_id,
        client_secret="wrong",  # the authority refuses: no token, no groups
        base_url=graph.url,
        authority=graph.url,
        ca_bundle=graph.tls.ca_file,
        timeout=5.0,
        max_retries=0,
    )
    try:
        access = await resolver(client, rules_of()).resolve(user_from(teams_activity(IN_PILOT)))
    finally:
        await client.close()
    assert access.degraded and "payroll" not in access.domains


async def test_no_graph_configured_keeps_group_audiences_closed() -> None:
    access = await resolver(None, rules_of()).resolve(user_from(teams_activity(IN_PILOT)))
    assert access.degraded and access.domains == {"it", "hr", "travel"}


async def test_cache_hit_means_one_graph_call(graph: Running, directory) -> None:
    clock = Clock()
    audiences = resolver(directory, rules_of(), clock=clock, cache_seconds=300)
    user = user_from(teams_activity(IN_PILOT))
    for _ in range(3):
        assert "payroll" in (await audiences.resolve(user)).domains
    assert len(graph.fake.graph_requests()) == 1 and audiences.lookups == 1
    clock.now += 301  # expired: asked again, so a removed member loses access in time
    graph.fake.groups[IN_PILOT] = [OTHER_GROUP]
    assert "payroll" not in (await audiences.resolve(user)).domains
    assert audiences.lookups == 2


async def test_concurrent_turns_of_one_user_share_one_call(graph: Running, directory) -> None:
    graph.fake.script.append(Scripted(delay=0.2))  # slow first answer, then the real one
    audiences = resolver(directory, rules_of())
    user = user_from(teams_activity(IN_PILOT))
    results = await asyncio.gather(*(audiences.resolve(user) for _ in range(5)))
    assert all("payroll" in r.domains for r in results)
    assert audiences.lookups == 1


async def test_cache_is_bounded_and_holds_no_ids_in_clear(directory) -> None:
    audiences = resolver(directory, rules_of(), cache_size=2)
    for object_id in (IN_PILOT, NESTED_MEMBER, OUTSIDER):
        await audiences.resolve(user_from(teams_activity(object_id)))
    assert audiences.cached_users == 2
    dump = repr(audiences._cache)
    assert all(oid not in dump for oid in (IN_PILOT, NESTED_MEMBER, OUTSIDER))
    # Only groups the rules name are kept, not the user's whole membership.
    assert OTHER_GROUP not in dump and PILOT_NESTED not in dump


async def test_reloaded_rules_apply_at_once(graph: Running, directory) -> None:
    rules = Rules(rules_of())
    audiences = AudienceResolver(rules, directory, home_tenant=HOME_TENANT)
    user = user_from(teams_activity(OUTSIDER))
    assert "payroll" not in (await audiences.resolve(user)).domains
    # An owner adds OUTSIDER's group to the pilot: the cached membership was kept only
    # for the old rules' groups, so the user is looked up again.
    rules.rules = rules_of(RULES.replace(f'["{PILOT}"]', f'["{PILOT}", "{OTHER_GROUP}"]'))
    assert "payroll" in (await audiences.resolve(user)).domains
    assert audiences.lookups == 2
    rules.rules = None  # access.yaml removed: everyone sees everything again
    assert (await audiences.resolve(user)).domains is None


def test_turn_helpers_refuse_and_note_withheld_topics() -> None:
    def context(language: str) -> DialogContext:
        return DialogContext(Message("lønnsslipp", language, User("msteams")), services=None)

    dc = context("sv")
    refuse(dc, Access(allowed=False, verdict=Verdict.NOT_ALLOWED, contact="Servicedesk"))
    assert dc.result.outcome is Outcome.NOT_ALLOWED
    assert dc.result.replies[0].markdown.startswith("Tyvärr är kollega inte tillgänglig")
    assert "**Servicedesk**" in dc.result.replies[0].markdown

    degraded = Access(allowed=True, domains=frozenset({"it"}), degraded=True)
    dc = context("en")
    dc.result.outcome = Outcome.FALLBACK
    note_degraded(dc, degraded)
    assert dc.result.replies[-1].markdown.startswith("Some topics are temporarily unavailable")
    dc = context("en")
    dc.result.outcome = Outcome.ANSWERED
    note_degraded(dc, degraded)
    assert dc.result.replies == []


def test_access_messages_exist_in_five_languages() -> None:
    from dialogs.texts import _catalogue

    keys = [k for k in _catalogue() if k.startswith("access.")]
    assert set(keys) == {"access.not_allowed", "access.unverifiable", "access.degraded"}
    for key in keys:
        assert {"nb", "sv", "da", "fi", "en"} <= set(_catalogue()[key]), key
        for language in ("nb", "sv", "da", "fi", "en"):
            assert "{{" not in text(key, language, contact="**X**")
    assert "**X**" not in text("access.not_allowed", "en", contact="")


# -- tenants -----------------------------------------------------------------------------------


def _teams_payloads() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((PAYLOADS / "teams").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("type"):
            found.append((path.name, data))
    return found


@pytest.mark.parametrize(("name", "activity"), _teams_payloads())
def test_tenant_check_on_captured_teams_payloads(name: str, activity: dict[str, Any]) -> None:
    tenants = tenants_of(activity)
    as_object = Activity().deserialize(copy.deepcopy(activity))
    assert tenants_of(as_object) == tenants  # botbuilder's tenantID mapping does not hide it
    if not tenants:  # partial documentation blocks without a tenant
        assert not tenant_allowed(activity, frozenset({HOME_TENANT}))
        return
    assert tenant_allowed(activity, frozenset(tenants))
    assert tenant_allowed(as_object, frozenset(tenants) | {OTHER_TENANT})
    assert not tenant_allowed(activity, frozenset({"00000000-0000-4000-8000-000000000000"}))
    assert tenant_allowed(activity, frozenset())  # no list: every tenant is served


def test_tenant_in_either_place_or_both() -> None:
    allowed = frozenset({HOME_TENANT})
    only_channel_data = teams_activity()
    del only_channel_data["conversation"]["tenantId"]
    only_conversation = teams_activity()
    del only_conversation["channelData"]["tenant"]
    assert tenant_allowed(only_channel_data, allowed)
    assert tenant_allowed(only_conversation, allowed)
    assert tenant_allowed(Activity().deserialize(only_conversation), allowed)
    mixed = teams_activity()
    mixed["channelData"]["tenant"]["id"] = OTHER_TENANT
    assert not tenant_allowed(mixed, allowed)  # two tenants named: both must be allowed
    upper = teams_activity(tenant_id=HOME_TENANT.upper())
    assert tenant_allowed(upper, allowed)


def test_tenantless_channels_only_when_listed() -> None:
    emulator = json.loads((PAYLOADS / "emulator/message-user-with-capabilities.json").read_text())
    allowed = frozenset({HOME_TENANT})
    assert not tenant_allowed(emulator, allowed)
    assert tenant_allowed(emulator, allowed, frozenset({"emulator"}))
    teams_without = teams_activity()
    del teams_without["conversation"]["tenantId"]
    del teams_without["channelData"]["tenant"]
    assert not tenant_allowed(teams_without, allowed, frozenset({"emulator"}))
    assert REFUSED_STATUS == 403


def test_parse_tenants() -> None:
    assert parse_tenants(f" {HOME_TENANT.upper()}, {OTHER_TENANT} ") == {HOME_TENANT, OTHER_TENANT}
    assert parse_tenants("") == frozenset()
    with pytest.raises(ValueError, match="not a tenant id"):
        parse_tenants("contoso.onmicrosoft.com")


def test_the_loader_skips_the_same_file_this_module_reads() -> None:
    from knowledge import loader

    assert loader.ACCESS_FILE == ACCESS_FILE
