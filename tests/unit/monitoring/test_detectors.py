"""Each detector on simulated data: it fires on a known break, and without one it fires at
its nominal rate within sampling error.

Rates are measured over ``REPLICATES`` independent samples at ``alpha = 0.05``, where the
binomial standard error is about 0.005; a detector passes when its rate lies within
``TOLERANCE`` (three standard errors) of the nominal level.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from numpy.testing import assert_allclose
from statsmodels.stats.diagnostic import acorr_ljungbox

from volforecast.core.risk import normal_var_pct
from volforecast.core.tail_risk import EmpiricalShocks, rolling_var_pct
from volforecast.monitoring.detectors import (
    Check,
    cusum,
    cusum_threshold,
    kupiec_size,
    level_shift,
    ljung_box,
    psi,
    var_exceedance,
)

REPLICATES = 2_000
ALPHA = 0.05
TOLERANCE = 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPLICATES)


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """A stationary Gaussian AR(1) with unit variance (log realized variance stand-in)."""
    shocks = rng.standard_normal(n + 200) * math.sqrt(1 - phi**2)
    x = np.empty(n + 200)
    x[0] = rng.standard_normal()
    for t in range(1, n + 200):
        x[t] = phi * x[t - 1] + shocks[t]
    return x[200:]


def garch_returns(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Returns of a GARCH(1,1) (omega .05, alpha .1, beta .85) and their true variances."""
    sigma2 = np.empty(n)
    r = np.empty(n)
    sigma2[0] = 1.0
    for t in range(n):
        if t:
            sigma2[t] = 0.05 + 0.1 * r[t - 1] ** 2 + 0.85 * sigma2[t - 1]
        r[t] = math.sqrt(sigma2[t]) * rng.standard_normal()
    return r, sigma2


def rate(check: Callable[[np.random.Generator], Check], seed: int, n: int = REPLICATES) -> float:
    rng = np.random.default_rng(seed)
    return float(np.mean([check(rng).fired for _ in range(n)]))


# ------------------------------------------------------------------ level shift


@pytest.mark.slow
@pytest.mark.parametrize("phi", [0.0, 0.7, 0.9], ids=["iid", "ar0.7", "ar0.9"])
def test_level_shift_false_alarm_rate_is_nominal_for_persistent_series(phi: float) -> None:
    def check(rng: np.random.Generator) -> Check:
        x = ar1(rng, 260, phi)
        return level_shift(x[:250], x[250:], alpha=ALPHA)

    observed = rate(check, seed=11)
    assert abs(observed - ALPHA) < TOLERANCE, f"false-alarm rate {observed:.4f} at phi {phi}"


def test_level_shift_detects_a_volatility_regime_change_within_days() -> None:
    # Given a year of log realized variance (unit variance, persistence 0.7) followed by a
    # regime whose volatility is 4.5 times higher (log variance up by 3), as from the summer
    # to the October of 2008, checked every day as the monitor does
    rng = np.random.default_rng(3)
    delays, ratios = [], []
    for _ in range(200):
        x = ar1(rng, 290, 0.7)
        x[260:] += 3.0
        checks = [level_shift(x[:250], x[t - 10 : t], alpha=0.001) for t in range(260, 291)]
        first = next((i for i, c in enumerate(checks) if c.fired), None)
        delays.append(first if first is not None else 99)
        if first is not None:
            ratios.append(checks[first].detail["vol_ratio"])
    # Then it fires within the month nearly always, typically within two weeks, and says by
    # how much volatility moved
    assert np.mean(np.asarray(delays) <= 30) > 0.97, f"delays {sorted(delays)[-20:]}"
    assert float(np.median(delays)) <= 10
    assert 2.0 < float(np.median(ratios)) < 6.0


def test_level_shift_refuses_a_reference_too_short() -> None:
    with pytest.raises(ValueError, match="twice as long"):
        level_shift(np.zeros(15), np.zeros(10))


# ------------------------------------------------------------------ CUSUM


