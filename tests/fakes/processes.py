"""kollega as ops run it: ``python app.py`` and ``alembic`` as real OS processes.

Why processes and not another ``create_app`` in the test's loop: what a city deployment
relies on (two replicas sharing one PostgreSQL, SIGTERM from Kubernetes, a start that
refuses an outdated schema) only happens between processes, each with its own event loop,
connection pool and per-process locks. These helpers start them with a clean environment
(nothing of the developer's ``KOLLEGA_*`` leaks in), keep everything they print, wait for
``/readyz`` by polling, and always stop them: SIGTERM first, SIGKILL after a timeout.

What a process printed is printed again when it stops, so pytest shows it for a failing
test (and swallows it for a passing one).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.fakes.servicedesk import free_port

__all__ = [
    "REPO_ROOT",
    "BotProcess",
    "alembic",
    "bot_process",
    "clean_environment",
    "post_activity",
    "run_until_exit",
    "teams_activity",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = REPO_ROOT / "app.py"
PAYLOADS = REPO_ROOT / "tests" / "payloads"
# Generous: the knowledge matcher alone takes seconds to build on a loaded 2-core machine.
READY_SECONDS = 120.0
STOP_SECONDS = 30.0
# Settings read without the KOLLEGA_ prefix (the Bot Framework identity), and the prefix.
_SETTINGS_PREFIXES = ("KOLLEGA_", "MICROSOFTAPP", "APP_", "TO_BOT_")


def clean_environment(**settings: str) -> dict[str, str]:
    """The test runner's environment without any kollega setting, plus ``settings``.

    A developer's exported ``KOLLEGA_DATABASE_URL`` must not turn a test into one against
    their own database; the process sees exactly the settings the test gives it.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(_SETTINGS_PREFIXES)
    }
    env.update(PYTHONUNBUFFERED="1", KOLLEGA_LOG_JSON="false", KOLLEGA_HOST="127.0.0.1")
    env.update(settings)
    return env


class BotProcess:
    """One ``python app.py`` with its own port; output kept (stderr and stdout, merged)."""

    def __init__(self, name: str, settings: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.port = int(settings.get("KOLLEGA_PORT") or free_port())
        self.env = clean_environment(**{**settings, "KOLLEGA_PORT": str(self.port)})
        self.cwd = cwd
        self.process: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    async def start(self) -> None:
        # cwd is a scratch folder so a developer's .env in the repository is not read.
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(APP),
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read(), name=f"{self.name}-output")

    async def _read(self) -> None:
        """Drain the pipe all the time: a full pipe would block the bot's logging."""
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode("utf-8", "replace"))

    async def wait_ready(self, timeout: float = READY_SECONDS) -> None:
        """Poll ``GET /readyz`` until 200; fail early, with the output, if the process dies."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while time.monotonic() < deadline:
                if self.returncode is not None:
                    raise AssertionError(
                        f"{self.name} exited with {self.returncode} before it was ready:\n"
                        f"{self.output}"
                    )
                try:
                    async with session.get(f"{self.url}/readyz") as response:
                        if response.status == 200:
                            return
                        last = f"{response.status} {await response.text()}"
                except (aiohttp.ClientError, TimeoutError) as error:
                    last = type(error).__name__
                await asyncio.sleep(0.25)
        raise AssertionError(
            f"{self.name} not ready after {timeout:.0f} s ({last}):\n{self.output}"
        )

    async def wait_exit(self, timeout: float) -> int:
        """The exit code, waiting at most ``timeout`` seconds (TimeoutError otherwise)."""
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 10)
        return code

    def signal(self, number: int) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(number)

    async def stop(self, timeout: float = STOP_SECONDS) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; never raises."""
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.lines.append(f"[test] {self.name} ignored SIGTERM for {timeout} s: SIGKILL\n")
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 10)
        return self.process.returncode


@asynccontextmanager
async def bot_process(
    name: str, settings: dict[str, str], cwd: Path, *, ready: bool = True
) -> AsyncIterator[BotProcess]:
    """A running bot (ready unless ``ready=False``), stopped and its output printed after."""
    bot = BotProcess(name, settings, cwd)
    try:
        await bot.start()
        if ready:
            await bot.wait_ready()
        yield bot
    finally:
        code = await bot.stop()
        # pytest shows this only for a failing test.
        print(f"----- {name} (port {bot.port}, exit {code}) -----\n{bot.output}")


async def run_until_exit(
    settings: dict[str, str], cwd: Path, timeout: float = READY_SECONDS
) -> tuple[int, str]:
    """Start ``python app.py`` that is expected to exit by itself: (exit code, output)."""
    bot = BotProcess("kollega", settings, cwd)
    await bot.start()
    try:
        code = await bot.wait_exit(timeout)
    finally:
        await bot.stop()
    return code, bot.output


async def alembic(database_url: str, *args: str, timeout: float = 120.0) -> str:
    """``alembic ARGS`` as ops type it, in the repository, for ``database_url``.

    Fails the test (with alembic's output) on a non-zero exit; returns the output.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alembic",
        *args,
        cwd=REPO_ROOT,
        env=clean_environment(KOLLEGA_DATABASE_URL=database_url),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = out.decode("utf-8", "replace")
    assert process.returncode == 0, f"alembic {' '.join(args)} exited {process.returncode}:\n{text}"
    return text


def teams_activity(
    text: str,
    *,
    service_url: str,
    conversation_id: str,
    user_id: str = "29:kari-nordmann",
) -> dict[str, Any]:
    """A Teams personal-chat message (the captured payload) from one user in one chat."""
    activity = json.loads((PAYLOADS / "teams" / "personal-message-text.json").read_text("utf-8"))
    activity = copy.deepcopy(activity)
    activity["id"] = f"incoming-{uuid.uuid4().hex[:12]}"
    activity["text"] = text
    activity["serviceUrl"] = service_url
    activity["conversation"]["id"] = conversation_id
    activity["from"]["id"] = user_id
    activity["locale"] = "nb-NO"
    activity["entities"] = []
    return activity


async def post_activity(
    session: aiohttp.ClientSession, bot: BotProcess, activity: dict[str, Any]
) -> int:
    """POST one Activity to a replica's ``/api/messages``; the HTTP status (the turn is done)."""
    async with session.post(f"{bot.url}/api/messages", json=activity) as response:
        await response.read()
        return response.status
