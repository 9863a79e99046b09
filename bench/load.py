"""Load benchmark: kollega's whole pipeline against a plain botbuilder echo bot, same harness.

    python bench/load.py                                   # 200 conversations, 20 s, 50/s
    python bench/load.py --conversations 200 --seconds 20 --rate 50 \\
        --knowledge ../shared/eval/clinc150/knowledge --database sqlite,postgresql
    python bench/load.py --targets kollega --profile /tmp/kollega-profile   # + py-spy

Each bot runs in its own process (``python app.py`` as ops run it, through a thin launcher,
below); this process runs everything the bot talks to, on loopback: the fake Bot Framework
OpenID metadata server (tokens signed by a local RSA key, JWT checks on), the fake Entra
authority over HTTPS (the bot's outbound token, through ``adapters.bot_credentials``), the
fake Bot Connector the replies go to, and the load. The machine has 2 cores, so the load
generator competes with the bot for CPU: its own CPU use is printed beside the bot's.

Per bot it measures:

* closed loop (the throughput ceiling): N conversations, each sending its next message
  when its reply has arrived, for ``--seconds``;
* open loop: messages offered at ``--rate`` per second whatever the bot does (latency is
  counted from the scheduled send time, so a stalled bot cannot hide its queue);
* latency per turn: request sent -> reply received at the connector, and the HTTP response
  time; errors (non-2xx, connection failures, a reply with a wrong token) and lost replies
  (a 2xx turn whose message never reached the connector) are counted, never dropped;
* kollega's stages from its ``/metrics`` histogram ``kollega_turn_seconds`` (state,
  dialogs, reply, analytics), plus ``auth`` (``authenticate_request``) and ``handle`` (the
  whole ``/api/messages`` handler) timed by the launcher, since app.py has no auth stage;
* peak RSS of the bot process (the kernel's high-water mark, VmHWM, and psutil samples).

The launcher (``python bench/load.py _serve-kollega``) is ``app.main()`` with three bench-only
additions: the outbound-token factory from ``adapters.bot_credentials`` when the app does
not pass one yet, the auth/handle timers on a separate Prometheus port, and cProfile when
``KOLLEGA_BENCH_CPROFILE`` names a file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

APP_ID = "00000000-aaaa-4bbb-8ccc-123456789abc"  # same as tests/fakes/openid.py
APP_PASSWORD = "bench-secret"  # a value for the fake authority, not a credential
PHRASES = REPO / "tests" / "data" / "sample_eval.jsonl"
TEMPLATE = REPO / "tests" / "payloads" / "teams" / "personal-message-text.json"
LOCALES = {"nb": "nb-NO", "sv": "sv-SE", "da": "da-DK", "fi": "fi-FI", "en": "en-GB"}
STAGES = ("state", "dialogs", "reply", "analytics")
REPLY_GRACE = 5.0  # seconds a reply may trail its turn's HTTP response before it is "lost"
REQUEST_TIMEOUT = 30.0
STARTUP_TIMEOUT = 120.0
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


# ---------------------------------------------------------------------------------------
# The launcher, run inside the bot's process.
# ---------------------------------------------------------------------------------------


def serve_kollega() -> None:
    """``app.main()`` plus bench instrumentation (see the module docstring); never returns early."""
    from types import SimpleNamespace

    from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
    from prometheus_client import CollectorRegistry, Histogram, start_http_server

    import adapters.bot_framework as bot_framework
    from adapters.bot_credentials import bot_credentials_factory

    registry = CollectorRegistry()
    buckets = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
    seconds = Histogram(
        "kollega_bench_seconds", "Bench-only timers", ["stage"], buckets=buckets, registry=registry
    )
    auth_timer = seconds.labels("auth")
    handle_timer = seconds.labels("handle")

    class TimedAuthentication(ConfigurationBotFrameworkAuthentication):
        """Times ``authenticate_request``; supplies the bot-token factory if the app does not."""

        def __init__(self, configuration: Any, **kwargs: Any) -> None:
            if kwargs.get("credentials_factory") is None:
                settings = SimpleNamespace(
                    **vars(configuration),
                    bot_authority=os.environ.get("KOLLEGA_BOT_AUTHORITY", ""),
                    bot_ca_bundle=os.environ.get("KOLLEGA_BOT_CA_BUNDLE", ""),
                )
                kwargs["credentials_factory"] = bot_credentials_factory(settings)
            super().__init__(configuration, **kwargs)

        async def authenticate_request(self, activity: Any, auth_header: str) -> Any:
            started = time.perf_counter()
            try:
                return await super().authenticate_request(activity, auth_header)
            finally:
                auth_timer.observe(time.perf_counter() - started)

    original_handle = bot_framework.BotFrameworkChannel.handle

    async def timed_handle(self: Any, request: Any, bot: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original_handle(self, request, bot)
        finally:
            handle_timer.observe(time.perf_counter() - started)

    bot_framework.ConfigurationBotFrameworkAuthentication = TimedAuthentication  # type: ignore[misc]
    bot_framework.BotFrameworkChannel.handle = timed_handle  # type: ignore[method-assign]
    start_http_server(
        int(os.environ["KOLLEGA_BENCH_METRICS_PORT"]), addr="127.0.0.1", registry=registry
    )

    import app

    profile_to = os.environ.get("KOLLEGA_BENCH_CPROFILE")
    if not profile_to:
        app.main()
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        app.main()
    finally:
        profiler.disable()
        profiler.dump_stats(profile_to)


# ---------------------------------------------------------------------------------------
# Measurement helpers.
# ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile in milliseconds (nan when there are no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[rank] * 1000


def load_phrases() -> dict[str, list[str]]:
    """The five languages' phrases from the evaluation sample (in and out of scope)."""
    by_language: dict[str, list[str]] = {lang: [] for lang in LOCALES}
    for line in PHRASES.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            if item.get("lang") in by_language:
                by_language[item["lang"]].append(item["text"])
    return by_language


