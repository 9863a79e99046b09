"""Reading a request body with a size limit, for every channel that takes posts from outside.

A client may announce no length, or a false one, so the limit is enforced while reading:
a flood is cut off after ``max_bytes``, not after it has filled memory.
"""

from __future__ import annotations

from aiohttp import web


async def read_limited(request: web.Request, max_bytes: int) -> bytes | None:
    """The raw body, or None if it is larger than ``max_bytes`` (read no further than that)."""
    if request.content_length is not None and request.content_length > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
