"""Contact lookup: "who is Kari Nordmann", "who is my manager", "who handles payroll".

People and managers come from Microsoft Graph (``services.directory``, an
``adapters.graph.GraphClient``); who owns a topic comes from the knowledge itself (each
domain names its owner). Answers are an Adaptive Card for Teams plus the same as Markdown.

Privacy: nothing found here is stored or logged. When several people match, the dialog
keeps only the user's own search words in its state and asks Graph again on the next
turn, so no colleague's name or id sits in conversation storage. Analytics learns only
that a contact lookup happened (``Outcome.CONTACT``, no intent).

Recognition is deliberately narrow (fixed question shapes in nb, sv, da, fi and en, and a
capitalised name), because a false "who is …" would hijack ordinary knowledge questions.
"""

from __future__ import annotations

import email.utils
import logging
import re
import unicodedata
from typing import Any, ClassVar

from adapters.graph import GraphUnavailable
from dialogs.base import Dialog, DialogContext
from dialogs.contact_card import md, owner_card, owner_markdown, person_card, person_markdown
from dialogs.texts import text
from dialogs.turn import Choice, Message, Outcome, Reply

logger = logging.getLogger(__name__)

MAX_CHOICES = 5
MAX_TOPIC_WORDS = 6
# When the matcher is unsure which intent a bare topic word means, its top candidates
# still agree on the domain for real topics ("palkat") and scatter for unknown ones;
# this floor keeps a scatter of weak hits in one domain from counting. Tuned on the
# interim matcher over knowledge/sample and the nordic evaluation set.
MIN_TOPIC_SCORE = 0.25

_MANAGER = re.compile(
    r"(?:my\s+(?:line\s+|direct\s+)?(?:manager|boss|supervisor)"
    r"|min\s+(?:nærmeste\s+|närmaste\s+)?(?:sjef|leder|chef|ledare)"
    r"|(?:sjefen|lederen|chefen|ledaren)\s+min"
    r"|(?:min\s+)?(?:nærmeste\s+leder|närmaste\s+chef)"
    r"|esimieheni|esihenkilöni|pomoni)",
    re.IGNORECASE,
)
_MANAGER_QUESTION = re.compile(r"who\s+do\s+i\s+report\s+to|kenelle\s+raportoin", re.IGNORECASE)

_TOPIC_PATTERNS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        # nb, da
        r"hvem\s+(?:jobber|arbeider|arbejder)\s+med\s+(?P<topic>.+)",
        r"hvem\s+(?:har\s+ansvar(?:et)?\s+for|er\s+ansvarlig\s+for|tar\s+seg\s+av"
        r"|tager\s+sig\s+af|står\s+for|håndterer|kan\s+jeg\s+(?:spørre|spørge|kontakte)\s+om"
        r"|(?:spør|spørger|kontakter)\s+jeg\s+om)\s+(?P<topic>.+)",
        # sv
        r"vem\s+(?:ansvarar\s+för|är\s+ansvarig\s+för|jobbar\s+med|arbetar\s+med|hanterar"
        r"|sköter|tar\s+hand\s+om|kan\s+jag\s+(?:fråga|kontakta)\s+om"
        r"|(?:frågar|kontaktar)\s+jag\s+om)\s+(?P<topic>.+)",
        # en
        r"who\s+(?:handles|(?:is|'s)\s+responsible\s+for|works\s+(?:with|on)|owns"
        r"|(?:is|'s)\s+in\s+charge\s+of|takes\s+care\s+of|deals\s+with|knows\s+about"
        r"|(?:do|can|should)\s+i\s+(?:ask|contact|talk\s+to)\s+about)\s+(?P<topic>.+)",
        # fi
        r"kuka\s+(?:hoitaa|vastaa|käsittelee|tietää)\s+(?P<topic>.+)",
        r"(?:keneltä|keneen)\s+(?:kysyn|voin\s+kysyä|otan\s+yhteyttä)\s+(?P<topic>.+)",
    )
]
_TOPIC_FILLER = re.compile(
    r"^(?:the\s+|questions\s+about\s+|spørsmål\s+om\s+|spørgsmål\s+om\s+|frågor\s+om\s+)",
    re.IGNORECASE,
)