@dataclass
class PhaseResult:
    """What one phase (closed or open loop) measured."""

    name: str
    seconds: float = 0.0
    sent: int = 0
    ok: int = 0
    turn: list[float] = field(default_factory=list)  # sent -> reply at the connector
    http: list[float] = field(default_factory=list)  # sent -> HTTP response
    errors: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    not_offered: int = 0  # open loop: every conversation was still busy
    bot_cpu: float = 0.0  # share of one core
    load_cpu: float = 0.0
    stages: dict[str, tuple[float, int]] = field(default_factory=dict)  # stage -> (sum s, n)

    @property
    def throughput(self) -> float:
        return len(self.turn) / self.seconds if self.seconds else 0.0


@dataclass
class TargetResult:
    """A bot under test and its phases."""

    label: str
    startup_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    sampled_rss_mb: float = 0.0
    phases: list[PhaseResult] = field(default_factory=list)
    token_requests: int = 0
    load_average: str = ""  # the machine's 1-minute load before and after: others' work shows
    notes: list[str] = field(default_factory=list)


class Harness:
    """The fakes, the HTTP client and the conversations, shared by every bot under test."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.phrases = load_phrases()
        self.languages = list(LOCALES)
        self.template = json.loads(TEMPLATE.read_text(encoding="utf-8"))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Harness]:
        import aiohttp

        from bench.fakes import BenchConnector, start_app, start_authority
        from tests.fakes.openid import ISSUER, openid_server

        with openid_server() as openid:
            self.openid = openid
            self.issuer = ISSUER
            self.authority = await start_authority(self.workdir, APP_ID, APP_PASSWORD)
            self.connector = BenchConnector(self.authority.fake.tokens_issued)
            runner, self.service_url = await start_app(self.connector.app())
            # One channel token for every request, as a channel reuses its token for an hour;
            # signing RS256 per request would cost the load generator ~1 ms of CPU each.
            self.token = openid.token(self.service_url)
            connector = aiohttp.TCPConnector(limit=0, force_close=False)
            self.session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
            )
            try:
                yield self
            finally:
                await self.session.close()
                await runner.cleanup()
                await self.authority.runner.cleanup()

    def bot_environment(self, port: int, metrics_port: int, database_url: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("REQUESTS_CA_BUNDLE", None)
        env.update(
            {
                "MicrosoftAppId": APP_ID,
                "MicrosoftAppPassword": APP_PASSWORD,
                "MicrosoftAppType": "MultiTenant",
                "KOLLEGA_BOT_OPENID_METADATA_URL": self.openid.metadata_url,
                "KOLLEGA_BOT_TOKEN_ISSUER": self.issuer,
                "KOLLEGA_BOT_AUTHORITY": self.authority.url,
                "KOLLEGA_BOT_CA_BUNDLE": str(self.authority.ca_file),
                "KOLLEGA_HOST": "127.0.0.1",
                "KOLLEGA_PORT": str(port),
                "KOLLEGA_DATABASE_URL": database_url,
                "KOLLEGA_LOG_LEVEL": "WARNING",
                "KOLLEGA_LOG_JSON": "false",
                "KOLLEGA_ANALYTICS_SECRET": "bench",
                "KOLLEGA_BENCH_METRICS_PORT": str(metrics_port),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.args.knowledge:
            env["KOLLEGA_KNOWLEDGE_DIR"] = str(Path(self.args.knowledge).resolve())
        return env

    def activity(self, conversation: int, counter: int) -> bytes:
        language = self.languages[conversation % len(self.languages)]
        phrases = self.phrases[language]
        activity = dict(self.template)
        activity["text"] = phrases[(conversation * 7 + counter) % len(phrases)]
        activity["id"] = f"in-{conversation}-{counter}"
        activity["serviceUrl"] = self.service_url
        activity["locale"] = LOCALES[language]
        activity["conversation"] = dict(
            self.template["conversation"], id=f"bench-conversation-{conversation}"
        )
        activity["from"] = dict(self.template["from"], id=f"29:bench-user-{conversation}")
        return json.dumps(activity).encode()

    async def turn(self, url: str, conversation: int, counter: int, phase: PhaseResult) -> None:
        """One message: send, wait for the HTTP response and for the reply at the connector."""
        await self.turn_from(url, conversation, counter, phase, time.perf_counter())

    async def turn_from(
        self, url: str, conversation: int, counter: int, phase: PhaseResult, started: float
    ) -> None:
        body = self.activity(conversation, counter)
        waiter = self.connector.expect(f"bench-conversation-{conversation}")
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        phase.sent += 1
        try:
            async with self.session.post(url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except Exception as exc:
            phase.errors[type(exc).__name__] += 1
            waiter.cancel()
            return
        answered = time.perf_counter()
        if status not in (200, 201, 202):
            phase.errors[f"HTTP {status}"] += 1
            waiter.cancel()
            return
        phase.http.append(answered - started)
        try:
            replied = await asyncio.wait_for(asyncio.shield(waiter), REPLY_GRACE)
        except TimeoutError:
            phase.lost += 1
            return
        phase.ok += 1
        phase.turn.append(replied - started)


class BotProcess:
    """A bot under test in its own process, with its RSS watched while it runs."""

    def __init__(self, label: str, command: list[str], env: dict[str, str], port: int) -> None:
        self.label = label
        self.command = command
        self.env = env
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"kollega-bench-{label}-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.samples: list[int] = []
        self._sampler: asyncio.Task[None] | None = None

    async def start(self, session: Any) -> float:
        import psutil

        started = time.perf_counter()
        self.process = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, not awaited
            self.command,
            cwd=self.env.get("KOLLEGA_BENCH_CWD", str(REPO)),
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.ps = psutil.Process(self.process.pid)
        self._sampler = asyncio.create_task(self._sample())
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited at start:\n{self.tail()}")
            with contextlib.suppress(Exception):
                async with session.get(f"{self.base}/healthz") as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.label} did not answer /healthz in {STARTUP_TIMEOUT} s")

    async def _sample(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                self.samples.append(self.ps.memory_info().rss)
            await asyncio.sleep(0.25)

    def peak_rss(self) -> int:
        """The kernel's high-water mark of the process's resident memory (VmHWM)."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return max(self.samples, default=0)

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def tail(self, lines: int = 30) -> str:
        if not self.log.closed:
            self.log.flush()
        text = Path(self.log.name).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            for _ in range(100):
                if self.process.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


