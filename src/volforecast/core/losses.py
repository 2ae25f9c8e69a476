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


def qlike(realized_sigma2: npt.ArrayLike, forecast_sigma2: npt.ArrayLike) -> float:
    r"""QLIKE loss of variance forecasts against a realized-variance proxy.

    Parameters
    ----------
    realized_sigma2 : array_like
        Proxy of the variance, non-negative (squared returns or a range estimator), percent².
    forecast_sigma2 : array_like
        Forecast variances, strictly positive, percent².

    Returns
    -------
    float
        Mean loss; lower is better. Comparable only between forecasts of the same proxy.

    Notes
    -----
    .. math:: L(\hat\sigma^2, h) = \ln h + \frac{\hat\sigma^2}{h}

    This differs from the normalised form :math:`\hat\sigma^2/h - \ln(\hat\sigma^2/h) - 1` only
    by a term in the proxy alone, so both rank forecasts identically and give the same loss
    differences (hence the same Diebold–Mariano statistics); unlike the normalised form it is
    finite when the proxy is zero, as a squared return of an unchanged price is.

    References
    ----------
    .. [1] Patton, A. J. (2011). Volatility forecast comparison using imperfect volatility
       proxies. *Journal of Econometrics*, 160(1), 246–256.
    """
    proxy, h = _pair(realized_sigma2, forecast_sigma2)
    if (h <= 0).any():
        msg = "QLIKE needs strictly positive variance forecasts"
        raise ValueError(msg)
    if (proxy < 0).any():
        msg = "QLIKE needs a non-negative variance proxy"
        raise ValueError(msg)
    return float(np.mean(np.log(h) + proxy / h))
