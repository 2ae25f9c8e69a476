"""Domain errors to HTTP answers, in one place."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from volforecast.errors import (
    DatabaseUnavailableError,
    InvalidSeriesError,
    ModelNotFoundError,
    TrackingUnavailableError,
    UnknownModelTypeError,
    UnknownTickerError,
    VolforecastError,
)

log = logging.getLogger(__name__)

STATUS_FOR: list[tuple[type[Exception], int]] = [
    (UnknownTickerError, 404),
    (ModelNotFoundError, 404),
    (UnknownModelTypeError, 422),
    (InvalidSeriesError, 422),
    (DatabaseUnavailableError, 503),
    (TrackingUnavailableError, 503),
    (VolforecastError, 400),
]


def status_for(exc: Exception) -> int:
    """The HTTP status of a domain error."""
    return next((code for kind, code in STATUS_FOR if isinstance(exc, kind)), 500)


def install(app: FastAPI) -> None:
    """Register the handlers that turn errors into ``{"detail": ...}`` answers."""

    async def domain(_: Request, exc: Exception) -> JSONResponse:
        code = status_for(exc)
        headers = {"Retry-After": "5"} if code == 503 else None
        return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)

    async def database(_: Request, exc: Exception) -> JSONResponse:
        # A query that failed past the repositories' own checks: still the database's fault.
        log.warning("database error: %s", exc)
        return JSONResponse(
            {"detail": "the database is not answering; try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse({"detail": "internal error; see the service log"}, status_code=500)

    app.add_exception_handler(VolforecastError, domain)
    app.add_exception_handler(OperationalError, database)
    app.add_exception_handler(InterfaceError, database)
    app.add_exception_handler(Exception, unexpected)
