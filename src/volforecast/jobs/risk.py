"""Value at risk and expected shortfall from the production models, for the API.

Each figure is the model's own (:meth:`~volforecast.models.base.VolatilityModel.tail_risk`):
its forecast path from the latest stored close, its own standardized returns or fitted
distribution for the tails, and for the GARCH family its recursion fed by each simulated
shock. The simulation is seeded, so the same version and close always give the same figures,
and they are computed once per version, ticker and close, then kept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from volforecast.core.features import DailyData
from volforecast.core.tail_risk import DEFAULT_SIMULATIONS, TailRisk
from volforecast.errors import InsufficientDataError
from volforecast.jobs.predict import CACHE_LIMIT, Forecaster
from volforecast.models.base import VolatilityModel
from volforecast.registry.names import PRODUCTION, Alias
from volforecast.registry.serving import Served

RISK_SEED = 20_190_102
"""Seeds every served simulation: a figure repeats for the same version and close."""


@dataclass(frozen=True)
class RiskFigures:
    """A served model's VaR and ES at every level and horizon, from one close."""

    ticker: str
    model_type: str
    registered_model: str
    model_version: str
    origin_date: dt.date
    risks: tuple[TailRisk, ...]


def risk_from(
    served: Served, model: VolatilityModel, data: DailyData, *, n_sims: int = DEFAULT_SIMULATIONS
) -> RiskFigures:
    """``model``'s VaR and ES from the last day of ``data``, parameters frozen.

    Raises
    ------
    InsufficientDataError
        When the data holds too few days past the model's warm-up for a pool of its own
        standardized returns, or the model forecasts no finite variance from one of them.
    """
    with served.lock:  # update() moves this shared model's origin
        model.update(data)
        try:
            risks = model.tail_risk(rng=np.random.default_rng(RISK_SEED), n_sims=n_sims)
        except (ValueError, ArithmeticError) as exc:  # a short pool, a non-finite forecast
            msg = f"{data.ticker}: no VaR from {served.model_type}: {exc}"
            raise InsufficientDataError(msg) from exc
    return RiskFigures(
        ticker=data.ticker,
        model_type=served.model_type,
        registered_model=served.name,
        model_version=served.version,
        origin_date=data.last_date.date(),
        risks=tuple(risks),
    )


class RiskDesk:
    """The served models' risk figures, resolved as :class:`Forecaster` resolves forecasts."""

    def __init__(self, forecaster: Forecaster) -> None:
        self.forecaster = forecaster
        self._figures: dict[tuple[Alias, str, str, str, dt.date], RiskFigures] = {}

    def risk(self, ticker: str, model_type: str, alias: Alias = PRODUCTION) -> RiskFigures:
        """VaR and ES of ``model_type`` for ``ticker`` from its latest stored close.

        Raises as :meth:`Forecaster.predict` does, for the same reasons.
        """
        served, model, latest = self.forecaster.resolve(ticker, model_type, alias)
        key = (alias, served.name, served.version, ticker, latest)
        hit = self._figures.get(key)
        if hit is not None:
            return hit
        figures = risk_from(served, model, self.forecaster.data_until(ticker, latest))
        if len(self._figures) >= CACHE_LIMIT:
            self._figures = {}
        self._figures[key] = figures
        return figures
