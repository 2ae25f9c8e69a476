"""Errors to HTTP answers, in one place: one problem-details shape (RFC 9457) for all.

A 4xx says the caller's own mistake in a sentence (an unknown ticker, the command that
trains a missing model). A 5xx says only what is down, and the request id: the detail
(a database URL, a driver's message) goes to the service log under that id, never to the
caller. A validation error lists each bad part of the request without echoing its value,
which may not even be JSON (``1e400`` parses as infinity).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic.json_schema import models_json_schema
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException

from volforecast.api.request_id import REQUEST_ID_HEADER, request_id
from volforecast.api.schemas import FieldError, Problem
from volforecast.errors import (
    DatabaseUnavailableError,
    IncompleteRequestError,
    InvalidSeriesError,
    ModelNotFoundError,
    TrackingUnavailableError,
    UnknownModelTypeError,
    UnknownTickerError,
    VolforecastError,
)

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

DATABASE_DOWN = "the database is not answering; try again shortly"
STATUS_FOR: list[tuple[type[Exception], int, str | None]] = [
    (UnknownTickerError, 404, None),
    (ModelNotFoundError, 404, None),
    (UnknownModelTypeError, 422, None),
    (IncompleteRequestError, 422, None),
    (InvalidSeriesError, 422, None),
    (DatabaseUnavailableError, 503, DATABASE_DOWN),
    (TrackingUnavailableError, 503, "the model registry is not answering; try again shortly"),
    (VolforecastError, 400, None),
]
"""Each domain error's HTTP status, the first that matches, and what a server-side one says to
the caller in place of its own message."""

RETRY_AFTER_S = 5


def status_of(exc: VolforecastError) -> tuple[int, str | None]:
    """The HTTP status of a domain error, and what a server-side one says in its place."""
    return next((code, said) for kind, code, said in STATUS_FOR if isinstance(exc, kind))


NOT_UTF8 = FieldError(loc=["body"], msg="the body is not UTF-8 text", type="json_invalid")


class ProblemResponse(JSONResponse):
    """A JSON answer with the problem-details media type."""

    media_type = PROBLEM_MEDIA_TYPE


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProblemResponse:
    """The problem-details answer to ``request``, carrying its request id."""
    rid = request_id(request.scope)
    body = Problem(
        type="about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        request_id=rid,
        errors=errors,
    )
    return ProblemResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        headers={**(headers or {}), REQUEST_ID_HEADER: rid},
    )


def _server_side(request: Request, status: int, said: str, exc: BaseException) -> ProblemResponse:
    rid = request_id(request.scope)
    log.error("request %s (%s %s) answered %d: %s", rid, request.method, request.url.path,
              status, exc)  # fmt: skip
    retry = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return problem(request, status, said, headers=retry)


def _where(error: FieldError) -> str:
    place, *names = error.loc
    if error.type == "json_invalid":  # the rest of loc is a character offset, not a field
        return "the body"
    if not names:
        return f"the {place}"
    field = ".".join(str(name) for name in names)
    kind = {"body": "body field", "query": "query parameter", "path": "path parameter"}
    return f"{kind.get(str(place), str(place))} '{field}'"


def validation_detail(errors: Sequence[FieldError]) -> str:
    """One sentence naming the first bad part of a request, and how many more there are."""
    first = errors[0]
    more = len(errors) - 1
    tail = f" (and {more} more, listed in errors)" if more else ""
    return f"{_where(first)}: {first.msg}{tail}"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem-details answer."""

    async def domain(request: Request, exc: Exception) -> ProblemResponse:
        code, said = status_of(cast("VolforecastError", exc))
        if code >= 500:
            return _server_side(request, code, said or internal(request), exc)
        return problem(request, code, str(exc))

    async def database(request: Request, exc: Exception) -> ProblemResponse:
        # A query that failed past the repositories' own checks: still the database's fault.
        return _server_side(request, 503, DATABASE_DOWN, exc)

    async def http(request: Request, exc: Exception) -> ProblemResponse:
        refused = cast("HTTPException", exc)  # registered for HTTPException alone
        if isinstance(refused.__cause__, UnicodeDecodeError):
            # FastAPI's 400 for a body that is not UTF-8: malformed, like any broken JSON.
            return problem(request, 422, validation_detail([NOT_UTF8]), errors=[NOT_UTF8])
        return problem(request, refused.status_code, str(refused.detail), headers=refused.headers)

    async def invalid(request: Request, exc: Exception) -> ProblemResponse:
        found = cast("RequestValidationError", exc).errors()
        errors = [FieldError(loc=list(e["loc"]), msg=e["msg"], type=e["type"]) for e in found]
        return problem(request, 422, validation_detail(errors), errors=errors)

    async def unexpected(request: Request, exc: Exception) -> ProblemResponse:
        rid = request_id(request.scope)
        log.exception("request %s (%s %s): unexpected error", rid, request.method,
                      request.url.path, exc_info=exc)  # fmt: skip
        return problem(request, 500, internal(request))

    app.add_exception_handler(VolforecastError, domain)
    app.add_exception_handler(OperationalError, database)
    app.add_exception_handler(InterfaceError, database)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, unexpected)
    # FastAPI documents an error's model under the route's own media type and its 422 as
    # HTTPValidationError; the handlers above send neither, so the schema is said again.
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _as_problems(build())  # built once, then kept in app.openapi_schema
        return build()

    app.openapi = openapi  # type: ignore[method-assign]


def internal(request: Request) -> str:
    """What a caller is told of an internal error: where the detail is, not the detail."""
    return f"internal error; see the service log under request id {request_id(request.scope)}"


def _as_problems(schema: dict[str, Any]) -> None:
    """Every error answer in ``schema`` becomes ``application/problem+json`` of ``Problem``."""
    prefix = "#/components/schemas/"
    ours = {f"{prefix}Problem", f"{prefix}HTTPValidationError"}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                declared = content.get("application/json", {}).get("schema", {}).get("$ref")
                if declared in ours:
                    del content["application/json"]
                    content[PROBLEM_MEDIA_TYPE] = {"schema": {"$ref": f"{prefix}Problem"}}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for fastapi_default in ("HTTPValidationError", "ValidationError"):
        components.pop(fastapi_default, None)
    _, problems = models_json_schema([(Problem, "serialization")], ref_template=prefix + "{model}")
    components.update(problems.get("$defs", {}))
