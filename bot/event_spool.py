"""Accepted analytics events on local disk until the database has them.

Why: the recorder answers the user first and writes events in batches a second later,
so a process killed in that second (the OOM killer, a lost node, ``kill -9``) would lose
the events of turns that had already finished. Each event is appended to this file as
one JSON line when it is accepted; a line written is in the kernel's page cache, which
outlives the process. The file is cut back to what is still pending after every
successful write to the database, and read back by the next process on the same disk.

It holds exactly what the database will hold (scrubbed question, no identity), for a few
seconds. One file per replica: two processes must not share it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from bot.db import sqlite_file

logger = logging.getLogger(__name__)


class EventSpool:
    """An append-only JSON Lines file of events, rewritten to the pending ones after a write."""

    def __init__(self, path: str | os.PathLike[str], event_type: type[Any]) -> None:
        self.path = Path(path)
        self._event_type = event_type
        self._names = {f.name for f in fields(event_type)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = None

    def load(self) -> list[Any]:
        """The events a previous process accepted and did not write; a torn line is skipped."""
        events = []
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        for number, line in enumerate(lines, start=1):
            try:
                raw = json.loads(line)
                raw["occurred_at"] = datetime.fromisoformat(raw["occurred_at"])
                known = {name: value for name, value in raw.items() if name in self._names}
                events.append(self._event_type(**known))
            except (ValueError, KeyError, TypeError):
                # The last line of a process killed mid-write; nothing else writes here.
                logger.warning("skipped an unreadable line %d of %s", number, self.path)
        if events:
            logger.info("%d analytics events recovered from %s", len(events), self.path)
        return events

    def append(self, event: Any) -> None:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8", buffering=1)  # a write per line
        self._file.write(_line(event))

    def rewrite(self, pending: Iterable[Any]) -> None:
        """Keep only ``pending``: a new file renamed over the old, so a kill leaves one whole."""
        self.close()
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            handle.writelines(_line(event) for event in pending)
        os.replace(temporary, self.path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _line(event: Any) -> str:
    return json.dumps(asdict(event), default=datetime.isoformat, ensure_ascii=False) + "\n"


def spool_path(setting: str, database_url: str) -> str | None:
    """Where the spool lives: ``auto`` puts it beside a SQLite file and turns it off for a
    server database (set a path on the replica's own persistent disk there); ``off`` or
    empty turns it off; anything else is the path."""
    if setting in ("", "off"):
        return None
    if setting != "auto":
        return setting
    database = sqlite_file(database_url)
    return f"{database}.analytics-spool" if database else None
