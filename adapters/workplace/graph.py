"""Calls to Meta's Graph API (Send API, comments) with bounded retries and careful logging.

Graph throttles with HTTP 429, and also with HTTP 400 carrying error codes 4, 17, 32 or 613
(rate limits) or 1200 (temporary send failure); those and 5xx are retried with exponential
backoff and jitter, honouring ``Retry-After``, within an overall deadline per call so a sick
Graph cannot hold a turn for minutes. Any other 4xx is permanent and logged with its status,
error code, subcode and ``fbtrace_id`` only: Graph's error ``message`` can quote what the bot
tried to send, and that text may be personal data.

Failures never raise: callers get ``None`` and the bot carries on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)

_RETRYABLE_GRAPH_CODES = frozenset({1, 2, 4, 17, 32, 613, 1200})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one Graph call: attempts, backoff, and deadlines (seconds)."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    request_timeout: float = 10.0
    total_timeout: float = 45.0

    def backoff(self, attempt: int, retry_after: str | None) -> float:
        """Delay before retry number ``attempt`` (1-based): Retry-After if given, else jittered."""
        honoured = _parse_retry_after(retry_after)
        if honoured is not None:
            return min(honoured, self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


SessionProvider = Callable[[], Awaitable[aiohttp.ClientSession]]


class GraphClient:
    """A thin Graph client: JSON in, JSON out, bearer token in the header (never in the URL)."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        session: SessionProvider,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._session = session
        self._policy = policy or RetryPolicy()

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST ``body`` as JSON to ``path``; the answer's JSON, or None if it finally failed."""
        return await self._call("POST", path, body)

    async def delete(self, path: str) -> dict[str, Any] | None:
        """DELETE ``path``; the answer's JSON, or None if it finally failed."""
        return await self._call("DELETE", path, None)

    async def _call(
        self, method: str, path: str, body: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        what = f"{method} {_redact_path(path)}"
        try:
            async with asyncio.timeout(self._policy.total_timeout):
                return await self._attempts(method, path, body, what)
        except TimeoutError:
            logger.error(
                "workplace graph %s gave up after %.0f s", what, self._policy.total_timeout
            )
            return None

    async def _attempts(
        self, method: str, path: str, body: dict[str, Any] | None, what: str
    ) -> dict[str, Any] | None:
        policy = self._policy
        session = await self._session()
        url = f"{self._base_url}/{path.lstrip('/')}"
        timeout = aiohttp.ClientTimeout(total=policy.request_timeout)
        for attempt in range(1, policy.attempts + 1):
            last = attempt == policy.attempts
            try:
                async with session.request(
                    method, url, json=body, headers=self._headers, timeout=timeout
                ) as response:
                    data = await _json(response)
                    if 200 <= response.status < 300:
                        return data if isinstance(data, dict) else {}
                    code, subcode, trace = _graph_error(data)
                    retry_after = response.headers.get("Retry-After")
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                if last:
                    logger.error(
                        "workplace graph %s failed after %d attempts: %s",
                        what,
                        attempt,
                        type(exc).__name__,
                    )
                    return None
                delay = policy.backoff(attempt, None)
                logger.warning(
                    "workplace graph %s: %s, retry %d in %.2f s",
                    what,
                    type(exc).__name__,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)
                continue

            retryable = status == 429 or status >= 500 or code in _RETRYABLE_GRAPH_CODES
            if retryable and not last:
                delay = policy.backoff(attempt, retry_after)
                logger.warning(
                    "workplace graph %s: status=%s code=%s, retry %d in %.2f s",
                    what,
                    status,
                    code,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            logger.error(
                "workplace graph %s failed: status=%s code=%s subcode=%s fbtrace_id=%s%s",
                what,
                status,
                code,
                subcode,
                trace,
                f" after {attempt} attempts" if retryable else "",
            )
            return None
        return None  # pragma: no cover - the loop always returns


async def _json(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return None


def _graph_error(data: Any) -> tuple[int | None, int | None, str | None]:
    """Graph's error code, subcode and trace id; deliberately not its message."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None, None
    code, subcode, trace = error.get("code"), error.get("error_subcode"), error.get("fbtrace_id")
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        subcode if isinstance(subcode, int) and not isinstance(subcode, bool) else None,
        trace if isinstance(trace, str) else None,
    )


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After as delay seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _redact_path(path: str) -> str:
    """The endpoint for logs: ``me/messages`` as is, object ids (posts, comments) masked."""
    parts = path.strip("/").split("/")
    return "/".join(p if not any(c.isdigit() for c in p) else "{id}" for p in parts)
