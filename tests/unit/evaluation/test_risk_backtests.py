"""ES backtests and the FZ0 loss on series whose true VaR and ES are known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from volforecast.evaluation.risk_backtests import acerbi_szekely_z2, fz0_loss, mcneil_frey

LEVEL = 0.975
NU = 4.0
SCALE = np.sqrt((NU - 2.0) / NU)  # a Student-t of unit variance


def t_var_es(vol_pct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tail = 1.0 - LEVEL
    q = stats.t.ppf(tail, NU)
    es = (NU + q**2) / (NU - 1.0) * stats.t.pdf(q, NU) / tail
    return -q * SCALE * vol_pct, es * SCALE * vol_pct


def normal_var_es(vol_pct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = stats.norm.ppf(1.0 - LEVEL)
    return -z * vol_pct, stats.norm.pdf(z) / (1.0 - LEVEL) * vol_pct


def t_returns(days: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    vol_pct = np.exp(rng.normal(0.0, 0.3, days))  # volatility that moves from day to day
    return vol_pct * SCALE * rng.standard_t(NU, days), vol_pct


def test_fz0_by_hand_and_smallest_at_the_truth() -> None:
    # One day, VaR 2 and ES 3 at 97.5 % (v = -2, e = -3), a loss of 4 (y = -4), by hand:
    # -(v - y) / (alpha e) = -2 / (0.025 * -3), then v / e + ln(-e) - 1.
    loss = fz0_loss([-4.0], [2.0], [3.0], LEVEL)[0]
    assert loss == pytest.approx(2.0 / (0.025 * 3.0) + 2.0 / 3.0 + np.log(3.0) - 1.0)
    assert fz0_loss([1.0], [2.0], [3.0], LEVEL)[0] == pytest.approx(2.0 / 3.0 + np.log(3.0) - 1)
    # The expected loss is smallest at the true VaR and ES (a consistent scoring function).
    returns_pct, vol_pct = t_returns(400_000, seed=1)
    var, es = t_var_es(vol_pct)
    truth = fz0_loss(returns_pct, var, es, LEVEL).mean()
    for scale in (0.8, 0.9, 1.1, 1.25):
        assert fz0_loss(returns_pct, scale * var, scale * es, LEVEL).mean() > truth, scale
    normal = fz0_loss(returns_pct, *normal_var_es(vol_pct), LEVEL).mean()
    assert normal > truth
    with pytest.raises(ValueError, match="at least as large"):
        fz0_loss([0.0], [2.0], [1.0], LEVEL)


def test_acerbi_szekely_passes_the_truth_and_rejects_thin_tails() -> None:
    # Forty years of days: at 97.5 % a Student-t(4) and a normal of the same variance share
    # nearly the same VaR, so only the size of the losses beyond it tells them apart (over
    # seeds, each verdict below holds about nine times in ten).
    returns_pct, vol_pct = t_returns(10_000, seed=2)
    rng = np.random.default_rng(3)
    simulated = vol_pct * SCALE * rng.standard_t(NU, (1000, len(vol_pct)))
    right = acerbi_szekely_z2(returns_pct, *t_var_es(vol_pct), LEVEL, simulated_pct=simulated)
    assert right.pvalue > 0.05, right
    # The normal's VaR and ES, judged under the normal's own null.
    normal_sim = vol_pct * rng.standard_normal((1000, len(vol_pct)))
    thin = acerbi_szekely_z2(returns_pct, *normal_var_es(vol_pct), LEVEL, simulated_pct=normal_sim)
    assert thin.statistic < right.statistic
    assert thin.pvalue < 0.01, thin
    assert np.isnan(acerbi_szekely_z2(returns_pct, *t_var_es(vol_pct), LEVEL).pvalue)


def test_mcneil_frey_passes_the_truth_and_rejects_thin_tails() -> None:
    returns_pct, vol_pct = t_returns(5000, seed=4)
    rng = np.random.default_rng(5)
    right = mcneil_frey(returns_pct, *t_var_es(vol_pct), vol_pct, rng=rng)
    thin = mcneil_frey(returns_pct, *normal_var_es(vol_pct), vol_pct, rng=rng)
    assert right.pvalue > 0.05, right
    assert thin.pvalue < 0.01, thin
    assert thin.detail["exceedances"] > right.detail["exceedances"]
    few = mcneil_frey([0.0, -10.0], [2.0, 2.0], [3.0, 3.0], [1.0, 1.0], rng=rng)
    assert np.isnan(few.pvalue)
    assert few.detail["exceedances"] == 1.0
