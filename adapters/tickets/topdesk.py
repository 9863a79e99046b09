"""Tickets as TOPdesk incidents, through TOPdesk's REST API (``/tas/api``).

What kollega uses of it (TOPdesk's incident API, as its developer documentation and the
public integrations built on it describe):

- ``POST {url}/tas/api/incidents`` with Basic auth ``user:application-password`` and a
  JSON body: ``callerLookup: {"email": ...}`` fills in a registered person by e-mail,
  ``briefDescription`` (at most 80 characters), ``request`` (the text; TOPdesk allows a
  few HTML tags, so the text is escaped and line breaks become ``<br>``), and
  ``externalNumber`` (at most 60) set to kollega's reference. The answer (201) is the
  incident, with its ``number`` (``I 2311 042`` style) shown to the user.
  A 400 for a caller TOPdesk does not know is retried once as an unregistered caller
  (``caller: {"dynamicName", "email"}``): nothing was created, so that is safe.
- ``GET {url}/tas/api/incidents/number/{number}``: ``processingStatus.name`` and
  ``modificationDate`` answer the status question; ``caller.email`` must be the asking
  user, or kollega says it found nothing (the ticket registry already checked as much).
- ``GET {url}/tas/api/incidents?query=externalNumber=="KOL-…"`` (FIQL, API 3.4 and later)
  finds an incident an earlier, timed-out attempt may have created, before a user's retry
  creates it again: a create is never retried blindly.

TOPdesk's operator account for kollega needs the rights to create incidents and read them.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from adapters.tickets import (
    DEFAULT_TIMEOUT,
    SUMMARY_CHARS,
    CreatedTicket,
    NewTicket,
    TicketStatus,
    TicketSystemError,
    http_failure,
    http_json,
)

logger = logging.getLogger(__name__)

EXTERNAL_NUMBER_CHARS = 60
SPEAKERS = {"user": "User", "bot": "kollega"}


class TopdeskTicketSystem:
    """Creates and reads TOPdesk incidents as the operator account ``user``."""

    name = "topdesk"
    tracks_status = True

    def __init__(
        self,
        *,
        base_url: str,
        user: str,
        app_password: str,
        session: aiohttp.ClientSession,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.timeout = timeout
        # An application password, sent as Basic auth (user:application-password).
        self._authorization = aiohttp.encode_basic_auth(user, app_password)

    async def create(self, ticket: NewTicket) -> CreatedTicket:
        if ticket.attempt > 0:
            earlier = await self._find_by_reference(ticket.reference)
            if earlier:
                logger.info("ticket %s already in TOPdesk from an earlier try", ticket.reference)
                return CreatedTicket(ticket.reference, earlier, self.name)
        body = self._incident(ticket)
        body["callerLookup"] = {"email": ticket.reporter}
        status, answer = await self._call("POST", "/tas/api/incidents", json=body)
        if status == 400:
            # The caller is not a person TOPdesk knows: nothing was created, so ask again
            # with the caller given by name and address (an "unregistered caller").
            logger.info(
                "ticket %s: caller unknown to TOPdesk, sending unregistered", ticket.reference
            )
            del body["callerLookup"]
            body["caller"] = {"dynamicName": ticket.reporter, "email": ticket.reporter}
            status, answer = await self._call("POST", "/tas/api/incidents", json=body)
        if status not in (200, 201):
            logger.warning("ticket %s not created in TOPdesk: HTTP %s", ticket.reference, status)
            raise http_failure(status)
        number = answer.get("number") if isinstance(answer, dict) else None
        if not number:
            # Created, most likely, but unnamed: a retry finds it by its external number.
            raise TicketSystemError("bad_answer", retryable=True, status=status)
        logger.info("ticket %s created in TOPdesk", ticket.reference)
        return CreatedTicket(ticket.reference, str(number), self.name)

    async def status(self, number: str, reporter: str) -> TicketStatus | None:
        path = f"/tas/api/incidents/number/{quote(number, safe='')}"
        try:
            status, answer = await self._call("GET", path)
        except TicketSystemError as error:
            if not error.retryable:
                raise
            status, answer = await self._call("GET", path)  # a read is safe to repeat once
        if status in (404, 204):
            return None
        if status != 200:
            raise http_failure(status)
        if not isinstance(answer, dict):
            raise TicketSystemError("bad_answer", retryable=True, status=status)
        if not _same_person(_caller_email(answer), reporter):
            logger.info("ticket status refused: caller does not match the asking user")
            return None
        processing = answer.get("processingStatus") or {}
        state = processing.get("name") if isinstance(processing, dict) else None
        return TicketStatus(
            number=str(answer.get("number") or number),
            status=str(state or answer.get("status") or "?"),
            updated=_parse_time(answer.get("modificationDate")),
        )

    async def _find_by_reference(self, reference: str) -> str | None:
        """The number of the incident carrying ``reference``, if an earlier try made one."""
        params = {"query": f'externalNumber=="{reference}"', "fields": "id,number"}
        status, answer = await self._call("GET", "/tas/api/incidents", params=params)
        if status in (200, 206) and isinstance(answer, list) and answer:
            first = answer[0]
            return str(first.get("number")) if isinstance(first, dict) else None
        if status in (200, 204, 206):
            return None
        if status == 400:
            # A TOPdesk older than API 3.4 has no FIQL query: nothing to look in.
            logger.warning("TOPdesk cannot search by external number (HTTP 400)")
            return None
        raise http_failure(status)

    def _incident(self, ticket: NewTicket) -> dict[str, Any]:
        return {
            "briefDescription": ticket.summary[:SUMMARY_CHARS],
            "request": _request_html(ticket),
            "externalNumber": ticket.reference[:EXTERNAL_NUMBER_CHARS],
        }

    async def _call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await http_json(
            self.session,
            method,
            self.base_url + path,
            seconds=self.timeout,
            headers={"Accept": "application/json", "Authorization": self._authorization},
            **kwargs,
        )


def _request_html(ticket: NewTicket) -> str:
    """The incident's request text: escaped, since TOPdesk reads a few HTML tags in it."""
    parts = [_html(ticket.description), ""]
    parts.append(
        f"<i>kollega {html.escape(ticket.reference)} · {html.escape(ticket.language)}"
        f" · {html.escape(ticket.channel)}</i>"
    )
    if ticket.transcript:
        parts += ["", "<b>Conversation with kollega</b>"]
        for turn in ticket.transcript:
            speaker = SPEAKERS.get(turn.get("from", ""), turn.get("from", "?"))
            parts.append(
                f"{html.escape(speaker)}: {html.escape(' '.join(turn.get('text', '').split()))}"
            )
    return "<br>".join(parts)


def _html(text: str) -> str:
    return "<br>".join(html.escape(line) for line in text.strip().splitlines())


def _caller_email(incident: dict[str, Any]) -> str:
    caller = incident.get("caller")
    if isinstance(caller, dict):
        return str(caller.get("email") or "")
    return ""


def _same_person(a: str, b: str) -> bool:
    return bool(a) and bool(b) and a.strip().casefold() == b.strip().casefold()


def _parse_time(value: Any) -> datetime | None:
    """TOPdesk writes ``2021-02-11T06:32:36.000+0000``; anything else is left out."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
