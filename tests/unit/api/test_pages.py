"""The page cache behind ``GET /predictions``: what it keeps, forgets and reads once."""

from __future__ import annotations

import asyncio

import pytest

from volforecast.api.pages import PageCache
from volforecast.errors import DatabaseUnavailableError


def test_a_page_read_while_rows_were_stored_is_not_kept() -> None:
    pages = PageCache(ttl_s=60, max_pages=2)
    generation = pages.generation
    pages.clear()  # rows stored while the page was read
    pages.put("a", b"old", generation)
    assert pages.get("a") is None
    for key in ("a", "b", "c"):
        pages.put(key, key.encode(), pages.generation)
    assert (pages.get("a"), pages.get("b"), pages.get("c")) == (None, b"b", b"c")


def test_waiting_requests_share_one_read_and_its_error() -> None:
    pages = PageCache(ttl_s=60)
    reads = 0

    async def read() -> bytes:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)
        if reads == 1:
            raise DatabaseUnavailableError("down")
        return b"page"

    async def main() -> None:
        failed = await asyncio.gather(*(pages.fill("k", read) for _ in range(20)),
                                      return_exceptions=True)  # fmt: skip
        assert reads == 1, "twenty requests at once, one read"
        assert all(isinstance(f, DatabaseUnavailableError) for f in failed)
        assert pages.get("k") is None, "an error is not kept"
        answers = await asyncio.gather(*(pages.fill("k", read) for _ in range(20)))
        assert (reads, set(answers)) == (2, {b"page"})
        assert pages.get("k") == b"page"

    asyncio.run(main())


def test_a_caller_that_goes_away_leaves_the_read_to_the_others() -> None:
    pages = PageCache(ttl_s=60)

    async def read() -> bytes:
        await asyncio.sleep(0.05)
        return b"page"

    async def main() -> None:
        first = asyncio.ensure_future(pages.fill("k", read))
        second = asyncio.ensure_future(pages.fill("k", read))
        await asyncio.sleep(0.01)
        first.cancel()
        assert await second == b"page"
        assert pages.get("k") == b"page", "kept, though the caller that read it went away"
        with pytest.raises(asyncio.CancelledError):
            await first

    asyncio.run(main())
