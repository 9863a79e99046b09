"""kollega's composition root: settings -> knowledge -> bot -> adapters -> aiohttp app.

``python app.py`` serves on ``KOLLEGA_HOST:KOLLEGA_PORT``. Everything is built here from
one ``Settings`` object and passed down; nothing else in the code base reads the
environment or holds a module-level singleton, so tests build as many apps as they like.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web
from botbuilder.core import MemoryStorage, Storage

from adapters.bot_framework import BotFrameworkChannel
from adapters.workplace import WorkplaceAdapter
from bot.analytics import AnalyticsRecorder, ConversationCounter
from bot.db import create_engine
from bot.kollega_bot import KollegaBot, turn_error_handler
from bot.language import LanguageGuesser, warm_up
from bot.logs import configure_logging
from bot.memory import ConversationMemory
from bot.observability import Metrics, health_routes
from bot.schema import ensure_schema
from bot.settings import SUPPORTED_LANGUAGES, Settings
from bot.storage import SqlStorage
from dialogs.help import HelpDialog
from dialogs.router import Router
from dialogs.services import Services
from knowledge.provider import KnowledgeProvider

logger = logging.getLogger("kollega")

MAX_REQUEST_BYTES = 2 * 1024 * 1024


@dataclass(slots=True)
class Kollega:
    """The parts of a running app that tests and admin routes need to reach."""

    settings: Settings
    knowledge: KnowledgeProvider
    bot: KollegaBot
    analytics: AnalyticsRecorder
    metrics: Metrics
    storage: Storage
    channel: BotFrameworkChannel
    workplace: WorkplaceAdapter | None = None


KOLLEGA = web.AppKey("kollega", Kollega)


def build_router() -> Router:
    return Router(skills=[HelpDialog()])


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings()
    engine = create_engine(settings.database_url)
    knowledge = KnowledgeProvider(settings.knowledge_dir)
    storage: Storage = MemoryStorage() if settings.state_storage == "memory" else SqlStorage(engine)
    analytics = AnalyticsRecorder(engine, flush_seconds=settings.analytics_flush_seconds)
    metrics = Metrics()
    services = Services(
        knowledge=knowledge,
        switchboard=settings.switchboard,
        default_language=settings.default_language,
    )
    bot = KollegaBot(
        services=services,
        router=build_router(),
        memory=ConversationMemory(storage),
        analytics=analytics,
        languages=LanguageGuesser(settings.default_language, SUPPORTED_LANGUAGES),
        counter=ConversationCounter(settings.analytics_secret),
        max_message_chars=settings.max_message_chars,
        on_turn_done=metrics.observe_turn,
    )
    error_handler = turn_error_handler(settings.default_language)
    channel = BotFrameworkChannel(settings, on_turn_error=error_handler)

    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    kollega = Kollega(settings, knowledge, bot, analytics, metrics, storage, channel)
    app[KOLLEGA] = kollega

    async def messages(request: web.Request) -> web.Response:
        return await channel.handle(request, bot)

    app.router.add_post("/api/messages", messages)
    _add_workplace(app, kollega, error_handler)
    health_routes(app, knowledge=knowledge, engine=engine, metrics=metrics, analytics=analytics)

    async def start(_: web.Application) -> None:
        result = await knowledge.reload()
        if not knowledge.ready:
            problems = "\n".join(str(p) for p in result.errors)
            raise RuntimeError(
                f"the knowledge in {settings.knowledge_dir} does not load:\n{problems}"
            )
        await ensure_schema(engine, settings.database_url)
        warm_up()
        await analytics.start()
        knowledge.start_watching(settings.knowledge_poll_seconds)

    async def stop(_: web.Application) -> None:
        await knowledge.stop_watching()
        await analytics.stop()
        await engine.dispose()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def _add_workplace(app: web.Application, kollega: Kollega, error_handler) -> None:
    settings = kollega.settings
    if settings.workplace_app_secret and settings.workplace_access_token:
        kollega.workplace = WorkplaceAdapter(
            app_secret=settings.workplace_app_secret,
            verify_token=settings.workplace_verify_token,
            access_token=settings.workplace_access_token,
            graph_url=settings.workplace_graph_url,
            bot=kollega.bot,
            on_turn_error=error_handler,
        )
        kollega.workplace.add_routes(app, "/api/workplace")
        return

    async def workplace_off(_: web.Request) -> web.Response:
        return web.json_response(
            {"error": "Workplace is not configured on this kollega (KOLLEGA_WORKPLACE_*)"},
            status=404,
        )

    app.router.add_route("*", "/api/workplace", workplace_off)


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, as_json=settings.log_json)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_seconds,
        access_log=None,
        print=lambda text: logger.info(text.strip()),
    )


if __name__ == "__main__":
    main()
