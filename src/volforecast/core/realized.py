r"""Daily realized-variance estimators from daily OHLC prices.

All estimators return variances in percent squared per day (``sigma2``) and expect prices
on one adjustment basis (see :func:`volforecast.core.returns.adjusted_ohlc`); otherwise a
split shows up as an enormous overnight return.

With :math:`O_t, H_t, L_t, C_t` the day's prices, write the normalised log prices

.. math::
    o_t = \ln O_t - \ln C_{t-1}, \quad u_t = \ln H_t - \ln O_t, \quad
    d_t = \ln L_t - \ln O_t, \quad c_t = \ln C_t - \ln O_t .

Parkinson, Garman–Klass and Rogers–Satchell measure the variance of the trading session
(open to close) only; close-to-close, Garman–Klass–Yang–Zhang and Yang–Zhang measure the
whole day, overnight included. Which one targets what matters when comparing them to a model
of close-to-close returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd

Estimator = Literal[
    "close_to_close",
    "parkinson",
    "garman_klass",
    "rogers_satchell",
    "garman_klass_yang_zhang",
    "yang_zhang",
]
ESTIMATORS: tuple[Estimator, ...] = get_args(Estimator)

FloatArray = npt.NDArray[np.float64]

_PCT2 = 100.0**2
_LN2 = float(np.log(2.0))


def _log(prices: npt.ArrayLike) -> FloatArray:
    values = np.asarray(prices, dtype=np.float64)
    if (values <= 0).any():
        msg = "realized-variance estimators need positive prices"
        raise ValueError(msg)
    return np.log(values)


def overnight(open_: npt.ArrayLike, close: npt.ArrayLike) -> FloatArray:
    r"""Overnight log returns :math:`o_t = \ln O_t - \ln C_{t-1}` (not percent); first NaN."""
    log_o, log_c = _log(open_), _log(close)
    out = np.full(log_o.shape, np.nan)
    out[1:] = log_o[1:] - log_c[:-1]
    return out


def close_to_close(close: npt.ArrayLike) -> FloatArray:
    r"""Squared close-to-close log return.

    Parameters
    ----------
    close : array_like
        Adjusted closes in date order.

    Returns
    -------
    numpy.ndarray
        ``sigma2`` per day in percent²; the first value is NaN.

    Notes
    -----
    .. math:: \hat\sigma^2_t = 100^2 (\ln C_t - \ln C_{t-1})^2

    Unbiased for the close-to-close variance when the mean return is zero, and the noisiest
    of the estimators here.
    """
    log_c = _log(close)
    out = np.full(log_c.shape, np.nan)
    out[1:] = _PCT2 * np.diff(log_c) ** 2
    return out


def parkinson(high: npt.ArrayLike, low: npt.ArrayLike) -> FloatArray:
    r"""Parkinson (1980) high-low range estimator.

    Parameters
    ----------
    high, low : array_like
        The day's high and low.

    Returns
    -------
    numpy.ndarray
        ``sigma2`` of the trading session in percent².

    Notes
    -----
    .. math:: \hat\sigma^2_t = \frac{100^2}{4 \ln 2} (u_t - d_t)^2

    Unbiased for a driftless Brownian motion observed continuously; about five times as
    efficient as the squared return. Biased down when the drift is large or when trading
    is sparse (the observed range is then too narrow).

    References
    ----------
    .. [1] Parkinson, M. (1980). The extreme value method for estimating the variance of the
       rate of return. *Journal of Business*, 53(1), 61–65.
    """
    log_range = _log(high) - _log(low)
    return _PCT2 * log_range**2 / (4.0 * _LN2)


def garman_klass(
    open_: npt.ArrayLike, high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike
) -> FloatArray:
    r"""Garman–Klass (1980) estimator from open, high, low and close.

    Parameters
    ----------
    open_, high, low, close : array_like
        The day's prices.

    Returns
    -------
    numpy.ndarray
        ``sigma2`` of the trading session in percent².

    Notes
    -----
    .. math:: \hat\sigma^2_t = 100^2 \left[\tfrac12 (u_t - d_t)^2 - (2\ln 2 - 1)\, c_t^2\right]

    The practical form of their best analytic estimator; unbiased for a driftless Brownian
    motion and about 7.4 times as efficient as the squared return.

    References
    ----------
    .. [1] Garman, M. B., & Klass, M. J. (1980). On the estimation of security price
       volatilities from historical data. *Journal of Business*, 53(1), 67–78.
    """
    log_o = _log(open_)
    log_range = _log(high) - _log(low)
    c = _log(close) - log_o
    return _PCT2 * (0.5 * log_range**2 - (2.0 * _LN2 - 1.0) * c**2)


def rogers_satchell(
    open_: npt.ArrayLike, high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike
) -> FloatArray:
    r"""Rogers–Satchell (1991) drift-independent estimator.

    Parameters
    ----------
    open_, high, low, close : array_like
        The day's prices.

    Returns
    -------
    numpy.ndarray
        ``sigma2`` of the trading session in percent²; never negative.

    Notes
    -----
    .. math:: \hat\sigma^2_t = 100^2 \left[u_t (u_t - c_t) + d_t (d_t - c_t)\right]

    Unbiased for a Brownian motion with any constant drift.

    References
    ----------
    .. [1] Rogers, L. C. G., & Satchell, S. E. (1991). Estimating variance from high, low and
       closing prices. *Annals of Applied Probability*, 1(4), 504–512.
    """
    log_o = _log(open_)
    u = _log(high) - log_o
    d = _log(low) - log_o
    c = _log(close) - log_o
    return _PCT2 * (u * (u - c) + d * (d - c))


def garman_klass_yang_zhang(
    open_: npt.ArrayLike, high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike
) -> FloatArray:
    r"""Garman–Klass with the overnight return: a daily range estimator of the whole day.

    Parameters
    ----------
    open_, high, low, close : array_like
        Prices in date order, on one adjustment basis.

    Returns
    -------
    numpy.ndarray
        ``sigma2`` of the whole day (close to close) in percent²; the first value is NaN.

    Notes
    -----
    .. math::
        \hat\sigma^2_t = 100^2 \left[o_t^2 + \tfrac12 (u_t - d_t)^2
        - (2\ln 2 - 1)\, c_t^2\right]

    The Yang–Zhang (2000) extension of Garman–Klass to opening jumps, for a single day:
    unbiased for the close-to-close variance of a driftless Brownian motion with a normal
    overnight move, and far less noisy than the squared return. volforecast uses it as the
    range-based realized variance: the LSTM's and HAR's input and the evaluation's range-based
    target.

    References
    ----------
    .. [1] Yang, D., & Zhang, Q. (2000). Drift-independent volatility estimation based on
       high, low, open, and close prices. *Journal of Business*, 73(3), 477–491.
    """
    return _PCT2 * overnight(open_, close) ** 2 + garman_klass(open_, high, low, close)


def yang_zhang_k(window: int) -> float:
    r"""The Yang–Zhang weight :math:`k = 0.34 / (1.34 + (n+1)/(n-1))` for a window of ``n`` days."""
    if window < 2:
        msg = "the Yang–Zhang window needs at least 2 days"
        raise ValueError(msg)
    return 0.34 / (1.34 + (window + 1) / (window - 1))


def yang_zhang(
    open_: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    window: int = 21,
) -> FloatArray:
    r"""Yang–Zhang (2000) estimator over a rolling window, overnight moves included.

    Parameters
    ----------
    open_, high, low, close : array_like
        Prices in date order, on one adjustment basis.
    window : int, default 21
        Days per estimate, :math:`n \geq 2`.

    Returns
    -------
    numpy.ndarray
        ``sigma2`` of the whole day (close to close) in percent², for the window ending on
        each day; NaN until a full window with an overnight return exists (the first
        ``window`` values).

    Notes
    -----
    Over the :math:`n` days of a window,

    .. math::
        \hat\sigma^2 = \hat\sigma^2_o + k\,\hat\sigma^2_c + (1-k)\,\hat\sigma^2_{RS},
        \qquad k = \frac{0.34}{1.34 + \frac{n+1}{n-1}},

    where :math:`\hat\sigma^2_o` and :math:`\hat\sigma^2_c` are the sample variances (with
    :math:`n-1` in the denominator) of the overnight returns :math:`o_t` and the open-to-close
    returns :math:`c_t`, and :math:`\hat\sigma^2_{RS}` is the mean Rogers–Satchell estimate.
    Unbiased for the close-to-close variance whatever the drift and the opening jumps; ``k``
    minimises its variance.

    References
    ----------
    .. [1] Yang, D., & Zhang, Q. (2000). Drift-independent volatility estimation based on
       high, low, open, and close prices. *Journal of Business*, 73(3), 477–491.
    """
    k = yang_zhang_k(window)
    open_to_close = _log(close) - _log(open_)
    rs = rogers_satchell(open_, high, low, close) / _PCT2
    frame = pd.DataFrame({"o": overnight(open_, close), "c": open_to_close, "rs": rs})
    rolling = frame.rolling(window, min_periods=window)
    var_o = rolling["o"].var(ddof=1).to_numpy()
    var_c = rolling["c"].var(ddof=1).to_numpy()
    mean_rs = rolling["rs"].mean().to_numpy()
    return np.asarray(_PCT2 * (var_o + k * var_c + (1.0 - k) * mean_rs), dtype=np.float64)


def realized_variance(
    prices: pd.DataFrame, estimator: Estimator = "garman_klass", *, window: int = 21
) -> pd.Series:
    """One estimator applied to a frame of adjusted prices.

    Parameters
    ----------
    prices : pandas.DataFrame
        Columns ``open``, ``high``, ``low``, ``close`` on one adjustment basis, in date order.
    estimator : {"close_to_close", "parkinson", "garman_klass", "rogers_satchell", \
"garman_klass_yang_zhang", "yang_zhang"}
        Which estimator; see the module notes for what each one measures.
    window : int, default 21
        Window of the Yang–Zhang estimator; ignored by the others.

    Returns
    -------
    pandas.Series
        ``sigma2`` in percent² per day, indexed like ``prices`` and named after the estimator.
    """
    o, h, lo, c = (prices[col] for col in ("open", "high", "low", "close"))
    compute: dict[Estimator, Callable[[], FloatArray]] = {
        "close_to_close": lambda: close_to_close(c),
        "parkinson": lambda: parkinson(h, lo),
        "garman_klass": lambda: garman_klass(o, h, lo, c),
        "rogers_satchell": lambda: rogers_satchell(o, h, lo, c),
        "garman_klass_yang_zhang": lambda: garman_klass_yang_zhang(o, h, lo, c),
        "yang_zhang": lambda: yang_zhang(o, h, lo, c, window=window),
    }
    if estimator not in compute:
        msg = f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}"
        raise ValueError(msg)
    return pd.Series(compute[estimator](), index=prices.index, name=estimator)
