"""kollega's composition root: settings -> knowledge -> bot -> adapters -> aiohttp app.

``python app.py`` serves on ``KOLLEGA_HOST:KOLLEGA_PORT``. Everything is built here from
one ``Settings`` object and passed down; nothing else in the code base reads the
environment or holds a module-level singleton, so tests build as many apps as they like.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from botbuilder.core import MemoryStorage, Storage

from adapters.bot_framework import BotFrameworkChannel
from adapters.graph import GraphClient
from adapters.leave import LeaveBalanceClient
from adapters.tickets import build_ticket_system
from adapters.webchat import EntraIdValidator, WebChatAdapter
from adapters.workplace import WorkplaceAdapter
from bot import db_work
from bot.admin import add_admin_routes
from bot.analytics import AnalyticsRecorder, ConversationCounter
from bot.audience import AudienceResolver
from bot.audit import purge_older_than
from bot.db import create_engine
from bot.event_spool import spool_path
from bot.kollega_bot import KollegaBot, turn_error_handler
from bot.language import LanguageGuesser, warm_up
from bot.limits import TurnLimiter
from bot.logs import configure_logging
from bot.memory import ConversationMemory
from bot.observability import Metrics, health_routes
from bot.periodic import PeriodicJobs
from bot.retention import delete_older_than
from bot.schema import ensure_schema
from bot.settings import SUPPORTED_LANGUAGES, Settings
from bot.storage import SqlStorage
from bot.ticket_registry import TicketRegistry
from dialogs.contact import ContactDialog
from dialogs.handoff import HandoffDialog
from dialogs.help import HelpDialog
from dialogs.leave import LeaveDialog
from dialogs.router import Router
from dialogs.services import Services
from dialogs.ticket_status import TicketStatusDialog
from knowledge.index import prepare
from knowledge.provider import KnowledgeProvider

logger = logging.getLogger("kollega")

MAX_REQUEST_BYTES = 2 * 1024 * 1024
AUDIT_RETENTION_INTERVAL_SECONDS = 6 * 3600


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
    audiences: AudienceResolver
    workplace: WorkplaceAdapter | None = None
    webchat: WebChatAdapter | None = None


KOLLEGA = web.AppKey("kollega", Kollega)


def build_router(settings: Settings, registry: TicketRegistry | None) -> Router:
    """The skills, in the order they get to recognise a message before the knowledge does."""
    skills = [
        HelpDialog(),
        ContactDialog(),
        TicketStatusDialog(registry),
        LeaveDialog(settings.leave_portal_url),
        HandoffDialog(registry),
    ]
    slow = frozenset({"contact", "ticket_status", "leave", "handoff"})
    return Router(skills=skills, slow=slow)


def ticket_registry(settings: Settings, engine) -> TicketRegistry | None:
    if not settings.tickets:
        return None
    if not settings.ticket_salt:
        raise ValueError(
            "KOLLEGA_TICKET_SALT must be set when KOLLEGA_TICKETS is: it keys the reporter "
            "hash that keeps ticket status private to the reporter"
        )
    return TicketRegistry(engine, settings.ticket_salt)


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings()
    engine = create_engine(settings.database_url)
    knowledge = KnowledgeProvider(
        settings.knowledge_dir,
        builder=functools.partial(
            prepare,
            embedding=settings.embedding,
            model_dir=settings.embedding_model_dir,
            cache_dir=settings.embedding_cache_dir,
        ),
    )
    storage: Storage = MemoryStorage() if settings.state_storage == "memory" else SqlStorage(engine)
    analytics = AnalyticsRecorder(
        engine,
        flush_seconds=settings.analytics_flush_seconds,
        spool=spool_path(settings.analytics_spool, settings.database_url),
    )
    metrics = Metrics()
    audiences = AudienceResolver(
        lambda: knowledge.current.access if knowledge.ready else None,
        home_tenant=settings.home_tenant_id or settings.graph_tenant_id,
        cache_seconds=settings.group_cache_seconds,
        cache_size=settings.group_cache_size,
    )
    services = Services(
        knowledge=knowledge,
        switchboard=settings.switchboard,
    )
    bot = KollegaBot(
        services=services,
        router=build_router(settings, ticket_registry(settings, engine)),
        memory=ConversationMemory(storage),
        analytics=analytics,
        languages=LanguageGuesser(
            settings.default_language,
            SUPPORTED_LANGUAGES,
            compact=settings.language_models == "compact",
        ),
        counter=ConversationCounter(settings.analytics_secret),
        max_message_chars=settings.max_message_chars,
        on_turn_done=metrics.observe_turn,
        limiter=TurnLimiter(
            settings.rate_per_conversation_per_minute,
            settings.rate_conversation_burst,
            settings.rate_per_channel_per_second,
            channel_burst=settings.rate_per_channel_per_second * 2,
        ),
        audiences=audiences,
    )
    error_handler = turn_error_handler(settings.default_language)
    channel = BotFrameworkChannel(
        settings,
        on_turn_error=error_handler,
        on_auth_timed=lambda seconds: metrics.turn_seconds.labels("auth").observe(seconds),
    )

    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    kollega = Kollega(settings, knowledge, bot, analytics, metrics, storage, channel, audiences)
    app[KOLLEGA] = kollega

    async def messages(request: web.Request) -> web.Response:
        return await channel.handle(request, bot)

    app.router.add_post("/api/messages", messages)
    _add_workplace(app, kollega, error_handler)
    _add_webchat(app, kollega, error_handler)
    health_routes(app, knowledge=knowledge, engine=engine, metrics=metrics, analytics=analytics)
    add_admin_routes(app, kollega)
    jobs = PeriodicJobs()

    async def start(_: web.Application) -> None:
        result = await knowledge.reload()
        if not knowledge.ready:
            problems = "\n".join(str(p) for p in result.errors)
            raise RuntimeError(
                f"the knowledge in {settings.knowledge_dir} does not load:\n{problems}"
            )
        await ensure_schema(engine, settings.database_url)
        warm_up(compact=settings.language_models == "compact")
        await analytics.start()
        knowledge.start_watching(settings.knowledge_poll_seconds)
        jobs.start(
            functools.partial(delete_older_than, engine, settings.retention_days),
            settings.retention_interval_seconds,
            "analytics-retention",
        )
        # The audit log is kept a year by default: long enough to answer "who changed this".
        jobs.start(
            functools.partial(purge_older_than, engine, settings.audit_retention_days),
            AUDIT_RETENTION_INTERVAL_SECONDS,
            "audit-retention",
        )

    async def stop(_: web.Application) -> None:
        await jobs.stop()
        await knowledge.stop_watching()
        await analytics.stop()
        await db_work.close(engine)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.cleanup_ctx.append(_outside_systems(settings, services, audiences))
    return app


def graph_client(settings: Settings) -> GraphClient | None:
    """One Graph client per process, so msal's token cache is shared by every turn."""
    if not (settings.graph_tenant_id and settings.graph_client_id and settings.graph_client_secret):
        return None
    return GraphClient(
        tenant_id=settings.graph_tenant_id,
        client_id=settings.graph_client_id,
        client_secret=settings.graph_client_secret,
        base_url=settings.graph_url,
        authority=settings.graph_authority,
        ca_bundle=settings.graph_ca_bundle or None,
        timeout=settings.graph_timeout_seconds,
    )