_NUMBER = r"(?:tlf\.?\s*|telefon|mobil|phone\s+|mobile\s+|telephone\s+)?"
# The name follows the question words.
_NAME_AFTER = [
    re.compile(p, re.IGNORECASE)
    for p in (
        # nb, da, sv: "(hva er) telefonnummeret til …", "numret till …", "nummeret på …"
        rf"(?:(?:hva|hvad|vad|hvilket|vilket)\s+(?:er|är)\s+)?{_NUMBER}"
        r"(?:nummer(?:et)?|numret|nr\.?)\s+(?:til|till|på|for|för)\s+(?P<rest>.+)",
        r"(?:(?:hva|hvad|vad)\s+(?:er|är)\s+)?(?:e-?post|e-?mail|mail|mejl)(?:adressen)?"
        r"\s+(?:til|till|på)\s+(?P<rest>.+)",
        r"(?:kontaktinfo(?:rmasjon)?|kontaktopplysninger|kontaktoplysninger|kontaktuppgifter)"
        r"\s+(?:til|till|for|för|på)\s+(?P<rest>.+)",
        r"hvordan\s+(?:får\s+jeg\s+tak\s+i|kontakter\s+jeg|når\s+jeg|fanger\s+jeg)\s+(?P<rest>.+)",
        r"hur\s+(?:når|kontaktar)\s+jag\s+(?P<rest>.+)",
        r"(?:hvem|vem)\s+(?:er|är)\s+(?P<rest>.+)",
        r"hvor\s+sitter\s+(?P<rest>.+)",
        r"(?:finn|søk\s+(?:etter|opp)|slå\s+opp|find|look\s+up|search\s+for|hitta|sök\s+efter"
        r"|slå\s+upp|etsi|hae)\s+(?P<rest>.+)",
        # en
        rf"(?:what(?:'s|\s+is)\s+)?(?:the\s+)?{_NUMBER}number\s+(?:of|for)\s+(?P<rest>.+)",
        r"(?:what(?:'s|\s+is)\s+)?(?:the\s+)?(?:e-?mail(?:\s+address)?|contact\s+"
        r"(?:details|info(?:rmation)?))\s+(?:of|for)\s+(?P<rest>.+)",
        r"who(?:'s|\s+is)\s+(?P<rest>.+)",
        r"how\s+(?:do|can)\s+i\s+(?:reach|contact|get\s+hold\s+of)\s+(?P<rest>.+)",
        # fi (nominative)
        r"kuka\s+on\s+(?P<rest>.+)",
    )
]
# The name comes first, as a possessive: "Olas nummer", "Kari's phone number".
_NAME_BEFORE = re.compile(
    r"(?:(?:hva|hvad|vad)\s+(?:er|är)\s+|what(?:'s|’s|\s+is)\s+)?(?P<rest>.+?)(?:'s|’s|'|’|s)\s+"
    r"(?:tlf\.?|telefon|mobil|phone\s+|mobile\s+)?"
    r"(?:nummer|numret|nummeret|number|e-?post(?:adresse)?|e-?mail(?:\s+address)?"
    r"|mail(?:adresse)?|mejl(?:adress)?|contact\s+details)",
    re.IGNORECASE,
)
# Finnish puts the name in the genitive first: "Matin puhelinnumero".
_NAME_BEFORE_FI = re.compile(
    r"(?:mikä\s+on\s+)?(?P<rest>.+?)\s+"
    r"(?:puhelinnumero|numero|puhelin|sähköposti(?:osoite)?|yhteystiedot)",
    re.IGNORECASE,
)
_PARTICLES = frozenset({"van", "von", "de", "der", "den", "af", "av", "la", "le", "da", "di"})
_NOT_NAMES = frozenset(
    {
        *("du", "deg", "dere", "jeg", "meg", "han", "hun", "henne", "hennes", "hans", "det"),
        *("den", "dette", "de", "dem", "you", "he", "she", "it", "this", "that", "they"),
        *("them", "jag", "dig", "hon", "minä", "sinä", "hän", "se", "hva", "hvem", "hvad"),
        *("hvis", "vad", "vem", "vems", "what", "who", "whose", "kuka", "mikä", "kenen"),
        *("mitt", "min", "mi", "my", "your", "din", "ditt"),
    }
)
_PICK_NUMBER = re.compile(
    r"^(?:nr\.?|nummer|number|no\.?|numero|#)?\s*(?P<n>\d{1,2})\s*\.?$", re.IGNORECASE
)


