"""Targets over horizons and the loss table, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from volforecast.core.features import DailyData
from volforecast.evaluation.metrics import (
    aligned_losses,
    horizon_targets,
    loss_table,
    relative_qlike,
)


def toy() -> DailyData:
    dates = pd.bdate_range("2020-01-01", periods=8)
    returns = np.array([1.0, -2.0, 0.0, 1.0, 3.0, -1.0, 2.0, 1.0])
    rv = np.array([1.0, 4.0, 0.5, 1.0, 9.0, 1.0, 4.0, 1.0])
    return DailyData("TOY", dates, returns, rv)


def test_targets_sum_the_next_h_days() -> None:
    data = toy()
    origins = np.array([0, 2, 5])
    paths = np.ones((3, 30))
    t = horizon_targets(data, origins, paths, 2, "range")
    # origin 0: days 1, 2 -> 4 + 0.5; origin 2: days 3, 4 -> 1 + 9; origin 5: days 6, 7 -> 4 + 1
    assert t.realized.tolist() == [4.5, 10.0, 5.0]
    assert t.forecast.tolist() == [2.0, 2.0, 2.0]
    squared = horizon_targets(data, origins, paths, 2, "squared")
    assert squared.realized.tolist() == [4.0, 10.0, 5.0]


def test_targets_drop_incomplete_zero_and_missing() -> None:
    data = toy()
    paths = np.ones((3, 30))
    paths[1] = np.nan  # a failed fit
    t = horizon_targets(data, np.array([1, 4, 6]), paths, 1, "squared")
    # origin 1: next day's return is 0 -> dropped; origin 4: NaN path; origin 6: day 7 -> 1
    assert t.rows.tolist() == [2]
    assert t.realized.tolist() == [1.0]
    beyond = horizon_targets(data, np.array([6]), np.ones((1, 30)), 5, "range")
    assert len(beyond.rows) == 0


def test_a_perfect_forecast_has_zero_qlike_and_the_table_is_complete() -> None:
    data = toy()
    origins = np.array([0, 1, 2, 3])
    perfect = np.zeros((4, 30))
    perfect[:, :2] = np.column_stack([data.rv_sigma2[origins + 1], data.rv_sigma2[origins + 2]])
    flat = np.full((4, 30), 2.0)
    table = loss_table(
        data, origins, {"perfect": perfect, "flat": flat}, horizons=(1, 2), proxies=("range",)
    )
    assert set(table.columns) >= {"ticker", "model", "horizon", "proxy", "n", "qlike", "rmse"}
    best = table.set_index(["model", "horizon"])
    assert best.loc[("perfect", 1), "qlike"] == pytest.approx(0.0, abs=1e-15)
    assert best.loc[("perfect", 2), "rmse"] == pytest.approx(0.0, abs=1e-12)
    assert best.loc[("flat", 1), "qlike"] > 0


def test_horizons_beyond_the_paths_are_left_out_not_summed_short() -> None:
    data = toy()
    origins = np.array([0, 1, 2])
    table = loss_table(data, origins, {"a": np.full((3, 2), 2.0)}, horizons=(1, 2, 5))
    assert sorted(set(table["horizon"])) == [1, 2]
    with pytest.raises(ValueError, match="paths of 5 steps, these have 2"):
        horizon_targets(data, origins, np.full((3, 2), 2.0), 5, "range")


def test_models_are_compared_on_the_same_origins() -> None:
    data = toy()
    origins = np.array([0, 1, 2, 3])
    a = np.full((4, 30), 2.0)
    b = np.full((4, 30), 3.0)
    b[0] = np.nan
    table = loss_table(data, origins, {"a": a, "b": b}, horizons=(1,), proxies=("range",))
    assert table["n"].tolist() == [3, 3]
    la, lb = aligned_losses(data, origins, a, b, horizon=1, proxy="range")
    assert len(la) == len(lb) == 3


def test_relative_qlike_is_a_median_of_ratios() -> None:
    losses = pd.DataFrame(
        {
            "ticker": ["A", "A", "B", "B", "C", "C"],
            "model": ["garch", "har"] * 3,
            "horizon": 1,
            "proxy": "range",
            "qlike": [1.0, 0.5, 2.0, 1.8, 1.0, 1.2],
        }
    )
    table = relative_qlike(losses)
    assert table.loc[("range", "har"), 1] == pytest.approx(0.9)
    assert table.loc[("range", "garch"), 1] == 1.0
    with pytest.raises(ValueError, match="baseline 'lstm'"):
        relative_qlike(losses, "lstm")
