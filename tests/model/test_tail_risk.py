"""Ten-day tails with variance feedback, checked against ``arch``'s own forecasts."""

from __future__ import annotations

import numpy as np
import pytest
from arch.data import sp500
from arch.univariate import GARCH, Normal, ZeroMean
from scipy import stats

from volforecast.core.tail_risk import (
    EmpiricalShocks,
    ParametricShocks,
    empirical_var_es,
    gjr_recursion,
    simulate_returns,
)


@pytest.mark.parametrize("method", ["simulation", "bootstrap"])
def test_ten_day_var_and_es_agree_with_arch(method: str) -> None:
    returns_pct = 100 * np.log(sp500.load()["Adj Close"]).diff().dropna().to_numpy()[-3000:]
    # Seeded, as arch's simulation draws from its distribution's own generator.
    shocks_of_arch = Normal(seed=np.random.default_rng(0))
    model = ZeroMean(returns_pct, volatility=GARCH(p=1, o=1, q=1), distribution=shocks_of_arch)
    fitted = model.fit(disp="off")
    # arch's simulation draws normal shocks, its bootstrap the fit's standardized residuals:
    # the same two sources volforecast offers, each fed back into the GJR recursion.
    forecast = fitted.forecast(horizon=10, method=method, simulations=100_000, reindex=False,
                               random_state=np.random.RandomState(0))  # fmt: skip
    theirs = forecast.simulations.values[-1].sum(axis=1)
    shocks = (
        ParametricShocks(stats.norm.ppf)
        if method == "simulation"
        else EmpiricalShocks(np.asarray(fitted.std_resid))
    )
    ours = simulate_returns([forecast.variance.values[-1, 0]], shocks, 10,
                            rng=np.random.default_rng(0), n_sims=100_000,
                            recursion=gjr_recursion(*fitted.params.to_numpy()))  # fmt: skip
    for level in (0.95, 0.99):
        assert empirical_var_es(ours, level) == pytest.approx(
            empirical_var_es(theirs, level), rel=0.03
        ), level
    assert np.mean(ours**2) == pytest.approx(forecast.variance.values[-1].sum(), rel=0.03)
