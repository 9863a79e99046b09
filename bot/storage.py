"""Conversation and user state in SQL: a botbuilder ``Storage`` with optimistic concurrency.

Why: with state in process memory every turn of a dialog must reach the replica that
began it. With state in the shared database (SQLite for one process, PostgreSQL when
several replicas run for a whole city) any replica can take any turn, and two replicas
that take turns of the same conversation at once cannot silently overwrite each other.

Semantics follow botbuilder's ``MemoryStorage`` and ``CosmosDbPartitionedStorage`` so
``ConversationState``/``UserState`` work unchanged on top:

- ``read(keys)`` returns ``{key: dict}`` for the keys that exist; missing keys are simply
  absent. Every item read carries its current eTag as ``item["e_tag"]``.
- ``write(changes)`` stores each item under a fresh eTag. An item without an eTag (no
  ``e_tag`` key/attribute, or ``None``) or with ``"*"`` always wins (last writer wins).
  An item with any other eTag is written only if it still equals the stored one; if it
  does not, or the item has been deleted meanwhile, ``StorageConflictError`` is raised.
  An empty eTag ``""`` is an error, as in botbuilder. The caller's item is not changed:
  read it again to get the new eTag (as with Cosmos DB).
- ``delete(keys)`` removes items; unknown keys are fine.

The compare-and-set is one ``UPDATE … WHERE key_hash = ? AND etag = ?`` whose row count
says whether it won, so it is atomic on both backends (PostgreSQL re-checks the ``WHERE``
against a row another transaction just committed). Unconditional writes are one native
``INSERT … ON CONFLICT DO UPDATE``, so two replicas creating the same key at once never
hit a unique-key error; the later one wins, as "*" promises. A batch of changes is one
transaction: on a conflict nothing of the batch is written.

Note the botbuilder contract this inherits: a state object that was never stored has no
eTag, so the very first write of a conversation's state is unconditional.

Values must be JSON: the stored document is plain JSON text. Dicts, lists, strings,
numbers, booleans and ``None`` are stored as they are; an object with a ``__dict__``
(botbuilder's ``StoreItem``, simple classes) is stored as a dict of its public attributes,
the way botbuilder flattens objects, and comes back as a plain dict. Unlike
``CosmosDbPartitionedStorage`` we do not use jsonpickle type tags: restoring arbitrary
classes named by database content is a code-execution risk, and kollega's dialogs keep
plain JSON dicts anyway. (So botbuilder-dialogs' ``DialogState``, whose stack is a private
attribute, would not survive a turn; kollega does not use that package.) NaN and
infinities are refused so the text stays valid JSON.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from botbuilder.core import Storage
from sqlalchemy import Column, DateTime, String, Table, Text, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import db_work
from bot.db import metadata

logger = logging.getLogger(__name__)

__all__ = [
    "NEW_ITEM",
    "SqlStorage",
    "StorageConflictError",
    "bot_state",
    "create_tables",
    "key_hash",
]

# An eTag that means "create this item; fail if it exists": two writers that both read
# nothing (two replicas taking a new conversation's first turns) cannot both win. Other
# botbuilder storages treat an unknown eTag on a missing item as a plain write.
NEW_ITEM = "kollega:new-item"

# Keys are stored twice: a SHA-256 hex digest as the primary key and the key itself as
# plain TEXT. Teams conversation ids are long (``19:…@thread.tacv2;messageid=…``) and the
# storage key adds a channel/user prefix; an index on the raw key would put an unbounded
# string in a B-tree (PostgreSQL refuses entries above ~2.7 kB, other databases far less),
# while a fixed 64-character digest keeps the index small and every lookup the same cost.
# The raw key is kept for operators and to return exactly what the caller asked for.
bot_state = Table(
    "bot_state",
    metadata,
    Column("key_hash", String(64), primary_key=True, comment="sha256 hex of key"),
    Column("key", Text, nullable=False, comment="botbuilder storage key"),
    Column("document", Text, nullable=False, comment="JSON of the item, without e_tag"),
    Column("etag", String(64), nullable=False, comment="changes on every write"),
    # Indexed so operators can purge conversations nobody has touched for months.
    Column("updated_at", DateTime(timezone=True), nullable=False, index=True),
)

_SUPPORTED_DIALECTS = ("sqlite", "postgresql")


class StorageConflictError(Exception):
    """A write carried an eTag that is no longer the stored one: someone else wrote first.

    Raised instead of overwriting, so a turn that worked on stale state fails loudly; the
    caller may read again, redo its change and retry.
    """

    def __init__(self, key: str, expected: str, actual: str | None) -> None:
        self.key = key
        self.expected = expected
        self.actual = actual
        found = "the item no longer exists" if actual is None else f"stored eTag is {actual!r}"
        super().__init__(f"eTag conflict on {key!r}: write expected {expected!r}, {found}")


def key_hash(key: str) -> str:
    """The primary key for a storage key (see the table comment for why a digest).

    ``surrogatepass`` because ids arrive in JSON, which can carry lone surrogates.
    """
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _readable_key(key: str) -> str:
    """The key as the ``key`` column can hold it.

    PostgreSQL text holds neither NUL nor lone surrogates, and a channel's conversation id
    could carry either; they are written as escapes here. Lookups never use this column
    (they go by ``key_hash`` and return the caller's own key), so this loses nothing.
    """
    return key.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _public_attributes(obj: Any) -> dict[str, Any]:
    """An object as botbuilder flattens it: its public instance attributes."""
    return {name: value for name, value in vars(obj).items() if not name.startswith("_")}


def _json_default(obj: Any) -> Any:
    """``json.dumps`` hook: objects with a ``__dict__`` become dicts, anything else fails."""
    if hasattr(obj, "__dict__"):
        return _public_attributes(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable; store dicts or plain objects")


def _item_etag(item: Any) -> Any:
    if isinstance(item, Mapping):
        return item.get("e_tag")
    return getattr(item, "e_tag", None)


def _serialise(key: str, item: Any) -> str:
    """The JSON text stored for an item: its content without the ``e_tag``."""
    if isinstance(item, Mapping):
        document = dict(item)
    elif hasattr(item, "__dict__"):
        document = _public_attributes(item)
    else:
        raise TypeError(
            f"storage item {key!r} is a {type(item).__name__}; items must be dicts or objects"
        )
    document.pop("e_tag", None)
    try:
        text = json.dumps(document, default=_json_default, ensure_ascii=False, allow_nan=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (legal in JSON input) cannot be stored as text; the escaped
            # form can, and json.loads turns it back into the same string.
            text = json.dumps(document, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"storage item {key!r} is not JSON serialisable: {error}") from error
    return text


def _new_etag() -> str:
    return uuid.uuid4().hex


class SqlStorage(Storage):
    """botbuilder ``Storage`` on the ``bot_state`` table of any SQLite or PostgreSQL engine.

    One instance per process, sharing the engine (and its pool) with the rest of the app;
    it holds no state of its own, so any number of replicas can share one database.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        if engine.dialect.name not in _SUPPORTED_DIALECTS:
            # The unconditional write relies on INSERT … ON CONFLICT, spelled per dialect.
            raise ValueError(
                f"SqlStorage supports {', '.join(_SUPPORTED_DIALECTS)}, not {engine.dialect.name}"
            )
        self._engine = engine

    async def read(self, keys: Iterable[str] | None) -> dict[str, dict[str, Any]]:
        """The stored items for ``keys`` that exist, each with its current ``e_tag``."""
        if not keys:
            return {}
        hashes = {key_hash(key): key for key in keys}
        rows = await db_work.read(self._engine, functools.partial(_select, list(hashes)))
        items: dict[str, dict[str, Any]] = {}
        for row_hash, document_text, etag in rows:
            document = json.loads(document_text)
            document["e_tag"] = etag
            items[hashes[row_hash]] = document
        return items

    async def write(self, changes: Mapping[str, Any] | None) -> None:
        """Store every change under a fresh eTag, all or nothing (see the module docstring)."""
        if changes is None:
            raise ValueError("Changes are required when writing")
        if not changes:
            return
        prepared = []
        for key, item in changes.items():
            etag = _item_etag(item)
            if etag == "":
                raise ValueError(f"storage item {key!r} has an empty e_tag; use None or '*'")
            prepared.append((key, _serialise(key, item), etag))
        await db_work.write(self._engine, functools.partial(_write_items, prepared))

    async def delete(self, keys: Iterable[str]) -> None:
        """Remove the items for ``keys``; keys that do not exist are ignored."""
        hashes = [key_hash(key) for key in keys or ()]
        if not hashes:
            return
        await db_work.write(
            self._engine,
            lambda conn: conn.execute(delete(bot_state).where(bot_state.c.key_hash.in_(hashes))),
        )


# The statements, as plain functions of a synchronous connection: db_work runs them on
# SQLite's own threads or through the async engine's run_sync, whichever the database wants.


def _select(hashes: list[str], conn: Connection) -> list[tuple[str, str, str]]:
    query = select(bot_state.c.key_hash, bot_state.c.document, bot_state.c.etag).where(
        bot_state.c.key_hash.in_(hashes)
    )
    return [tuple(row) for row in conn.execute(query).all()]


def _write_items(prepared: list[tuple[str, str, Any]], conn: Connection) -> None:
    for key, document, etag in prepared:
        if etag is None or etag == "*":
            _upsert(conn, key, document)
        elif etag == NEW_ITEM:
            _insert_new(conn, key, document)
        else:
            _compare_and_set(conn, key, document, str(etag))


def _upsert(conn: Connection, key: str, document: str) -> None:
    """Write unconditionally; atomic even when two replicas create the key at once."""
    values = {
        "key_hash": key_hash(key),
        "key": _readable_key(key),
        "document": document,
        "etag": _new_etag(),
        "updated_at": datetime.now(UTC),
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(bot_state).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=[bot_state.c.key_hash],
        set_={name: statement.excluded[name] for name in ("key", "document", "etag", "updated_at")},
    )
    conn.execute(statement)


def _insert_new(conn: Connection, key: str, document: str) -> None:
    """Create the item only if it does not exist yet; else raise the conflict."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(bot_state)
        .values(
            key_hash=key_hash(key),
            key=_readable_key(key),
            document=document,
            etag=_new_etag(),
            updated_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=[bot_state.c.key_hash])
    )
    if conn.execute(statement).rowcount == 1:
        return
    raise StorageConflictError(key, NEW_ITEM, _stored_etag(conn, key))


def _compare_and_set(conn: Connection, key: str, document: str, expected: str) -> None:
    """Write only if the stored eTag is still ``expected``; else raise the conflict."""
    result = conn.execute(
        update(bot_state)
        .where(bot_state.c.key_hash == key_hash(key), bot_state.c.etag == expected)
        .values(document=document, etag=_new_etag(), updated_at=datetime.now(UTC))
    )
    if result.rowcount == 1:
        return
    # Lost the race (or the item was deleted). Read what is there for the message only;
    # the decision was made atomically by the UPDATE above.
    logger.debug("state write conflict on %s", key)
    raise StorageConflictError(key, expected, _stored_etag(conn, key))


def _stored_etag(conn: Connection, key: str) -> str | None:
    return conn.execute(
        select(bot_state.c.etag).where(bot_state.c.key_hash == key_hash(key))
    ).scalar_one_or_none()


async def create_tables(engine: AsyncEngine) -> None:
    """Create the ``bot_state`` table if missing: for SQLite development and tests only.

    Production schemas belong to Alembic migrations, which also record the schema version
    the bot checks at start; this helper records nothing and never alters a table.
    """
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all, tables=[bot_state])
