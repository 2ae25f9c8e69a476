r"""Losses of forecast paths against realized variance over a horizon.

For an origin ``t`` and a horizon ``h`` the target is the realized variance of the next
``h`` days, :math:`\sum_{i=1}^{h} \hat\sigma^2_{t+i}`, and the forecast is the sum of the
first ``h`` steps of the path. Two proxies of the daily variance are used, and every report
says which:

* ``range``: the Garman–Klass estimator with the overnight return (less noisy);
* ``squared``: the squared close-to-close return (the classical proxy).

QLIKE is computed on the variance sums; MSE, MAE and RMSE on the average daily volatility
over the horizon, :math:`\sqrt{\text{sum}/h}`, in percent, the unit of the specification's
figures. Days whose squared-return target is zero (an unchanged price, possible at ``h = 1``)
are left out for every model alike, since QLIKE is undefined there.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

from volforecast.core.features import DailyData
from volforecast.core.losses import mae, mse, qlike_losses, rmse

Proxy = Literal["range", "squared"]
PROXIES: tuple[Proxy, ...] = get_args(Proxy)
DEFAULT_HORIZONS = (1, 5, 22)


def daily_proxy(data: DailyData, proxy: Proxy) -> np.ndarray:
    """The realized variance of each day in percent² by the named proxy."""
    if proxy == "range":
        return np.asarray(data.rv_sigma2)
    return np.asarray(data.returns_pct**2)


@dataclass(frozen=True)
class HorizonTargets:
    """Realized and forecast variance sums over one horizon, for the origins that have both."""

    horizon: int
    proxy: Proxy
    rows: np.ndarray
    """Which origins (rows of the path array) are kept."""
    realized: np.ndarray
    forecast: np.ndarray


def horizon_targets(
    data: DailyData,
    origin_positions: np.ndarray,
    sigma2_paths: np.ndarray,
    horizon: int,
    proxy: Proxy,
) -> HorizonTargets:
    """Line up ``h``-day forecasts with what was realized after each origin.

    Origins too close to the end of the data for a full ``h``-day target, paths with a missing
    forecast (a failed fit), and zero targets are dropped. A horizon beyond the paths' steps is
    a ``ValueError``: a shorter sum would be compared with ``h`` realized days.
    """
    if horizon > sigma2_paths.shape[1]:
        steps = sigma2_paths.shape[1]
        msg = f"a {horizon}-day target needs paths of {horizon} steps, these have {steps}"
        raise ValueError(msg)
    daily = daily_proxy(data, proxy)
    cumulative = np.concatenate(([0.0], np.cumsum(daily)))
    ends = origin_positions + horizon
    complete = ends < len(daily)
    realized = np.full(len(origin_positions), np.nan)
    realized[complete] = cumulative[ends[complete] + 1] - cumulative[origin_positions[complete] + 1]
    forecast = sigma2_paths[:, :horizon].sum(axis=1)
    keep = complete & np.isfinite(forecast) & (realized > 0)
    rows = np.flatnonzero(keep)
    return HorizonTargets(horizon, proxy, rows, realized[rows], forecast[rows])


def loss_table(
    data: DailyData,
    origin_positions: np.ndarray,
    paths: dict[str, np.ndarray],
    horizons: Sequence[int] = DEFAULT_HORIZONS,
    proxies: Sequence[Proxy] = PROXIES,
) -> pd.DataFrame:
    """Losses of each model at each horizon and proxy, on the origins every model covers.

    Horizons beyond the paths' steps (a backtest of ``--horizon 5`` has no 22-day sum) are left
    out.

    Returns
    -------
    pandas.DataFrame
        Columns ``ticker, model, horizon, proxy, n, qlike, mse, mae, rmse``.
    """
    records = []
    steps = min((p.shape[1] for p in paths.values()), default=0)
    for proxy in proxies:
        for h in (h for h in horizons if h <= steps):
            targets = {
                m: horizon_targets(data, origin_positions, p, h, proxy) for m, p in paths.items()
            }
            common = functools.reduce(np.intersect1d, [t.rows for t in targets.values()])
            for model, t in targets.items():
                keep = np.isin(t.rows, common)
                realized, forecast = t.realized[keep], t.forecast[keep]
                if len(realized) == 0:
                    continue
                vol_realized, vol_forecast = np.sqrt(realized / h), np.sqrt(forecast / h)
                records.append(
                    {
                        "ticker": data.ticker,
                        "model": model,
                        "horizon": h,
                        "proxy": proxy,
                        "n": len(realized),
                        "qlike": float(np.mean(qlike_losses(realized, forecast))),
                        "mse": mse(vol_realized, vol_forecast),
                        "mae": mae(vol_realized, vol_forecast),
                        "rmse": rmse(vol_realized, vol_forecast),
                    }
                )
    return pd.DataFrame.from_records(records)


def aligned_losses(
    data: DailyData,
    origin_positions: np.ndarray,
    paths_a: np.ndarray,
    paths_b: np.ndarray,
    *,
    horizon: int,
    proxy: Proxy,
) -> tuple[np.ndarray, np.ndarray]:
    """QLIKE loss series of two models on the origins both cover, for a Diebold–Mariano test."""
    a = horizon_targets(data, origin_positions, paths_a, horizon, proxy)
    b = horizon_targets(data, origin_positions, paths_b, horizon, proxy)
    common = np.intersect1d(a.rows, b.rows)
    pick_a, pick_b = np.isin(a.rows, common), np.isin(b.rows, common)
    return (
        qlike_losses(a.realized[pick_a], a.forecast[pick_a]),
        qlike_losses(b.realized[pick_b], b.forecast[pick_b]),
    )


def relative_qlike(losses: pd.DataFrame, baseline: str = "garch") -> pd.DataFrame:
    """Median across tickers of each model's QLIKE divided by the baseline's.

    Parameters
    ----------
    losses : pandas.DataFrame
        Rows of :func:`loss_table` for many tickers.
    baseline : str
        The model every other is divided by (GARCH(1,1) with normal errors by default).

    Returns
    -------
    pandas.DataFrame
        Index ``(proxy, model)``, one column per horizon; below 1 beats the baseline.
    """
    wide = losses.pivot_table(index=["ticker", "proxy", "horizon"], columns="model", values="qlike")
    if baseline not in wide.columns:
        msg = f"the baseline {baseline!r} is not among the models"
        raise ValueError(msg)
    ratios = wide.div(wide[baseline], axis=0).reset_index()
    long = ratios.melt(id_vars=["ticker", "proxy", "horizon"], var_name="model", value_name="r")
    return long.pivot_table(
        index=["proxy", "model"], columns="horizon", values="r", aggfunc="median"
    )
