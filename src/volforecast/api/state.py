"""Everything one running service holds: built in the lifespan, never at import."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from mlflow import MlflowClient
from sqlalchemy import Engine

from volforecast.api.observability import ServiceMetrics
from volforecast.api.pages import PageCache
from volforecast.data.db import create_db_engine, ensure_schema
from volforecast.data.journal import PredictionJournal
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.errors import VolforecastError
from volforecast.jobs.predict import Forecaster
from volforecast.jobs.risk import RiskDesk
from volforecast.jobs.writer import PredictionWriter
from volforecast.registry.names import CHALLENGER
from volforecast.registry.serving import ProductionModels
from volforecast.registry.tracking import connect
from volforecast.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ServiceState:
    """The engine, the models in production, the forecaster and the prediction writer."""

    settings: Settings
    engine: Engine
    client: MlflowClient
    models: ProductionModels
    challengers: ProductionModels
    """Challengers waiting for live evidence: they answer a request that asks for them."""
    forecaster: Forecaster
    writer: PredictionWriter
    metrics: ServiceMetrics
    risk_desk: RiskDesk
    pages: PageCache
    """``GET /predictions`` answers kept a moment; cleared whenever the writer stores rows."""
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    models_listing: tuple[float, list[Any]] | None = None
    """When ``GET /models`` last asked the registry, and what it answered."""

    @classmethod
    def build(cls, settings: Settings, metrics: ServiceMetrics) -> ServiceState:
        """Connect to the database and the registry without waiting for either to answer."""
        engine = create_db_engine(settings)
        client = connect(settings, check=False)
        models = ProductionModels(client)
        challengers = ProductionModels(client, alias=CHALLENGER)
        pages = PageCache(settings.api.pages_cache_s)

        def stored(rows: int) -> None:
            metrics.predictions_stored.inc(rows)
            pages.clear()  # the service's own rows show at once

        writer = PredictionWriter(
            PredictionRepository(engine),
            PredictionJournal(settings.home / "journal"),
            batch=settings.api.write_batch,
            interval_s=settings.api.write_interval_s,
            max_pending=settings.api.max_pending,
            on_write=stored,
        )
        forecaster = Forecaster(engine, settings, models, challengers)
        return cls(
            settings, engine, client, models, challengers, forecaster, writer, metrics,
            RiskDesk(forecaster), pages,
        )  # fmt: skip

    def prepare_database(self) -> None:
        """Create or migrate the tables (the embedded default starts from nothing)."""
        try:
            ensure_schema(self.engine)
        except VolforecastError as exc:
            log.error("database not ready; serving what the registry holds: %s", exc)

    def refresh_models(self) -> None:
        """Look at the registry once; failures are counted and logged, never raised."""
        try:
            report = self.models.refresh()
        except Exception as exc:  # noqa: BLE001  (the models held keep serving)
            self.metrics.model_load_errors.inc()
            log.warning("registry not reachable; keeping %d models: %s", len(self.models), exc)
            return
        self.metrics.model_loads.inc(len(report.loaded))
        self.metrics.model_load_errors.inc(len(report.failed))
        self.metrics.models_served.set(report.served)
        if not self.settings.promotion.min_live_days:
            return  # no live A/B asked: no challenger is looked for
        try:
            self.challengers.refresh()
        except Exception as exc:  # noqa: BLE001  (production serves; challengers wait)
            log.warning("waiting challengers not refreshed: %s", exc)

    def refresh_prices(self) -> None:
        """Read every ticker's latest close once; failures are logged, never raised."""
        try:
            self.forecaster.refresh_latest()
        except VolforecastError as exc:
            log.warning("latest closes not refreshed: %s", exc)

    async def keep_fresh(self) -> None:
        """Refresh models and latest closes on their timers until cancelled."""
        api = self.settings.api
        next_models = time.monotonic() + api.model_refresh_s
        next_prices = time.monotonic() + api.prices_refresh_s
        while True:
            now = time.monotonic()
            if now >= next_models:
                await anyio.to_thread.run_sync(self.refresh_models)
                next_models = time.monotonic() + api.model_refresh_s
            if api.prices_refresh_s > 0 and now >= next_prices:
                await anyio.to_thread.run_sync(self.refresh_prices)
                next_prices = time.monotonic() + api.prices_refresh_s
            self.metrics.observe_writer(self.writer.stats)
            await asyncio.sleep(min(api.model_refresh_s, api.prices_refresh_s or 1.0, 1.0))

    def close(self) -> None:
        """Write or journal the predictions still queued, then let go of the database."""
        self.writer.close()
        self.engine.dispose()