def test_cusum_threshold_matches_siegmunds_table_value() -> None:
    # Siegmund's approximation gives ARL0 938 for k = 0.5, h = 5 (the tabulated exact
    # value is 930).
    b = 5.0 + 1.166
    arl = (math.exp(b) - b - 1) / 0.5
    assert_allclose(cusum_threshold(arl, 0.5), 5.0, atol=1e-9)
    assert cusum_threshold(2 * arl, 0.5) > 5.0


@pytest.mark.slow
def test_cusum_in_control_run_length_is_the_nominal_one() -> None:
    # Given iid N(0, 1) errors and a two-sided CUSUM set for 200 days between false alarms
    rng = np.random.default_rng(5)
    h = cusum_threshold(2 * 200, 0.5)
    runs = []
    for _ in range(600):
        alarms = cusum(rng.standard_normal(5_000), h=h, k=0.5).alarms
        runs.append(alarms[0] + 1 if len(alarms) else 5_000)
    # Then the mean run length is 200 within three standard errors (and Siegmund's slack)
    mean, se = float(np.mean(runs)), float(np.std(runs) / np.sqrt(len(runs)))
    assert abs(mean - 200) < 3 * se + 10, f"mean run length {mean:.0f} ± {se:.0f}"


def test_cusum_detects_a_shift_within_days_and_says_which_way() -> None:
    rng = np.random.default_rng(6)
    h = cusum_threshold(1_000, 0.5)
    delays = []
    for sign in (1, -1):
        for _ in range(100):
            u = rng.standard_normal(400)
            u[300:] += sign * 1.5
            run = cusum(u, h=h, k=0.5)
            after = run.alarms >= 300
            assert after.any()
            delays.append(int(run.alarms[after][0]) - 300)
            assert run.direction[after][0] == sign
    assert float(np.mean(delays)) < 8, f"mean detection delay {np.mean(delays):.1f} days"


def test_cusum_restarts_after_an_alarm() -> None:
    run = cusum(np.full(20, 3.0), h=4.0, k=0.5)
    # 2.5 per day: crosses 4 on day 2, restarts, crosses again two days later
    assert run.alarms.tolist() == [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]
    assert run.upper[1] == pytest.approx(5.0)  # the statistic that crossed, kept
    assert run.upper[2] == pytest.approx(2.5)  # and the next day starts from zero


# ------------------------------------------------------------------ VaR exceedances


@pytest.mark.slow
@pytest.mark.parametrize("days", [250, 1_000])
@pytest.mark.parametrize("coverage", [0.95, 0.99])
def test_kupiec_false_alarm_rate_is_its_exact_size_and_at_most_nominal(
    coverage: float, days: int
) -> None:
    # Exceedance counts are coarse (2.5 expected in a year at 99 %): the exact test's size is
    # the nominal level or below it (0.014 for a year at 99 %), never above as the
    # chi-squared version's is (0.10 there).
    size = kupiec_size(days, coverage, ALPHA)
    assert size <= ALPHA

    # Normal returns against their exact VaR.
    var_pct = normal_var_pct(np.ones(days), coverage)

    def check(rng: np.random.Generator) -> Check:
        return var_exceedance(rng.standard_normal(days), var_pct, coverage=coverage, alpha=ALPHA)

    observed = rate(check, seed=12)
    assert abs(observed - size) < TOLERANCE, f"false-alarm rate {observed:.4f}, size {size:.4f}"


