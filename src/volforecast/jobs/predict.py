"""Forecasts from the production models: one at a time for the API, every ticker for the daily job.

A forecast uses the production version's frozen parameters and every stored close up to the
latest: the model's origin moves to that close (``update``), nothing is refitted. The whole
30-day path is computed once per model version, ticker and latest close and kept, so asking
again, for any horizon, costs a dictionary lookup. The service's answers reach
``ml.volatility_predictions`` through :class:`volforecast.jobs.writer.PredictionWriter`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.exc import ProgrammingError

from volforecast.core.features import DailyData
from volforecast.data.db import reachable
from volforecast.data.repositories.market import MarketRepository
from volforecast.data.repositories.predictions import PredictionRow, ServedAs
from volforecast.data.repositories.prices import PriceRepository
from volforecast.errors import (
    DatabaseUnavailableError,
    InvalidSeriesError,
    ModelNotFoundError,
    UnknownModelTypeError,
    UnknownTickerError,
)
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.jobs.market import refresh_market, with_market
from volforecast.models.base import MAX_HORIZON, VolatilityForecast, VolatilityModel
from volforecast.models.catalog import DEFAULT_MODEL, MODEL_NAMES
from volforecast.registry.champion_book import CHAMPIONS, ChampionBook
from volforecast.registry.names import CHALLENGER, PRODUCTION, Alias, registered_model_name
from volforecast.registry.serving import ProductionModels, Served
from volforecast.settings import QualitySettings, Settings

log = logging.getLogger(__name__)

CACHE_LIMIT = 20_000
"""Forecast paths kept in memory; the table starts over beyond (each path is ~1 KiB)."""


@dataclass(frozen=True)
class Prediction:
    """A production model's 30-day path from the latest stored close.

    ``vol_pct`` is the daily volatility in percent of each trading day in ``forecast_dates``.
    """

    ticker: str
    model_type: str
    registered_model: str
    model_version: str
    run_id: str | None
    origin_date: dt.date
    forecast_dates: tuple[dt.date, ...]
    vol_pct: tuple[float, ...]
    served_as: ServedAs = PRODUCTION
    """``challenger``: a waiting challenger's path, stored apart from the model's forecasts."""

    def rows(self, horizon: int, made_at: dt.datetime, first_step: int = 1) -> list[PredictionRow]:
        """Steps ``first_step`` to ``horizon`` as rows of ``ml.volatility_predictions``."""
        return [
            PredictionRow(
                ticker=self.ticker,
                model_type=self.model_type,
                origin_date=self.origin_date,
                step=step,
                forecast_date=self.forecast_dates[step - 1],
                predicted_volatility=self.vol_pct[step - 1],
                model_version=self.model_version,
                run_id=self.run_id,
                prediction_timestamp=made_at,
                served_as=self.served_as,
            )
            for step in range(first_step, horizon + 1)
        ]


def model_key(model_type: str) -> str:
    """``GARCH`` -> ``garch``; a model type volforecast does not ship is refused."""
    key = model_type.strip().lower()
    if key not in MODEL_NAMES:
        msg = f"unknown model type {model_type!r}; choose from {', '.join(MODEL_NAMES)}"
        raise UnknownModelTypeError(msg)
    return key


class Forecaster:
    """Forecasts of the production models from the latest stored closes.

    ``settings.api.prices_refresh_s`` 0 reads the latest close on every call.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        models: ProductionModels,
        challengers: ProductionModels | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.models = models
        self.challengers = challengers
        """The challengers waiting for live evidence, answering only when asked for."""
        self.prices = PriceRepository(engine)
        self._latest: dict[str, dt.date] = {}
        # Keyed by alias too: a promoted challenger's version then serves as production.
        self._paths: dict[tuple[Alias, str, str, str, dt.date], Prediction] = {}
        self._champions: dict[str, str] | None = None

    # The latest close of every ticker is read in one query by refresh_latest (the service
    # does it on a timer); a ticker it does not know yet is looked up alone.

    def refresh_latest(self) -> int:
        """Read the latest stored close and the champion of every ticker; how many tickers."""
        with reachable(self.engine):
            self._latest = self.prices.latest_dates()
        self.champions()
        return len(self._latest)

    def cached_champion(self, ticker: str) -> tuple[str, bool] | None:
        """:meth:`champion` from memory; None when it must be read (no I/O here)."""
        if self._champions is None or self.settings.api.prices_refresh_s == 0:
            return None
        return self._served(ticker, self._champions.get(ticker))

    def champion(self, ticker: str) -> tuple[str, bool]:
        """The family answering ``ticker`` when a request names none, and if it is the champion.

        A ticker without a champion, or whose champion this service has not loaded yet, is
        answered by GARCH, the specification's model.
        """
        found = self.cached_champion(ticker)
        return found if found is not None else self._served(ticker, self.champions().get(ticker))

    def _served(self, ticker: str, champion: str | None) -> tuple[str, bool]:
        if champion is None or self.models.find(champion, ticker) is None:
            return DEFAULT_MODEL, False
        return champion, True

    def champion_map(self) -> dict[str, str]:
        """Every ticker's champion as :meth:`champion` sees it: from memory when it is kept."""
        if self._champions is not None and self.settings.api.prices_refresh_s > 0:
            return self._champions
        return self.champions()

    def champions(self) -> dict[str, str]:
        """Every ticker's champion family, read now (the service also reads it on a timer).

        None on a database from before champions (not yet upgraded): it still serves.
        """
        try:
            stored = ChampionBook(self.engine).all()
        except (DatabaseUnavailableError, ProgrammingError) as exc:
            if CHAMPIONS.name not in str(exc):
                raise
            if self._champions is None:  # once, not on every refresh
                log.warning("no champions: the database predates them (`volforecast db upgrade`)")
            stored = {}
        self._champions = {t: c.model for t, c in stored.items()}
        return self._champions

    def latest(self, ticker: str) -> dt.date | None:
        """The date of ``ticker``'s latest stored close; None when none is stored."""
        known = None if self.settings.api.prices_refresh_s == 0 else self._latest.get(ticker)
        if known is not None:
            return known
        with reachable(self.engine):
            found = self.prices.latest_dates([ticker]).get(ticker)
        if found is not None:
            self._latest = {**self._latest, ticker: found}
        return found

    def latest_close(self, ticker: str) -> dt.date:
        """:meth:`latest`, refusing a ticker with no stored price (UnknownTickerError)."""
        latest = self.latest(ticker)
        if latest is None:
            msg = f"no prices are stored for {ticker!r}: ingest them first"
            raise UnknownTickerError(msg)
        return latest

    def last_close(self) -> dt.date | None:
        """The latest stored close of any ticker (None: none), as :meth:`refresh_latest` read it."""
        if not self._latest or self.settings.api.prices_refresh_s == 0:
            self.refresh_latest()
        return max(self._latest.values(), default=None)

    def _held(self, alias: Alias) -> ProductionModels | None:
        return self.models if alias == PRODUCTION else self.challengers

    def cached(self, ticker: str, model_type: str, alias: Alias = PRODUCTION) -> Prediction | None:
        """The path :meth:`predict` would give, when it is in memory already; no I/O."""
        held = self._held(alias)
        if self.settings.api.prices_refresh_s == 0 or held is None:
            return None
        latest = self._latest.get(ticker)
        found = held.find(model_type, ticker)
        if latest is None or found is None:
            return None
        served, _ = found
        return self._paths.get((alias, served.name, served.version, ticker, latest))

    def predict(self, ticker: str, model_type: str, alias: Alias = PRODUCTION) -> Prediction:
        """The production ``model_type``'s 30-day path for ``ticker``.

        ``alias="challenger"``: its challenger's, when one waits for live evidence.

        Raises
        ------
        UnknownModelTypeError
            For a model type volforecast does not ship.
        UnknownTickerError
            When no price of ``ticker`` is stored.
        ModelNotFoundError
            When no production version serves ``ticker`` yet.
        DatabaseUnavailableError
            When the price store cannot be read.
        InvalidSeriesError
            When the stored prices cannot be forecast from (too few pass the quality gate).
        """
        served, model, latest = self.resolve(ticker, model_type, alias)
        cache_key = (alias, served.name, served.version, ticker, latest)
        hit = self._paths.get(cache_key)
        if hit is not None:
            return hit
        prediction = path_from(served, model, self.data_until(ticker, latest), served_as=alias)
        if len(self._paths) >= CACHE_LIMIT:
            self._paths = {}
        self._paths[cache_key] = prediction
        return prediction

    def resolve(
        self, ticker: str, model_type: str, alias: Alias = PRODUCTION
    ) -> tuple[Served, VolatilityModel, dt.date]:
        """The version serving ``ticker`` as ``model_type``, its model and the latest close.

        Raises as :meth:`predict` does.
        """
        key = model_key(model_type)
        latest = self.latest_close(ticker)
        held = self._held(alias)
        found = None if held is None else held.find(key, ticker)
        if found is None and alias == CHALLENGER:
            msg = (
                f"no {key.upper()} challenger of {ticker} waits for live evidence (one does "
                "only after it beat production at training with "
                "VOLFORECAST_PROMOTION__MIN_LIVE_DAYS above 0): ask for production"
            )
            raise ModelNotFoundError(msg)
        if (
            found is None
            and held is not None
            and (name := registered_model_name(key, ticker)) in held.unserved
        ):
            msg = (
                f"no production {key.upper()} model for {ticker}: {name} is registered, but "
                "none of its versions was promoted (one whose fit did not converge never is; "
                "`volforecast models list` shows its versions): ask for another model type "
                "(`GET /models` lists those in production)"
            )
            raise ModelNotFoundError(msg)
        if found is None:
            msg = (
                f"no production {key.upper()} model for {ticker} yet: train one with "
                f"`volforecast train --tickers {ticker} --models {key}`"
            )
            raise ModelNotFoundError(msg)
        served, model = found
        return served, model, latest

    def data_until(self, ticker: str, latest: dt.date) -> DailyData:
        """``ticker``'s stored data through ``latest`` that passes the quality gate."""
        with reachable(self.engine):
            prices = self.prices.load([ticker], end=latest)
            market = MarketRepository(self.engine).load(end=latest)
        data = Preloaded(prices, market).datasets(None, [ticker], self.settings.quality).get(ticker)
        if data is None:
            msg = f"{ticker}: no stored price passes the quality gate"
            raise InvalidSeriesError(msg)
        return data


