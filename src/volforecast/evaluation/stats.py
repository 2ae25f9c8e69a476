"""Forecast-evaluation tests: Diebold–Mariano, Mincer–Zarnowitz, and VaR backtests."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from volforecast.core.risk import normal_quantile


@dataclass(frozen=True)
class StatResult:
    """A statistic and its p-value; ``detail`` holds test-specific numbers."""

    statistic: float
    pvalue: float
    detail: dict[str, float]


def newey_west_variance(x: np.ndarray, lags: int, *, kernel: str = "bartlett") -> float:
    r"""Long-run variance of a series, :math:`\hat\gamma_0 + 2\sum_{k=1}^{L} w_k \hat\gamma_k`.

    ``kernel="bartlett"`` weighs :math:`w_k = 1 - k/(L+1)` (Newey–West, always positive);
    ``"uniform"`` weighs them all 1, which is exact for the MA(:math:`h-1`) errors of
    overlapping :math:`h`-step forecasts. The autocovariances are of the demeaned series.
    """
    e = x - x.mean()
    n = len(e)
    total = float(e @ e) / n
    for k in range(1, min(lags, n - 1) + 1):
        weight = 1.0 if kernel == "uniform" else 1.0 - k / (lags + 1)
        total += 2.0 * weight * float(e[k:] @ e[:-k]) / n
    return total


def diebold_mariano(loss_a: npt.ArrayLike, loss_b: npt.ArrayLike, horizon: int = 1) -> StatResult:
    r"""Diebold–Mariano test of equal predictive accuracy, with the HLN correction.

    Parameters
    ----------
    loss_a, loss_b : array_like
        Losses of two forecasts of the same targets, in time order.
    horizon : int
        Forecast horizon; ``horizon - 1`` autocovariances enter the long-run variance, since
        the errors of overlapping ``h``-step forecasts are correlated up to that lag.

    Returns
    -------
    StatResult
        ``statistic`` is negative when ``a`` has the smaller loss; ``pvalue`` is two-sided
        from Student's t with ``n - 1`` degrees of freedom; ``detail['mean_diff']`` is the
        mean loss difference ``a - b``.

    Notes
    -----
    With :math:`d_t = L^a_t - L^b_t`, :math:`DM = \bar d / \sqrt{\hat V / n}` where
    :math:`\hat V` is the long-run variance with :math:`h - 1` lags, multiplied by
    the Harvey–Leybourne–Newbold factor
    :math:`\sqrt{(n + 1 - 2h + h(h-1)/n) / n}` for small samples.

    References
    ----------
    .. [1] Diebold, F. X., & Mariano, R. S. (1995). Comparing predictive accuracy. *Journal of
       Business & Economic Statistics*, 13(3), 253–263.
    .. [2] Harvey, D., Leybourne, S., & Newbold, P. (1997). Testing the equality of prediction
       mean squared errors. *International Journal of Forecasting*, 13(2), 281–291.
    """
    a = np.asarray(loss_a, dtype=np.float64)
    b = np.asarray(loss_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        msg = "the two loss series must be one-dimensional and of the same length"
        raise ValueError(msg)
    d = a - b
    n = len(d)
    if n < 10:
        msg = f"Diebold–Mariano needs at least 10 forecasts, got {n}"
        raise ValueError(msg)
    # Uniform weights over h - 1 lags, as Diebold and Mariano prescribe; Bartlett's if that
    # estimate comes out negative, which uniform weights allow.
    variance = newey_west_variance(d, horizon - 1, kernel="uniform")
    if variance <= 0:
        variance = newey_west_variance(d, horizon - 1)
    mean = float(d.mean())
    if variance <= 0:
        return StatResult(0.0 if mean == 0 else math.copysign(math.inf, mean),
                          1.0 if mean == 0 else 0.0, {"mean_diff": mean})  # fmt: skip
    correction = math.sqrt(max(n + 1 - 2 * horizon + horizon * (horizon - 1) / n, 1.0) / n)
    statistic = correction * mean / math.sqrt(variance / n)
    pvalue = float(2.0 * stats.t.sf(abs(statistic), df=n - 1))
    return StatResult(float(statistic), pvalue, {"mean_diff": mean})


def mincer_zarnowitz(
    realized: npt.ArrayLike, forecast: npt.ArrayLike, horizon: int = 1
) -> StatResult:
    r"""Mincer–Zarnowitz regression of realized on forecast variance, and its joint test.

    Fits :math:`RV_t = a + b F_t + u_t` and tests :math:`a = 0, b = 1` (an unbiased forecast
    that uses its information fully).

    Returns
    -------
    StatResult
        Wald statistic (chi-squared, 2 degrees of freedom) with Newey–West standard errors
        (``horizon - 1`` lags); ``detail`` has ``a``, ``b`` and ``r2``.

    References
    ----------
    .. [1] Mincer, J., & Zarnowitz, V. (1969). The evaluation of economic forecasts. In
       *Economic Forecasts and Expectations*, NBER, 3–46.
    """
    y = np.asarray(realized, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    x = np.column_stack([np.ones_like(f), f])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    u = y - x @ coef
    n = len(y)
    xx_inv = np.linalg.inv(x.T @ x)
    scores = x * u[:, None]
    meat = scores.T @ scores
    for k in range(1, horizon):
        w = 1.0 - k / horizon
        gamma = scores[k:].T @ scores[:-k]
        meat += w * (gamma + gamma.T)
    covariance = xx_inv @ meat @ xx_inv
    gap = coef - np.array([0.0, 1.0])
    wald = float(gap @ np.linalg.solve(covariance, gap))
    r2 = 1.0 - float(u @ u) / float(((y - y.mean()) ** 2).sum()) if n > 1 else math.nan
    return StatResult(wald, float(stats.chi2.sf(wald, 2)),
                      {"a": float(coef[0]), "b": float(coef[1]), "r2": r2})  # fmt: skip


def _xlogy(count: float, p: float) -> float:
    return 0.0 if count == 0 else count * math.log(p)


def kupiec(exceedances: npt.ArrayLike, coverage: float) -> StatResult:
    r"""Kupiec's proportion-of-failures test of a VaR exceedance rate of :math:`1 - c`.

    Parameters
    ----------
    exceedances : array_like of bool
        Whether each day's loss exceeded its VaR.
    coverage : float
        VaR confidence, e.g. 0.99 (expected exceedance rate 1 %).

    Returns
    -------
    StatResult
        Likelihood-ratio statistic, chi-squared with 1 degree of freedom; ``detail`` has the
        observed ``rate``, the ``expected`` rate and the count of ``exceedances``.

    References
    ----------
    .. [1] Kupiec, P. H. (1995). Techniques for verifying the accuracy of risk measurement
       models. *Journal of Derivatives*, 3(2), 73–84.
    """
    hits = np.asarray(exceedances, dtype=bool)
    n, x = len(hits), int(hits.sum())
    p = 1.0 - coverage
    rate = x / n
    lr = -2.0 * (_xlogy(n - x, 1 - p) + _xlogy(x, p) - _xlogy(n - x, 1 - rate) - _xlogy(x, rate))
    return StatResult(lr, float(stats.chi2.sf(lr, 1)),
                      {"rate": rate, "expected": p, "exceedances": float(x)})  # fmt: skip


def christoffersen(exceedances: npt.ArrayLike, coverage: float) -> StatResult:
    r"""Christoffersen's conditional-coverage test: right rate *and* no clustering.

    Returns
    -------
    StatResult
        The conditional-coverage statistic (Kupiec's plus the independence statistic),
        chi-squared with 2 degrees of freedom; ``detail`` has ``independence`` and its
        ``independence_pvalue`` (1 degree of freedom), and the transition probabilities
        ``p01`` and ``p11``.

    References
    ----------
    .. [1] Christoffersen, P. F. (1998). Evaluating interval forecasts. *International
       Economic Review*, 39(4), 841–862.
    """
    hits = np.asarray(exceedances, dtype=bool).astype(int)
    prev, curr = hits[:-1], hits[1:]
    # Transitions from the day before to the day: 0 -> 0, 0 -> 1, 1 -> 0, 1 -> 1.
    n00, n01, n10, n11 = (int(n) for n in np.bincount(2 * prev + curr, minlength=4))
    p01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    p11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    p1 = (n01 + n11) / max(n00 + n01 + n10 + n11, 1)
    restricted = _xlogy(n00 + n10, 1 - p1) + _xlogy(n01 + n11, p1)
    unrestricted = _xlogy(n00, 1 - p01) + _xlogy(n01, p01) + _xlogy(n10, 1 - p11) + _xlogy(n11, p11)
    independence = -2.0 * (restricted - unrestricted)
    pof = kupiec(hits, coverage)
    cc = pof.statistic + independence
    return StatResult(
        float(cc),
        float(stats.chi2.sf(cc, 2)),
        {
            "independence": float(independence),
            "independence_pvalue": float(stats.chi2.sf(independence, 1)),
            "p01": p01,
            "p11": p11,
        },
    )


def var_exceedances(
    returns_pct: npt.ArrayLike, sigma2: npt.ArrayLike, coverage: float
) -> np.ndarray:
    """Days whose return fell below the normal VaR ``-z_c * sigma`` (zero mean)."""
    r = np.asarray(returns_pct, dtype=np.float64)
    sigma = np.sqrt(np.asarray(sigma2, dtype=np.float64))
    return np.asarray(r < -normal_quantile(coverage) * sigma)


def filtered_var_exceedances(
    returns_pct: npt.ArrayLike, sigma2: npt.ArrayLike, coverage: float, *, warmup: int = 250
) -> np.ndarray:
    r"""Days whose return fell below the filtered-historical-simulation VaR.

    Parameters
    ----------
    returns_pct : array_like
        Each day's return, percent, in date order.
    sigma2 : array_like
        The variance forecast for each of those days, made the evening before, percent².
    coverage : float
        VaR level, e.g. 0.99.
    warmup : int, default 250
        Days whose standardized returns start the quantile; they are not judged.

    Returns
    -------
    numpy.ndarray
        One flag per day from ``warmup`` on (``len(returns_pct) - warmup`` of them).

    Notes
    -----
    With :math:`z_j = r_j / \sigma_j` the standardized returns, day :math:`i`'s VaR is
    :math:`-\hat q_{1-c}(z_0, \dots, z_{i-1})\,\sigma_i`: the empirical quantile of the
    days already past, rescaled by the day's forecast. The volatility forecast carries the
    clustering and the past standardized returns carry the tails, which a normal quantile
    makes too thin for daily stock returns. Each day reads only the days before it.

    The quantile is the :math:`k`-th smallest of the :math:`i` past values with
    :math:`k = (1-c)(i+1)`, interpolated (``method="weibull"``): a new draw falls below the
    :math:`k`-th smallest of :math:`i` with probability :math:`k/(i+1)`, so the VaR is
    exceeded on :math:`1-c` of the days when the forecasts are right (the standardized
    returns independent and alike). NumPy's default,
    :math:`k = 1 + (1-c)(i-1)`, is nearly one value less far into the tail and exceeded
    about :math:`1/i` more often (1.4 % instead of 1 % at 99 % after a year of days).

    References
    ----------
    .. [1] Barone-Adesi, G., Giannopoulos, K., & Vosper, L. (1999). VaR without correlations
       for portfolios of derivative securities. *Journal of Futures Markets*, 19(5),
       583–602.
    """
    r = np.asarray(returns_pct, dtype=np.float64)
    sigma = np.sqrt(np.asarray(sigma2, dtype=np.float64))
    if warmup < 1 or len(r) <= warmup:
        msg = f"a filtered VaR needs more days than its warm-up of {warmup}, got {len(r)}"
        raise ValueError(msg)
    z = r / sigma
    quantiles = np.array(
        [np.quantile(z[:i], 1.0 - coverage, method="weibull") for i in range(warmup, len(r))]
    )
    return np.asarray(r[warmup:] < quantiles * sigma[warmup:])
