"""Served risk figures: the model's own, seeded, and a short history refused with a reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volforecast.core.features import DailyData
from volforecast.errors import InsufficientDataError
from volforecast.jobs.risk import RISK_SEED, risk_from
from volforecast.models.garch import GarchModel
from volforecast.registry.serving import Served


def series(days: int) -> DailyData:
    rng = np.random.default_rng(5)
    returns = rng.standard_t(5, days) * 1.2
    return DailyData.from_returns(pd.Series(returns, pd.bdate_range("2015-01-02", periods=days)))


def served(model: GarchModel) -> Served:
    return Served("garch_volatility_series", "3", "GARCH", {"series": model}, None)


def test_the_figures_are_the_models_own_and_repeat() -> None:
    data = series(1500)
    model = GarchModel().fit(data.head(1400))
    figures = risk_from(served(model), model, data, n_sims=2000)
    assert (figures.model_version, figures.origin_date) == ("3", data.last_date.date())
    twin = GarchModel().fit(data.head(1400)).update(data)
    expected = twin.tail_risk(rng=np.random.default_rng(RISK_SEED), n_sims=2000)
    assert list(figures.risks) == expected
    assert risk_from(served(model), model, data, n_sims=2000) == figures


def test_too_short_a_history_for_a_pool_is_refused_with_a_reason() -> None:
    data = series(150)  # GARCH's 100-day warm-up leaves 49 standardized returns
    model = GarchModel().fit(data)
    with pytest.raises(InsufficientDataError, match=r"series: no VaR from GARCH: .*100 or more"):
        risk_from(served(model), model, data)