async def read_stages(session: Any, *urls: str) -> dict[str, tuple[float, int]]:
    """Per-stage (sum of seconds, count) from kollega's /metrics and the launcher's timers."""
    from prometheus_client.parser import text_string_to_metric_families

    stages: dict[str, tuple[float, int]] = {}
    for url in urls:
        async with session.get(url) as response:
            text = await response.text()
        for family in text_string_to_metric_families(text):
            if family.name not in ("kollega_turn_seconds", "kollega_bench_seconds"):
                continue
            for sample in family.samples:
                stage = sample.labels.get("stage")
                total, count = stages.get(stage, (0.0, 0))
                if sample.name.endswith("_sum"):
                    stages[stage] = (sample.value, count)
                elif sample.name.endswith("_count"):
                    stages[stage] = (total, int(sample.value))
    return stages


def stage_delta(
    before: dict[str, tuple[float, int]], after: dict[str, tuple[float, int]]
) -> dict[str, tuple[float, int]]:
    return {
        stage: (total - before.get(stage, (0.0, 0))[0], count - before.get(stage, (0.0, 0))[1])
        for stage, (total, count) in after.items()
    }


# ---------------------------------------------------------------------------------------
# Phases.
# ---------------------------------------------------------------------------------------


async def closed_loop(
    harness: Harness, bot: BotProcess, seconds: float, name: str = "closed loop"
) -> PhaseResult:
    """Every conversation sends its next message as soon as its previous reply arrived."""
    import psutil

    phase = PhaseResult(name)
    url = f"{bot.base}/api/messages"
    me = psutil.Process()
    bot_cpu, my_cpu = bot.cpu_seconds(), sum(me.cpu_times()[:2])
    started = time.perf_counter()
    deadline = started + seconds

    async def conversation(index: int) -> None:
        counter = 1000
        while time.perf_counter() < deadline:
            counter += 1
            await harness.turn(url, index, counter, phase)

    await asyncio.gather(*(conversation(i) for i in range(harness.args.conversations)))
    phase.seconds = time.perf_counter() - started
    phase.bot_cpu = (bot.cpu_seconds() - bot_cpu) / phase.seconds
    phase.load_cpu = (sum(me.cpu_times()[:2]) - my_cpu) / phase.seconds
    return phase


