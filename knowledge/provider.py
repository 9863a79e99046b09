"""Holds the knowledge the bot answers from, and swaps it when the folder changes.

A reload builds new knowledge beside the old and swaps one reference, so turns in flight
keep the version they started with. A folder that fails to load leaves the last good
knowledge in place and logs every problem with file and line: an owner's typo must never
take the bot down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from knowledge.index import prepare
from knowledge.loader import LoadResult, load_folder
from knowledge.models import Knowledge, Problem

logger = logging.getLogger(__name__)


class KnowledgeUnavailable(Exception):
    """The folder has never loaded; the message lists its problems."""


class KnowledgeProvider:
    def __init__(self, folder: Path | str, builder: Callable[[Knowledge], Knowledge] = prepare):
        self.folder = Path(folder)
        self._build = builder
        self._current: Knowledge | None = None
        self.last_errors: list[Problem] = []
        self.last_loaded_at = 0.0
        self.version = 0
        self._fingerprint: tuple[tuple[str, int, int], ...] = ()
        self._watcher: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()

    @property
    def current(self) -> Knowledge:
        if self._current is None:
            raise KnowledgeUnavailable(f"no knowledge loaded from {self.folder}")
        return self._current

    @property
    def ready(self) -> bool:
        return self._current is not None

    def load(self) -> LoadResult:
        """Load synchronously (start-up, CLI); keeps the last good knowledge on failure."""
        fingerprint = self.fingerprint()
        result = load_folder(self.folder)
        if result.ok and result.knowledge is not None:
            started = time.perf_counter()
            self._current = self._build(result.knowledge)
            self.version += 1
            self.last_errors = []
            self.last_loaded_at = time.time()
            logger.info(
                "knowledge loaded: %d domains, %d intents (matcher built in %.2f s)",
                len(self._current.domains),
                len(self._current.intents),
                time.perf_counter() - started,
            )
        else:
            self.last_errors = result.errors
            for problem in result.errors:
                logger.error("knowledge error: %s", problem)
            if self._current is not None:
                logger.error("kept the last good knowledge (version %d)", self.version)
        for problem in result.warnings:
            logger.warning("knowledge warning: %s", problem)
        self._fingerprint = fingerprint
        return result

    async def reload(self) -> LoadResult:
        """Load in a worker thread so turns keep being answered while the matcher builds."""
        async with self._reload_lock:
            return await asyncio.to_thread(self.load)

    def fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """Names, sizes and modification times of the folder's files: cheap to poll."""
        entries = []
        with contextlib.suppress(OSError):
            for path in sorted(self.folder.rglob("*")):
                if path.is_file() and not any(p.startswith("..") for p in path.parts):
                    stat = path.stat()
                    entries.append((str(path), stat.st_size, stat.st_mtime_ns))
        return tuple(entries)

    def start_watching(self, interval: float = 2.0) -> None:
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(interval), name="knowledge-watcher")

    async def stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def _watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                if await asyncio.to_thread(self.fingerprint) != self._fingerprint:
                    logger.info("knowledge folder changed; reloading")
                    await self.reload()
            except Exception:  # the watcher must outlive any surprise
                logger.exception("knowledge reload failed")