def _clean(message_text: str) -> str:
    """The question without surrounding punctuation or repeated spaces."""
    cleaned = unicodedata.normalize("NFC", message_text).strip()
    cleaned = re.sub(r"[\s?!.…:;,]+$", "", cleaned)
    cleaned = re.sub(r"^[\s¿¡]+", "", cleaned)
    return " ".join(cleaned.split())


def _valid_name(rest: str) -> str | None:
    """``rest`` if it looks like a person's name: 1–4 capitalised words (particles aside)."""
    words = rest.split()
    if not words or words[0].casefold() in _NOT_NAMES:
        return None
    core = [w for w in words if w.casefold() not in _PARTICLES]
    if not 1 <= len(core) <= 4 or len(words) > 6:
        return None
    for word in core:
        if not word[0].isupper() or not all(ch.isalpha() or ch in "-'’." for ch in word):
            return None
    return " ".join(words)


def finnish_nominative(name: str) -> str:
    """A searchable form of a Finnish genitive name ("Matti Virtasen" -> "Matti Virtanen").

    Only the last word inflects. ``-sen`` names go back to ``-nen``; otherwise the genitive
    ``-n`` and the vowel before it are dropped, leaving a prefix that Graph's search
    (each word a prefix) matches despite consonant gradation: "Matin" -> "Mat" finds Matti.
    """
    words = name.split()
    last = words[-1]
    if len(last) > 4 and last.casefold().endswith("sen"):
        words[-1] = last[:-3] + "nen"
    elif len(last) > 3 and last.casefold().endswith("n"):
        words[-1] = last[:-2]
    return " ".join(words)


def recognise_contact(message_text: str) -> dict[str, Any] | None:
    """Options for ``ContactDialog.begin`` if the text asks for a contact, else None."""
    cleaned = _clean(message_text)
    if not cleaned or len(cleaned) > 200:
        return None
    if _MANAGER_QUESTION.fullmatch(cleaned):
        return {"kind": "manager"}
    for pattern in _TOPIC_PATTERNS:
        match = pattern.fullmatch(cleaned)
        if match:
            topic = _TOPIC_FILLER.sub("", match.group("topic")).strip()
            if topic and len(topic.split()) <= MAX_TOPIC_WORDS:
                return {"kind": "owner", "topic": topic}
    for pattern in _NAME_AFTER:
        match = pattern.fullmatch(cleaned)
        if match:
            options = _about(match.group("rest"))
            if options:
                return options
    match = _NAME_BEFORE.fullmatch(cleaned)
    if match:
        options = _about(match.group("rest"))
        if options:
            return options
    match = _NAME_BEFORE_FI.fullmatch(cleaned)
    if match:
        rest = match.group("rest")
        if _MANAGER.fullmatch(rest):
            return {"kind": "manager"}
        name = _valid_name(rest)
        if name:
            return {"kind": "person", "name": finnish_nominative(name)}
    return None


def _about(rest: str) -> dict[str, Any] | None:
    if _MANAGER.fullmatch(rest):
        return {"kind": "manager"}
    name = _valid_name(rest)
    return {"kind": "person", "name": name} if name else None


def parse_owner(owner: str) -> tuple[str, str]:
    """("Lønn", "lonn@example.org") from an owner line such as ``Lønn <lonn@example.org>``."""
    name, mail = email.utils.parseaddr(owner)
    if not mail or "@" not in mail:
        return owner.strip(), ""
    return (name or mail).strip(), mail.strip()


def _fold(value: str) -> str:
    """Casefolded, with Nordic letters folded so "lønn" meets the mailbox name "lonn"."""
    value = value.casefold().replace("æ", "ae").replace("ø", "o").replace("å", "a")
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


