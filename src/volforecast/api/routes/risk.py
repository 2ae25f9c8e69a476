"""``GET /risk/{ticker}``: value at risk and expected shortfall from a model's own tails."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool

from volforecast.api.deps import StateDep
from volforecast.api.routes.predictions import TickerPath
from volforecast.api.schemas import MODEL_TYPES, Problem, RiskFigure, RiskResponse
from volforecast.core.tail_risk import RISK_DAYS, RISK_LEVELS
from volforecast.jobs.predict import model_key

router = APIRouter(tags=["risk"])


@router.get(
    "/risk/{ticker}",
    summary="Get value at risk and expected shortfall",
    responses={
        404: {"model": Problem, "description": "Unknown ticker, or no production model yet."},
        422: {
            "model": Problem,
            "description": "Unknown model type, level or horizon; too "
            "short a history for the model's own tails.",
        },
        503: {"model": Problem, "description": "The database is not answering."},
    },
)
async def risk(
    ticker: TickerPath,
    state: StateDep,
    *,
    model_type: Annotated[
        str | None,
        Query(
            max_length=32,
            description="GARCH, HAR, ... (any case); left out, the ticker's champion answers.",
            json_schema_extra={"enum": list(MODEL_TYPES)},
        ),
    ] = None,
    level: Annotated[
        float | None,
        Query(
            description="One confidence level; all by default.",
            json_schema_extra={"enum": list(RISK_LEVELS)},
        ),
    ] = None,
    days: Annotated[
        int | None,
        Query(
            description="One horizon in trading days; both by default.",
            json_schema_extra={"enum": list(RISK_DAYS)},
        ),
    ] = None,
) -> RiskResponse:
    """1- and 10-day VaR and ES at 95, 97.5 and 99 % from the latest stored close."""
    for name, value, allowed in (("level", level, RISK_LEVELS), ("days", days, RISK_DAYS)):
        if value is not None and value not in allowed:
            listed = ", ".join(map(str, allowed))
            raise HTTPException(422, f"{name} must be one of {listed}, got {value}")
    ticker = ticker.upper()
    champion = False
    if model_type is not None:
        key = model_key(model_type)
    else:
        key, champion = await run_in_threadpool(state.forecaster.champion, ticker)
    figures = await run_in_threadpool(state.risk_desk.risk, ticker, key)
    items = [
        RiskFigure(level=r.level, days=r.days, var_pct=r.var_pct, es_pct=r.es_pct, method=r.method)
        for r in figures.risks
        if (level is None or r.level == level) and (days is None or r.days == days)
    ]
    return RiskResponse(
        ticker=figures.ticker,
        model_type=figures.model_type,
        model_name=figures.registered_model,
        model_version=figures.model_version,
        origin_date=figures.origin_date,
        champion=champion,
        items=items,
    )
