"""``GET /predictions/{ticker}``: stored forecasts, filtered and paginated."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from volforecast.api.deps import service
from volforecast.api.schemas import (
    MODEL_TYPES,
    TICKER_PATTERN,
    IsoDate,
    PredictionPage,
    PredictionRecord,
    Problem,
)
from volforecast.api.state import ServiceState
from volforecast.data.db import reachable
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.jobs.predict import model_key

router = APIRouter(tags=["predictions"])

PageKey = tuple[str, str | None, dt.date | None, dt.date | None, int, int]
"""Ticker, stored model type, first and last forecast date, limit and offset."""

TickerPath = Annotated[str, Path(min_length=1, max_length=16, pattern=TICKER_PATTERN)]


@router.get(
    "/predictions/{ticker}",
    summary="Get stored predictions",
    response_model=PredictionPage,
    responses={
        422: {"model": Problem, "description": "Bad filter or page, or end before start."},
        503: {"model": Problem, "description": "The database is not answering."},
    },
)
async def predictions(
    ticker: TickerPath,
    request: Request,
    *,
    model_type: Annotated[
        str | None,
        Query(
            max_length=32,
            description="GARCH, LSTM, ... (any case)",
            json_schema_extra={"enum": list(MODEL_TYPES)},
        ),
    ] = None,
    start: Annotated[IsoDate | None, Query(description="First forecast date.")] = None,
    end: Annotated[
        IsoDate | None, Query(description="Last forecast date, not before start.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Stored forecast steps of a ticker, newest origin first; ``total`` counts every match.

    A waiting challenger's forecasts are listed too, marked ``served_as: challenger``.
    """
    if start is not None and end is not None and start > end:
        raise HTTPException(422, f"start {start} is after end {end}")
    state = service(request)
    stored_type = None if model_type is None else model_key(model_type).upper()
    ticker = ticker.upper()
    key = (ticker, stored_type, start, end, limit, offset)
    # A page read a moment ago is answered from memory, without a thread hop or a query.
    body = state.pages.get(key)
    if body is None:

        async def read() -> bytes:
            page = await run_in_threadpool(_read, state, key)
            return page.model_dump_json().encode()

        body = await state.pages.fill(key, read)
    return Response(body, media_type="application/json")


def _read(state: ServiceState, key: PageKey) -> PredictionPage:
    """One page from the database (blocking)."""
    ticker, model_type, start, end, limit, offset = key
    with reachable(state.engine):
        page = PredictionRepository(state.engine).find(
            ticker, model_type=model_type, start=start, end=end, limit=limit, offset=offset,
            served_as=None,
        )  # fmt: skip
    return PredictionPage(
        ticker=ticker,
        total=page.total,
        limit=limit,
        offset=offset,
        items=[PredictionRecord.model_validate(row, from_attributes=True) for row in page.rows],
    )
