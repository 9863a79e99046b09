"""A plain botbuilder 4.17.1 echo bot: the baseline ``bench/load.py`` measures kollega against.

Nothing of kollega's turn is here (no language, matching, state or analytics): stock
``CloudAdapter.process`` + ``ConfigurationBotFrameworkAuthentication`` with JWT checks on, so
the harness shows what the SDK alone costs on this machine. Two deliberate differences
from a sample bot, both needed to run offline and both cheaper than stock, not dearer:

* outbound tokens come from ``adapters.bot_credentials`` (the fake authority over HTTPS);
  the SDK's ``MicrosoftAppCredentials`` can only ask login.microsoftonline.com;
* ``--speed-up`` applies kollega's msrest ``ClientRetryPolicy`` fix; without it the bot is
  the stock SDK, which is the point of the baseline.

Configuration is the environment kollega reads (``MicrosoftAppId``, ``MicrosoftAppPassword``,
``KOLLEGA_BOT_OPENID_METADATA_URL``, ``KOLLEGA_BOT_TOKEN_ISSUER``, ``KOLLEGA_BOT_AUTHORITY``,
``KOLLEGA_BOT_CA_BUNDLE``); ``python bench/echo_bot.py --port 3979 [--speed-up]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from aiohttp import web
from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.bot_credentials import KollegaCredentialsFactory
from adapters.bot_framework import speed_up_connector_clients


class EchoBot(ActivityHandler):
    """Says back what it was told: one outbound Bot Connector call per message."""

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await turn_context.send_activity(f"Echo: {turn_context.activity.text}")


class EchoConfig:
    """The attributes ``ConfigurationBotFrameworkAuthentication`` reads, from the environment."""

    def __init__(self) -> None:
        # The Azure names ops already use for kollega (bot/settings.py), not SCREAMING_CASE.
        self.APP_ID = os.environ.get("MicrosoftAppId", "")  # noqa: SIM112
        self.APP_PASSWORD = os.environ.get("MicrosoftAppPassword", "")  # noqa: SIM112
        self.APP_TYPE = "MultiTenant"
        self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = (
            os.environ.get("KOLLEGA_BOT_OPENID_METADATA_URL") or None
        )
        self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = os.environ.get("KOLLEGA_BOT_TOKEN_ISSUER") or None


def create_app(speed_up: bool = False) -> web.Application:
    """The echo bot's aiohttp app: ``POST /api/messages`` and ``GET /healthz``."""
    if speed_up:
        speed_up_connector_clients()
    config = EchoConfig()
    factory = KollegaCredentialsFactory(
        app_id=config.APP_ID,
        password=config.APP_PASSWORD,
        authority=os.environ.get("KOLLEGA_BOT_AUTHORITY") or "https://login.microsoftonline.com",
        ca_bundle=os.environ.get("KOLLEGA_BOT_CA_BUNDLE") or None,
    )
    adapter = CloudAdapter(
        ConfigurationBotFrameworkAuthentication(config, credentials_factory=factory)
    )
    bot = EchoBot()

    async def messages(request: web.Request) -> web.Response:
        return await adapter.process(request, bot)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3979)
    parser.add_argument("--speed-up", action="store_true", help="apply kollega's msrest fix")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    web.run_app(
        create_app(args.speed_up), host=args.host, port=args.port, access_log=None, print=None
    )


if __name__ == "__main__":
    main()
