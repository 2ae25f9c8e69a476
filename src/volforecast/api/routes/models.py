"""``GET /models``: every registered model, its aliased versions and their metrics; cards."""

from __future__ import annotations

import logging
import math
import time
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from mlflow.exceptions import MlflowException

from volforecast.api.deps import StateDep
from volforecast.api.schemas import (
    TICKER_PATTERN,
    ModelCardResponse,
    ModelInfo,
    NewsImpactPoint,
    Problem,
    TermPoint,
)
from volforecast.errors import TrackingUnavailableError, VolforecastError
from volforecast.jobs.cards import card_of
from volforecast.registry.serving import list_versions

log = logging.getLogger(__name__)
router = APIRouter(tags=["models"])


CARD = {
    "operationRef": "#/paths/~1models~1{name}~1card/get",
    "parameters": {"name": "$response.body#/0/model_name"},
    "description": "The card of a listed model.",
}
"""An OpenAPI link: a client (or a schema-driven test) draws the card of what it listed."""


@router.get(
    "/models",
    summary="List all models",
    responses={
        200: {"links": {"model_card": CARD}},
        503: {"model": Problem, "description": "The registry is not answering."},
    },
)
def models(state: StateDep) -> list[ModelInfo]:
    """Registered models with the version each alias points at; a pooled model lists once."""
    # Listing asks the registry once per version; a dashboard polling it must not.
    cached = state.models_listing
    if cached is not None and time.monotonic() - cached[0] < state.settings.api.model_refresh_s:
        listing = list(cached[1])
    else:
        try:
            versions = list_versions(state.client)
        except (MlflowException, OSError) as exc:
            msg = f"the model registry is not answering: {str(exc).splitlines()[0][:200]}"
            raise TrackingUnavailableError(msg) from exc
        listing = [ModelInfo.from_version(v) for v in versions]
        state.models_listing = (time.monotonic(), listing)
    # Champions as /predict sees them now, not as they were when the registry was asked.
    try:
        champions = state.forecaster.champion_map()
    except VolforecastError as exc:  # the listing is the registry's: it goes on without them
        log.warning("champions not read: %s", exc)
        champions = {}
    return [i.model_copy(update={"champion_of": champions_of(champions, i)}) for i in listing]


def champions_of(champions: dict[str, str], info: ModelInfo) -> list[str]:
    """The tickers whose champion ``info`` is: its family's, if it is the production version."""
    if info.stage != "production":
        return []
    family = info.model_type.lower()
    owners = [info.ticker] if info.ticker is not None else list(champions)
    return sorted(t for t in owners if champions.get(t) == family)


@router.get(
    "/models/{name}/card",
    summary="Get a model card",
    responses={
        404: {"model": Problem, "description": "No production version of that name, or it "
              "does not serve the ticker; unknown ticker."},
        422: {"model": Problem, "description": "A pooled model asked without a ticker; "
              "stored prices that give no card."},
        503: {"model": Problem, "description": "The database is not answering."},
    },
)  # fmt: skip
async def card(
    name: Annotated[
        str,
        Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$",
             description="A registered model, as `GET /models` lists it.",
             examples=["garch_volatility_gspc"]),
    ],
    state: StateDep,
    ticker: Annotated[
        str | None,
        Query(min_length=1, max_length=16, pattern=TICKER_PATTERN,
              description="The ticker, for a pooled model (lstm_volatility_pooled)."),
    ] = None,
) -> ModelCardResponse:  # fmt: skip
    """Persistence, half-life, long-run volatility, term structure and news impact."""
    found = await run_in_threadpool(card_of, state.forecaster, name, ticker)
    impact = found.news_impact
    half_life = found.term.half_life_days
    return ModelCardResponse(
        model_name=found.model_name,
        model_version=found.model_version,
        model_type=found.model_type,
        ticker=found.ticker,
        origin_date=found.origin_date,
        params=found.params,
        persistence=found.term.persistence,
        half_life_days=half_life if math.isfinite(half_life) else None,
        long_run_vol_ann_pct=found.term.long_run_vol_ann_pct,
        term_structure=[
            TermPoint(days=d, vol_ann_pct=v)
            for d, v in zip(found.term.days, found.term.vol_ann_pct, strict=True)
        ],
        news_impact=None if impact is None else [
            NewsImpactPoint(shock_pct=e, sigma2=v)
            for e, v in zip(impact.shock_pct, impact.sigma2, strict=True)
        ],
    )  # fmt: skip
