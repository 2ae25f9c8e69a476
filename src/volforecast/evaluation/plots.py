"""The forecast plot logged with each training run."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

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
    canvas = _canvas()
    start = max(len(data) - PLOT_DAYS, 0)
    shown = evaluated.origins >= start
    realized, forecast, path = canvas.lines
    realized.set_data(data.dates[start:], np.sqrt(data.rv_sigma2[start:]))
    forecast.set_data(data.dates[evaluated.origins[shown] + 1], np.sqrt(evaluated.paths[shown, 0]))
    path.set_data(pd.DatetimeIndex(ahead.forecast_dates), ahead.vol_pct)
    canvas.axes.relim()
    canvas.axes.autoscale_view()
    canvas.axes.set_title(f"{data.ticker}: {model_type}")
    buffer = io.BytesIO()
    canvas.figure.savefig(buffer, format="png")
    return buffer.getvalue()


@dataclass(frozen=True)
class _Canvas:
    figure: Figure
    axes: Axes
    lines: tuple[Line2D, Line2D, Line2D]


_local = threading.local()


def _canvas() -> _Canvas:
    """The figure of the calling thread, drawn once and then given each version's data.

    A training run plots every version it registers; building the figure, its axes and its
    legend anew each time cost about a third of the plot.
    """
    canvas: _Canvas | None = getattr(_local, "canvas", None)
    if canvas is None:
        figure = Figure(figsize=(8, 3.5), dpi=72)
        FigureCanvasAgg(figure)
        axes = figure.subplots()
        axes.xaxis.axis_date()  # matplotlib's date ticks, as a plot of dates gets them
        lines = (
            axes.plot([], [], lw=0.7, color="0.6", label="realized (range-based)")[0],
            axes.plot([], [], lw=1.2, label="1-day forecast (test window)")[0],
            axes.plot([], [], lw=1.5, ls="--", label="next 30 days")[0],
        )
        axes.set_ylabel("daily volatility, %")
        axes.legend(loc="upper left", fontsize=8)
        canvas = _local.canvas = _Canvas(figure, axes, lines)
    return canvas
