"""Health, readiness and Prometheus metrics: what load balancers and ops dashboards read.

``/healthz`` says the process is alive (never touches the database, so a database outage
does not get healthy replicas killed); ``/readyz`` says this replica should get traffic:
knowledge loaded and database reachable. Metrics carry no message text and no identity.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dialogs.turn import TurnResult

logger = logging.getLogger(__name__)


class Metrics:
    """One registry per app, so tests and several apps in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.turns = Counter(
            "kollega_turns",
            "Message turns handled",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.turn_seconds = Histogram(
            "kollega_turn_seconds",
            "Time spent in a message turn, by stage",
            ["stage"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.outside_errors = Counter(
            "kollega_outside_system_errors",
            "Failed calls to outside systems",
            ["system"],
            registry=self.registry,
        )
        self.knowledge_version = Gauge(
            "kollega_knowledge_version",
            "Reloads of the knowledge since start",
            registry=self.registry,
        )
        self.analytics_pending = Gauge(
            "kollega_analytics_pending",
            "Analytics events waiting for the database",
            registry=self.registry,
        )

    def observe_turn(self, channel: str, result: TurnResult, timings: Any) -> None:
        self.turns.labels(channel or "unknown", str(result.outcome)).inc()
        for stage in ("state", "dialogs", "reply", "analytics"):
            self.turn_seconds.labels(stage).observe(getattr(timings, stage))


async def database_reachable(engine: AsyncEngine, limit_seconds: float = 2.0) -> bool:
    try:
        async with asyncio.timeout(limit_seconds):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return True
    except Exception as exc:
        logger.warning("database not reachable: %s", type(exc).__name__)
        return False


def health_routes(
    app: web.Application,
    *,
    knowledge: Any,
    engine: AsyncEngine,
    metrics: Metrics,
    analytics: Any,
) -> None:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        checks = {
            "knowledge": bool(knowledge.ready),
            "database": await database_reachable(engine),
        }
        status = 200 if all(checks.values()) else 503
        return web.json_response({"ready": status == 200, "checks": checks}, status=status)

    async def metrics_endpoint(_: web.Request) -> web.Response:
        metrics.knowledge_version.set(knowledge.version)
        metrics.analytics_pending.set(analytics.pending)
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
