"""Find and scrub personal data in free text before kollega stores or logs it.

The design promises that the daily report shows what was asked "without storing who asked".
Users paste phone numbers, national identity numbers, bank details and e-mail addresses into
their questions, so every text that reaches the database or a log goes through :func:`scrub`
first. Findings are replaced by language-neutral placeholders (``[email]``, ``[phone]``,
``[national-id]``, ``[iban]``, ``[account]``, ``[card]``) so the report still reads well.

How it decides, and why:

* Identifiers with check digits (fødselsnummer/D-number, personnummer/samordningsnummer,
  CPR, HETU, IBAN, Norwegian account numbers, card numbers) are only scrubbed when their
  check digits and embedded dates are valid. That is what lets dates, order, invoice and
  ticket numbers, versions, times and amounts survive: a random number passes a mod-11 or
  Luhn check one time in ten or eleven, and the date and shape rules cut that further.
* Danish CPR numbers issued since 2007 need not satisfy mod-11, so a CPR written the usual
  way, ``DDMMYY-SSSS``, is scrubbed on a valid date (with CPR's century rule) alone; without
  the hyphen a ten-digit run is too common (order and reference numbers) to scrub on a date
  alone, so it must also pass mod-11. Recall for the way people actually write their CPR,
  precision for bare digit runs.
* Phone numbers have no check digits, so they are recognised by shape: an international
  prefix (``+47``, ``0046``), a Swedish/Finnish trunk ``0`` with an area code, or the
  Norwegian/Danish groupings ``912 34 567`` and ``12 34 56 78``. An unformatted eight-digit
  run counts when it starts with 4 or 9 (Norwegian mobile ranges) or when a word such as
  "tlf", "ring", "puh" or "phone" comes right before it; a word such as "ordre", "faktura",
  "sak" or "ticket" right before it keeps it. Erring towards scrubbing: a lost order number
  costs a content owner a little context, a leaked phone number cannot be taken back.
* Swedish and Danish account numbers (clearing/reg + account) are scrubbed on shape plus a
  pragmatic check (Swedish type 1/type 2 modulus rules) or a nearby word such as "konto".

The scanner is built for hostile input: every regular expression is either bounded in length
or free of ambiguous repetition, and digit runs are cut into "chunks" once, so the work is
linear in the length of the text. :func:`scrub` never raises and is idempotent.
"""

from __future__ import annotations

import bisect
import logging
import re
from dataclasses import dataclass
from datetime import date

__all__ = ["PLACEHOLDERS", "Finding", "ScrubbingFilter", "find_personal_data", "scrub"]

logger = logging.getLogger(__name__)

