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


class PageCache:
    """Serialized answers by request, each valid for ``ttl_s`` seconds (0: nothing is kept).

    ``get``, ``fill`` and ``put`` run on the event loop; ``clear`` may run on any thread (the
    writer's).
    A page read while rows were being stored is not kept: ``generation`` says so.
    """

    def __init__(self, ttl_s: float, max_pages: int = MAX_PAGES) -> None:
        self.ttl_s = ttl_s
        self.max_pages = max_pages
        self._pages: dict[Hashable, tuple[float, bytes]] = {}
        self._reading: dict[Hashable, asyncio.Future[bytes]] = {}
        self.generation = 0
        """Moves on each :meth:`clear`: a page read before a clear is not kept after it."""

    def get(self, key: Hashable) -> bytes | None:
        """The kept answer to ``key``, if it is younger than ``ttl_s``."""
        found = self._pages.get(key)
        if found is None or time.monotonic() - found[0] >= self.ttl_s:
            return None
        return found[1]

    def put(self, key: Hashable, body: bytes, generation: int) -> None:
        """Keep ``body``, read when :attr:`generation` was ``generation``, unless cleared since."""
        if self.ttl_s <= 0 or generation != self.generation:
            return
        pages = self._pages
        pages.pop(key, None)
        if len(pages) >= self.max_pages:
            del pages[next(iter(pages))]
        pages[key] = (time.monotonic(), body)

    async def fill(self, key: Hashable, read: Callable[[], Awaitable[bytes]]) -> bytes:
        """Read ``key``'s answer with ``read`` and keep it; a read under way is shared.

        When a page ages, every request waiting for it would otherwise read it at once: one
        reads, the rest wait for its answer (or its error).
        """
        pending = self._reading.get(key)
        if pending is None:
            generation = self.generation

            def done(future: asyncio.Future[bytes]) -> None:
                self._reading.pop(key, None)
                if not future.cancelled() and future.exception() is None:
                    self.put(key, future.result(), generation)

            pending = self._reading[key] = asyncio.ensure_future(read())
            pending.add_done_callback(done)
        return await asyncio.shield(pending)  # a caller that goes away leaves it reading

    def clear(self, *_: object) -> None:
        """Forget every page (new rows were stored)."""
        self.generation += 1
        self._pages = {}