def find_domain(knowledge: Any, topic: str, language: str) -> Any | None:
    """The knowledge domain that owns ``topic``, or None when none clearly does.

    First by name (the domain id, the owner's name or mailbox: "payroll", "Lønn",
    "lonn"), then by asking the matcher about the topic words: a confident match names
    its intent's domain; an unsure one counts only if its top candidates agree on one.
    """
    domains = getattr(knowledge, "domains", None) or {}
    wanted = _fold(topic)
    for key, domain in domains.items():
        name, mail = parse_owner(str(getattr(domain, "owner", "")))
        names = {_fold(str(key)), _fold(name), _fold(mail.split("@")[0]) if mail else ""}
        if wanted in names - {""}:
            return domain
    matcher = getattr(knowledge, "matcher", None)
    if matcher is None:
        return None
    result = matcher.match(topic, language)
    candidates = list(result.candidates)
    if not candidates:
        return None
    if result.decision != "fallback":
        return knowledge.domain_of(candidates[0].intent_id)
    top = candidates[:3]
    owners = {knowledge.domain_of(c.intent_id).domain for c in top}
    if len(owners) == 1 and top[0].score >= MIN_TOPIC_SCORE:
        return knowledge.domain_of(top[0].intent_id)
    return None


class ContactDialog(Dialog):
    """Finds people, the user's manager, or a topic's owner; may wait for one pick."""

    name: ClassVar[str] = "contact"

    def recognise(self, message: Message) -> dict[str, Any] | None:
        return recognise_contact(message.text)

    async def begin(self, dc: DialogContext, options: dict[str, Any]) -> bool:
        dc.result.outcome = Outcome.CONTACT
        kind = options.get("kind")
        if kind == "owner":
            self._owner(dc, str(options.get("topic", "")))
            return False
        directory = dc.services.directory
        if directory is None:
            self._say_with_switchboard(dc, text("contact.not_configured", dc.language))
            return False
        try:
            if kind == "manager":
                await self._manager(dc, directory)
                return False
            if kind == "person":
                return await self._search(dc, directory, str(options.get("name", "")))
        except GraphUnavailable as exc:
            logger.warning("contact lookup failed: %s", exc)
            self._say_with_switchboard(dc, text("contact.unavailable", dc.language))
            return False
        logger.error("contact dialog begun with unknown kind %r", kind)
        return False

    async def resume(self, dc: DialogContext) -> bool:
        """The user's pick from the list: a number (typed or a button's value) or a name.

        Anything that is not a pick (a new question, another contact lookup) is handed
        back to the router with ``dc.reroute`` instead of being swallowed here.
        """
        query = str(dc.state.get("query") or "")
        directory = dc.services.directory
        number, typed = self._pick_of(dc.message)
        if not query or directory is None or (number is None and not _may_be_a_pick(typed)):
            dc.reroute = True
            return False
        dc.result.outcome = Outcome.CONTACT
        try:
            people = (await _find(directory, query))[:MAX_CHOICES]
        except GraphUnavailable as exc:
            logger.warning("contact lookup failed: %s", exc)
            self._say_with_switchboard(dc, text("contact.unavailable", dc.language))
            return False
        chosen = None
        if number is not None:
            chosen = people[number - 1] if 1 <= number <= len(people) else None
        else:
            chosen = _by_name(people, typed)
            if chosen is None and not any(_words_prefix(typed, p.display_name) for p in people):
                dc.reroute = True  # a name, but none of these: a new question after all
                return False
        if chosen is None:
            dc.say(text("contact.pick_unclear", dc.language))
            return False
        dc.say(_person_reply(chosen, dc.language))
        return False

    # Steps --------------------------------------------------------------------------

    async def _search(self, dc: DialogContext, directory: Any, name: str) -> bool:
        people = await _find(directory, name)
        language = dc.language
        if not people:
            self._say_with_switchboard(dc, text("contact.not_found", language, name=md(name)))
            return False
        if len(people) == 1:
            dc.say(_person_reply(people[0], language))
            return False
        shown = people[:MAX_CHOICES]
        lines = [text("contact.choose", language, name=md(name))]
        lines.extend(f"{i}. {_summary(p)}" for i, p in enumerate(shown, start=1))
        if len(people) > MAX_CHOICES:
            lines.append(text("contact.more_matches", language))
        choices = [Choice(title=_short(p), value=str(i)) for i, p in enumerate(shown, start=1)]
        dc.say(Reply("\n".join(lines), choices=choices))
        # Only the user's own words: the people are asked for again on the next turn.
        dc.state["query"] = name
        return True

    async def _manager(self, dc: DialogContext, directory: Any) -> None:
        user_id = dc.message.user.aad_object_id
        if not user_id:
            dc.say(text("contact.manager_needs_teams", dc.language))
            return
        manager = await directory.get_manager(user_id)
        if manager is None:
            dc.say(text("contact.no_manager", dc.language))
            return
        dc.say(_person_reply(manager, dc.language, text("contact.your_manager", dc.language)))

    def _owner(self, dc: DialogContext, topic: str) -> None:
        language = dc.language
        knowledge = getattr(dc.services.knowledge, "current", None)
        domain = (
            find_domain(knowledge, topic, language) if knowledge is not None and topic else None
        )
        if domain is None:
            self._say_with_switchboard(dc, text("contact.owner_unknown", language, topic=md(topic)))
            return
        name, mail = parse_owner(str(domain.owner))
        intro = text("contact.owner", language, topic=topic)
        dc.say(
            Reply(owner_markdown(intro, name, mail), card=owner_card(intro, name, mail, language))
        )

    def _say_with_switchboard(self, dc: DialogContext, message: str) -> None:
        switchboard = dc.services.switchboard
        if switchboard:
            message += "\n\n" + text("contact.switchboard", dc.language, switchboard=switchboard)
        dc.say(message)

    @staticmethod
    def _pick_of(message: Message) -> tuple[int | None, str]:
        """(number, typed text) of the user's pick, from a button's value or the text."""
        candidates: list[str] = []
        if isinstance(message.value, dict):
            for key in ("contact_pick", "value", "choice"):
                if message.value.get(key) is not None:
                    candidates.append(str(message.value[key]))
        candidates.append(message.text or "")
        for candidate in candidates:
            match = _PICK_NUMBER.match(candidate.strip())
            if match:
                return int(match.group("n")), ""
        return None, _clean(message.text or "")


