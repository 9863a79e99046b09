"""Leave balances from the HR system, through one small REST contract of kollega's own.

HR systems differ (SAP SuccessFactors, Visma, Unit4 …), so kollega asks an endpoint that
the HR team or an integration platform puts in front of theirs (``KOLLEGA_LEAVE_URL``):

``GET {KOLLEGA_LEAVE_URL}?upn=<principal name>`` with ``Accept: application/json`` (and
``Authorization: Bearer <token>`` when kollega is given one) answers 200 with::

    {"upn": "kari.nordmann@example.org", "days_left": 12.5, "days_total": 25,
     "year": 2026, "updated": "2026-11-20T06:00:00+01:00"}

``days_left`` and ``days_total`` are numbers (half days allowed), ``year`` the leave year,
``updated`` when HR last computed the balance (ISO 8601; may be null). 404 means HR has no
balance for that person. Anything else, or an answer that does not look like the above, is
a ``LeaveServiceError``; so is a balance for another ``upn`` than the one asked about.

The balance is personal: it goes to the user and nowhere else (no logs, no analytics).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class LeaveBalance:
    """One person's vacation days for one leave year."""

    days_left: float
    days_total: float
    year: int
    updated: datetime | None = None


class LeaveServiceError(Exception):
    """The HR endpoint could not answer; ``reason`` is a short code, safe to log."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(f"{reason} (HTTP {status})" if status is not None else reason)
        self.reason = reason
        self.status = status


class LeaveBalanceClient:
    """Asks ``base_url`` for a person's leave balance by principal name."""

    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession,
        *,
        token: str = "",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url
        self.session = session
        self.token = token
        self.timeout = timeout

    async def balance(self, upn: str) -> LeaveBalance | None:
        """The balance of ``upn``, None when HR has none, ``LeaveServiceError`` on failure."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            async with (
                asyncio.timeout(self.timeout),
                self.session.get(
                    self.base_url,
                    params={"upn": upn},
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as response,
            ):
                status = response.status
                data = await response.json(content_type=None) if status == 200 else None
        except TimeoutError as error:
            raise LeaveServiceError("timeout") from error
        except (aiohttp.ClientError, OSError) as error:
            raise LeaveServiceError("unavailable") from error
        except ValueError as error:  # not JSON
            raise LeaveServiceError("bad_answer", 200) from error
        if status == 404:
            return None
        if status != 200:
            logger.warning("leave balance lookup failed: HTTP %s", status)
            raise LeaveServiceError("unauthorised" if status in (401, 403) else "failed", status)
        return _parse(data, upn)


def _parse(data: Any, upn: str) -> LeaveBalance:
    if not isinstance(data, dict):
        raise LeaveServiceError("bad_answer", 200)
    answered_for = str(data.get("upn") or "")
    if answered_for and answered_for.casefold() != upn.casefold():
        # Never show one person another's balance, whatever the HR side got wrong.
        logger.warning("leave balance answer was for another person; discarded")
        raise LeaveServiceError("wrong_person", 200)
    try:
        days_left = _number(data["days_left"])
        days_total = _number(data["days_total"])
        year = int(data["year"])
    except (KeyError, TypeError, ValueError) as error:
        raise LeaveServiceError("bad_answer", 200) from error
    updated = None
    if isinstance(data.get("updated"), str):
        try:
            updated = datetime.fromisoformat(data["updated"].replace("Z", "+00:00"))
        except ValueError:
            updated = None
    return LeaveBalance(days_left=days_left, days_total=days_total, year=year, updated=updated)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError("not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number