def _outside_systems(settings: Settings, services: Services, audiences: AudienceResolver):
    """One HTTP session for every outside system, opened with the app and closed after it."""

    async def context(_: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            tls = ssl.create_default_context()
            if settings.smtp_ca_bundle:
                tls.load_verify_locations(settings.smtp_ca_bundle)
            services.tickets = build_ticket_system(
                settings, session, smtp_tls_context=tls, timeout=settings.ticket_timeout_seconds
            )
            if settings.leave_url:
                services.leave = LeaveBalanceClient(
                    settings.leave_url, session, token=settings.leave_token
                )
            directory = graph_client(settings)
            services.directory = directory
            audiences.directory = directory
            try:
                yield
            finally:
                if directory is not None:
                    await directory.close()

    return context


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


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _add_webchat(app: web.Application, kollega: Kollega, error_handler) -> None:
    settings = kollega.settings
    if not settings.webchat_enabled:
        return
    sign_in = None
    if settings.webchat_token_audience:
        sign_in = EntraIdValidator(
            tenant_id=settings.webchat_tenant_id,
            audiences=_split(settings.webchat_token_audience),
            issuers=_split(settings.webchat_token_issuer),
            jwks_url=settings.webchat_jwks_url,
        )
    kollega.webchat = WebChatAdapter(
        bot=kollega.bot,
        on_turn_error=error_handler,
        secret=settings.webchat_secret,
        session_ttl_seconds=settings.webchat_session_hours * 3600,
        sign_in=sign_in,
        allowed_origins=_split(settings.webchat_allowed_origins),
        default_language=settings.default_language,
        max_body_bytes=settings.webchat_max_body_bytes,
        message_burst=settings.webchat_rate_burst,
        messages_per_second=settings.webchat_rate_per_second,
        session_burst=settings.webchat_session_burst,
        sessions_per_second=settings.webchat_sessions_per_second,
    )
    kollega.webchat.add_routes(app, "/api/webchat")


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