PLACEHOLDERS: dict[str, str] = {
    "email": "[email]",
    "phone": "[phone]",
    "national-id": "[national-id]",
    "iban": "[iban]",
    "account": "[account]",
    "card": "[card]",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal data: its kind (a key of ``PLACEHOLDERS``) and its span."""

    kind: str
    start: int
    end: int


# --------------------------------------------------------------------------------------------
# Check digits and dates
# --------------------------------------------------------------------------------------------


def _luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check, used by card numbers, personnummer and Swedish accounts."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _mod11_cyclic_ok(digits: str) -> bool:
    """Mod 11 with weights 1..10 from the right: Swedish bank account type 1 and Handelsbanken."""
    total = sum((ord(ch) - 48) * (i % 10 + 1) for i, ch in enumerate(reversed(digits)))
    return total % 11 == 0


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _not_future(year: int, month: int, day: int) -> bool:
    """A birth date must be valid and not after today."""
    if not _valid_date(year, month, day):
        return False
    return date(year, month, day) <= date.today()


_FNR_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_FNR_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def _mod11_check(digits: str, weights: tuple[int, ...]) -> int:
    """Return the mod-11 check digit for ``digits``, or -1 when none exists (remainder 1)."""
    rest = sum((ord(c) - 48) * w for c, w in zip(digits, weights, strict=True)) % 11
    check = (11 - rest) % 11
    return -1 if check == 10 else check


def _is_fnr(d: str) -> bool:
    """Norwegian fødselsnummer, D-number (day + 40), H-number and synthetic test numbers.

    H-numbers (month + 40) are used in health services and synthetic numbers (month + 80)
    in the public test environments employees copy from, so they count as identifiers too.
    """
    if _mod11_check(d[:9], _FNR_W1) != ord(d[9]) - 48:
        return False
    if _mod11_check(d[:10], _FNR_W2) != ord(d[10]) - 48:
        return False
    day, month, yy, ind = int(d[0:2]), int(d[2:4]), int(d[4:6]), int(d[6:9])
    if day > 40:
        day -= 40
    if month > 80:
        month -= 80
    elif month > 40:
        month -= 40
    if ind <= 499:
        year = 1900 + yy
    elif ind <= 749 and yy >= 54:
        year = 1800 + yy
    elif yy <= 39:
        year = 2000 + yy
    elif ind >= 900:
        year = 1900 + yy
    else:
        return False
    return _not_future(year, month, day)


def _is_personnummer(d: str, plus: bool) -> bool:
    """Swedish personnummer or samordningsnummer (day + 60), 10 or 12 digits, Luhn on 10."""
    if len(d) == 12:
        century, d = int(d[:2]), d[2:]
        if century not in (18, 19, 20):
            return False
        year = century * 100 + int(d[:2])
    else:
        today = date.today()
        yy = int(d[:2])
        year = 2000 + yy if 2000 + yy <= today.year else 1900 + yy
        if plus:  # "+" marks someone 100 or older
            year -= 100
    month, day = int(d[2:4]), int(d[4:6])
    if day > 60:
        day -= 60
    return _not_future(year, month, day) and _luhn_ok(d)


_CPR_W = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)


def _cpr_date_ok(d: str) -> bool:
    """CPR's date, with the century taken from the seventh digit as the CPR office defines."""
    day, month, yy, seventh = int(d[0:2]), int(d[2:4]), int(d[4:6]), ord(d[6]) - 48
    if seventh <= 3:
        year = 1900 + yy
    elif seventh in (4, 9):
        year = 2000 + yy if yy <= 36 else 1900 + yy
    else:
        year = 2000 + yy if yy <= 57 else 1800 + yy
    return _not_future(year, month, day)


def _cpr_mod11_ok(d: str) -> bool:
    return sum((ord(c) - 48) * w for c, w in zip(d, _CPR_W, strict=True)) % 11 == 0


_HETU_TABLE = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_HETU_CENTURY = {"+": 1800, "-": 1900, "Y": 1900, "X": 1900, "W": 1900, "V": 1900, "U": 1900}
_HETU_CENTURY.update(dict.fromkeys("ABCDEF", 2000))


def _is_hetu(text: str) -> bool:
    """Finnish henkilötunnus DDMMYYCZZZQ with the 2023 century letters."""
    text = text.upper()
    century = _HETU_CENTURY.get(text[6])
    if century is None:
        return False
    if not _not_future(century + int(text[4:6]), int(text[2:4]), int(text[0:2])):
        return False
    return _HETU_TABLE[int(text[0:6] + text[7:10]) % 31] == text[10]


# IBAN lengths per country (SWIFT IBAN registry); an unknown country code is not an IBAN.
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


def _iban_ok(iban: str) -> bool:
    """ISO 13616 mod-97 check on an IBAN without spaces."""
    moved = iban[4:] + iban[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in moved))
    except ValueError:
        return False
    return number % 97 == 1


_NO_ACCOUNT_W = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def _is_no_account(d: str) -> bool:
    """Norwegian kontonummer: 11 digits, mod-11 on the last digit."""
    return _mod11_check(d[:10], _NO_ACCOUNT_W) == ord(d[10]) - 48


