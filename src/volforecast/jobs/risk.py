"""Value at risk and expected shortfall from the production models, for the API.

Each figure is the model's own (:meth:`~volforecast.models.base.VolatilityModel.tail_risk`):
its forecast path from the latest stored close, its own standardized returns or fitted
distribution for the tails, and for the GARCH family its recursion fed by each simulated
shock. The simulation is seeded, so the same version and close always give the same figures,
and they are computed once per version, ticker and close, then kept. The daily job stores the
same figures (:func:`outlook_from`), with the model's term structure, from the same path.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from volforecast.core.features import DailyData
from volforecast.core.tail_risk import DEFAULT_SIMULATIONS, TailRisk
from volforecast.core.term_structure import TermStructure
from volforecast.data.repositories.risk import RiskRow, TermRow
from volforecast.errors import InsufficientDataError
from volforecast.jobs.predict import CACHE_LIMIT, Forecaster, Prediction, prediction_of
from volforecast.models.base import MAX_HORIZON, VolatilityModel
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
    run_id: str | None = None

    def rows(self, made_at: dt.datetime) -> list[RiskRow]:
        """The figures as rows of ``ml.risk_forecasts``."""
        return [
            RiskRow(self.ticker, self.model_type, self.origin_date, r.days, r.level, r.var_pct,
                    r.es_pct, r.method, self.model_version, self.run_id, made_at)
            for r in self.risks
        ]  # fmt: skip


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
        return _figures(served, model, data, None, n_sims)


def _figures(
    served: Served,
    model: VolatilityModel,
    data: DailyData,
    sigma2_path: np.ndarray | None,
    n_sims: int,
) -> RiskFigures:
    # Called with the lock held and the model's origin at the last day of data.
    try:
        risks = model.tail_risk(
            rng=np.random.default_rng(RISK_SEED), n_sims=n_sims, sigma2_path=sigma2_path
        )
    except (ValueError, ArithmeticError) as exc:  # a short pool, a non-finite forecast
        msg = f"{data.ticker}: no VaR from {served.model_type}: {exc}"
        raise InsufficientDataError(msg) from exc
    if not all(0 < r.var_pct <= r.es_pct < math.inf for r in risks):
        msg = f"{data.ticker}: {served.model_type} gave a VaR or ES that is not a finite loss"
        raise InsufficientDataError(msg)
    return RiskFigures(
        ticker=data.ticker,
        model_type=served.model_type,
        registered_model=served.name,
        model_version=served.version,
        origin_date=data.last_date.date(),
        risks=tuple(risks),
        run_id=served.run_id,
    )


@dataclass(frozen=True)
class Outlook:
    """What the daily job stores of one production model from one close."""

    prediction: Prediction
    risk: RiskFigures | None
    """None when the model gave a path but no VaR (``problem`` says why)."""
    term: TermStructure | None
    problem: str | None = None

    def term_rows(self, made_at: dt.datetime) -> list[TermRow]:
        """The term structure as rows of ``ml.term_structures``."""
        if self.term is None:
            return []
        p, term = self.prediction, self.term
        return [
            TermRow(p.ticker, p.model_type, p.origin_date, days, vol, p.model_version, made_at)
            for days, vol in zip(term.days, term.vol_ann_pct, strict=True)
        ]


def outlook_from(
    served: Served, model: VolatilityModel, data: DailyData, *, n_sims: int = DEFAULT_SIMULATIONS
) -> Outlook:
    """``model``'s 30-day path, VaR and ES, and term structure from the last day of ``data``.

    One forecast serves all three, and the figures are those :class:`RiskDesk` and the model
    card answer with for the same version and close. A model that forecasts but gives no VaR
    (too short a pool of its own returns) or no finite term structure still gives the
    others; ``problem`` says what is missing and why.
    """
    problems = []
    risk, term = None, None
    with served.lock:  # update() moves this shared model's origin
        forecast = model.update(data).forecast(MAX_HORIZON)
        prediction = prediction_of(served, forecast)
        try:
            risk = _figures(served, model, data, forecast.sigma2, n_sims)
        except InsufficientDataError as exc:
            problems.append(str(exc))
        try:
            term = model.term_structure(sigma2_path=forecast.sigma2)
            if not all(0 < v < math.inf for v in term.vol_ann_pct):
                raise ArithmeticError("it is not finite")
        except (ValueError, ArithmeticError) as exc:
            term = None
            problems.append(f"{data.ticker}: no term structure from {served.model_type}: {exc}")
    return Outlook(prediction, risk, term, "; ".join(problems) or None)


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
