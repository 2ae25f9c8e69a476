"""The forecast plot logged with each training run."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from volforecast.core.features import DailyData
from volforecast.evaluation.test_window import Evaluated
from volforecast.models.base import VolatilityForecast, VolatilityModel

PLOT_DAYS = 250


def forecast_plot(data: DailyData, evaluated: Evaluated, model: VolatilityModel) -> bytes:
    """PNG: realized volatility, the 1-day forecasts over the test window, the path ahead.

    ``model`` has been updated to the end of ``data``, so its path starts after the last day.
    """
    return path_plot(data, evaluated, model.forecast(30), model.model_type)


def path_plot(
    data: DailyData, evaluated: Evaluated, ahead: VolatilityForecast, model_type: str
) -> bytes:
    """:func:`forecast_plot` from the 30-day path ``ahead``: drawn where the model is not."""
    figure = Figure(figsize=(8, 3.5), dpi=72)
    axes = figure.subplots()
    start = max(len(data) - PLOT_DAYS, 0)
    axes.plot(
        data.dates[start:], np.sqrt(data.rv_sigma2[start:]), lw=0.7, color="0.6",
        label="realized (range-based)",
    )  # fmt: skip
    shown = evaluated.origins >= start
    axes.plot(
        data.dates[evaluated.origins[shown] + 1], np.sqrt(evaluated.paths[shown, 0]), lw=1.2,
        label="1-day forecast (test window)",
    )  # fmt: skip
    axes.plot(
        pd.DatetimeIndex(ahead.forecast_dates), ahead.vol_pct, lw=1.5, ls="--", label="next 30 days"
    )
    axes.set_ylabel("daily volatility, %")
    axes.set_title(f"{data.ticker}: {model_type}")
    axes.legend(loc="upper left", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
