"""Model cards, V-Lab style: what a served model says of a ticker's volatility at a glance.

Persistence and half-life, the long-run annualised volatility, the term structure to a year
and, for the GARCH family, the news-impact curve: next day's variance after a return of each
size when today's variance sits at its long-run level. Every figure is the model's own
(:meth:`~volforecast.models.base.VolatilityModel.term_structure`, its variance recursion),
from the latest stored close.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from volforecast.core.features import DailyData
from volforecast.core.term_structure import TermStructure
from volforecast.errors import IncompleteRequestError, InvalidSeriesError, ModelNotFoundError
from volforecast.jobs.predict import Forecaster
from volforecast.models.base import VolatilityModel
from volforecast.registry.serving import Served

NEWS_IMPACT_SHOCKS = np.linspace(-5.0, 5.0, 41)
"""Returns the curve is drawn at, in long-run daily standard deviations."""


@dataclass(frozen=True)
class NewsImpact:
    """Next day's variance after a return, today's variance at its long-run level."""

    shock_pct: tuple[float, ...]
    """Today's return less its mean, percent."""
    sigma2: tuple[float, ...]
    """Next day's variance, percent²."""


@dataclass(frozen=True)
class ModelCard:
    """A served model's card for one ticker."""

    model_name: str
    model_version: str
    model_type: str
    ticker: str
    origin_date: dt.date
    params: dict[str, float]
    term: TermStructure
    news_impact: NewsImpact | None
    """Only for a model whose variance follows a recursion in the day's return (GARCH)."""


def news_impact(model: VolatilityModel) -> NewsImpact | None:
    r"""The news-impact curve of a model with a variance recursion; None for the others.

    Notes
    -----
    :math:`\sigma^2_{t+1} = g(\bar\sigma^2, \epsilon_t)` over a grid of :math:`\epsilon_t`,
    with :math:`g` the fitted recursion and :math:`\bar\sigma^2` the long-run variance
    (Engle and Ng 1993). For GJR-GARCH,
    :math:`\omega + (\alpha + \gamma 1\{\epsilon<0\})\epsilon^2 + \beta\bar\sigma^2`.
    """
    recursion = model.variance_recursion()
    if recursion is None:
        return None
    long_run = model.long_run_sigma2()
    shocks = NEWS_IMPACT_SHOCKS * math.sqrt(long_run)
    sigma2 = recursion(np.full(len(shocks), long_run), shocks)
    return NewsImpact(tuple(map(float, shocks)), tuple(map(float, sigma2)))


def card_from(served: Served, model: VolatilityModel, data: DailyData) -> ModelCard:
    """``model``'s card from the last day of ``data``, parameters frozen."""
    with served.lock:  # update() moves this shared model's origin
        model.update(data)
        try:
            term = model.term_structure()
            impact = news_impact(model)
        except (ValueError, ArithmeticError) as exc:  # too short a history, a blown-up path
            msg = f"{data.ticker}: no card from {served.model_type}: {exc}"
            raise InvalidSeriesError(msg) from exc
    return ModelCard(
        model_name=served.name,
        model_version=served.version,
        model_type=served.model_type,
        ticker=data.ticker,
        origin_date=data.last_date.date(),
        params=dict(model.params),
        term=term,
        news_impact=impact,
    )


def card_of(forecaster: Forecaster, name: str, ticker: str | None = None) -> ModelCard:
    """The card of registered model ``name``'s production version, from the latest close.

    ``ticker`` is needed for a pooled model only (a per-ticker one serves one).

    Raises
    ------
    ModelNotFoundError
        When no production version of ``name`` is loaded, or it does not serve ``ticker``.
    IncompleteRequestError
        For a pooled model asked without a ticker.
    UnknownTickerError, DatabaseUnavailableError
        As :meth:`Forecaster.predict`.
    InvalidSeriesError
        When the stored prices give no card (too few pass the gate, or the model's path is
        not finite).
    """
    wanted = name.strip().lower()
    served = next((s for s in forecaster.models.served() if s.name == wanted), None)
    if served is None:
        msg = f"no production version of {name!r} is served: `GET /models` lists them"
        raise ModelNotFoundError(msg)
    if ticker is None:
        if len(served.models) != 1:
            msg = f"{served.name} serves {len(served.models)} tickers: name one with ?ticker="
            raise IncompleteRequestError(msg)
        ticker = next(iter(served.models))
    ticker = ticker.strip().upper()
    model = served.models.get(ticker)
    if model is None:
        msg = f"{served.name} does not serve {ticker}"
        raise ModelNotFoundError(msg)
    latest = forecaster.latest_close(ticker)
    return card_from(served, model, forecaster.data_until(ticker, latest))