async def open_loop(harness: Harness, bot: BotProcess, seconds: float, rate: float) -> PhaseResult:
    """Messages offered at ``rate``/s; latency counts from the scheduled send time."""
    import psutil

    phase = PhaseResult(f"open loop {rate:g}/s")
    url = f"{bot.base}/api/messages"
    me = psutil.Process()
    bot_cpu, my_cpu = bot.cpu_seconds(), sum(me.cpu_times()[:2])
    busy: set[int] = set()
    tasks: set[asyncio.Task[None]] = set()
    conversations = harness.args.conversations
    started = time.perf_counter()
    total = int(seconds * rate)
    cursor = 0

    async def run(index: int, counter: int, scheduled: float) -> None:
        try:
            await harness.turn_from(url, index, counter, phase, scheduled)
        finally:
            busy.discard(index)

    for number in range(total):
        scheduled = started + number / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        for _ in range(conversations):
            cursor = (cursor + 1) % conversations
            if cursor not in busy:
                break
        else:
            phase.not_offered += 1
            continue
        busy.add(cursor)
        task = asyncio.create_task(run(cursor, 5000 + number, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT + REPLY_GRACE)
    phase.seconds = time.perf_counter() - started
    phase.bot_cpu = (bot.cpu_seconds() - bot_cpu) / phase.seconds
    phase.load_cpu = (sum(me.cpu_times()[:2]) - my_cpu) / phase.seconds
    return phase


async def profile_with_py_spy(pid: int, seconds: float, out: Path) -> list[str]:
    """py-spy on the bot for ``seconds``; the top functions by own and by total samples."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = out.with_suffix(".collapsed.txt")
    process = await asyncio.create_subprocess_exec(
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(raw),
        "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    if process.returncode != 0 or not raw.exists():
        return [f"py-spy failed ({process.returncode}): {err.decode(errors='replace')[-300:]}"]
    return summarise_collapsed(raw)


def summarise_collapsed(raw: Path, top: int = 15) -> list[str]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short_frame(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return ["py-spy recorded no samples"]
    lines = [f"py-spy: {total} samples; top by own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines.append("top by total time (the frame or anything it called):")
    lines += [
        f"  {100 * n / total:5.1f}%  {frame}"
        for frame, n in inclusive.most_common(top + 25)
        if not _is_plumbing(frame)
    ][:top]
    return lines


def _short_frame(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``func (to/module.py)``: lines vary, files do not."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = path.split("/")
    return f"{name} ({'/'.join(parts[-2:])})"


def _is_plumbing(frame: str) -> bool:
    return any(
        marker in frame
        for marker in (
            "asyncio/",
            "<module>",
            "run_app",
            "main (app.py)",
            "_run_once",
            "run_forever",
        )
    )


# ---------------------------------------------------------------------------------------
# Targets.
# ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database(kind: str, workdir: Path) -> AsyncIterator[str]:
    """A fresh database: a SQLite file, or a new PostgreSQL database migrated by alembic."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        return
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(os.environ.get("KOLLEGA_BENCH_POSTGRES_URL", DEFAULT_POSTGRES))
    name = f"kollega_bench_{uuid.uuid4().hex[:10]}"
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        done = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "alembic",
            "upgrade",
            "head",
            cwd=str(REPO),
            env=dict(os.environ, KOLLEGA_DATABASE_URL=url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(done.communicate(), 120)
        if done.returncode != 0:
            raise RuntimeError(f"alembic upgrade head failed:\n{output.decode()[-2000:]}")
        yield url
    finally:
        admin = await asyncpg.connect(dsn, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def measure(
    harness: Harness, label: str, command: list[str], env: dict[str, str], port: int
) -> TargetResult:
    """Start a bot, warm it up, run both phases, read its stages and memory, stop it."""
    args = harness.args
    result = TargetResult(label)
    bot = BotProcess(label, command, env, port)
    is_kollega = "_serve-kollega" in command or "app.py" in " ".join(command)
    metric_urls = (
        (f"{bot.base}/metrics", f"http://127.0.0.1:{env['KOLLEGA_BENCH_METRICS_PORT']}/metrics")
        if is_kollega
        else ()
    )
    tokens_before = len(harness.authority.fake.token_requests())
    load_before = os.getloadavg()[0]
    try:
        result.startup_seconds = await bot.start(harness.session)
        warm = PhaseResult("warm-up")
        url = f"{bot.base}/api/messages"
        # Two turns per conversation: state rows exist and every code path has run once.
        for counter in (0, 1):
            await asyncio.gather(
                *(harness.turn(url, i, counter, warm) for i in range(args.conversations))
            )
        if warm.errors or warm.lost:
            result.notes.append(f"warm-up: errors {dict(warm.errors)}, lost {warm.lost}")
        before = await read_stages(harness.session, *metric_urls) if metric_urls else {}
        profile: asyncio.Task[list[str]] | None = None
        if args.profile and is_kollega:
            out = Path(args.profile) / f"{label.replace(' ', '_')}"
            out.parent.mkdir(parents=True, exist_ok=True)
            profile = asyncio.create_task(
                profile_with_py_spy(bot.process.pid, max(1, args.seconds - 1), out)
            )
        closed = await closed_loop(harness, bot, args.seconds)
        if profile is not None:
            result.notes.extend(await profile)
        after = await read_stages(harness.session, *metric_urls) if metric_urls else {}
        closed.stages = stage_delta(before, after)
        result.phases.append(closed)
        await asyncio.sleep(1.0)  # let the queue drain between phases
        before = after
        opened = await open_loop(harness, bot, args.seconds, args.rate)
        after = await read_stages(harness.session, *metric_urls) if metric_urls else {}
        opened.stages = stage_delta(before, after)
        result.phases.append(opened)
        result.peak_rss_mb = bot.peak_rss() / 2**20
        result.sampled_rss_mb = max(bot.samples, default=0) / 2**20
    except Exception as exc:
        result.notes.append(f"FAILED: {type(exc).__name__}: {exc}")
        result.notes.append(bot.tail())
    finally:
        await bot.stop()
        result.token_requests = len(harness.authority.fake.token_requests()) - tokens_before
        result.load_average = f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    log = bot.tail(100_000).splitlines()
    problems = [line for line in log if "Traceback" in line or "ERROR" in line]
    if problems:
        result.notes.append(f"bot log ({bot.log.name}) has {len(problems)} error lines")
    return result


# ---------------------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------------------


def print_target(result: TargetResult, args: argparse.Namespace) -> None:
    print(f"\n== {result.label} ==")
    print(
        f"start-up {result.startup_seconds:.1f} s; peak RSS {result.peak_rss_mb:.0f} MB "
        f"(VmHWM; sampled max {result.sampled_rss_mb:.0f} MB); "
        f"token requests to the authority: {result.token_requests}; "
        f"machine load average {result.load_average} on {os.cpu_count()} CPUs"
    )
    for phase in result.phases:
        errors = sum(phase.errors.values())
        print(
            f"  {phase.name:<16} {phase.throughput:7.1f} replies/s  "
            f"turn p50/p95/p99 {percentile(phase.turn, 0.50):6.1f} / "
            f"{percentile(phase.turn, 0.95):6.1f} / {percentile(phase.turn, 0.99):6.1f} ms  "
            f"HTTP p50/p95/p99 {percentile(phase.http, 0.50):6.1f} / "
            f"{percentile(phase.http, 0.95):6.1f} / {percentile(phase.http, 0.99):6.1f} ms"
        )
        print(
            f"  {'':<16} sent {phase.sent}, replied {phase.ok}, errors {errors} "
            f"{dict(phase.errors) if errors else ''}, lost {phase.lost}"
            + (f", not offered (all busy) {phase.not_offered}" if phase.not_offered else "")
            + f"; CPU bot {100 * phase.bot_cpu:.0f}% / load generator "
            f"{100 * phase.load_cpu:.0f}% of one core"
        )
        if phase.stages:
            print_stages(phase)
    for note in result.notes:
        print(f"  {note}")


def print_stages(phase: PhaseResult) -> None:
    rows = []
    for stage in ("auth", *STAGES):
        total, count = phase.stages.get(stage, (0.0, 0))
        if count:
            rows.append((stage, total, count))
    handle_total, handle_count = phase.stages.get("handle", (0.0, 0))
    staged = sum(total for _, total, _ in rows)
    if handle_count:
        rows.append(("other in handler", max(0.0, handle_total - staged), handle_count))
    if not rows:
        return
    slowest = max(rows, key=lambda row: row[1])[0]
    print("  stage (mean ms per turn, share of handler time):")
    denominator = handle_total or staged or 1.0
    for stage, total, count in rows:
        mark = "  <- slowest" if stage == slowest else ""
        print(
            f"    {stage:<17} {1000 * total / count:7.2f} ms  "
            f"{100 * total / denominator:5.1f}%  (n={count}){mark}"
        )
    if handle_count:
        print(f"    {'whole handler':<17} {1000 * handle_total / handle_count:7.2f} ms")


def print_summary(results: list[TargetResult], args: argparse.Namespace) -> None:
    def closed(result: TargetResult) -> PhaseResult | None:
        return next((p for p in result.phases if p.name == "closed loop"), None)

    def opened(result: TargetResult) -> PhaseResult | None:
        return next((p for p in result.phases if p.name.startswith("open")), None)

    print("\n== summary ==")
    print(
        f"{'target':<34} {'closed/s':>9} {'p99@' + format(args.rate, 'g') + '/s':>10} "
        f"{'RSS MB':>7} {'errors':>7} {'lost':>5}"
    )
    for result in results:
        c, o = closed(result), opened(result)
        errors = sum(sum(p.errors.values()) for p in result.phases)
        lost = sum(p.lost for p in result.phases)
        print(
            f"{result.label:<34} {c.throughput if c else float('nan'):9.1f} "
            f"{percentile(o.turn, 0.99) if o else float('nan'):10.1f} "
            f"{result.peak_rss_mb:7.0f} {errors:7d} {lost:5d}"
        )
    echoes = [r for r in results if r.label.startswith("echo") and closed(r)]
    for result in results:
        if result.label.startswith("echo") or not closed(result):
            continue
        for echo in echoes:
            if closed(echo).throughput:
                ratio = closed(result).throughput / closed(echo).throughput
                print(f"{result.label} / {echo.label}: {ratio:.2f}x the throughput")
    print(
        "targets: full pipeline >= 100 replies/s closed loop; p99 < 100 ms at 50/s offered; "
        "< 400 MB RSS with CLINC150; no errors, no lost replies"
    )


def matcher_in_use() -> str:
    """Which matcher the app builds (the matcher is being replaced; say which was measured)."""
    source = (REPO / "knowledge" / "index.py").read_text(encoding="utf-8")
    for line in source.splitlines():
        if "import" in line and "build_matcher" in line:
            return line.strip()
    return "unknown"


async def run(args: argparse.Namespace) -> list[TargetResult]:
    results: list[TargetResult] = []
    workdir = Path(tempfile.mkdtemp(prefix="kollega-bench-"))
    try:
        async with Harness(args, workdir).running() as harness:
            for target in args.targets.split(","):
                target = target.strip()
                if target == "kollega":
                    for kind in args.database.split(","):
                        kind = kind.strip()
                        async with database(kind, workdir) as url:
                            port, metrics_port = free_port(), free_port()
                            env = harness.bot_environment(port, metrics_port, url)
                            env["KOLLEGA_BENCH_CWD"] = str(workdir)
                            command = [sys.executable, str(REPO / "bench" / "load.py")]
                            command.append("_serve-kollega")
                            if args.cprofile:
                                env["KOLLEGA_BENCH_CPROFILE"] = str(workdir / "kollega.prof")
                            label = f"kollega ({kind})"
                            result = await measure(harness, label, command, env, port)
                            results.append(result)
                            print_target(result, args)
                            if args.cprofile and (workdir / "kollega.prof").exists():
                                keep = Path(args.cprofile)
                                shutil.copy(workdir / "kollega.prof", keep)
                                print(f"  cProfile written to {keep}")
                elif target in ("echo", "echo-fast"):
                    port = free_port()
                    env = harness.bot_environment(port, free_port(), "sqlite://")
                    command = [sys.executable, str(REPO / "bench" / "echo_bot.py")]
                    command += ["--port", str(port)]
                    label = "echo (stock SDK)"
                    if target == "echo-fast":
                        command.append("--speed-up")
                        label = "echo (+ msrest speed-up)"
                    result = await measure(harness, label, command, env, port)
                    results.append(result)
                    print_target(result, args)
                else:
                    raise SystemExit(f"unknown target {target!r}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_serve-kollega":
        serve_kollega()
        return
    parser = argparse.ArgumentParser(
        description="Load-test kollega's whole pipeline against a plain echo bot (loopback)."
    )
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase")
    parser.add_argument("--rate", type=float, default=50.0, help="open loop, messages/s")
    parser.add_argument("--knowledge", help="knowledge folder (default: the sample)")
    parser.add_argument(
        "--database", default="sqlite", help="sqlite, postgresql or both: sqlite,postgresql"
    )
    parser.add_argument(
        "--targets",
        default="kollega,echo,echo-fast",
        help="comma list of kollega, echo (stock SDK), echo-fast (echo + msrest speed-up)",
    )
    parser.add_argument("--profile", help="folder: py-spy the kollega bot during its closed loop")
    parser.add_argument("--cprofile", help="file: run kollega under cProfile (slows it down)")
    args = parser.parse_args()
    if args.conversations < 1 or args.seconds <= 0 or args.rate <= 0:
        parser.error("conversations, seconds and rate must be positive")
    print(
        f"kollega load benchmark: {args.conversations} conversations, {args.seconds:g} s per "
        f"phase, open loop at {args.rate:g}/s, knowledge {args.knowledge or 'sample'}, "
        f"database {args.database}; {os.cpu_count()} CPUs; matcher: {matcher_in_use()}"
    )
    started = time.monotonic()
    results = asyncio.run(run(args))
    print_summary(results, args)
    failed = [r for r in results if any(n.startswith("FAILED") for n in r.notes)]
    errors = sum(sum(p.errors.values()) + p.lost for r in results for p in r.phases)
    print(f"(run took {time.monotonic() - started:.0f} s)")
    raise SystemExit(1 if failed or errors else 0)


if __name__ == "__main__":
    main()
