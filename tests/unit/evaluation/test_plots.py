"""The forecast plot: one figure per process, redrawn for each version without carrying over."""

from __future__ import annotations

import io
import threading

import matplotlib.dates as mdates
import numpy as np
from PIL import Image

from volforecast.core.features import DailyData
from volforecast.evaluation import plots
from volforecast.evaluation.test_window import FIT_FRACTION, evaluate
from volforecast.models.garch import GarchModel
from volforecast.settings import Settings


def _plot(data: DailyData) -> bytes:
    model = GarchModel().fit(data.head(int(len(data) * FIT_FRACTION)))
    evaluated = evaluate(model, data, Settings())
    model.update(data)
    return plots.forecast_plot(data, evaluated, model)


def test_each_plot_shows_its_own_days_and_title(gspc: DailyData, ixic: DailyData) -> None:
    long_png = _plot(gspc)
    short = ixic.head(700)
    short_png = _plot(short)
    axes = plots._canvas().axes  # the figure the second plot drew

    first, last = mdates.num2date(axes.get_xlim())
    assert first.date() <= short.dates[-plots.PLOT_DAYS].date()
    assert last.date() < gspc.dates[-1].date()  # the first ticker's days are gone
    assert axes.get_title() == f"{short.ticker}: {GarchModel().model_type}"
    assert axes.xaxis.get_major_ticks()[0].label1.get_text() != ""  # dates, not day numbers
    for png in (long_png, short_png):
        assert Image.open(io.BytesIO(png)).size == (576, 252)


def test_a_reused_figure_draws_what_a_new_one_draws(gspc: DailyData, ixic: DailyData) -> None:
    fresh: list[bytes] = []
    thread = threading.Thread(target=lambda: fresh.append(_plot(gspc)))  # its own new figure
    thread.start()
    thread.join()
    _plot(ixic.head(700))  # this thread's figure has drawn another ticker before
    assert np.array_equal(_pixels(_plot(gspc)), _pixels(fresh[0]))


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))
