r"""Backtests of expected shortfall, and the joint loss of VaR and ES.

VaR alone is judged by counting exceedances (:func:`~volforecast.evaluation.stats.kupiec`,
:func:`~volforecast.evaluation.stats.christoffersen`); ES, the mean loss beyond it, needs
tests of its own. Conventions as in :mod:`volforecast.core.tail_risk`: ``var_pct`` and
``es_pct`` are positive losses in percent, ``returns_pct`` the day's percent log return, and
``level`` the confidence level (0.975 for the Basel ES).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from volforecast.evaluation.stats import StatResult


def _arrays(*values: npt.ArrayLike) -> list[np.ndarray]:
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1 or not len(arrays[0]):
        msg = f"returns, VaR and ES are series of one length, got {[a.shape for a in arrays]}"
        raise ValueError(msg)
    if not all(np.isfinite(a).all() for a in arrays):
        msg = "returns, VaR and ES must be finite"
        raise ValueError(msg)
    return arrays


def fz0_loss(
    returns_pct: npt.ArrayLike, var_pct: npt.ArrayLike, es_pct: npt.ArrayLike, level: float
) -> np.ndarray:
    r"""The FZ0 loss of each day's VaR and ES forecast; lower is better.

    Notes
    -----
    With :math:`v = -\mathrm{VaR}`, :math:`e = -\mathrm{ES}` (the return's quantile and
    tail mean, :math:`e \le v < 0`) and :math:`\alpha = 1 - c`,

    .. math:: L = -\frac{1}{\alpha e}\,1\{y \le v\}(v - y) + \frac{v}{e} + \ln(-e) - 1,

    the member of the Fissler–Ziegel class of consistent scoring functions that is zero-
    homogeneous, so that a comparison does not depend on the returns' units. Two forecasts
    are compared by the mean difference of their losses (a Diebold–Mariano test on it).

    References
    ----------
    .. [1] Patton, A. J., Ziegel, J. F., & Chen, R. (2019). Dynamic semiparametric models for
       expected shortfall (and value-at-risk). *Journal of Econometrics*, 211(2), 388–413.
    """
    y, var, es = _arrays(returns_pct, var_pct, es_pct)
    if not ((var > 0).all() and (es >= var).all()):
        msg = "a VaR is a positive loss and its ES at least as large"
        raise ValueError(msg)
    alpha = 1.0 - level
    v, e = -var, -es
    hit = y <= v
    return np.asarray(-(hit * (v - y)) / (alpha * e) + v / e + np.log(-e) - 1.0)


def acerbi_szekely_z2(
    returns_pct: npt.ArrayLike,
    var_pct: npt.ArrayLike,
    es_pct: npt.ArrayLike,
    level: float,
    *,
    simulated_pct: np.ndarray | None = None,
) -> StatResult:
    r"""Acerbi and Szekely's second test of ES, "testing ES directly".

    Parameters
    ----------
    returns_pct, var_pct, es_pct : array_like
        Each day's return and its VaR and ES forecasts (positive losses), percent.
    level : float
        The forecasts' confidence level.
    simulated_pct : numpy.ndarray, optional
        Returns drawn from each day's forecast distribution, shape ``(n_sims, days)``: the
        statistic's distribution under the null is simulated from them. Without them the
        p-value is NaN.

    Returns
    -------
    StatResult
        :math:`Z_2` and the one-sided p-value (a low one: the tails are larger than the
        forecasts say); ``detail`` holds the exceedance count.

    Notes
    -----
    :math:`Z_2 = 1 - \sum_t \frac{L_t\,1\{L_t > \mathrm{VaR}_t\}}{T \alpha\,\mathrm{ES}_t}`
    with :math:`L_t = -y_t` the loss and :math:`\alpha = 1 - c`. Under the null it has mean
    zero; it is negative when the losses beyond the VaR are larger or more frequent than
    forecast.

    References
    ----------
    .. [1] Acerbi, C., & Szekely, B. (2014). Back-testing expected shortfall. *Risk*, 27(11),
       76–81.
    """
    y, var, es = _arrays(returns_pct, var_pct, es_pct)
    alpha = 1.0 - level

    def z2(returns: np.ndarray) -> np.ndarray:
        losses = -returns
        beyond = np.where(losses > var, losses / es, 0.0)
        return np.asarray(1.0 - beyond.sum(axis=-1) / (len(var) * alpha))

    observed = float(z2(y))
    pvalue = math.nan
    if simulated_pct is not None:
        simulated = np.asarray(simulated_pct, dtype=np.float64)
        if simulated.ndim != 2 or simulated.shape[1] != len(y):
            msg = f"simulated returns are (n_sims, {len(y)}), got {simulated.shape}"
            raise ValueError(msg)
        pvalue = float(np.mean(z2(simulated) <= observed))
    return StatResult(observed, pvalue, {"exceedances": float(np.sum(-y > var))})


def mcneil_frey(
    returns_pct: npt.ArrayLike,
    var_pct: npt.ArrayLike,
    es_pct: npt.ArrayLike,
    vol_pct: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    n_boot: int = 5000,
) -> StatResult:
    r"""McNeil and Frey's test of ES on the days the VaR was exceeded.

    Notes
    -----
    On each exceedance day the residual :math:`r_t = (L_t - \mathrm{ES}_t)/\sigma_t` has mean
    zero when the ES is right. The one-sided p-value of a positive mean (the ES too small) is
    bootstrapped from the residuals centred at zero; with fewer than two exceedances it is
    NaN.

    References
    ----------
    .. [1] McNeil, A. J., & Frey, R. (2000). Estimation of tail-related risk measures for
       heteroscedastic financial time series: an extreme value approach. *Journal of
       Empirical Finance*, 7(3–4), 271–300.
    """
    y, var, es, vol = _arrays(returns_pct, var_pct, es_pct, vol_pct)
    losses = -y
    exceeded = losses > var
    residuals = (losses[exceeded] - es[exceeded]) / vol[exceeded]
    count = float(len(residuals))
    if len(residuals) < 2:
        return StatResult(math.nan, math.nan, {"exceedances": count})
    mean = float(residuals.mean())
    centred = residuals - mean
    draws = rng.choice(centred, size=(n_boot, len(centred)), replace=True).mean(axis=1)
    return StatResult(mean, float(np.mean(draws >= mean)), {"exceedances": count})
