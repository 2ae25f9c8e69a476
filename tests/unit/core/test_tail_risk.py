"""VaR and ES from a model's own tails: hand examples, closed forms and calibration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from volforecast.core.risk import normal_var_pct
from volforecast.core.tail_risk import (
    EmpiricalShocks,
    ParametricShocks,
    empirical_var_es,
    gjr_recursion,
    rolling_var_pct,
    simulate_returns,
    tail_risk,
)
from volforecast.evaluation.stats import kupiec

NORMAL = ParametricShocks(stats.norm.ppf)


def standardized_t(nu: float) -> ParametricShocks:
    scale = np.sqrt((nu - 2.0) / nu)
    return ParametricShocks(lambda u: stats.t.ppf(u, nu) * scale)


def test_the_tail_of_a_hand_made_sample() -> None:
    values = np.arange(-9.0, 10.0)  # 19 values
    # The k-th smallest with k = (1 - c)(n + 1): k = 2 at 90 %, so -8; ES the mean of -9, -8.
    assert empirical_var_es(values, 0.90) == pytest.approx((8.0, 8.5))
    # k = 1 at 95 %: the smallest, alone in its tail.
    assert empirical_var_es(values, 0.95) == pytest.approx((9.0, 9.0))
    # Between order statistics the VaR is interpolated; the ES still covers it.
    var, es = empirical_var_es(values, 0.925)
    assert var == pytest.approx(8.5)
    assert es == pytest.approx(9.0)


def test_a_fitted_distribution_matches_the_closed_forms() -> None:
    level, tail = 0.99, 0.01
    z = stats.norm.ppf(tail)
    assert NORMAL.var_es(level) == pytest.approx((-z, stats.norm.pdf(z) / tail), rel=1e-6)
    nu = 5.0
    scale = np.sqrt((nu - 2.0) / nu)
    t = stats.t.ppf(tail, nu)
    es = (nu + t**2) / (nu - 1.0) * stats.t.pdf(t, nu) / tail * scale
    assert standardized_t(nu).var_es(level) == pytest.approx((-t * scale, es), rel=1e-6)


@pytest.mark.parametrize("level", [0.95, 0.975, 0.99])
def test_ten_days_of_normal_shocks_match_the_closed_form(level: float) -> None:
    # Summed normal returns on a path that is not flat: N(0, sum of the path).
    path = np.linspace(1.0, 4.0, 10)
    rng = np.random.default_rng(7)
    pool = EmpiricalShocks(rng.standard_normal(400_000))
    z = stats.norm.ppf(1.0 - level)
    sd = np.sqrt(path.sum())
    expected = (-z * sd, stats.norm.pdf(z) / (1.0 - level) * sd)
    for shocks in (NORMAL, pool):
        (risk,) = tail_risk(path, shocks, levels=[level], days=[10], rng=rng, n_sims=200_000)
        assert (risk.var_pct, risk.es_pct) == pytest.approx(expected, rel=0.02), shocks
    # Never the square root of time times the first day's figure.
    assert expected[0] != pytest.approx(-z * np.sqrt(10 * path[0]), rel=0.1)


def test_one_day_is_the_shocks_tail_times_the_first_days_volatility() -> None:
    rng = np.random.default_rng(1)
    shocks = standardized_t(4.0)
    risks = tail_risk([2.25, 9.0], shocks, levels=[0.95, 0.99], days=[1], rng=rng)
    assert [(r.days, r.level) for r in risks] == [(1, 0.95), (1, 0.99)]
    for r in risks:
        var, es = shocks.var_es(r.level)
        assert (r.var_pct, r.es_pct) == pytest.approx((1.5 * var, 1.5 * es))
        assert r.es_pct > r.var_pct


def test_variance_feedback_keeps_the_mean_path_and_fattens_the_sum() -> None:
    omega, alpha, gamma, beta = 0.05, 0.05, 0.1, 0.85
    sigma2 = [4.0]
    for _ in range(9):  # E[sigma2'] = omega + (alpha + gamma / 2 + beta) sigma2
        sigma2.append(omega + (alpha + gamma / 2 + beta) * sigma2[-1])
    path = np.array(sigma2)
    rng = np.random.default_rng(3)
    fed = simulate_returns(path, NORMAL, 10, rng=rng, n_sims=400_000,
                           recursion=gjr_recursion(omega, alpha, gamma, beta))  # fmt: skip
    fixed = simulate_returns(path, NORMAL, 10, rng=rng, n_sims=400_000)
    assert np.mean(fed**2) == pytest.approx(path.sum(), rel=0.02)
    assert np.mean(fixed**2) == pytest.approx(path.sum(), rel=0.02)
    # Shocks that raise tomorrow's variance make the sum's tails fatter, the left the most.
    assert stats.kurtosis(fed) > stats.kurtosis(fixed) + 0.3
    assert empirical_var_es(fed, 0.99)[1] > 1.05 * empirical_var_es(fixed, 0.99)[1]
    assert stats.skew(fed) < -0.1


def test_student_t_returns_reject_the_normal_var_but_not_their_own_tails() -> None:
    # Ten thousand days of the model's own past fill the pool, ten thousand more are judged.
    # The pool's quantile is itself an estimate: over seeds, Kupiec keeps the served VaR at
    # 5 % about four times in five, and rejects the normal one at 1 % almost always.
    rng = np.random.default_rng(2)
    nu, vol_pct = 4.0, 1.5
    returns_pct = vol_pct * rng.standard_t(nu, 20_000) * np.sqrt((nu - 2.0) / nu)
    shocks = EmpiricalShocks(returns_pct[:10_000] / vol_pct)
    judged = returns_pct[10_000:]
    (own,) = tail_risk([vol_pct**2], shocks, levels=[0.99], days=[1], rng=rng)
    t_var = -stats.t.ppf(0.01, nu) * np.sqrt((nu - 2.0) / nu) * vol_pct
    assert own.var_pct == pytest.approx(t_var, rel=0.05)
    normal = kupiec(judged < -normal_var_pct(vol_pct, 0.99), 0.99)
    served = kupiec(judged < -own.var_pct, 0.99)
    assert normal.pvalue < 0.01, normal
    assert served.pvalue > 0.05, served
    assert 0.008 <= served.detail["rate"] <= 0.0125


def test_each_days_var_is_the_one_served_from_the_closes_before_it() -> None:
    rng = np.random.default_rng(3)
    returns_pct = rng.standard_t(4.0, 700)
    sigma2 = np.exp(0.3 * rng.standard_normal(700))
    var_pct = rolling_var_pct(returns_pct, sigma2, EmpiricalShocks, 0.99, pool_days=250)

    assert np.isnan(var_pct[:100]).all(), "no VaR from fewer than 100 past days"
    for day in (100, 180, 250, 251, 699):
        # The model's pool that evening: the standardized returns of the 250 days before.
        z = returns_pct / np.sqrt(sigma2)
        pool = EmpiricalShocks(z[max(0, day - 250) : day])
        assert var_pct[day] == pytest.approx(np.sqrt(sigma2[day]) * pool.var_es(0.99)[0])
    # Changing a day's return changes the VaR of later days only.
    moved = returns_pct.copy()
    moved[400] = -30.0
    again = rolling_var_pct(moved, sigma2, EmpiricalShocks, 0.99, pool_days=250)
    np.testing.assert_array_equal(again[:401], var_pct[:401])
    assert (again[401:651] >= var_pct[401:651]).all()
    # A fitted distribution ignores the pool; ``start`` leaves the days before it out.
    fitted = rolling_var_pct(returns_pct, sigma2, lambda _: NORMAL, 0.99, pool_days=250,
                             start=300)  # fmt: skip
    assert np.isnan(fitted[:300]).all()
    early = rolling_var_pct(returns_pct, sigma2, lambda _: NORMAL, 0.99, pool_days=250, start=50)
    assert np.isfinite(early[50:]).all(), "a fitted distribution needs no past days"
    np.testing.assert_allclose(fitted[300:], normal_var_pct(np.sqrt(sigma2[300:]), 0.99))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: empirical_var_es([0.0, 1.0], 1.0), "strictly between"),
        (lambda: empirical_var_es([0.0, np.nan], 0.99), "finite"),
        (lambda: EmpiricalShocks(np.ones(99)), "100 or more"),
        (lambda: tail_risk([0.0], NORMAL, days=[1], rng=np.random.default_rng()), "positive"),
        (lambda: simulate_returns([1.0] * 5, NORMAL, 10, rng=np.random.default_rng()), "10 days"),
    ],
)
def test_bad_input_is_refused_with_a_reason(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
