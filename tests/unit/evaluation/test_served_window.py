"""The rule's first window: each family's forecasts of the test window before the backtest."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd

from volforecast.core.features import DailyData
from volforecast.evaluation.served_window import first_window_paths
from volforecast.evaluation.test_window import window_origins

TRAIN_END = dt.date(2010, 12, 31)
NAMES = ("garch", "ewma", "garch+ewma")


def test_the_window_is_training_s_and_nothing_after_train_end_is_read(gspc: DailyData) -> None:
    history = gspc.until(pd.Timestamp(TRAIN_END))
    whole = first_window_paths({"^GSPC": gspc}, NAMES, TRAIN_END, steps=5)["^GSPC"]
    # The test window training judges on the last day: the last 10 % of the days through it
    np.testing.assert_array_equal(whole.origin_positions, window_origins(history))
    assert list(whole.sigma2) == list(NAMES)
    for name in NAMES:
        assert whole.sigma2[name].shape == (len(whole.origin_positions), 5)
        assert np.isfinite(whole.sigma2[name]).all(), name
    # a combination is the equal-weight average of its members
    np.testing.assert_allclose(
        whole.sigma2["garch+ewma"], (whole.sigma2["garch"] + whole.sigma2["ewma"]) / 2
    )
    # The same with the data cut at train_end: the later days changed nothing
    cut = first_window_paths({"^GSPC": history}, NAMES, TRAIN_END, steps=5)["^GSPC"]
    for name in NAMES:
        np.testing.assert_array_equal(cut.sigma2[name], whole.sigma2[name])


def test_a_family_that_cannot_be_fitted_leaves_nan_and_the_others_stand(gspc: DailyData) -> None:
    short = replace(gspc.until(pd.Timestamp(TRAIN_END)).tail(60), ticker="NEW")  # too short
    window = first_window_paths({"NEW": short}, ("garch", "ewma"), TRAIN_END, steps=1)["NEW"]
    assert np.isnan(window.sigma2["garch"]).all()
    assert np.isfinite(window.sigma2["ewma"]).all()
