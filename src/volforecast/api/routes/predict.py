"""``POST /predict`` and ``POST /predict/batch``: forecasts from the latest stored close."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from http import HTTPStatus

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from volforecast.api.deps import service
from volforecast.api.errors import internal, status_of
from volforecast.api.request_id import request_id
from volforecast.api.schemas import (
    ItemProblem,
    PredictBatchRequest,
    PredictBatchResponse,
    PredictRequest,
    PredictResponse,
    Problem,
)
from volforecast.api.state import ServiceState
from volforecast.errors import (
    DatabaseUnavailableError,
    TrackingUnavailableError,
    UnknownModelTypeError,
    VolforecastError,
)
from volforecast.jobs.predict import Prediction, model_key
from volforecast.registry.names import PRODUCTION

log = logging.getLogger(__name__)

router = APIRouter(tags=["predictions"])

BATCH_PATH = "/predict/batch"

STORED = {
    "operationRef": "#/paths/~1predictions~1{ticker}/get",
    "parameters": {"ticker": "$response.body#/ticker"},
    "description": "The forecast's stored steps, once written.",
}
"""An OpenAPI link: a client (or a schema-driven test) reads back what it was answered."""

Answer = tuple[Prediction, bool]
"""A forecast path, and whether it answered as the ticker's champion."""

OUTAGES = (DatabaseUnavailableError, TrackingUnavailableError)
"""Errors that would fail every item after them the same way: a batch stops asking."""


def _from_memory(state: ServiceState, body: PredictRequest) -> Answer | None:
    """The answer when memory holds it (no I/O, no thread hop); None when it must be read."""
    if body.model_type is None:
        found = state.forecaster.cached_champion(body.ticker)
        if found is None:
            return None
        key, champion = found
    else:
        key, champion = model_key(body.model_type), False
    prediction = state.forecaster.cached(body.ticker, key, body.alias)
    # The challenger of the champion's family is not the champion.
    return None if prediction is None else (prediction, champion and body.alias == PRODUCTION)


def _computed(state: ServiceState, body: PredictRequest) -> Answer:
    """The answer, reading the registry, the champions and the prices as needed (blocking)."""
    if body.model_type is None:
        key, champion = state.forecaster.champion(body.ticker)
    else:
        key, champion = model_key(body.model_type), False
    prediction = state.forecaster.predict(body.ticker, key, body.alias)
    return prediction, champion and body.alias == PRODUCTION


def _computed_all(
    state: ServiceState, bodies: Sequence[PredictRequest]
) -> list[Answer | Exception]:
    """Each body's answer or the error it met; after an outage the rest meet it too."""
    answers: list[Answer | Exception] = []
    outage: Exception | None = None
    for body in bodies:
        if outage is not None:
            answers.append(outage)
            continue
        try:
            answers.append(_computed(state, body))
        except Exception as exc:  # noqa: BLE001  (one item's fault is answered in its place)
            answers.append(exc)
            outage = exc if isinstance(exc, OUTAGES) else None
    return answers


def _response(
    body: PredictRequest, answer: Answer, state: ServiceState, now: dt.datetime
) -> PredictResponse:
    """The answer to ``body``, its steps queued for storage."""
    prediction, champion = answer
    state.writer.submit(prediction, body.horizon, now)
    state.metrics.observe_prediction(prediction.model_type)
    return PredictResponse(
        ticker=prediction.ticker,
        model_type=prediction.model_type,
        horizon=body.horizon,
        forecasts=list(prediction.vol_pct[: body.horizon]),
        forecast_dates=list(prediction.forecast_dates[: body.horizon]),
        timestamp=now,
        model_name=prediction.registered_model,
        model_version=prediction.model_version,
        origin_date=prediction.origin_date,
        champion=champion,
        alias=body.alias,
    )


