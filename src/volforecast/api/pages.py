"""``GET /predictions`` answers kept in memory for a moment.

The dashboard asks for the same pages over and over, and each read is two queries and a
thread hop.

A page is kept ``ttl_s`` seconds at most. Rows the service stores itself clear every page at
once; rows another process stores (the daily job, a backfill) show within ``ttl_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable

MAX_PAGES = 1024
"""Pages kept at most; the oldest goes first."""
MAX_BYTES = 32 * 2**20
"""Bytes of pages kept at most (a page of 1,000 rows is about 250 kB); the oldest goes first."""


class PageCache:
    """Serialized answers by request, each valid for ``ttl_s`` seconds (0: nothing is kept).

    ``get``, ``fill`` and ``put`` run on the event loop; ``clear`` may run on any thread (the
    writer's). Each page and each read under way carries the :attr:`generation` it was read
    in, and only the current generation's are answered: a page read before rows were stored
    is never served after, whatever the order in which the two threads ran. Every server
    process keeps its own pages.
    """

    def __init__(
        self, ttl_s: float, max_pages: int = MAX_PAGES, max_bytes: int = MAX_BYTES
    ) -> None:
        self.ttl_s = ttl_s
        self.max_pages = max_pages
        self.max_bytes = max_bytes
        self._pages: dict[Hashable, tuple[int, float, bytes]] = {}
        self._bytes = 0
        self._reading: dict[Hashable, tuple[int, asyncio.Future[bytes]]] = {}
        self.generation = 0
        """Moves on each :meth:`clear`: what was read before it is not answered after it."""

    def get(self, key: Hashable) -> bytes | None:
        """The kept answer to ``key``, if it is of this generation and younger than ``ttl_s``."""
        found = self._pages.get(key)
        if found is None:
            return None
        generation, stored_at, body = found
        if generation != self.generation or time.monotonic() - stored_at >= self.ttl_s:
            return None
        return body

    def put(self, key: Hashable, body: bytes, generation: int) -> None:
        """Keep ``body``, read in ``generation``; the oldest pages go past either bound."""
        if self.ttl_s <= 0 or generation != self.generation or len(body) > self.max_bytes:
            return
        pages = self._pages
        self._drop(pages, key)
        while pages and (len(pages) >= self.max_pages or self._bytes + len(body) > self.max_bytes):
            self._drop(pages, next(iter(pages)))
        pages[key] = (generation, time.monotonic(), body)
        self._bytes += len(body)

    def _drop(self, pages: dict[Hashable, tuple[int, float, bytes]], key: Hashable) -> None:
        found = pages.pop(key, None)
        if found is not None:
            self._bytes -= len(found[2])

    async def fill(self, key: Hashable, read: Callable[[], Awaitable[bytes]]) -> bytes:
        """Read ``key``'s answer with ``read`` and keep it; a read under way is shared.

        When a page ages, every request waiting for it would otherwise read it at once: one
        reads, the rest wait for its answer (or its error). A read begun before rows were
        stored is not joined after.
        """
        generation = self.generation
        found = self._reading.get(key)
        if found is not None and found[0] == generation:
            return await asyncio.shield(found[1])
        pending = asyncio.ensure_future(read())
        self._reading[key] = (generation, pending)

        def done(future: asyncio.Future[bytes]) -> None:
            if self._reading.get(key, (None, None))[1] is future:
                del self._reading[key]
            if not future.cancelled() and future.exception() is None:
                self.put(key, future.result(), generation)

        pending.add_done_callback(done)
        return await asyncio.shield(pending)  # a caller that goes away leaves it reading

    def clear(self, *_: object) -> None:
        """Forget every page (new rows were stored)."""
        self.generation += 1
        self._pages, self._bytes = {}, 0