def _is_se_account(clearing: str, account: str) -> bool:
    """Swedish clearing + account, by the Bankgirot type 1 and type 2 rules (any variant).

    Which rule applies depends on the bank; trying each keeps the code small, and the shape
    ``CCCC-NNNNNNN`` is rare enough in other text that the looser check is acceptable.
    """
    if not "1000" <= clearing <= "9999":
        return False
    if len(account) == 7 and (
        _mod11_cyclic_ok(clearing[1:] + account) or _mod11_cyclic_ok(clearing + account)
    ):
        return True
    if len(account) == 10 and _luhn_ok(account):
        return True
    return len(account) == 9 and _mod11_cyclic_ok(account)


def _card_prefix_ok(d: str) -> bool:
    """Issuer prefixes of the card schemes used in the Nordics (Visa, Mastercard, Maestro,
    Dankort, Amex, Diners, Discover, JCB, UnionPay); ISBNs (978/979) and most order numbers
    start elsewhere, which is the point."""
    first = d[0]
    if first in "456":
        return True
    if first == "2":
        return "2221" <= d[:4] <= "2720"
    if first == "3":
        return d[:2] in ("30", "34", "35", "36", "37", "38", "39")
    return False


# --------------------------------------------------------------------------------------------
# Context words
# --------------------------------------------------------------------------------------------

_PHONE_WORDS = (
    "tlf", "tel", "tfn", "telefon", "telephone", "phone", "mobil", "mob", "cell", "gsm",
    "ring", "call", "sms", "text", "nummer", "numret", "number", "numero", "numeroon",
    "puh", "puhelin", "soita", "soitta", "matkapuhelin", "kontakt", "contact", "reach",
    "nå", "nås", "fax", "whatsapp", "signal",
)  # fmt: skip
_ACCOUNT_WORDS = (
    "konto", "kontonr", "kontonummer", "bankkonto", "account", "acct", "tili", "tilinumero",
    "reg", "regnr", "bank", "lønnskonto", "lønkonto", "lönekonto", "clearing",
)  # fmt: skip
_REFERENCE_WORDS = (
    "ordre", "order", "bestilling", "beställning", "bestilling", "tilaus", "faktura",
    "fakturanr", "invoice", "lasku", "sak", "saks", "saksnr", "saksnummer", "ärende", "sag",
    "sags", "case", "ticket", "incident", "inc", "tiketti", "ref", "referanse", "referens",
    "reference", "viite", "kundenr", "kundnr", "kundenummer", "kundnummer", "customer",
    "asiakas", "asiakasnumero", "org", "orgnr", "cvr", "isbn", "issn", "version", "versjon",
    "versio", "build", "postnr", "postnummer", "ansattnr", "anställningsnummer", "employee",
    "vare", "varenr", "artikkel", "artikel", "artnr", "serienummer", "serial", "po", "bilag",
    "verifikat", "voucher", "tosite", "arkiv", "journal", "journalpost", "dokument",
)  # fmt: skip

# A context word must start a word (not be the tail of a compound) so "ordrenummer" does not
# count as "nummer". Stems match as prefixes ("telefonnummer" starts with "telefon").
_WORD_RE = re.compile(r"(?<![^\W\d_])[^\W\d_]+")
# The last word before a number, with an optional "nr"/"no." after it and punctuation.
_LAST_WORD_RE = re.compile(
    r"(?<![^\s(\"'«»])([^\W\d_]+)(?:\.?[ \t]?(?:nr|no|nro|num|nummer|number|numero)\.?)?"
    r"[ \t.:#=\-–]{0,4}\Z",
    re.IGNORECASE,
)
_CONTEXT_SPAN = 40
_STOPS = frozenset("0123456789[]@\n\r")


def _context(text: str, start: int) -> str:
    """The text right before ``start``, back to the nearest digit, bracket, '@' or newline.

    Stopping at digits and brackets keeps the decision local to this number, and it is what
    makes :func:`scrub` idempotent: a placeholder ends in ']', so scrubbing can only shorten
    the context a later pass sees, never reveal a new word in it.
    """
    lo = max(0, start - _CONTEXT_SPAN)
    i = start
    while i > lo and text[i - 1] not in _STOPS:
        i -= 1
    return text[i:start]


