"""The page cache behind ``GET /predictions``: what it keeps, forgets and reads once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from volforecast.api.pages import PageCache
from volforecast.errors import DatabaseUnavailableError


def _reader(
    reads: list[int], delay_s: float, *, fail_first: bool = False
) -> Callable[[], Awaitable[bytes]]:
    """A page read that counts itself in ``reads``, takes ``delay_s``, and says its number."""

    async def read() -> bytes:
        reads.append(len(reads) + 1)
        number = reads[-1]
        await asyncio.sleep(delay_s)
        if fail_first and number == 1:
            raise DatabaseUnavailableError("down")
        return f"read {number}".encode()

    return read


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
    reads: list[int] = []
    read = _reader(reads, delay_s=0.01, fail_first=True)

    async def main() -> None:
        failed = await asyncio.gather(*(pages.fill("k", read) for _ in range(20)),
                                      return_exceptions=True)  # fmt: skip
        assert len(reads) == 1, "twenty requests at once, one read"
        assert all(isinstance(f, DatabaseUnavailableError) for f in failed)
        assert pages.get("k") is None, "an error is not kept"
        answers = await asyncio.gather(*(pages.fill("k", read) for _ in range(20)))
        assert (len(reads), set(answers)) == (2, {b"read 2"})
        assert pages.get("k") == b"read 2"

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


def test_a_page_of_an_older_generation_is_never_answered() -> None:
    pages = PageCache(ttl_s=60)
    generation = pages.generation
    pages.clear()
    # As if put had checked the generation just before the writer's clear ran.
    pages._pages["a"] = (generation, time.monotonic(), b"old")
    assert pages.get("a") is None


def test_a_read_begun_before_rows_were_stored_is_not_joined_after() -> None:
    pages = PageCache(ttl_s=60)
    reads: list[int] = []
    read = _reader(reads, delay_s=0.02)

    async def main() -> None:
        before = asyncio.ensure_future(pages.fill("k", read))
        await asyncio.sleep(0.005)
        pages.clear()  # rows stored while the first read was under way
        after = await pages.fill("k", read)
        assert (await before, after, len(reads)) == (b"read 1", b"read 2", 2)
        assert pages.get("k") == b"read 2"

    asyncio.run(main())


def test_pages_are_bounded_in_bytes_as_well_as_in_number() -> None:
    pages = PageCache(ttl_s=60, max_pages=10, max_bytes=10)
    pages.put("a", b"123456", pages.generation)
    pages.put("b", b"123456", pages.generation)
    assert (pages.get("a"), pages.get("b")) == (None, b"123456")
    pages.put("c", b"x" * 11, pages.generation)  # larger than the bound: not kept
    assert pages.get("c") is None
    assert pages.get("b") == b"123456"
