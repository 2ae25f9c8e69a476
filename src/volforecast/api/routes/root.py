"""``GET /``: what this service is."""

from __future__ import annotations

from fastapi import APIRouter

from volforecast import __version__
from volforecast.api.schemas import ApiInfo

router = APIRouter(tags=["service"])


@router.get("/", summary="API information")
def info() -> ApiInfo:
    """Name, version and links of the volforecast prediction service."""
    return ApiInfo(
        name="volforecast",
        version=__version__,
        description="Stock volatility forecasts from the models in production.",
        links={
            "docs": "/docs",
            "redoc": "/redoc",
            "openapi": "/openapi.json",
            "health": "/health",
            "models": "/models",
            "model_card": "/models/{name}/card",
            "predict": "/predict",
            "predictions": "/predictions/{ticker}",
            "risk": "/risk/{ticker}",
            "metrics": "/metrics",
        },
    )