def _has_word(context: str, stems: tuple[str, ...]) -> bool:
    for m in _WORD_RE.finditer(context):
        word = m.group().lower()
        if any(word.startswith(stem) for stem in stems):
            return True
    return False


def _is_reference(text: str, start: int) -> bool:
    """True when the word right before ``start`` names an order/invoice/ticket/... number."""
    lo = max(0, start - _CONTEXT_SPAN)
    m = _LAST_WORD_RE.search(text, lo, start)
    if m is None:
        return False
    word = m.group(1).lower()
    return any(word.startswith(stem) for stem in _REFERENCE_WORDS if len(stem) > 3) or (
        word in _REFERENCE_WORDS
    )


# --------------------------------------------------------------------------------------------
# Chunks: maximal runs of digit groups joined by single separators
# --------------------------------------------------------------------------------------------

_SPACE = " \u00a0\u202f"
_SEP = rf"(?:[{_SPACE}]?\(0\)[{_SPACE}]?|[{_SPACE}\-\u2010\u2011\u2013.+])"
_CHUNK_RE = re.compile(rf"(?:\+|\(0\)[{_SPACE}]?)?[0-9]+(?:{_SEP}[0-9]+)*")
_GROUP_RE = re.compile(r"\(0\)|[0-9]+")  # "(0)" is a trunk marker, not a group
_SPACES = frozenset(_SPACE)
_DASHES = frozenset("-\u2010\u2011\u2013")
_JOINERS = frozenset("-\u2010\u2011\u2013/")


def _wordish(ch: str) -> bool:
    """Characters that glue a number to the text around it (letters, digits, placeholders)."""
    return ch.isalnum() or ch in "_[]"


@dataclass(slots=True)
class _Chunk:
    starts: list[int]
    ends: list[int]
    seps: list[str]  # seps[k] lies between group k and group k + 1
    plus: bool  # a leading "+" that belongs to the number
    trunk: bool  # a leading "(0)"
    attached: bool  # glued to the text before it ("INC123", "KOL-2026...")
    tainted: bool  # glued to the text after it ("500kr", "123-ABC")
    span_start: int

    def digits(self, text: str, i: int, j: int) -> str:
        return "".join(text[self.starts[k] : self.ends[k]] for k in range(i, j + 1))


def _chunks(text: str) -> list[_Chunk]:
    chunks: list[_Chunk] = []
    n = len(text)
    for m in _CHUNK_RE.finditer(text):
        s, e = m.span()
        starts: list[int] = []
        ends: list[int] = []
        for g in _GROUP_RE.finditer(text, s, e):
            if g.group() == "(0)":
                continue
            starts.append(g.start())
            ends.append(g.end())
        # A "(0)" inside the chunk sits in the separator; "(0)" groups are not digits we use.
        prefix = text[s : starts[0]]
        plus = prefix == "+"
        trunk = prefix.startswith("(0)")
        if plus and s > 0 and _wordish(text[s - 1]):
            plus = False
            s = starts[0]
        if trunk and s > 0 and _wordish(text[s - 1]):
            # "x(0)8-..." is not a trunk prefix; the "0" inside the brackets is a group of
            # its own that this chunk's regex did not capture as a group, so just drop it.
            trunk = False
            s = starts[0]
        before = text[s - 1] if s > 0 else ""
        before2 = text[s - 2] if s > 1 else ""
        attached = bool(before) and (_wordish(before) or (before in _JOINERS and _wordish(before2)))
        if prefix and not (plus or trunk):
            attached = True  # a dropped prefix means the digits follow '+' or ')' glued to text
        after = text[e] if e < n else ""
        after2 = text[e + 1] if e + 1 < n else ""
        tainted = bool(after) and (_wordish(after) or (after in _JOINERS and _wordish(after2)))
        seps = [text[ends[k] : starts[k + 1]] for k in range(len(starts) - 1)]
        chunks.append(_Chunk(starts, ends, seps, plus, trunk, attached, tainted, s))
    return chunks


