"""Markdown reduced to what Workplace and Messenger show, and long text split to their limits.

The bot writes its answers in Markdown (the knowledge format is Markdown). Work Chat and
Messenger show plain text, and a comment under a group post shows it as typed, so a literal
``**Minside**`` or ``## Steg`` would reach the user as noise. Links must survive: a Markdown
link becomes ``title: url`` so the URL stays visible and clickable.

Lengths are counted in UTF-16 code units, the unit Meta's limits are enforced in, so an answer
full of emoji or Sámi characters is never rejected for being a few units too long.
"""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)

_PLACEHOLDER = "\x00{}\x00"
_PLACEHOLDER_RE = re.compile("\x00(\\d+)\x00")
_FENCE_RE = re.compile(r"^\s{0,3}(```|~~~)")
_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_RULE_RE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_QUOTE_RE = re.compile(r"^\s{0,3}>\s?")
_BULLET_RE = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_LINK_RE = re.compile(r"(!?)\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)")
_AUTOLINK_RE = re.compile(r"<(https?://[^>\s]+|mailto:[^>\s]+)>")
_URL_RE = re.compile(r"https?://[^\s<>()\[\]]+[^\s<>()\[\].,;:!?'\"]")
_CODE_RE = re.compile(r"`([^`\n]+)`")
_STRONG_RE = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_STRIKE_RE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!>~|])")


def utf16_len(text: str) -> int:
    """Length as Meta counts it (UTF-16 code units): an emoji counts twice."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def to_plain_text(markdown: str) -> str:
    """Reduce Markdown to readable plain text: no ``**``, no ``#``, bullets as ``•``, links kept.

    Single ``*`` / ``_`` emphasis is left alone: it reads naturally as plain text and Work Chat
    renders ``*bold*`` itself.
    """
    lines: list[str] = []
    in_fence = False
    for raw in markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if _FENCE_RE.match(raw):
            in_fence = not in_fence
            continue
        if in_fence:
            lines.append(raw)
            continue
        if _RULE_RE.match(raw):
            lines.append("")
            continue
        line = _QUOTE_RE.sub("", raw)
        heading = _HEADING_RE.match(line)
        if heading:
            line = heading.group(1)
        bullet = _BULLET_RE.match(line)
        if bullet:
            depth = len(bullet.group(1).expandtabs(4)) // 2
            line = "  " * depth + "• " + bullet.group(2)
        lines.append(_inline(line))
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _inline(line: str) -> str:
    """Rewrite links and drop emphasis markers, never touching the inside of a URL."""
    kept: list[str] = []

    def keep(value: str) -> str:
        kept.append(value)
        return _PLACEHOLDER.format(len(kept) - 1)

    def link(match: re.Match[str]) -> str:
        title, url = match.group(2).strip(), match.group(3)
        if not title or title == url:
            return keep(url)
        return f"{title}: {keep(url)}"

    line = _CODE_RE.sub(lambda m: keep(m.group(1)), line)
    line = _LINK_RE.sub(link, line)
    line = _AUTOLINK_RE.sub(lambda m: keep(m.group(1)), line)
    line = _URL_RE.sub(lambda m: keep(m.group(0)), line)
    for _ in range(3):  # nested emphasis such as ***x*** or **__x__**
        line = _STRONG_RE.sub(r"\2", line)
        line = _STRIKE_RE.sub(r"\1", line)
    line = _ESCAPE_RE.sub(r"\1", line)
    return _PLACEHOLDER_RE.sub(lambda m: kept[int(m.group(1))], line)


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` UTF-16 units.

    Cuts at paragraph breaks first, then line breaks, then spaces, so a word (or a URL) is
    never cut in two; only a single word longer than the limit is cut hard, as nothing else
    would fit.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    text = text.strip()
    if not text:
        return []
    chunks = _split(text, limit, ("\n\n", "\n", " "))
    return [chunk.strip() for chunk in chunks if chunk.strip()]


def _split(text: str, limit: int, separators: tuple[str, ...]) -> list[str]:
    if utf16_len(text) <= limit:
        return [text]
    if not separators:
        return _hard_split(text, limit)
    separator, finer = separators[0], separators[1:]
    chunks: list[str] = []
    current = ""
    for part in text.split(separator):
        candidate = f"{current}{separator}{part}" if current else part
        if utf16_len(candidate) <= limit:
            current = candidate
            continue
        if current.strip():
            chunks.append(current)
        if utf16_len(part) <= limit:
            current = part
        else:
            pieces = _split(part, limit, finer)
            chunks.extend(pieces[:-1])
            current = pieces[-1]
    if current.strip():
        chunks.append(current)
    return chunks


def _hard_split(text: str, limit: int) -> list[str]:
    """Last resort for one unbroken word longer than the limit; cuts between code points."""
    logger.debug("cutting a %d-unit word to fit a %d-unit limit", utf16_len(text), limit)
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        width = utf16_len(char)
        if size + width > limit and current:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        chunks.append("".join(current))
    return chunks


def truncate(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` UTF-16 units with an ellipsis, for titles Meta would cut."""
    text = " ".join(text.split())
    if utf16_len(text) <= limit:
        return text
    out: list[str] = []
    size = 1  # room for the ellipsis
    for char in text:
        size += utf16_len(char)
        if size > limit:
            break
        out.append(char)
    return "".join(out).rstrip() + "…"
