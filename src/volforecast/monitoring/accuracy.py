"""Stored forecasts against what happened: rolling RMSE, MAE and QLIKE per model and horizon.

A forecast for day ``d`` at step ``h`` is judged on day ``d``'s realized volatility alone,
with two proxies: ``range`` (the Garman–Klass–Yang–Zhang variance the models train on) and
``squared`` (the squared return, noisier, the one the specification's RMSE names). Errors
are in daily volatility, percent; QLIKE compares variances and skips zero squared returns.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from volforecast.core.features import DailyData
from volforecast.core.losses import qlike
from volforecast.data.repositories.monitoring import AccuracyRow

ACCURACY_HORIZONS = (1, 5, 10, 30)
"""Forecast steps whose accuracy is kept: the daily trigger reads step 1."""


def _figures(
    realized_vol_pct: np.ndarray, forecast_vol_pct: np.ndarray
) -> tuple[float, float, float | None]:
    error = realized_vol_pct - forecast_vol_pct
    usable = realized_vol_pct > 0
    loss = (qlike(realized_vol_pct[usable] ** 2, forecast_vol_pct[usable] ** 2)
            if usable.any() else None)  # fmt: skip
    return float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error))), loss


def latest_stored(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per model type, step and forecast date of ``predictions``: the latest stored.

    Of rows stored at the same moment, the higher model version's (compared as numbers,
    then as text): the choice never depends on the order the database returned them in.
    """
    version = pd.to_numeric(predictions["model_version"], errors="coerce").fillna(-1)
    keys = ["prediction_timestamp", "_version", "model_version", "origin_date"]
    return (predictions.assign(_version=version)
            .sort_values(keys, kind="stable")
            .drop_duplicates(["model_type", "step", "forecast_date"], keep="last")
            .drop(columns="_version"))  # fmt: skip


def accuracy_rows(
    predictions: pd.DataFrame,
    realized: DailyData,
    *,
    window_days: int,
    horizons: tuple[int, ...] = ACCURACY_HORIZONS,
) -> list[AccuracyRow]:
    """Accuracy of one ticker's stored forecasts over its last ``window_days`` trading days.

    Parameters
    ----------
    predictions : pandas.DataFrame
        The ticker's stored rows, a :class:`~volforecast.core.schemas.PredictionsSchema` frame.
    realized : DailyData
        The ticker's history up to the monitored day, which is its last date.
    window_days : int
        Trading days, ending on the last one of ``realized``, whose forecasts are judged.

    Returns
    -------
    list of AccuracyRow
        One per model type, horizon and proxy that has a judged forecast. When a forecast
        for one day and step was stored more than once (a new version, a re-run), the latest
        counts (:func:`latest_stored`).
    """
    if predictions.empty or len(realized) == 0:
        return []
    days = realized.tail(window_days)
    truth = pd.DataFrame(
        {"range": np.sqrt(days.rv_sigma2), "squared": np.abs(days.returns_pct)},
        index=pd.Index(days.dates.date, name="forecast_date"),
    )
    frame = predictions[predictions["step"].isin(horizons)
                        & predictions["forecast_date"].isin(truth.index)]  # fmt: skip
    frame = latest_stored(frame).join(truth, on="forecast_date")
    as_of: dt.date = days.last_date.date()
    rows = []
    for (model_type, step), group in frame.groupby(["model_type", "step"], sort=True):
        forecast = group["predicted_volatility"].to_numpy(dtype=np.float64)
        for proxy in ("range", "squared"):
            rmse, mae, loss = _figures(group[proxy].to_numpy(dtype=np.float64), forecast)
            rows.append(AccuracyRow(
                ticker=realized.ticker, model_type=str(model_type), horizon=int(str(step)),
                proxy=proxy, as_of_date=as_of, n_forecasts=len(group), rmse_vol_pct=rmse,
                mae_vol_pct=mae, qlike=loss,
            ))  # fmt: skip
    return rows
