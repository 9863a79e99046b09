"""A user's audience for one turn: which knowledge domains they see, or why they see none.

``access.yaml`` (``knowledge.access``) says what each audience sees; this module finds out
which audiences the asking user is in. Anonymous channels and guests are told apart from
what the channel says (``dialogs.turn.User``); group membership comes from Microsoft
Graph (``/users/{id}/transitiveMemberOf``, group ids only, paged by ``GraphClient``).

What is kept, and why:

* Group ids are cached in memory per user for ``cache_seconds`` (a pilot membership
  changed in Entra takes effect within that time), keyed by a keyed hash of the object
  id whose key is random per process, so the cache never holds an id in clear. Only the
  groups ``access.yaml`` names are kept, not the user's whole membership. The cache is
  bounded (least recently used entries go first) and nothing of it is ever written down.
* Concurrent turns of one user share one Graph call.
* When Graph fails the user is *not* cached, and Graph is left alone for
  ``outage_seconds`` so a directory outage costs each turn nothing instead of a timeout.
  Meanwhile the decision fails closed: only the domains that need no group lookup
  (``employees: ["*"]``, the guest set) are granted, and a gate by group says "cannot
  check right now" rather than letting anyone in.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from adapters.graph import GraphUnavailable
from dialogs.answer import owner_display
from dialogs.base import DialogContext
from dialogs.texts import text
from dialogs.turn import Outcome, Reply, User
from knowledge.access import AccessRules, Kind, Verdict

logger = logging.getLogger(__name__)

DEFAULT_CACHE_SECONDS = 300.0
DEFAULT_CACHE_SIZE = 10_000
DEFAULT_OUTAGE_SECONDS = 30.0
ANONYMOUS_ROLES = frozenset({"anonymous"})


class GroupDirectory(Protocol):
    """What the resolver needs of ``adapters.graph.GraphClient``."""

    async def transitive_group_ids(self, user_id: str) -> set[str]: ...


@dataclass(frozen=True, slots=True)
class Access:
    """One turn's access, as the turn glue uses it.

    ``domains`` goes to ``DialogContext.allowed_domains`` (None: no ``access.yaml``, all
    domains). ``degraded`` means some domains the user may be entitled to are withheld
    because the directory could not be asked; say so where the user would miss them.
    """

    allowed: bool
    domains: frozenset[str] | None = None
    verdict: Verdict = Verdict.GRANTED
    degraded: bool = False
    audiences: tuple[str, ...] = ()
    contact: str = ""

    @property
    def outcome(self) -> Outcome | None:
        """The analytics outcome of a refused turn; None when the turn goes on."""
        return None if self.allowed else Outcome.NOT_ALLOWED


EVERYTHING = Access(allowed=True)


def kind_of(user: User, home_tenant: str = "") -> Kind:
    """Anonymous, guest or member, from what the channel says about the user.

    Anonymous: no Entra object id (web chat without sign-in, Workplace, the Emulator).
    Guest: the channel says so (``from.role``/``userRole`` "guest", the web chat's ``acct``
    claim), or the user's tenant is not the home tenant (a user of another organisation).
    """
    if not user.aad_object_id:
        return Kind.ANONYMOUS
    if user.is_guest:
        return Kind.GUEST
    if home_tenant and user.tenant_id and user.tenant_id.lower() != home_tenant.lower():
        return Kind.GUEST
    return Kind.MEMBER


def role_is_guest(account: Any) -> bool:
    """Whether a channel account (botbuilder object or dict) says it is a guest.

    Bot Framework's ``ChannelAccount.role`` and Teams' ``TeamsChannelAccount.userRole``
    (which botbuilder-python keeps in ``additional_properties``) both carry "guest".
    ``bot.incoming.user_of`` can use this for ``User.is_guest``.
    """
    if account is None:
        return False
    if isinstance(account, dict):
        values = [account.get("role"), account.get("userRole")]
    else:
        extra = getattr(account, "additional_properties", None) or {}
        values = [
            getattr(account, "role", None),
            getattr(account, "user_role", None),
            extra.get("userRole"),
        ]
    return any(str(v or "").lower() == "guest" for v in values)


class AudienceResolver:
    """Resolves ``Access`` per turn from the current rules and a cached directory lookup.

    ``rules`` is called on every turn so a hot-reloaded ``access.yaml`` applies at once (and
    a cached entry made under other rules is not reused). ``directory`` is settable after
    construction, because the Graph client is built with the app's HTTP session.
    """

    def __init__(
        self,
        rules: Callable[[], AccessRules | None],
        directory: GroupDirectory | None = None,
        *,
        home_tenant: str = "",
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        cache_size: int = DEFAULT_CACHE_SIZE,
        outage_seconds: float = DEFAULT_OUTAGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if cache_size < 1:
            raise ValueError("the group cache needs room for at least one user")
        self._rules = rules
        self.directory = directory
        self.home_tenant = home_tenant.strip()
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self.outage_seconds = outage_seconds
        self._clock = clock
        self._key = secrets.token_bytes(32)  # never leaves this process
        # hashed user -> (expires at, groups named by the rules, those rules' group set)
        self._cache: OrderedDict[str, tuple[float, frozenset[str], frozenset[str]]] = OrderedDict()
        self._in_flight: dict[str, asyncio.Task[frozenset[str]]] = {}
        self._down_until = 0.0
        self._warned_no_directory = False
        self.lookups = 0  # Graph calls made, for tests and /metrics

    async def resolve(self, user: User) -> Access:
        """The user's access for this turn. Never raises because of the directory."""
        rules = self._rules()
        if rules is None:
            return EVERYTHING
        kind = kind_of(user, self.home_tenant)
        groups: frozenset[str] | None = frozenset()
        if rules.needs_groups(kind) and self._in_home_tenant(user):
            groups = await self.groups_of(user.aad_object_id, rules.referenced_groups)
        decision = rules.decide(kind, groups)
        if decision.degraded:
            logger.info("access decided without the directory (%s)", decision.verdict)
        return Access(
            allowed=decision.allowed,
            domains=decision.domains if decision.allowed else frozenset(),
            verdict=decision.verdict,
            degraded=decision.degraded,
            audiences=decision.audiences,
            contact=rules.contact,
        )

    def _in_home_tenant(self, user: User) -> bool:
        """Another tenant's user has no object in our directory: there is nothing to ask."""
        return not (
            self.home_tenant
            and user.tenant_id
            and user.tenant_id.lower() != self.home_tenant.lower()
        )

    async def groups_of(self, object_id: str, relevant: frozenset[str]) -> frozenset[str] | None:
        """Of ``relevant`` groups, those the user is in; None when the directory cannot tell."""
        key = self._hash(object_id)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None:
            expires, groups, under = cached
            if now < expires and under == relevant:
                self._cache.move_to_end(key)
                return groups
            del self._cache[key]
        directory = self.directory
        if directory is None:
            if not self._warned_no_directory:
                logger.warning(
                    "access.yaml names groups but Microsoft Graph is not configured "
                    "(KOLLEGA_GRAPH_*): group audiences stay closed"
                )
                self._warned_no_directory = True
            return None
        if now < self._down_until:
            return None
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.create_task(self._look_up(directory, object_id, relevant))
            self._in_flight[key] = task
            task.add_done_callback(lambda _: self._in_flight.pop(key, None))
        try:
            groups = await asyncio.shield(task)
        except GraphUnavailable as exc:
            self._down_until = self._clock() + self.outage_seconds
            logger.warning("group lookup failed, failing closed: %s", exc)
            return None
        except Exception as exc:  # an access decision must fail closed, whatever broke
            self._down_until = self._clock() + self.outage_seconds
            logger.error("group lookup failed unexpectedly: %s", type(exc).__name__)
            return None
        self._remember(key, groups, relevant)
        return groups

    async def _look_up(
        self, directory: GroupDirectory, object_id: str, relevant: frozenset[str]
    ) -> frozenset[str]:
        self.lookups += 1
        found = await directory.transitive_group_ids(object_id)
        return frozenset(g.lower() for g in found) & relevant

    def _remember(self, key: str, groups: frozenset[str], relevant: frozenset[str]) -> None:
        self._cache[key] = (self._clock() + self.cache_seconds, groups, relevant)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def forget(self) -> None:
        """Drop every cached membership (say, after an admin changed a pilot group)."""
        self._cache.clear()
        self._down_until = 0.0

    @property
    def cached_users(self) -> int:
        return len(self._cache)

    def _hash(self, object_id: str) -> str:
        digest = hmac.new(self._key, object_id.strip().lower().encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()


def refusal_text(access: Access, language: str) -> str:
    """What a refused user is told: not yet for you (and whom to ask), or try again later."""
    contact = owner_display(access.contact) if access.contact else ""
    if access.verdict is Verdict.UNVERIFIABLE:
        return text("access.unverifiable", language, contact=contact)
    return text("access.not_allowed", language, contact=contact)


def degraded_text(language: str) -> str:
    """Added to a fallback or help answer while some of the user's domains are withheld."""
    return text("access.degraded", language)


# Outcomes after which a user may miss a withheld domain: nothing matched, or the list of
# topics was shown without it.
_MISSES = frozenset({Outcome.FALLBACK, Outcome.HELP, Outcome.CHOICES})


def refuse(dc: DialogContext, access: Access) -> None:
    """Answer a refused turn: the polite sentence, and ``not_allowed`` for analytics."""
    dc.say(Reply(refusal_text(access, dc.language)))
    dc.result.outcome = Outcome.NOT_ALLOWED
    dc.result.intent = None
    dc.result.domain = None


def note_degraded(dc: DialogContext, access: Access) -> None:
    """After the router: say that some topics are withheld, where the user would miss them."""
    if access.degraded and dc.result.outcome in _MISSES:
        dc.say(Reply(degraded_text(dc.language)))