def _uniform(seps: list[str], allowed: frozenset[str]) -> bool:
    return bool(seps) and len(set(seps)) == 1 and seps[0] in allowed


# --------------------------------------------------------------------------------------------
# Step 1: identifiers with check digits, as any run of whole groups inside a chunk
# --------------------------------------------------------------------------------------------

_MAX_GROUPS = 8
_MAX_DIGITS = 19
_ID_SEPS = frozenset(_SPACE) | _DASHES


def _national_id(d: str, lens: list[int], seps: list[str]) -> bool:
    n = len(d)
    if n == 11 and (lens == [11] or (lens == [6, 5] and seps[0] in _ID_SEPS)):
        return _is_fnr(d)
    if n == 10 and lens == [10]:
        return _is_personnummer(d, False) or (_cpr_date_ok(d) and _cpr_mod11_ok(d))
    if n == 10 and lens == [6, 4]:
        sep = seps[0]
        if sep == "+":
            return _is_personnummer(d, True)
        if sep in _DASHES:
            # CPR since 2007 may fail mod-11: the hyphenated form is accepted on its date.
            return _is_personnummer(d, False) or _cpr_date_ok(d)
        if sep in _SPACES:
            return _is_personnummer(d, False) or (_cpr_date_ok(d) and _cpr_mod11_ok(d))
        return False
    if n == 12 and (lens == [12] or (lens == [8, 4] and seps[0] in _ID_SEPS)):
        return _is_personnummer(d, False)
    return False


def _card(d: str, lens: list[int], seps: list[str]) -> bool:
    if not 13 <= len(d) <= 19 or not _card_prefix_ok(d):
        return False
    if len(lens) > 1:
        if not _uniform(seps, frozenset(" -")):
            return False
        fours = all(x == 4 for x in lens[:-1]) and 1 <= lens[-1] <= 4
        if not (fours or lens in ([4, 6, 5], [4, 6, 4])):
            return False
    return _luhn_ok(d)


def _account(d: str, lens: list[int], seps: list[str], keyword: bool) -> bool:
    if (
        len(d) == 11
        and (
            (lens == [4, 2, 5] and _uniform(seps, frozenset(". ")))
            or (keyword and lens in ([11], [4, 7]))
        )
        and _is_no_account(d)
    ):
        return True
    if len(lens) >= 2 and lens[0] == 4 and not d.startswith("0"):
        rest = d[4:]
        rest_seps = seps[1:]
        if not 6 <= len(rest) <= 10 or any(s not in _ID_SEPS for s in rest_seps):
            return False
        if seps[0] in _DASHES and _is_se_account(d[:4], rest):
            return True
        # Danish reg + konto: the banks' own check rules are not public, so ask for a word.
        return keyword and seps[0] in _ID_SEPS
    return False


def _checked_candidates(text: str, chunk: _Chunk) -> list[Finding]:
    found: list[Finding] = []
    count = len(chunk.starts)
    last = count - 1
    sums = [0]
    for a, b in zip(chunk.starts, chunk.ends, strict=True):
        sums.append(sums[-1] + b - a)
    for i in range(count):
        if (i == 0 and chunk.attached) or sums[min(count, i + _MAX_GROUPS)] - sums[i] < 10:
            continue  # too few digits ahead for any checked identifier
        keyword = i == 0 and _has_word(_context(text, chunk.span_start), _ACCOUNT_WORDS)
        digits = ""
        lens: list[int] = []
        for j in range(i, min(count, i + _MAX_GROUPS)):
            if j > i and chunk.seps[j - 1].strip(_SPACE).startswith("(0)"):
                break
            group = text[chunk.starts[j] : chunk.ends[j]]
            digits += group
            lens.append(len(group))
            if len(digits) > _MAX_DIGITS:
                break
            if j == last and chunk.tainted:
                break
            if len(digits) < 10:  # the shortest checked identifier has ten digits
                continue
            seps = chunk.seps[i:j]
            start, end = chunk.starts[i], chunk.ends[j]
            if _national_id(digits, lens, seps):
                found.append(Finding("national-id", start, end))
            elif _card(digits, lens, seps):
                found.append(Finding("card", start, end))
            elif _account(digits, lens, seps, keyword):
                found.append(Finding("account", start, end))
    return found


