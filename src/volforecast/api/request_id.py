"""A request id for every request: the caller's ``X-Request-ID`` when sane, else a fresh one.

The id is answered as ``X-Request-ID`` and in every error body; the service log names a
server error's detail under it, so a caller can quote it without seeing the detail.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"

_SANE = re.compile(r"[!-~]{1,128}")
"""Visible ASCII, no spaces, at most 128 characters: safe to log and to send back."""


def request_id(scope: Scope) -> str:
    """The id of the request ``scope`` belongs to, made now when the middleware has not run."""
    return str(scope.setdefault("state", {}).setdefault("request_id", uuid.uuid4().hex))


class RequestIdMiddleware:
    """Gives each request its id and answers it in the ``X-Request-ID`` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Name the request, pass it on, and put the id on the answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER)
        state = scope.setdefault("state", {})
        state["request_id"] = given if given and _SANE.fullmatch(given) else uuid.uuid4().hex

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers.append(REQUEST_ID_HEADER, state["request_id"])
            await send(message)

        await self.app(scope, receive, sending)