@router.post(
    "/predict",
    summary="Generate predictions",
    responses={
        200: {"links": {"stored_predictions": STORED}},
        404: {
            "model": Problem,
            "description": "Unknown ticker, no production model yet, or "
            "no waiting challenger (alias challenger).",
        },
        413: {"model": Problem, "description": "The body is larger than the service accepts."},
        422: {"model": Problem, "description": "Malformed body, unknown model type, bad horizon."},
        503: {"model": Problem, "description": "The database is not answering."},
    },
)
async def predict(body: PredictRequest, request: Request) -> PredictResponse:
    """Daily volatility (%) for the next ``horizon`` trading days; stored in the background.

    Without ``model_type``, the ticker's champion answers (``volforecast models champion``);
    ``alias: challenger`` asks for the challenger waiting for live evidence instead.
    """
    state = service(request)
    try:
        # A path computed before for this version and close is answered without a thread hop.
        answer = _from_memory(state, body)
        if answer is None:
            answer = await run_in_threadpool(_computed, state, body)
    except VolforecastError as exc:
        state.metrics.prediction_errors.labels(type(exc).__name__).inc()
        raise
    return _response(body, answer, state, dt.datetime.now(dt.UTC))


def _problem(request: Request, body: PredictRequest, exc: Exception) -> ItemProblem:
    """Why one item of a batch has no forecast, as ``POST /predict`` would say it alone."""
    if isinstance(exc, VolforecastError):
        status, said = status_of(exc)
    else:
        status, said = 500, None
    detail = str(exc)
    if status >= 500:  # the detail goes to the log, as for a request of its own
        detail = said or internal(request)
        log.error("request %s: batch item %s %s answered %d: %s", request_id(request.scope),
                  body.ticker, body.model_type, status, exc,
                  exc_info=exc if status == 500 else None)  # fmt: skip
    return ItemProblem(
        ticker=body.ticker,
        model_type=body.model_type,
        status=status,
        title=HTTPStatus(status).phrase,
        detail=detail,
    )


def _check_model_types(items: Sequence[PredictRequest]) -> None:
    """Refuse the whole batch (422) when an item names a model type outside the schema's."""
    for at, item in enumerate(items):
        if item.model_type is None:
            continue
        try:
            model_key(item.model_type)
        except UnknownModelTypeError as exc:
            msg = f"body field 'items.{at}.model_type': {exc}"
            raise UnknownModelTypeError(msg) from None


@router.post(
    BATCH_PATH,
    summary="Generate predictions in bulk",
    responses={
        413: {"model": Problem, "description": "The body is larger than the batch limit."},
        422: {
            "model": Problem,
            "description": "Malformed body, more than 500 items, or an unknown model type.",
        },
        503: {"model": Problem, "description": "No item could be answered: a store is down."},
    },
)
async def predict_batch(body: PredictBatchRequest, request: Request) -> PredictBatchResponse:
    """Up to 500 forecasts in one request, in order; an item that fails says why in its place."""
    state = service(request)
    _check_model_types(body.items)
    found: list[Answer | Exception | None] = []
    for item in body.items:
        try:
            found.append(_from_memory(state, item))
        except VolforecastError as exc:
            found.append(exc)
    missing = [item for item, answer in zip(body.items, found, strict=True) if answer is None]
    # One thread hop for all that memory does not hold, not one per item.
    computed = iter(await run_in_threadpool(_computed_all, state, missing) if missing else [])
    answers = [next(computed) if answer is None else answer for answer in found]
    if all(isinstance(answer, OUTAGES) for answer in answers):
        raise next(a for a in answers if isinstance(a, OUTAGES))  # 503 with Retry-After
    now = dt.datetime.now(dt.UTC)
    items: list[PredictResponse | ItemProblem] = []
    for item, answer in zip(body.items, answers, strict=True):
        if isinstance(answer, Exception):
            state.metrics.prediction_errors.labels(type(answer).__name__).inc()
            items.append(_problem(request, item, answer))
        else:
            items.append(_response(item, answer, state, now))
    failed = sum(isinstance(item, ItemProblem) for item in items)
    return PredictBatchResponse(items=items, answered=len(items) - failed, failed=failed)