# --------------------------------------------------------------------------------------------
# Step 2: phone numbers, as whole pieces of what step 1 left of a chunk
# --------------------------------------------------------------------------------------------

_NORDIC_CC = {"45": (8, 8), "46": (7, 10), "47": (8, 8), "354": (7, 9), "358": (5, 11)}
_NORDIC_CC.update({"298": (6, 6), "299": (6, 6)})
_SE_MOBILE = re.compile(r"07[02369][0-9]{7}\Z")
_FI_MOBILE = re.compile(r"(?:04[0-9]{7,8}|050[0-9]{6,7})\Z")
_PHONE_SEPS = frozenset(_SPACE) | _DASHES
_DATE_SHAPES = ([2, 2, 4], [4, 2, 2], [2, 2, 2])


def _international(d: str, explicit_plus: bool) -> bool:
    """Digits after "+" or "00": a Nordic country code with its national length, or else (with
    a real "+") any plausible international number."""
    for cc, (lo, hi) in _NORDIC_CC.items():
        if d.startswith(cc):
            national = d[len(cc) :]
            if national.startswith("0"):  # "+46 070-..." and "+46 (0)70" are common
                national = national[1:]
            return lo <= len(national) <= hi
    return explicit_plus and 8 <= len(d) <= 15 and not d.startswith("0")


def _is_phone(
    d: str, lens: list[int], seps: list[str], plus: bool, trunk: bool, ctx: str, ref: bool
) -> bool:
    if any(s.strip(_SPACE) not in ("", "(0)") and s not in _PHONE_SEPS for s in seps):
        return False
    has_trunk = trunk or any("(0)" in s for s in seps)
    if plus:
        return _international(d, True)
    if d.startswith("00"):
        return _international(d[2:], False)
    keyword = _has_word(ctx, _PHONE_WORDS)
    if d.startswith("0") or has_trunk:
        national = d if d.startswith("0") else "0" + d
        if not 8 <= len(national) <= 11:
            return False
        if len(lens) == 1:
            if _SE_MOBILE.match(national) or _FI_MOBILE.match(national):
                return not ref
            return keyword and not ref and len(national) <= 10
        if lens in _DATE_SHAPES and all(s in _DASHES for s in seps):
            return False
        return 2 <= lens[0] + (1 if trunk else 0) <= 4 and not ref
    if len(d) != 8 or d[0] in "01":
        return False
    if lens in ([3, 2, 3], [2, 2, 2, 2]) and all(s in _SPACES for s in seps):
        return not ref
    if lens == [8] or (lens == [4, 4] and seps[0] in _SPACES):
        return not ref and (d[0] in "49" or keyword)
    return False


