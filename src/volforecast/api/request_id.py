"""A request id for every request: the caller's ``X-Request-ID`` when sane, else a fresh one.

The id is answered as ``X-Request-ID`` and in every error body; the service log names a
server error's detail under it, so a caller can quote it without seeing the detail.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"

_SANE = re.compile(r"[!-~]{1,128}")
"""Visible ASCII, no spaces, at most 128 characters: safe to log and to send back."""


_PROCESS = uuid.uuid4().hex[:16]
_COUNT = itertools.count(1)


def _new_process() -> None:
    global _PROCESS, _COUNT  # a forked worker must not repeat its parent's ids
    _PROCESS, _COUNT = uuid.uuid4().hex[:16], itertools.count(1)


os.register_at_fork(after_in_child=_new_process)


def new_request_id() -> str:
    """A fresh id, unique across processes and restarts: a random prefix and a counter.

    Not a uuid4 per request: reading 16 random bytes costs as much as a tenth of an answer.
    """
    return f"{_PROCESS}{next(_COUNT):016x}"


def request_id(scope: Scope) -> str:
    """The id of the request ``scope`` belongs to, made now when the middleware has not run."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = new_request_id()
    return str(state["request_id"])


class RequestIdMiddleware:
    """Gives each request its id and answers it in the ``X-Request-ID`` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Name the request, pass it on, and put the id on the answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The raw header lists, not Starlette's Headers: this runs on every request.
        given = _header(scope.get("headers") or (), _NAME)
        state = scope.setdefault("state", {})
        state["request_id"] = given if given and _SANE.fullmatch(given) else new_request_id()

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                if _header(headers, _NAME) is None:  # an error answer carries it already
                    message["headers"] = [*headers, (_NAME, state["request_id"].encode())]
            await send(message)

        await self.app(scope, receive, sending)


_NAME = REQUEST_ID_HEADER.lower().encode()


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), decoded as HTTP says: latin-1."""
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None
