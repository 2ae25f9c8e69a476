"""``GET /models``: every registered model, its aliased versions and their metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter
from mlflow.exceptions import MlflowException

from volforecast.api.deps import StateDep
from volforecast.api.schemas import ModelInfo, Problem
from volforecast.errors import TrackingUnavailableError
from volforecast.registry.serving import list_versions

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
        return list(cached[1])
    try:
        versions = list_versions(state.client)
    except (MlflowException, OSError) as exc:
        msg = f"the model registry is not answering: {str(exc).splitlines()[0][:200]}"
        raise TrackingUnavailableError(msg) from exc
    listing = [ModelInfo.from_version(v) for v in versions]
    state.models_listing = (time.monotonic(), listing)
    return listing