def _phones(text: str, chunk: _Chunk, taken: list[Finding]) -> list[Finding]:
    """Phone numbers among the pieces of ``chunk`` that no step-1 finding covers.

    A phone must be a whole piece: phones have no check digits, so a phone-shaped run inside
    a longer digit sequence (an invalid card number, say) is not evidence of a phone.
    """
    count = len(chunk.starts)
    covered = [False] * count
    for f in taken:
        for k in range(count):
            if chunk.starts[k] < f.end and f.start < chunk.ends[k]:
                covered[k] = True
    found: list[Finding] = []
    k = 0
    while k < count:
        if covered[k]:
            k += 1
            continue
        i = k
        while k + 1 < count and not covered[k + 1]:
            k += 1
        j = k
        k += 1
        if (i == 0 and chunk.attached) or (j == count - 1 and chunk.tainted):
            continue
        if j - i + 1 > _MAX_GROUPS:
            continue
        digits = chunk.digits(text, i, j)
        if len(digits) > 17:
            continue
        lens = [chunk.ends[x] - chunk.starts[x] for x in range(i, j + 1)]
        first = i == 0
        start = chunk.span_start if first else chunk.starts[i]
        ctx = _context(text, start) if first else ""
        ref = first and _is_reference(text, start)
        if first:
            trunk = chunk.trunk
        else:  # " (0)8-..." after a finding reads as a trunk prefix on its own, so here too
            sep = chunk.seps[i - 1]
            trunk = "(0)" in sep and sep[0] in _SPACES
        if _is_phone(digits, lens, chunk.seps[i:j], first and chunk.plus, trunk, ctx, ref):
            found.append(Finding("phone", start, chunk.ends[j]))
    return found


# --------------------------------------------------------------------------------------------
# E-mail, IBAN, HETU: the identifiers with letters in them
# --------------------------------------------------------------------------------------------

_EMAIL_LOCAL = frozenset("._%+-'")
_DOMAIN_RE = re.compile(r"[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)+")
_TLD_RE = re.compile(r"[^\W\d_]{2,}(?=-|\Z)")
_IBAN_START_RE = re.compile(r"(?<![\w\]])[A-Za-z]{2}[0-9]{2}")
_HETU_RE = re.compile(r"(?<![\w\]])[0-9]{6}[-+A-FU-Y][0-9]{3}[0-9A-Y](?!\w)", re.IGNORECASE)


def _emails(text: str) -> tuple[list[Finding], list[tuple[int, int]]]:
    """E-mail addresses, and the "claims" of every '@': the address, or for an '@' that starts
    none, the run of address characters around it.

    Numbers inside a claim belong to the (would-be) address, so no other detector looks
    there; and each address's local part stops where the previous address ended. Both rules
    make the first pass see exactly what a second pass over scrubbed text would see.
    """
    found: list[Finding] = []
    claims: list[tuple[int, int]] = []
    barrier = 0
    at = text.find("@")
    while at != -1:
        i = at
        while i > 0 and (text[i - 1].isalnum() or text[i - 1] in _EMAIL_LOCAL):
            i -= 1  # linear overall: the run stops at the previous '@'
        m = _DOMAIN_RE.match(text, at + 1)
        claim = (i, m.end() if m is not None else at + 1)
        i = max(i, barrier)
        while i < at and text[i] in ".'":
            i += 1
        if 0 < at - i <= 64 and m is not None:  # RFC 5321: at most 64 before the '@'
            # The domain ends at its last alphabetic label: "ola@example.org.2026" is an
            # address followed by a number, not an address with a numeric top-level domain.
            labels = m.group().split(".")
            while len(labels) >= 2:
                tld = _TLD_RE.match(labels[-1])
                if tld is not None:
                    labels[-1] = tld.group()
                    break
                labels.pop()
            if len(labels) >= 2:
                barrier = at + 1 + len(".".join(labels))
                found.append(Finding("email", i, barrier))
                claim = (i, barrier)  # what follows the address is ordinary text again
        claims.append(claim)
        at = text.find("@", at + 1)
    return found, claims


def _ibans(text: str) -> list[Finding]:
    found: list[Finding] = []
    for m in _IBAN_START_RE.finditer(text):
        country = m.group()[:2].upper()
        length = _IBAN_LENGTHS.get(country)
        if length is None:
            continue
        chars = [m.group().upper()]
        count = 4
        pos = m.end()
        n = len(text)
        while count < length and pos < n:
            ch = text[pos]
            if ch == " " and pos + 1 < n and text[pos + 1].isascii() and text[pos + 1].isalnum():
                pos += 1
                continue
            if not (ch.isascii() and ch.isalnum()):
                break
            chars.append(ch.upper())
            count += 1
            pos += 1
        if count != length or (pos < n and (text[pos].isalnum() or text[pos] in "_[]")):
            continue
        if _iban_ok("".join(chars)):
            found.append(Finding("iban", m.start(), pos))
    return found


