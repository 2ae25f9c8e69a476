"""Forecast-evaluation tests against hand computations and their size under the null."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from volforecast.evaluation.stats import (
    christoffersen,
    diebold_mariano,
    filtered_var_exceedances,
    kupiec,
    mincer_zarnowitz,
    newey_west_variance,
    var_exceedances,
)


def test_newey_west_with_no_lags_is_the_plain_variance() -> None:
    x = np.array([1.0, 3.0, 2.0, 6.0])
    assert newey_west_variance(x, 0) == pytest.approx(np.var(x), rel=1e-15)


def test_newey_west_one_lag_by_hand() -> None:
    x = np.array([1.0, 3.0, 2.0, 6.0])
    e = x - x.mean()
    gamma1 = (e[1:] @ e[:-1]) / 4
    assert newey_west_variance(x, 1) == pytest.approx(np.var(x) + 2 * 0.5 * gamma1, rel=1e-15)


def test_diebold_mariano_one_step_by_hand() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.gamma(2.0, size=200), rng.gamma(2.1, size=200)
    d = a - b
    n = len(d)
    hln = math.sqrt((n + 1 - 2 + 0) / n)
    expected = hln * d.mean() / math.sqrt(np.var(d) / n)
    result = diebold_mariano(a, b, horizon=1)
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.pvalue == pytest.approx(2 * stats.t.sf(abs(expected), n - 1), rel=1e-12)


def test_diebold_mariano_sees_a_real_difference_and_not_a_fake_one() -> None:
    rng = np.random.default_rng(2)
    base = rng.gamma(2.0, size=500)
    assert diebold_mariano(base, base).pvalue == 1.0
    assert diebold_mariano(base, base + 0.5 + rng.normal(0, 0.1, 500)).pvalue < 1e-6


def test_diebold_mariano_holds_its_size_with_overlapping_forecasts() -> None:
    # Loss differentials with the MA(h-1) dependence of overlapping h-step forecasts.
    rng = np.random.default_rng(3)
    h, n, rejections, trials = 5, 400, 0, 400
    for _ in range(trials):
        shocks = rng.normal(size=n + h)
        d = np.convolve(shocks, np.ones(h), mode="valid")[:n]
        rejections += diebold_mariano(d, np.zeros(n), horizon=h).pvalue < 0.05
    assert 0.02 < rejections / trials < 0.10


def test_mincer_zarnowitz_finds_a_biased_forecast() -> None:
    rng = np.random.default_rng(4)
    f = rng.gamma(2.0, size=1000)
    biased = mincer_zarnowitz(2.0 + 0.5 * f + rng.normal(0, 0.2, 1000), f)
    assert biased.detail["a"] == pytest.approx(2.0, abs=0.1)
    assert biased.detail["b"] == pytest.approx(0.5, abs=0.05)
    assert biased.pvalue < 1e-6
    fair = mincer_zarnowitz(f + rng.normal(0, 0.5, 1000), f)
    assert fair.pvalue > 0.01
    assert 0 < fair.detail["r2"] < 1


def test_kupiec_by_hand() -> None:
    hits = np.zeros(250, dtype=bool)
    hits[:5] = True
    expected = -2 * (245 * math.log(0.99) + 5 * math.log(0.01)
                     - 245 * math.log(245 / 250) - 5 * math.log(5 / 250))  # fmt: skip
    result = kupiec(hits, 0.99)
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.detail["rate"] == 0.02
    assert kupiec(np.zeros(250, dtype=bool), 0.99).statistic == pytest.approx(
        -2 * 250 * math.log(0.99), rel=1e-12
    )


def test_christoffersen_sees_clustered_exceedances() -> None:
    rng = np.random.default_rng(5)
    iid = rng.uniform(size=2000) < 0.05
    clustered = np.zeros(2000, dtype=bool)
    for start in rng.choice(1990, 20, replace=False):
        clustered[start : start + 5] = True  # same count, in runs of five
    assert christoffersen(iid, 0.95).detail["independence_pvalue"] > 0.01
    assert christoffersen(clustered, 0.95).detail["independence_pvalue"] < 1e-6


def test_var_exceedances_use_the_normal_quantile() -> None:
    sigma2 = np.array([4.0, 4.0, 4.0])
    returns = np.array([-3.2, -3.4, 1.0])  # VaR 95 % is 1.645 * 2 = 3.29
    assert var_exceedances(returns, sigma2, 0.95).tolist() == [False, True, False]


def test_the_filtered_var_reads_only_the_days_before() -> None:
    sigma2 = np.array([1.0, 4.0, 1.0, 4.0, 1.0, 1.0])
    returns = np.array([-1.0, -4.0, 0.5, -1.9, -1.05, 0.0])
    # z = -1, -2, 0.5, -0.95, -1.05, 0. The 25 % quantile of the three z before day 3 sits
    # at position 0.25 * 4 = 1, the smallest: -2, times day 3's sigma of 2 is a VaR of -4.
    # Of the four before day 4, at 1.25: -2 + 0.25 * (-1 - -2) = -1.75.
    assert np.quantile([-1.0, -2.0, 0.5, -0.95], 0.25, method="weibull") == pytest.approx(-1.75)
    hits = filtered_var_exceedances(returns, sigma2, 0.75, warmup=3)
    assert hits.tolist() == [False, False, False]
    # A return below the past quantile times the day's own sigma is a hit. With z_4 = -1.8,
    # day 5's quantile of (-2, -1.8, -1, -0.95, 0.5) is at 1.5: -1.9, and -1.85 is no hit
    # (NumPy's default position, 1, would put the VaR at -1.8 and count it).
    returns[4], returns[5] = -1.8, -1.85
    hits = filtered_var_exceedances(returns, sigma2, 0.75, warmup=3)
    assert hits.tolist() == [False, True, False]


def test_the_filtered_var_holds_its_level_where_the_normal_one_does_not() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    sigma2 = np.exp(rng.normal(0.0, 0.5, n))
    # Student-t with 4 degrees of freedom, scaled to unit variance: fat tails.
    z = rng.standard_t(4, n) / math.sqrt(2.0)
    returns = z * np.sqrt(sigma2)
    normal = var_exceedances(returns[250:], sigma2[250:], 0.99)
    filtered = filtered_var_exceedances(returns, sigma2, 0.99)
    assert len(filtered) == len(normal)
    assert kupiec(normal, 0.99).pvalue < 1e-3
    assert kupiec(filtered, 0.99).pvalue > 0.01


def test_the_filtered_var_needs_more_days_than_its_warmup() -> None:
    with pytest.raises(ValueError, match="warm-up of 250"):
        filtered_var_exceedances(np.ones(250), np.ones(250), 0.99)
