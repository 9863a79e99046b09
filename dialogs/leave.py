"""Leave balance: "hvor mange feriedager har jeg igjen", "hur många semesterdagar har jag kvar" …

One turn: ask the HR endpoint (``adapters.leave.LeaveBalanceClient``) for the asking
user's balance by principal name and answer with days left, days in the year and when HR
last computed it. Where that cannot be done (no HR endpoint configured, a channel that
does not tell who the user is, HR down) the user is told where to look instead, the HR
self-service portal when kollega is given its address.

The answer is personal: the turn is ``Outcome.PERSONAL`` and the balance goes nowhere but
to the user (not to ``dc.result.intent``, not to logs).
"""

from __future__ import annotations

import logging
from typing import Any

from adapters.leave import LeaveServiceError
from dialogs.base import Dialog, DialogContext
from dialogs.handoff import compile_phrases, format_time
from dialogs.texts import text
from dialogs.turn import Message, Outcome

logger = logging.getLogger(__name__)

# How a balance question is put, per language (searched in the lower-cased message). They
# need a "how many"/"left"/"balance" word, so "how do I apply for vacation days" is not one.
LEAVE_REQUESTS: dict[str, tuple[str, ...]] = {
    "nb": (
        r"\bferiesaldo\w*",
        r"\bhvor\s+mange\s+(?:ferie)?dager\b.{0,40}\b(?:igjen|til\s*gode|har\s+jeg|gjenstår)",
        r"\bferiedager\b.{0,30}\b(?:igjen|til\s*gode|gjenstår)\b",
        r"\bhvor\s+mye\s+ferie\b.{0,30}\b(?:igjen|til\s*gode|har\s+jeg)",
    ),
    "sv": (
        r"\bsemestersaldo\w*",
        r"\bhur\s+många\s+(?:semester)?dagar\b.{0,40}\b(?:kvar|har\s+jag)",
        r"\bsemesterdagar\b.{0,30}\bkvar\b",
        r"\bhur\s+mycket\s+semester\b.{0,30}\b(?:kvar|har\s+jag)",
    ),
    "da": (
        r"\bferiesaldo\w*",
        r"\bhvor\s+mange\s+(?:ferie)?dage\b.{0,40}\b(?:tilbage|til\s*gode|har\s+jeg)",
        r"\bferiedage\b.{0,30}\b(?:tilbage|til\s*gode)\b",
        r"\bhvor\s+meget\s+ferie\b.{0,30}\b(?:tilbage|til\s*gode|har\s+jeg)",
    ),
    "fi": (
        r"\blomasaldo\w*",
        r"\b(?:paljonko|montako|kuinka\s+(?:monta|paljon))\b.{0,40}\bloma\w*",
        r"\blomapäiv\w*\b.{0,30}\bjäljel\w*",
    ),
    "en": (
        r"\b(?:vacation|holiday|leave|pto)\s+balance\b",
        r"\bhow\s+many\s+(?:vacation|holiday|leave|pto|annual\s+leave)\s+days\b",
        r"\b(?:vacation|holiday|leave)\s+days?\s+(?:do\s+i\s+have\s+)?(?:left|remaining)\b",
        r"\bhow\s+much\s+(?:vacation|holiday|annual\s+leave|pto)\b.{0,30}\b(?:left|remaining)\b",
    ),
}
LEAVE_PATTERN = compile_phrases(LEAVE_REQUESTS)
DECIMAL_COMMA = frozenset({"nb", "nn", "sv", "da", "fi"})


def format_days(days: float, language: str) -> str:
    """12 or 12,5 (12.5 in English): half days are common, trailing zeros are not."""
    if float(days).is_integer():
        return str(int(days))
    shown = f"{days:.1f}"
    return shown.replace(".", ",") if language in DECIMAL_COMMA else shown


class LeaveDialog(Dialog):
    """The asking user's vacation days, straight from HR, in one turn."""

    name = "leave"

    def __init__(self, portal_url: str = "") -> None:
        # Where users look themselves (the HR self-service portal), shown when kollega can't.
        self.portal_url = portal_url

    def recognise(self, message: Message) -> dict[str, Any] | None:
        return {} if LEAVE_PATTERN.search(message.text or "") else None

    async def begin(self, dc: DialogContext, options: dict[str, Any]) -> bool:
        dc.result.outcome = Outcome.PERSONAL
        portal = self.portal_url
        client = dc.services.leave
        if client is None:
            dc.say(text("leave.not_configured", dc.language, portal=portal))
            return False
        upn = await dc.principal_name()
        if not upn:
            dc.say(text("leave.no_identity", dc.language, portal=portal))
            return False
        try:
            balance = await client.balance(upn)
        except LeaveServiceError as error:
            logger.warning("leave balance unavailable (%s)", error.reason)
            dc.say(text("leave.failed", dc.language, portal=portal))
            return False
        if balance is None:
            dc.say(text("leave.unknown", dc.language))
            return False
        dc.say(
            text(
                "leave.balance",
                dc.language,
                days_left=format_days(balance.days_left, dc.language),
                days_total=format_days(balance.days_total, dc.language),
                year=balance.year,
                updated=format_time(balance.updated, dc.language),
            )
        )
        return False