def _hetus(text: str) -> list[Finding]:
    return [Finding("national-id", *m.span()) for m in _HETU_RE.finditer(text) if _is_hetu(m[0])]


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------

_PRIORITY = {"national-id": 0, "iban": 1, "card": 2, "account": 3, "email": 4, "phone": 5}


def _select(candidates: list[Finding]) -> list[Finding]:
    """Greedy left to right, the longest (then the most specific) first at each start."""
    candidates.sort(key=lambda f: (f.start, -f.end, _PRIORITY[f.kind]))
    chosen: list[Finding] = []
    end = -1
    for f in candidates:
        if f.start >= end:
            chosen.append(f)
            end = f.end
    return chosen


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _outside(spans: list[tuple[int, int]], findings: list[Finding]) -> list[Finding]:
    """The findings that overlap none of the sorted, disjoint ``spans``."""
    if not spans:
        return findings
    starts = [lo for lo, _ in spans]
    kept = []
    for f in findings:
        k = bisect.bisect_left(starts, f.end) - 1  # the last span starting before f ends
        if k < 0 or spans[k][1] <= f.start:
            kept.append(f)
    return kept


def _near(spans: list[tuple[int, int]], lo: int, hi: int, k: int) -> tuple[list[Finding], int]:
    """Spans overlapping [lo, hi) as findings, scanning sorted spans from index ``k``."""
    while k < len(spans) and spans[k][1] <= lo:
        k += 1
    near = []
    x = k
    while x < len(spans) and spans[x][0] < hi:
        near.append(Finding("", spans[x][0], spans[x][1]))
        x += 1
    return near, k


def find_personal_data(text: str) -> list[Finding]:
    """Every piece of personal data in ``text``, sorted by position and non-overlapping."""
    if not isinstance(text, str) or not text:
        return []
    emails, claims = _emails(text)
    claimed = _merge(claims)
    chunks = _chunks(text)
    candidates = _ibans(text) + _hetus(text)
    for chunk in chunks:
        candidates.extend(_checked_candidates(text, chunk))
    chosen = _select(_outside(claimed, candidates))
    # Phones come from what is left of each chunk once the checked identifiers and the
    # e-mail claims are taken out; chunks, findings and claims are all in text order.
    taken = _merge([(f.start, f.end) for f in chosen] + claimed)
    phones: list[Finding] = []
    k = 0
    for chunk in chunks:
        near, k = _near(taken, chunk.span_start, chunk.ends[-1], k)
        phones.extend(_phones(text, chunk, near))
    return sorted(chosen + emails + phones, key=lambda f: f.start)


def scrub(text: str) -> str:
    """``text`` with each piece of personal data replaced by its placeholder.

    Never raises: analytics and logging must not fail because of what a user typed, so on an
    internal error the whole text is withheld rather than stored unscrubbed.
    """
    if not isinstance(text, str):
        text = str(text)
    try:
        findings = find_personal_data(text)
    except Exception:  # a bug here must never leak the text or break a turn
        logger.exception("privacy scrubber failed; text withheld")
        return "[withheld]"
    if not findings:
        return text
    parts: list[str] = []
    pos = 0
    for f in findings:
        parts.append(text[pos : f.start])
        parts.append(PLACEHOLDERS[f.kind])
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)


class ScrubbingFilter(logging.Filter):
    """A logging filter that scrubs a record's message, arguments and traceback in place.

    Attach it to handlers (``handler.addFilter(ScrubbingFilter())``) so that whatever a module
    logs about a turn, the user's personal data never reaches a log file or collector. The
    message is formatted here, then scrubbed, and the arguments dropped, because a number is
    only recognisable once it is in its sentence.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what we can, scrubbed
            message = f"{record.msg} {record.args!r}"
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True
