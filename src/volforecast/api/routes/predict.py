"""``POST /predict``: the production model's forecast from the latest stored close."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from volforecast.api.deps import StateDep
from volforecast.api.schemas import PredictRequest, PredictResponse, Problem
from volforecast.errors import VolforecastError
from volforecast.jobs.predict import model_key
from volforecast.registry.names import PRODUCTION

router = APIRouter(tags=["predictions"])

STORED = {
    "operationRef": "#/paths/~1predictions~1{ticker}/get",
    "parameters": {"ticker": "$response.body#/ticker"},
    "description": "The forecast's stored steps, once written.",
}
"""An OpenAPI link: a client (or a schema-driven test) reads back what it was answered."""


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
async def predict(body: PredictRequest, state: StateDep) -> PredictResponse:
    """Daily volatility (%) for the next ``horizon`` trading days; stored in the background.

    Without ``model_type``, the ticker's champion answers (``volforecast models champion``);
    ``alias: challenger`` asks for the challenger waiting for live evidence instead.
    """
    try:
        champion = False
        if body.model_type is not None:
            key = model_key(body.model_type)
        else:  # the ticker's champion, read on a thread only when it is not in memory
            found = state.forecaster.cached_champion(body.ticker)
            if found is None:
                found = await run_in_threadpool(state.forecaster.champion, body.ticker)
            key, champion = found
            # The challenger of the champion's family is not the champion.
            champion = champion and body.alias == PRODUCTION
        # A path computed before for this version and close is answered without a thread hop.
        prediction = state.forecaster.cached(body.ticker, key, body.alias)
        if prediction is None:
            prediction = await run_in_threadpool(
                state.forecaster.predict, body.ticker, key, body.alias
            )
    except VolforecastError as exc:
        state.metrics.prediction_errors.labels(type(exc).__name__).inc()
        raise
    now = dt.datetime.now(dt.UTC)
    state.writer.submit(prediction, body.horizon, now)
    state.metrics.predictions.labels(prediction.model_type).inc()
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
