"""``create_app()``: the FastAPI service, its middleware, routes and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from volforecast import __version__
from volforecast.api import docs, errors
from volforecast.api.deps import require_api_key
from volforecast.api.observability import BodyLimitMiddleware, MetricsMiddleware, ServiceMetrics
from volforecast.api.request_id import RequestIdMiddleware
from volforecast.api.routes import health, metrics, models, predict, predictions, risk, root
from volforecast.api.schemas import Problem
from volforecast.api.state import ServiceState
from volforecast.settings import Settings, get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """
Volatility forecasts from the models in production in the MLflow registry.

`POST /predict` answers with the production model of a ticker and model type, using every
stored close up to the latest; each answer is stored in `ml.volatility_predictions`.
`POST /predict/batch` answers up to 500 of them in one request.
Volatility is daily, in percent. When an API key is configured, send it as `X-API-Key`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The prediction service; ``settings`` default to the environment's."""
    settings = settings or get_settings()
    service_metrics = ServiceMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await anyio.to_thread.run_sync(ServiceState.build, settings, service_metrics)
        app.state.service = state
        # Ready to answer before the first look at the registry ends: a registry that is
        # down must not keep the service from starting; /health says what is missing.
        for step in (state.prepare_database, state.refresh_prices, state.refresh_models):
            await anyio.to_thread.run_sync(step)
        log.info("serving %d registered models from %s", len(state.models),
                 settings.mlflow_tracking_uri)  # fmt: skip
        # Everything loaded so far (MLflow, torch, the models) lives as long as the service:
        # taken out of the collector's reach, a full collection no longer stalls requests.
        gc.collect()
        gc.freeze()
        refresher = asyncio.create_task(state.keep_fresh())
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            await anyio.to_thread.run_sync(state.close)

    app = FastAPI(
        title="volforecast",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by docs.install from local assets, not a CDN
        redoc_url=None,
    )
    # Without a key the routes are open, and the schema must not ask callers for one.
    guarded: dict[str, Any] = {}
    if settings.api.api_key is not None:
        refused = {"model": Problem, "description": "A valid X-API-Key header is required."}
        guarded = {"dependencies": [Depends(require_api_key)], "responses": {401: refused}}
    # FastAPI tries the routes in order for every request: the busiest come first.
    for router in (predict.router, predictions.router, risk.router, models.router):
        app.include_router(router, **guarded)
    for router in (root.router, health.router, metrics.router):
        app.include_router(router)
    docs.install(app)
    errors.install(app)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key"],
        )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.api.max_body_bytes,
        per_path={predict.BATCH_PATH: settings.api.max_batch_body_bytes},
    )
    app.add_middleware(MetricsMiddleware, metrics=service_metrics)  # counts all
    app.add_middleware(RequestIdMiddleware)  # outermost: every answer carries its id
    return app
