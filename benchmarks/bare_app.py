"""The ceiling ``serving.py`` measures volforecast against: FastAPI answering from a constant.

The same pydantic request and response models as ``POST /predict`` (so the same validation
and serialization), no middleware, no lifespan, no database, and the same uvicorn flags as
``volforecast serve``. What volforecast costs beyond this is its own work: the request id, the
metrics, the body limit, the model lookup, the queued write.

    uvicorn bare_app:create_app --factory --no-access-log  (run from benchmarks/)
"""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI

from volforecast.api.schemas import PredictRequest, PredictResponse
from volforecast.core.calendar import trading_days_after


def create_app() -> FastAPI:
    """A FastAPI app with ``POST /predict`` and ``GET /health``, answering from constants."""
    app = FastAPI(docs_url=None, redoc_url=None)
    origin = dt.date(2018, 12, 31)
    dates = trading_days_after(origin, 30)
    # As many digits as a computed volatility has, so that the answers are as long.
    forecasts = [1.0123456789012345 + step / 1000 for step in range(30)]

    @app.post("/predict")
    async def predict(body: PredictRequest) -> PredictResponse:
        return PredictResponse(
            ticker=body.ticker,
            model_type=body.model_type or "GARCH",
            horizon=body.horizon,
            forecasts=forecasts[: body.horizon],
            forecast_dates=dates[: body.horizon],
            timestamp=dt.datetime.now(dt.UTC),
            model_name="garch_volatility_gspc",
            model_version="1",
            origin_date=origin,
            alias=body.alias,
        )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