def test_kupiec_fires_when_volatility_is_underforecast() -> None:
    rng = np.random.default_rng(7)
    # The forecast says 1, the truth is 1.6: far more days breach the VaR
    var_pct = normal_var_pct(np.ones(250), 0.99)
    checks = [var_exceedance(1.6 * rng.standard_normal(250), var_pct, coverage=0.99, alpha=0.01)
              for _ in range(100)]  # fmt: skip
    assert np.mean([c.fired for c in checks]) > 0.9
    assert checks[0].detector == "kupiec_99"
    assert checks[0].detail["rate"] > checks[0].detail["expected"] == pytest.approx(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("coverage", [0.95, 0.99])
def test_on_fat_tails_the_served_var_keeps_kupiecs_false_alarms_and_the_normal_one_does_not(
    coverage: float,
) -> None:
    # Student-t returns with 4 degrees of freedom, their variance forecast exactly: the
    # monitor judges the VaR the model served each evening from its past 500 standardized
    # returns, a year at a time. The pool's quantile is an estimate, so the rate is near
    # ALPHA rather than the exact size; the normal quantile misjudges the tail every year.
    days, pool = 250, 500
    scale = math.sqrt(0.5)

    def returns(rng: np.random.Generator) -> np.ndarray:
        return scale * rng.standard_t(4.0, pool + days)

    def served(rng: np.random.Generator) -> Check:
        r = returns(rng)
        var_pct = rolling_var_pct(r, np.ones(len(r)), EmpiricalShocks, coverage,
                                  pool_days=pool, start=pool)  # fmt: skip
        return var_exceedance(r[pool:], var_pct[pool:], coverage=coverage, alpha=ALPHA)

    def normal(rng: np.random.Generator) -> Check:
        return var_exceedance(returns(rng)[pool:], normal_var_pct(np.ones(days), coverage),
                              coverage=coverage, alpha=ALPHA)  # fmt: skip

    served_rate, normal_rate = rate(served, seed=21, n=400), rate(normal, seed=21, n=400)
    assert served_rate < ALPHA + 0.03, served_rate
    assert normal_rate > served_rate + 0.03, (normal_rate, served_rate)


# ------------------------------------------------------------------ Ljung–Box


def test_ljung_box_equals_statsmodels() -> None:
    rng = np.random.default_rng(8)
    r, _ = garch_returns(rng, 500)
    mine = ljung_box(r, np.ones(500), lags=10)
    theirs = acorr_ljungbox(r**2, lags=[10])
    assert_allclose(mine.statistic, float(theirs["lb_stat"].iloc[0]), rtol=1e-10)


@pytest.mark.slow
def test_ljung_box_false_alarm_rate_is_nominal() -> None:
    def check(rng: np.random.Generator) -> Check:
        return ljung_box(rng.standard_normal(250), np.ones(250), lags=10, alpha=ALPHA)

    observed = rate(check, seed=13)
    assert abs(observed - ALPHA) < TOLERANCE, f"false-alarm rate {observed:.4f}"


def test_ljung_box_fires_on_clustering_the_forecast_missed_and_not_on_what_it_caught() -> None:
    rng = np.random.default_rng(9)
    missed, caught = [], []
    for _ in range(100):
        r, sigma2 = garch_returns(rng, 1_000)
        missed.append(ljung_box(r, np.full(1_000, sigma2.mean()), alpha=0.01).fired)
        caught.append(ljung_box(r, sigma2, alpha=0.01).fired)
    assert np.mean(missed) > 0.8
    assert np.mean(caught) < 0.05


# ------------------------------------------------------------------ PSI


@pytest.mark.slow
def test_psi_false_alarm_rate_is_nominal_with_fat_tails() -> None:
    def check(rng: np.random.Generator) -> Check:
        return psi(rng.standard_t(3, 250), rng.standard_t(3, 60), alpha=ALPHA)

    observed = rate(check, seed=14)
    assert abs(observed - ALPHA) < TOLERANCE, f"false-alarm rate {observed:.4f}"


@pytest.mark.slow
def test_psi_on_standardized_garch_returns_is_at_its_nominal_level() -> None:
    # Returns that cluster in volatility, divided by the model's (here the true) volatility:
    # what the monitor gives PSI. Raw returns would fire far more often with no change.
    def check(rng: np.random.Generator) -> Check:
        r, sigma2 = garch_returns(rng, 310)
        z = r / np.sqrt(sigma2)
        return psi(z[:250], z[250:], alpha=ALPHA)

    observed = rate(check, seed=15)
    assert abs(observed - ALPHA) < TOLERANCE, f"false-alarm rate {observed:.4f}"


def test_psi_fires_when_the_return_distribution_widens() -> None:
    rng = np.random.default_rng(10)
    checks = [psi(rng.standard_normal(250), 3 * rng.standard_normal(60), alpha=0.001)
              for _ in range(50)]  # fmt: skip
    assert np.mean([c.fired for c in checks]) > 0.9
    # The Kolmogorov–Smirnov p-value comes along as a second opinion
    assert float(np.median([c.detail["ks_pvalue"] for c in checks if c.fired])) < 0.01
