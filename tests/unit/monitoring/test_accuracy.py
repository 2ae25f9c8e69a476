"""Rolling accuracy of stored forecasts, checked against hand-computed figures."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from volforecast.core.features import DailyData
from volforecast.monitoring.accuracy import accuracy_rows

DATES = pd.bdate_range("2024-01-01", periods=6)


def realized() -> DailyData:
    returns = np.array([1.0, -2.0, 0.0, 3.0, -1.0, 2.0])
    rv = np.array([1.0, 4.0, 1.0, 9.0, 4.0, 1.0])
    return DailyData("AAA", DATES, returns, rv)


def stored(rows: list[tuple[str, int, dt.date, float, int]], version: str = "1") -> pd.DataFrame:
    return pd.DataFrame(
        [{"model_type": m, "origin_date": d - dt.timedelta(days=s), "step": s,
          "forecast_date": d, "predicted_volatility": v, "model_version": version,
          "prediction_timestamp": pd.Timestamp(t, unit="s", tz="UTC")}
         for m, s, d, v, t in rows]
    )  # fmt: skip


def test_rmse_mae_and_qlike_against_both_proxies() -> None:
    days = [d.date() for d in DATES]
    frame = stored([("GARCH", 1, days[3], 2.0, 0), ("GARCH", 1, days[4], 2.0, 0),
                    ("GARCH", 1, days[5], 2.0, 0)])  # fmt: skip
    rows = {r.proxy: r for r in accuracy_rows(frame, realized(), window_days=3)}
    # Range proxy: realized vol 3, 2, 1 against 2 -> errors 1, 0, -1
    assert rows["range"].rmse_vol_pct == pytest.approx(np.sqrt(2 / 3))
    assert rows["range"].mae_vol_pct == pytest.approx(2 / 3)
    ratio = np.array([9.0, 4.0, 1.0]) / 4.0
    assert rows["range"].qlike == pytest.approx(np.mean(ratio - np.log(ratio) - 1))
    # Squared-return proxy: |r| = 3, 1, 2 -> errors 1, -1, 0
    assert rows["squared"].rmse_vol_pct == pytest.approx(np.sqrt(2 / 3))
    assert rows["range"].n_forecasts == 3
    assert rows["range"].as_of_date == days[5]
    assert rows["range"].horizon == 1


def test_only_the_window_counts_and_the_latest_of_a_repeated_forecast_wins() -> None:
    days = [d.date() for d in DATES]
    frame = stored([
        ("GARCH", 1, days[0], 50.0, 0),   # before the window: ignored
        ("GARCH", 1, days[5], 9.0, 0),    # replaced by the later run below
        ("GARCH", 1, days[5], 1.0, 10),
        ("GARCH", 2, days[5], 1.0, 10),   # a step that is not kept
    ])  # fmt: skip
    rows = accuracy_rows(frame, realized(), window_days=2)
    assert {(r.horizon, r.proxy) for r in rows} == {(1, "range"), (1, "squared")}
    by_proxy = {r.proxy: r for r in rows}
    assert by_proxy["range"].n_forecasts == 1
    assert by_proxy["range"].rmse_vol_pct == pytest.approx(0.0)


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0]], ids=str)
def test_of_forecasts_stored_at_the_same_moment_the_higher_version_counts_in_any_order(
    order: list[int],
) -> None:
    # Given one day's step-1 forecast stored at one moment by versions 2, 10 and 9 (ten
    # above nine as numbers, below as text), in the order the database happens to return
    day = DATES[5].date()
    versions = [stored([("GARCH", 1, day, v, 5)], version=n)
                for v, n in ((9.0, "2"), (1.0, "10"), (7.0, "9"))]  # fmt: skip
    frame = pd.concat([versions[i] for i in order], ignore_index=True)
    # When the monitor judges them
    rows = {r.proxy: r for r in accuracy_rows(frame, realized(), window_days=1)}
    # Then version 10's alone counts (realized range vol 1: error 0), whatever the order
    assert rows["range"].n_forecasts == 1
    assert rows["range"].rmse_vol_pct == pytest.approx(0.0)


def test_a_zero_return_is_kept_for_rmse_and_skipped_by_qlike() -> None:
    days = [d.date() for d in DATES]
    frame = stored([("LSTM", 1, days[2], 1.0, 0), ("LSTM", 1, days[3], 3.0, 0)])
    rows = {r.proxy: r for r in accuracy_rows(frame, realized(), window_days=4)}
    # |r| = 0 and 3 against 1 and 3
    assert rows["squared"].rmse_vol_pct == pytest.approx(np.sqrt(0.5))
    assert rows["squared"].qlike == pytest.approx(0.0)
    assert accuracy_rows(frame.iloc[0:0], realized(), window_days=4) == []
