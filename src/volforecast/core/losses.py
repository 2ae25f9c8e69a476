"""Forecast loss functions.

``mse``, ``mae`` and ``rmse`` are the specification's metrics and work on any unit (they are
used on daily volatility in percent). ``qlike`` is for variances and is the loss that ranks
variance forecasts consistently when only a noisy proxy of the true variance is observed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _pair(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    if a.shape != f.shape:
        msg = f"actual and forecast differ in shape: {a.shape} vs {f.shape}"
        raise ValueError(msg)
    if a.size == 0:
        msg = "a loss needs at least one forecast"
        raise ValueError(msg)
    if not (np.isfinite(a).all() and np.isfinite(f).all()):
        msg = "actual and forecast must be finite; drop missing values first"
        raise ValueError(msg)
    return a, f


def mse(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Mean squared error, in the squared unit of the inputs."""
    a, f = _pair(actual, forecast)
    return float(np.mean((a - f) ** 2))


def rmse(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Root mean squared error, in the unit of the inputs."""
    return float(np.sqrt(mse(actual, forecast)))


def mae(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> float:
    """Mean absolute error, in the unit of the inputs."""
    a, f = _pair(actual, forecast)
    return float(np.mean(np.abs(a - f)))


def qlike_losses(realized_sigma2: npt.ArrayLike, forecast_sigma2: npt.ArrayLike) -> np.ndarray:
    r"""QLIKE loss of each variance forecast against a realized-variance proxy.

    Parameters
    ----------
    realized_sigma2 : array_like
        Proxy of the variance, strictly positive (a sum of squared returns or of a range
        estimator over the horizon), percent².
    forecast_sigma2 : array_like
        Forecast variances over the same horizon, strictly positive, percent².

    Returns
    -------
    numpy.ndarray
        One loss per forecast, each :math:`\geq 0` and zero only for a perfect forecast.

    Notes
    -----
    .. math:: L(\hat\sigma^2, h) = \frac{\hat\sigma^2}{h} - \ln\frac{\hat\sigma^2}{h} - 1

    Of the losses robust to a noisy proxy (its expectation is minimised by the true conditional
    variance), QLIKE is the one whose ranking depends only on the ratio of proxy to forecast,
    so calm and turbulent periods weigh alike; ratios of mean QLIKE between models are
    therefore meaningful. It is undefined for a zero proxy (a one-day squared return of an
    unchanged price): callers drop those days for every model alike and say how many.

    References
    ----------
    .. [1] Patton, A. J. (2011). Volatility forecast comparison using imperfect volatility
       proxies. *Journal of Econometrics*, 160(1), 246–256.
    """
    proxy, h = _pair(realized_sigma2, forecast_sigma2)
    if (h <= 0).any():
        msg = "QLIKE needs strictly positive variance forecasts"
        raise ValueError(msg)
    if (proxy <= 0).any():
        msg = "QLIKE is undefined for a zero or negative proxy; drop those observations first"
        raise ValueError(msg)
    ratio = proxy / h
    return np.asarray(ratio - np.log(ratio) - 1.0, dtype=np.float64)


def qlike(realized_sigma2: npt.ArrayLike, forecast_sigma2: npt.ArrayLike) -> float:
    """Mean QLIKE loss (see :func:`qlike_losses`); lower is better, zero is perfect."""
    return float(np.mean(qlike_losses(realized_sigma2, forecast_sigma2)))