def path_from(
    served: Served, model: VolatilityModel, data: DailyData, served_as: ServedAs = PRODUCTION
) -> Prediction:
    """``model``'s 30-day path from the last day of ``data``, parameters frozen."""
    with served.lock:  # update() moves this shared model's origin
        forecast = model.update(data).forecast(MAX_HORIZON)
    return prediction_of(served, forecast, served_as)


def prediction_of(
    served: Served, forecast: VolatilityForecast, served_as: ServedAs = PRODUCTION
) -> Prediction:
    """The stored form of ``served``'s forecast ``forecast``."""
    return Prediction(
        ticker=forecast.ticker,
        model_type=served.model_type,
        registered_model=served.name,
        model_version=served.version,
        run_id=served.run_id,
        origin_date=forecast.origin_date,
        forecast_dates=forecast.forecast_dates,
        vol_pct=tuple(float(v) for v in forecast.vol_pct),
        served_as=served_as,
    )


@dataclass(frozen=True)
class Preloaded:
    """Stored prices and the market series up to a date, read once for many forecast dates."""

    prices: pd.DataFrame
    market: pd.Series

    @classmethod
    def read(
        cls, engine: Engine, settings: Settings, tickers: Sequence[str], end: dt.date | None
    ) -> Preloaded:
        """Read ``tickers``' prices and the market series up to ``end`` (all by default)."""
        with reachable(engine):
            refresh_market(engine, settings.quality)  # a load killed before its refresh
            prices = PriceRepository(engine).load(tickers, end=end) if tickers else pd.DataFrame()
            market = MarketRepository(engine).load(end=end)
        return cls(prices, market)

    def datasets(
        self, day: dt.date | None, tickers: Sequence[str], quality: QualitySettings
    ) -> dict[str, DailyData]:
        """The data of ``tickers`` up to ``day`` (all when None) that passes the quality gate."""
        if self.prices.empty or not tickers:
            return {}
        prices, market = self.prices, self.market
        if day is not None:
            prices = prices[prices["date"] <= pd.Timestamp(day)]
            market = market[market.index <= pd.Timestamp(day)]
        prices = prices[prices["ticker"].isin(list(tickers))]
        return {} if prices.empty else with_market(daily_data_by_ticker(prices, quality)[0], market)
