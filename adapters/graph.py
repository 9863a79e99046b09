"""Microsoft Graph, as the contact lookup needs it: people by name, a user's manager, groups.

The client speaks Graph directly over aiohttp (no Graph SDK) and gets its app-only token
from msal's ``ConfidentialClientApplication`` (client credentials). Two things shape it:

* A chat turn must never hang on Graph. Every public call has one total time budget
  (token, retries and pages included), a cap on concurrent calls, bounded retries for
  throttling (429 + ``Retry-After``) and server errors, and fails with one exception type,
  ``GraphUnavailable``, that dialogs turn into a polite sentence.
* msal is synchronous and blocking (it fetches the tenant's OpenID configuration with
  ``requests`` when the app is built and the token when the cache is empty), so it runs on
  one dedicated worker thread, never on the event loop. Its token cache is msal's own, one
  per client, so build one ``GraphClient`` per process.

Trust: ``ca_bundle`` (``KOLLEGA_GRAPH_CA_BUNDLE``) adds CAs on top of the system trust for
both the authority and Graph (private clouds, TLS-inspecting proxies, tests). ``requests``
lets ``REQUESTS_CA_BUNDLE`` override a session's ``verify``, so msal gets a session that
passes the bundle explicitly on every request.

Nothing here logs names, ids or search terms: only status codes and error codes.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import ssl
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import msal
import requests
from requests.adapters import HTTPAdapter

logger = logging.getLogger(__name__)

DEFAULT_GRAPH_URL = "https://graph.microsoft.com"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
API_VERSION = "v1.0"

# Exactly what the contact card shows; Graph returns nothing else about a person.
PERSON_FIELDS = (
    "id",
    "displayName",
    "jobTitle",
    "department",
    "officeLocation",
    "mail",
    "userPrincipalName",
    "businessPhones",
    "mobilePhone",
)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_SEARCH_CHARS = 120


class GraphUnavailable(Exception):
    """Graph (or its token authority) could not answer in time; the user gets a polite text.

    The message names the status or error code only, never who or what was looked up.
    """


@dataclass(frozen=True, slots=True)
class Person:
    """One person from the directory, as much as the contact card shows. Never stored."""

    id: str
    display_name: str
    job_title: str = ""
    department: str = ""
    office_location: str = ""
    mail: str = ""
    user_principal_name: str = ""
    business_phones: tuple[str, ...] = ()
    mobile_phone: str = ""
    # An organisational contact (outside the tenant, e.g. a manager in another
    # organisation): it has no Teams account to chat with.
    is_contact: bool = False

    @property
    def phones(self) -> tuple[str, ...]:
        """Business numbers first, then the mobile, without duplicates."""
        seen: list[str] = []
        for number in (*self.business_phones, self.mobile_phone):
            if number and number not in seen:
                seen.append(number)
        return tuple(seen)

    @classmethod
    def from_graph(cls, data: Mapping[str, Any]) -> Person:
        """Build from a Graph user or orgContact object (``@odata.type`` tells which).

        ``/manager`` returns a directoryObject that may be an orgContact, whose phones are
        a list of ``{type, number}`` and whose office sits in ``addresses``.
        """
        odata_type = str(data.get("@odata.type") or "").lower()
        is_contact = odata_type.endswith("orgcontact")
        business = [str(p) for p in data.get("businessPhones") or [] if p]
        mobile = _text(data.get("mobilePhone"))
        office = _text(data.get("officeLocation"))
        if is_contact:
            for phone in data.get("phones") or []:
                if not isinstance(phone, Mapping) or not phone.get("number"):
                    continue
                kind = str(phone.get("type") or "").lower()
                if kind == "mobile" and not mobile:
                    mobile = str(phone["number"])
                elif kind in ("business", ""):
                    business.append(str(phone["number"]))
            for address in data.get("addresses") or []:
                if isinstance(address, Mapping) and address.get("officeLocation") and not office:
                    office = str(address["officeLocation"])
        return cls(
            id=_text(data.get("id")),
            display_name=_text(data.get("displayName")),
            job_title=_text(data.get("jobTitle")),
            department=_text(data.get("department")),
            office_location=office,
            mail=_text(data.get("mail")),
            user_principal_name="" if is_contact else _text(data.get("userPrincipalName")),
            business_phones=tuple(business),
            mobile_phone=mobile,
            is_contact=is_contact,
        )


def _text(value: Any) -> str:
    return str(value).strip() if value else ""


def search_clause(name: str) -> str:
    """The ``$search`` value for a display-name search on ``name``.

    Graph wants each clause in double quotes and a double quote or backslash inside it
    escaped with a backslash; URL encoding of the rest is aiohttp's job. Graph tokenises
    the clause itself (words in any order, each a prefix), so the name is passed whole.
    """
    term = " ".join(name.split())[:MAX_SEARCH_CHARS]
    escaped = term.replace("\\", "\\\\").replace('"', '\\"')
    return f'"displayName:{escaped}"'


def _https_origin(url: str, what: str) -> str:
    """``scheme://host[:port]`` of ``url``, which must be https (tokens never go in clear)."""
    if "://" not in url:
        url = f"https://{url}"
    parts = urlsplit(url.rstrip("/"))
    if parts.scheme != "https" or not parts.netloc:
        raise ValueError(f"{what} must be an https:// URL, got {url!r}")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError(f"{what} must be a host without a path (the client adds it), got {url!r}")
    return f"https://{parts.netloc}"


