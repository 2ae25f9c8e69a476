"""``GET /models``: every registered model, its aliased versions and their metrics."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter
from mlflow.exceptions import MlflowException

from volforecast.api.deps import StateDep
from volforecast.api.schemas import ModelInfo, Problem
from volforecast.errors import TrackingUnavailableError, VolforecastError
from volforecast.registry.serving import list_versions

log = logging.getLogger(__name__)
router = APIRouter(tags=["models"])


@router.get(
    "/models",
    summary="List all models",
    responses={503: {"model": Problem, "description": "The registry is not answering."}},
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
