"""Turns a channel adapter runs after it has answered the HTTP request, and a clean shutdown.

Workplace wants its 200 before the bot works, and the web chat streams a turn while the
next request arrives: both adapters start turns as tasks. Keeping them in one place lets
shutdown wait for the turns in flight (so no user loses an answer to a restart), and
cancel what is still running after a grace period.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class BackgroundTurns:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closing = False
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait until every turn accepted so far (and any it started) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, grace_seconds: float) -> None:
        """Refuse new work (``closing``), give running turns ``grace_seconds``, then cancel."""
        self.closing = True
        try:
            async with asyncio.timeout(grace_seconds):
                await self.drain()
        except TimeoutError:
            logger.warning(
                "%s: %d turns still running at shutdown; cancelled", self.name, len(self._tasks)
            )
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