def build_ssl_context(ca_bundle: str | Path | None) -> ssl.SSLContext | None:
    """The system trust plus the extra CAs in ``ca_bundle``; None when there are none."""
    if not ca_bundle:
        return None
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=str(ca_bundle))
    return context


class _ContextAdapter(HTTPAdapter):
    """A requests adapter whose TLS context is ours (system trust plus the bundle)."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


class MsalHttpClient(requests.Session):
    """The ``http_client`` msal gets: the bundle on every request, and a timeout.

    ``requests`` replaces a session-level ``verify`` with ``REQUESTS_CA_BUNDLE`` from the
    environment whenever a request leaves ``verify`` unset, which would silently drop our
    bundle; passing it per request is the only way it always wins.
    """

    def __init__(self, ca_bundle: str | Path | None, timeout: float) -> None:
        super().__init__()
        self._verify: bool | str = str(ca_bundle) if ca_bundle else True
        self._timeout = timeout
        context = build_ssl_context(ca_bundle)
        # One retry on a dropped connection, as msal's own default session does.
        adapter = _ContextAdapter(context, max_retries=1) if context else HTTPAdapter(max_retries=1)
        self.mount("https://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["verify"] = self._verify
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


class GraphClient:
    """Microsoft Graph with an app-only token; every public call ends or raises in ``timeout``.

    ``base_url`` is Graph without a version (the client adds ``/v1.0/…``); ``authority`` is
    the login host (the client adds ``/{tenant_id}``). A ``session`` handed in stays the
    caller's; one created here is closed by ``close()``.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        base_url: str = DEFAULT_GRAPH_URL,
        authority: str = DEFAULT_AUTHORITY,
        ca_bundle: str | Path | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 8.0,
        max_concurrency: int = 4,
        max_retries: int = 2,
        backoff: float = 0.25,
        max_retry_wait: float = 3.0,
        max_pages: int = 20,
    ) -> None:
        if not (tenant_id and client_id and client_secret):
            raise ValueError("tenant_id, client_id and client_secret are all needed for Graph")
        if ca_bundle and not Path(ca_bundle).is_file():
            raise ValueError(f"the Graph CA bundle {str(ca_bundle)!r} is not a file")
        self.base_url = _https_origin(base_url, "the Graph URL")
        self.authority = _https_origin(authority, "the Graph authority")
        self._tenant_id = tenant_id.strip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._ca_bundle = str(ca_bundle) if ca_bundle else None
        self._ssl: ssl.SSLContext | bool = build_ssl_context(ca_bundle) or True
        self._session = session
        self._own_session = session is None
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff
        self._max_retry_wait = max_retry_wait
        self._max_pages = max_pages
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._scopes = [f"{self.base_url}/.default"]
        # msal state, touched only on the one msal worker thread, which serialises it.
        self._msal_app: msal.ConfidentialClientApplication | None = None
        self._msal_http: MsalHttpClient | None = None
        self._executor: ThreadPoolExecutor | None = None

    # Public API ---------------------------------------------------------------------

    async def search_people(self, name: str, limit: int = 5) -> list[Person]:
        """People whose display name matches ``name`` (each word a prefix), at most ``limit``.

        Sorted by display name so a numbered pick means the same person on the next turn.
        """
        if not name.strip():
            return []
        params = {
            "$search": search_clause(name),
            "$select": ",".join(PERSON_FIELDS),
            "$count": "true",
            "$orderby": "displayName",
            "$top": str(max(1, min(limit, 25))),
        }
        # $search on directory objects is an "advanced query": it needs this header.
        headers = {"ConsistencyLevel": "eventual"}

        async def run() -> list[Person]:
            data = await self._get_json(self._url("users"), params, headers)
            items = (data or {}).get("value") or []
            return [Person.from_graph(item) for item in items[:limit] if isinstance(item, dict)]

        return await self._call(run)

    async def get_person(self, user_id: str) -> Person | None:
        """One user by object id or principal name; None when there is no such user."""

        async def run() -> Person | None:
            url = self._url(f"users/{_segment(user_id)}")
            data = await self._get_json(url, {"$select": ",".join(PERSON_FIELDS)}, not_found=True)
            return Person.from_graph(data) if data else None

        return await self._call(run)

    async def get_manager(self, user_id: str) -> Person | None:
        """The user's manager (a user or an orgContact); None when none is set (Graph: 404).

        No ``$select`` here: the answer may be an orgContact, whose phones and office live
        in other properties than a user's, and selecting user-only ones would fail for it.
        """

        async def run() -> Person | None:
            url = self._url(f"users/{_segment(user_id)}/manager")
            data = await self._get_json(url, None, not_found=True)
            return Person.from_graph(data) if data else None

        return await self._call(run)

    async def transitive_group_ids(self, user_id: str) -> set[str]:
        """Ids of every group the user is in, directly or through other groups.

        Raises ``GraphUnavailable`` rather than return a partial set when there are more
        than ``max_pages`` pages: a caller deciding access must not act on half a list.
        """

        async def run() -> set[str]:
            url = self._url(f"users/{_segment(user_id)}/transitiveMemberOf/microsoft.graph.group")
            ids: set[str] = set()
            async for item in self._paged(url, {"$select": "id", "$top": "999"}):
                if item.get("id"):
                    ids.add(str(item["id"]))
            return ids

        return await self._call(run)

    async def close(self) -> None:
        """Close the session if this client made it, and stop the msal worker thread."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None
        executor, self._executor = self._executor, None
        if executor is not None:
            # On the worker thread, after any token request still running there, so the
            # event loop never blocks on msal's network timeout.
            try:
                await asyncio.wrap_future(executor.submit(self._close_msal))
            finally:
                executor.shutdown(wait=False)

    # Plumbing -----------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{API_VERSION}/{path}"

    async def _call(self, run: Any) -> Any:
        """Run one public call under the concurrency cap and the total time budget."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                async with self._semaphore:
                    return await run()
        except TimeoutError:
            logger.warning("Graph call gave up after %.1f s", time.monotonic() - started)
            raise GraphUnavailable(f"Graph did not answer within {self._timeout} s") from None

    async def _paged(self, url: str, params: dict[str, str] | None) -> Any:
        """Every item of a collection, following ``@odata.nextLink`` for at most max_pages."""
        next_url: str | None = url
        pages = 0
        while next_url:
            pages += 1
            if pages > self._max_pages:
                raise GraphUnavailable(
                    f"more than {self._max_pages} pages; refusing a partial list"
                )
            data = await self._get_json(next_url, params) or {}
            for item in data.get("value") or []:
                if isinstance(item, dict):
                    yield item
            next_url = data.get("@odata.nextLink")
            params = None  # the next link carries the whole query
            if next_url and not next_url.startswith(f"{self.base_url}/"):
                # Never send our bearer token to a host the answer names.
                raise GraphUnavailable("Graph's next link points to another host")

    async def _get_json(
        self,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None = None,
        *,
        not_found: bool = False,
    ) -> dict[str, Any] | None:
        """GET with retries for 429/5xx and dropped connections; None for a 404 if allowed."""
        attempt = 0
        while True:
            token = await self._token()
            request_headers = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                **(headers or {}),
            }
            try:
                async with self._http().get(
                    url,
                    params=params,
                    headers=request_headers,
                    ssl=self._ssl,
                    allow_redirects=False,
                ) as response:
                    if response.status == 200:
                        data = await response.json(content_type=None)
                        if not isinstance(data, dict):
                            raise GraphUnavailable("Graph answered with something not an object")
                        return data
                    if response.status == 404 and not_found:
                        return None
                    code = await _error_code(response)
                    if response.status not in RETRYABLE_STATUS or attempt >= self._max_retries:
                        logger.warning("Graph answered %s (%s)", response.status, code or "-")
                        raise GraphUnavailable(f"Graph answered {response.status} ({code or '-'})")
                    delay = self._retry_delay(response.headers.get("Retry-After"), attempt)
                    logger.info("Graph answered %s; retrying in %.2f s", response.status, delay)
            except aiohttp.ClientError as exc:  # refused, reset, TLS, truncated body …
                if attempt >= self._max_retries:
                    logger.warning("Graph unreachable: %s", type(exc).__name__)
                    raise GraphUnavailable(f"Graph unreachable ({type(exc).__name__})") from exc
                delay = self._backoff * 2**attempt
            except ValueError as exc:  # a body that is not JSON
                raise GraphUnavailable("Graph answered with a body that is not JSON") from exc
            attempt += 1
            await asyncio.sleep(delay)

    def _retry_delay(self, retry_after: str | None, attempt: int) -> float:
        """Graph's ``Retry-After`` (seconds or an HTTP date) or exponential backoff, capped.

        The cap keeps a turn answerable: a longer wait than ``max_retry_wait`` would only
        run into the call's total timeout anyway.
        """
        delay = self._backoff * 2**attempt
        if retry_after:
            try:
                delay = float(retry_after)
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(retry_after)
                except (TypeError, ValueError):
                    when = None
                if when is not None:
                    if when.tzinfo is None:
                        when = when.replace(tzinfo=UTC)
                    delay = (when - datetime.now(UTC)).total_seconds()
        if not math.isfinite(delay):
            delay = self._max_retry_wait
        return max(0.0, min(delay, self._max_retry_wait))

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    # msal, on its own thread ---------------------------------------------------------

    async def _token(self) -> str:
        """An app-only access token for Graph; msal answers from its cache until expiry."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kollega-msal")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._token_blocking)

    def _token_blocking(self) -> str:
        try:
            app = self._msal_app or self._build_msal_app()
            result = app.acquire_token_for_client(scopes=self._scopes)
        except Exception as exc:
            # requests errors, msal's ValueError when the tenant's OpenID configuration
            # cannot be had, a KeyError from a malformed one: all mean "no token now", and
            # none may escape into a chat turn.
            logger.warning("Graph authority unreachable: %s", type(exc).__name__)
            raise GraphUnavailable(f"token authority failed ({type(exc).__name__})") from exc
        token = result.get("access_token") if isinstance(result, dict) else None
        if not token:
            error = result.get("error", "unknown") if isinstance(result, dict) else "unknown"
            logger.warning("Graph token refused: %s", error)
            raise GraphUnavailable(f"token refused ({error})")
        return str(token)

    def _close_msal(self) -> None:
        if self._msal_http is not None:
            self._msal_http.close()
        self._msal_http = None
        self._msal_app = None

    def _build_msal_app(self) -> msal.ConfidentialClientApplication:
        """Built on first use (it fetches the OpenID configuration, a blocking request).

        Any authority other than the public cloud's default is one msal does not know, and
        msal would then ask login.microsoftonline.com to "discover" it: turned off.
        """
        self._msal_http = MsalHttpClient(self._ca_bundle, timeout=max(1.0, self._timeout))
        app = msal.ConfidentialClientApplication(
            self._client_id,
            client_credential=self._client_secret,
            authority=f"{self.authority}/{self._tenant_id}",
            http_client=self._msal_http,
            instance_discovery=None if self.authority == DEFAULT_AUTHORITY else False,
        )
        self._msal_app = app
        return app


def _segment(value: str) -> str:
    """One URL path segment (an object id or a guest's ``…#EXT#@…`` principal name)."""
    if not value or value in (".", ".."):
        raise ValueError("an empty or relative user id")
    return quote(value, safe="@")


async def _error_code(response: aiohttp.ClientResponse) -> str:
    """Graph's ``error.code`` (e.g. ``TooManyRequests``), safe to log: no personal data."""
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code") or "")[:80] if isinstance(error, dict) else ""
