"""``bot.storage.SqlStorage`` on SQLite and PostgreSQL: botbuilder's storage contract,
eTag concurrency between replicas, and ``ConversationState`` on top.

Every test runs on both backends through ``database_url``; "replicas" are separate
engines (separate connection pools) on the same database, as separate processes would be.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from botbuilder.core import ConversationState, StoreItem, TurnContext, UserState
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount, ConversationAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db import create_engine
from bot.storage import (
    SqlStorage,
    StorageConflictError,
    bot_state,
    create_tables,
    key_hash,
)
from tests.fakes.databases import database_engine, database_url  # noqa: F401

TEAMS_CONVERSATION = (
    "a:1Xq3d9mHs0bLwYv2pZkTn8rGfEoJcUiAe7V5hNQlKyMtWx4DBgS6jR0IuaPOCzsd-FHeL_"
    "2wqPd9mHs0bLwYv2pZkTn8rGfEoJcUiAe7V5hNQlKyMtWx4DBgS6jR0IuaPOCzsdFHeLQ"
    ";messageid=1732370543210"
)


@pytest.fixture
async def storage(database_engine: AsyncEngine) -> SqlStorage:  # noqa: F811
    await create_tables(database_engine)
    return SqlStorage(database_engine)


@pytest.fixture
async def replica(database_url: str, storage: SqlStorage) -> AsyncIterator[SqlStorage]:  # noqa: F811
    """A second storage on its own engine: another replica of the bot, same database."""
    engine = create_engine(database_url)
    try:
        yield SqlStorage(engine)
    finally:
        await engine.dispose()


def without_etag(item: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in item.items() if name != "e_tag"}


# --- the storage contract ---------------------------------------------------------------


async def test_round_trip_adds_etag(storage: SqlStorage) -> None:
    await storage.write({"a": {"count": 1, "nested": {"list": [1, "two", None, True]}}, "b": {}})

    items = await storage.read(["a", "b"])

    assert set(items) == {"a", "b"}
    assert without_etag(items["a"]) == {"count": 1, "nested": {"list": [1, "two", None, True]}}
    assert without_etag(items["b"]) == {}
    assert items["a"]["e_tag"] and items["b"]["e_tag"]
    assert items["a"]["e_tag"] != items["b"]["e_tag"]


async def test_missing_keys_are_absent(storage: SqlStorage) -> None:
    await storage.write({"present": {"x": 1}})

    assert await storage.read(["unknown"]) == {}
    assert await storage.read([]) == {}
    assert await storage.read(None) == {}
    assert set(await storage.read(["present", "unknown", "present"])) == {"present"}


async def test_delete(storage: SqlStorage) -> None:
    await storage.write({"one": {"n": 1}, "two": {"n": 2}, "three": {"n": 3}})

    await storage.delete(["one", "unknown"])
    await storage.delete({"two"})  # BotState.delete passes a set
    await storage.delete([])

    assert set(await storage.read(["one", "two", "three"])) == {"three"}


async def test_write_nothing_and_none(storage: SqlStorage) -> None:
    await storage.write({})
    await storage.write([])  # botbuilder's own storage tests pass a list
    with pytest.raises(ValueError, match="Changes are required when writing"):
        await storage.write(None)


async def test_store_item_objects_become_dicts(storage: SqlStorage) -> None:
    item = StoreItem(topic="vpn", turns=3, e_tag="*")
    item._private = "not stored"

    await storage.write({"obj": item})

    stored = (await storage.read(["obj"]))["obj"]
    assert without_etag(stored) == {"topic": "vpn", "turns": 3}
    assert stored["e_tag"] != "*"


async def test_long_and_odd_keys(storage: SqlStorage) -> None:
    teams_key = f"msteams/conversations/19:{TEAMS_CONVERSATION * 4}/"
    odd_key = '!@#$%^&*()_+??><":QASD~`ÆØÅ \x01'
    await storage.write({teams_key: {"k": "teams"}, odd_key: {"k": "odd"}})

    items = await storage.read([teams_key, odd_key])

    assert items[teams_key]["k"] == "teams"
    assert items[odd_key]["k"] == "odd"
    async with storage._engine.connect() as conn:
        keys = (await conn.execute(select(bot_state.c.key, bot_state.c.key_hash))).all()
    assert {(teams_key, key_hash(teams_key)), (odd_key, key_hash(odd_key))} == set(keys)


async def test_nul_and_lone_surrogates(storage: SqlStorage) -> None:
    """JSON allows both (``"\\u0000"``, ``"\\ud800"``); PostgreSQL text holds neither."""
    key = "webchat/conversations/\x00\ud800"
    document = {"text": "a\x00b\udfff", "\ud83d": ["\x00"]}

    await storage.write({key: document})

    assert without_etag((await storage.read([key]))[key]) == document
    await storage.delete([key])
    assert await storage.read([key]) == {}


async def test_unicode_and_large_document(storage: SqlStorage) -> None:
    unicode = {
        "nb": "Hvordan bytter jeg passord? æøå ÆØÅ",
        "fi": "Unohdin salasanani ä ö",
        "😀": "👍🏽",
    }
    large = {"transcript": [{"from": "user", "text": "x" * 1000 + str(i)} for i in range(200)]}
    assert len(json.dumps(large)) > 200_000

    await storage.write({"unicode": unicode, "large": large})

    items = await storage.read(["unicode", "large"])
    assert without_etag(items["unicode"]) == unicode
    assert without_etag(items["large"]) == large


async def test_values_must_be_json(storage: SqlStorage) -> None:
    with pytest.raises(TypeError, match="not JSON serialisable"):
        await storage.write({"bad": {"when": {1, 2}}})
    with pytest.raises(TypeError, match="not JSON serialisable"):
        await storage.write({"bad": {"x": math.nan}})
    with pytest.raises(TypeError, match="must be dicts or objects"):
        await storage.write({"bad": [1, 2]})
    assert await storage.read(["bad"]) == {}


# --- eTags ------------------------------------------------------------------------------


async def test_each_write_gets_a_fresh_etag_and_the_caller_item_is_untouched(
    storage: SqlStorage,
) -> None:
    await storage.write({"k": {"n": 1}})
    first = (await storage.read(["k"]))["k"]

    first["n"] = 2
    await storage.write({"k": first})
    second = (await storage.read(["k"]))["k"]

    assert second["n"] == 2
    assert second["e_tag"] != first["e_tag"]
    assert first == {"n": 2, "e_tag": first["e_tag"]}  # not changed by write()


async def test_stale_etag_is_a_conflict_and_changes_nothing(storage: SqlStorage) -> None:
    await storage.write({"k": {"n": 1}})
    stale = (await storage.read(["k"]))["k"]
    fresh = dict(stale, n=2)
    await storage.write({"k": fresh})

    with pytest.raises(StorageConflictError) as caught:
        await storage.write({"k": dict(stale, n=99)})

    current = (await storage.read(["k"]))["k"]
    assert current["n"] == 2
    assert caught.value.key == "k"
    assert caught.value.expected == stale["e_tag"]
    assert caught.value.actual == current["e_tag"]


async def test_stale_etag_on_object_item(storage: SqlStorage) -> None:
    await storage.write({"k": {"n": 1}})
    with pytest.raises(StorageConflictError):
        await storage.write({"k": StoreItem(n=2, e_tag="not-the-etag")})


async def test_etag_of_deleted_item_is_a_conflict(storage: SqlStorage) -> None:
    await storage.write({"k": {"n": 1}})
    read = (await storage.read(["k"]))["k"]
    await storage.delete(["k"])

    with pytest.raises(StorageConflictError, match="no longer exists"):
        await storage.write({"k": read})
    assert await storage.read(["k"]) == {}


@pytest.mark.parametrize("etag", ["*", None], ids=["star", "none"])
async def test_star_or_no_etag_always_wins(storage: SqlStorage, etag: str | None) -> None:
    await storage.write({"k": {"n": 1}})
    stale = (await storage.read(["k"]))["k"]
    await storage.write({"k": dict(stale, n=2)})

    await storage.write({"k": dict(stale, n=3, e_tag=etag)})
    await storage.write({"new": {"n": 1, "e_tag": etag}})

    items = await storage.read(["k", "new"])
    assert items["k"]["n"] == 3
    assert items["new"]["n"] == 1


async def test_empty_etag_is_refused(storage: SqlStorage) -> None:
    await storage.write({"k": {"n": 1}})
    with pytest.raises(ValueError, match="empty e_tag"):
        await storage.write({"k": {"n": 2, "e_tag": ""}})
    assert (await storage.read(["k"]))["k"]["n"] == 1


async def test_batch_is_all_or_nothing(storage: SqlStorage) -> None:
    await storage.write({"a": {"n": 1}, "b": {"n": 1}})
    items = await storage.read(["a", "b"])
    await storage.write({"b": dict(items["b"], n=2)})  # b's eTag moves on

    with pytest.raises(StorageConflictError):
        await storage.write({"a": dict(items["a"], n=10), "b": dict(items["b"], n=10)})

    after = await storage.read(["a", "b"])
    assert (after["a"]["n"], after["b"]["n"]) == (1, 2)
    assert after["a"]["e_tag"] == items["a"]["e_tag"]


# --- replicas ---------------------------------------------------------------------------


async def test_concurrent_read_modify_write_loses_no_increment(
    storage: SqlStorage, replica: SqlStorage
) -> None:
    key = f"msteams/conversations/{TEAMS_CONVERSATION}/"
    await storage.write({key: {"count": 0}})
    workers, increments = 8, 10
    conflicts = 0

    async def worker(store: SqlStorage) -> None:
        nonlocal conflicts
        for _ in range(increments):
            while True:
                item = (await store.read([key]))[key]
                item["count"] += 1
                try:
                    await store.write({key: item})
                    break
                except StorageConflictError:
                    conflicts += 1
                    await asyncio.sleep(0)

    await asyncio.gather(*(worker((storage, replica)[i % 2]) for i in range(workers)))

    assert (await storage.read([key]))[key]["count"] == workers * increments
    assert conflicts > 0, "the test did not make the replicas race"


async def test_concurrent_creation_of_one_key_does_not_fail(
    storage: SqlStorage, replica: SqlStorage
) -> None:
    writes = [(storage, replica)[i % 2].write({"fresh": {"writer": i}}) for i in range(20)]
    await asyncio.gather(*writes)

    assert (await replica.read(["fresh"]))["fresh"]["writer"] in range(20)


async def test_concurrent_conditional_writes_exactly_one_wins(
    storage: SqlStorage, replica: SqlStorage
) -> None:
    await storage.write({"k": {"n": 0}})
    read = (await storage.read(["k"]))["k"]

    results = await asyncio.gather(
        *((storage, replica)[i % 2].write({"k": dict(read, n=i)}) for i in range(10)),
        return_exceptions=True,
    )

    assert sum(result is None for result in results) == 1
    assert all(isinstance(r, StorageConflictError) for r in results if r is not None)


# --- botbuilder state on top ------------------------------------------------------------


def teams(text: str | None = None) -> Activity:
    """A message in a Teams conversation with a long id."""
    return Activity(
        type=ActivityTypes.message,
        text=text,
        channel_id="msteams",
        service_url="https://smba.trafficmanager.net/emea/",
        conversation=ConversationAccount(id=TEAMS_CONVERSATION),
        from_property=ChannelAccount(id="29:user"),
        recipient=ChannelAccount(id="28:bot"),
    )


def make_context(adapter: TestAdapter, text: str) -> TurnContext:
    return TurnContext(adapter, teams(text))


def counting_bot(state: ConversationState, user_state: UserState | None = None):
    """Turn logic that counts turns in conversation state and echoes the count."""
    turns = state.create_property("turns")
    names = user_state.create_property("profile") if user_state else None

    async def logic(context: TurnContext) -> None:
        count = (await turns.get(context) or 0) + 1  # get() ignores a falsy default like 0
        await turns.set(context, count)
        if names is not None:
            profile = await names.get(context, dict)
            profile["last"] = context.activity.text
            await names.set(context, profile)
            await user_state.save_changes(context)
        await context.send_activity(f"turn {count}: {context.activity.text}")
        await state.save_changes(context)

    return logic


async def test_conversation_state_on_sql_storage_across_replicas(
    storage: SqlStorage, replica: SqlStorage
) -> None:
    # A Teams-shaped template: TestAdapter's default channel id is the enum member, whose
    # str() on Python 3.11 makes keys like "Channels.test/conversations/Convo1".
    first = TestAdapter(counting_bot(ConversationState(storage), UserState(storage)), teams())
    second = TestAdapter(counting_bot(ConversationState(replica), UserState(replica)), teams())

    flow = await first.send("hei")
    flow = await flow.assert_reply("turn 1: hei")
    flow = await flow.send("æøå")
    await flow.assert_reply("turn 2: æøå")
    # The next turn of the same conversation lands on the other replica.
    flow = await second.send("hallo")
    await flow.assert_reply("turn 3: hallo")

    conversation_key = f"msteams/conversations/{TEAMS_CONVERSATION}"
    stored = await storage.read([conversation_key, "msteams/users/29:user"])
    assert stored[conversation_key]["turns"] == 3
    assert stored["msteams/users/29:user"]["profile"] == {"last": "hallo"}


async def test_conversation_state_detects_a_concurrent_turn(
    storage: SqlStorage, replica: SqlStorage
) -> None:
    adapter = TestAdapter()
    state_a, state_b = ConversationState(storage), ConversationState(replica)
    turns_a, turns_b = state_a.create_property("turns"), state_b.create_property("turns")

    setup = make_context(adapter, "first")
    await state_a.load(setup)
    await turns_a.set(setup, 1)
    await state_a.save_changes(setup)

    # Two turns of one conversation run at once on two replicas.
    turn_a, turn_b = make_context(adapter, "a"), make_context(adapter, "b")
    await state_a.load(turn_a)
    await state_b.load(turn_b)
    await turns_a.set(turn_a, await turns_a.get(turn_a) + 1)
    await turns_b.set(turn_b, await turns_b.get(turn_b) + 10)
    await state_a.save_changes(turn_a)
    with pytest.raises(StorageConflictError):
        await state_b.save_changes(turn_b)

    check = make_context(adapter, "check")
    await state_b.load(check)
    assert await turns_b.get(check) == 2


async def test_state_delete(storage: SqlStorage) -> None:
    state = ConversationState(storage)
    turns = state.create_property("turns")
    context = make_context(TestAdapter(), "x")
    await state.load(context)
    await turns.set(context, 5)
    await state.save_changes(context)

    await state.delete(context)

    assert await storage.read([state.get_storage_key(context)]) == {}


# --- schema and arbitrary documents -----------------------------------------------------


async def test_schema(database_engine: AsyncEngine) -> None:  # noqa: F811
    await create_tables(database_engine)
    await create_tables(database_engine)  # idempotent

    async with database_engine.connect() as conn:
        columns, pk, indexes = await conn.run_sync(
            lambda sync: (
                {c["name"] for c in inspect(sync).get_columns("bot_state")},
                inspect(sync).get_pk_constraint("bot_state"),
                inspect(sync).get_indexes("bot_state"),
            )
        )
    assert columns == {"key_hash", "key", "document", "etag", "updated_at"}
    assert pk["constrained_columns"] == ["key_hash"]
    assert [index["column_names"] for index in indexes] == [["updated_at"]]


def test_unsupported_dialect_is_refused() -> None:
    # Only the dialect name matters; no MySQL driver is installed to build a real engine.
    engine = SimpleNamespace(dialect=SimpleNamespace(name="mysql"))
    with pytest.raises(ValueError, match="supports sqlite, postgresql"):
        SqlStorage(engine)  # type: ignore[arg-type]


# Any code point, NUL and lone surrogates included: JSON from a channel can carry them all.
any_text = st.text(st.characters(exclude_categories=()), max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(any_text, children, max_size=5)
    ),
    max_leaves=25,
)
json_documents = st.dictionaries(
    any_text.filter(lambda name: name != "e_tag"), json_values, max_size=8
)


@settings(
    max_examples=60,
    deadline=None,
    # The storage (one database) is deliberately shared by all examples.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(document=json_documents, key=st.text(st.characters(exclude_categories=()), min_size=1))
async def test_arbitrary_json_documents_round_trip(
    storage: SqlStorage, document: dict[str, Any], key: str
) -> None:
    await storage.write({key: document})

    stored = (await storage.read([key]))[key]

    assert without_etag(stored) == document
    await storage.delete([key])