async def _find(directory: Any, name: str) -> list[Any]:
    """Up to one more than we show (to know there are more), in a stable order.

    Graph sorts by display name but leaves namesakes in any order; the tie-break keeps
    "2" meaning the same person when the search runs again on the next turn.
    """
    people = await directory.search_people(name, limit=MAX_CHOICES + 1)
    return sorted(
        people,
        key=lambda p: (p.display_name.casefold(), p.department, p.job_title, p.id),
    )


def _may_be_a_pick(typed: str) -> bool:
    """Short text that is not itself a contact question: perhaps a name from the list."""
    return bool(typed) and len(typed.split()) <= 6 and recognise_contact(typed) is None


def _words_prefix(typed: str, display_name: str) -> bool:
    """Each typed word starts some word of the name, the way Graph's search matches."""
    words = typed.casefold().split()
    names = display_name.casefold().split()
    return bool(words) and all(any(n.startswith(w) for n in names) for w in words)


def _by_name(people: list[Any], typed: str) -> Any | None:
    """The one person whose display name the user typed (whole, or each word a prefix)."""
    wanted = typed.casefold()
    exact = [p for p in people if p.display_name.casefold() == wanted]
    if len(exact) == 1:
        return exact[0]
    prefixed = [p for p in people if _words_prefix(typed, p.display_name)]
    return prefixed[0] if len(prefixed) == 1 else None


def _short(person: Any) -> str:
    """A button title: the name and, to tell namesakes apart, the department or title."""
    extra = person.department or person.job_title
    return f"{person.display_name} ({extra})" if extra else person.display_name


def _summary(person: Any) -> str:
    details = ", ".join(md(v) for v in (person.job_title, person.department) if v)
    name = f"**{md(person.display_name)}**"
    return f"{name} – {details}" if details else name


def _person_reply(person: Any, language: str, intro: str = "") -> Reply:
    return Reply(
        person_markdown(person, language, intro),
        card=person_card(person, language, intro),
    )
