"""The figures: the numbers drawn are the numbers given (VaR bands z times vol, and so on)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from volforecast.core.risk import normal_quantile
from volforecast.dashboard import charts
from volforecast.dashboard.tables import volatility_history
from volforecast.data.sources import load_sample


def _paths(model_type: str, vol_pct: list[float]) -> pd.DataFrame:
    steps = len(vol_pct)
    return pd.DataFrame({
        "model_type": model_type,
        "model_version": "3",
        "origin_date": pd.Timestamp("2018-12-31"),
        "step": np.arange(1, steps + 1),
        "forecast_date": pd.bdate_range("2019-01-02", periods=steps),
        "vol_pct": vol_pct,
    })  # fmt: skip


def _trace(figure: Any, name: str) -> Any:
    found = [t for t in figure.data if t.name == name]
    assert len(found) == 1, f"{name!r} not among {[t.name for t in figure.data]}"
    return found[0]


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    frame = load_sample().frame
    return volatility_history(frame[frame["ticker"] == "^GSPC"].tail(40), smoothing_days=5)


def test_the_var_band_of_each_model_spans_z95_to_z99_times_its_forecast(
    history: pd.DataFrame,
) -> None:
    garch, lstm = [1.8, 1.7, 1.6], [0.9, 1.0, 1.1]
    paths = pd.concat([_paths("LSTM", lstm), _paths("GARCH", garch)], ignore_index=True)
    figure = charts.volatility_figure(history, paths, smoothing_days=5)
    for model, vol in (("GARCH", garch), ("LSTM", lstm)):
        line = _trace(figure, f"{model} v3 forecast vol %")
        np.testing.assert_allclose(line.y, vol)
        low = _trace(figure, f"{model} VaR 95 %")
        high = _trace(figure, f"{model} VaR 95–99 %")
        np.testing.assert_allclose(low.y, normal_quantile(0.95) * np.array(vol))
        np.testing.assert_allclose(high.y, 2.3263478740408408 * np.array(vol))
        assert high.fill == "tonexty", "the band fills down to the 95 % line drawn just before"
        assert list(high.x) == list(pd.bdate_range("2019-01-02", periods=3))
    # Drawn in the catalogue's order, GARCH first, each band just before its line.
    names = [t.name for t in figure.data]
    assert names.index("GARCH VaR 95 %") < names.index("LSTM VaR 95 %")


def test_the_history_is_drawn_as_absolute_returns_and_smoothed_realized_vol(
    history: pd.DataFrame,
) -> None:
    figure = charts.volatility_figure(history, _paths("GARCH", [1.0]), smoothing_days=5)
    bars = _trace(figure, "|return| %")
    np.testing.assert_allclose(bars.y, history["abs_return_pct"])
    realized = _trace(figure, "realized vol %, 5-day mean")
    np.testing.assert_allclose(realized.y, history["rv_vol_smooth_pct"])
    origin = figure.layout.shapes[0]
    assert pd.Timestamp(origin.x0, unit="ms") == pd.Timestamp("2018-12-31")


def test_forecasts_alone_and_nothing_at_all_still_draw() -> None:
    alone = charts.volatility_figure(None, _paths("HAR", [1.0, 1.1]))
    assert [t.name for t in alone.data] == ["HAR VaR 95 %", "HAR VaR 95–99 %",
                                            "HAR v3 forecast vol %"]  # fmt: skip
    assert not charts.volatility_figure(None, _paths("HAR", [])[:0]).data


def test_accuracy_is_drawn_per_model_in_date_order() -> None:
    frame = pd.DataFrame({
        "model_type": ["GARCH", "LSTM", "GARCH"],
        "as_of_date": pd.to_datetime(["2024-01-11", "2024-01-10", "2024-01-10"]),
        "rmse_vol_pct": [0.8, 0.6, 1.0],
        "n_forecasts": [20, 20, 20],
    })  # fmt: skip
    figure = charts.accuracy_figure(frame, "rmse_vol_pct")
    garch = _trace(figure, "GARCH")
    assert list(garch.y) == [1.0, 0.8]
    assert figure.layout.yaxis.title.text == "rmse_vol_pct (daily %)"
    assert charts.accuracy_figure(frame.iloc[:0], "qlike").layout.annotations


def test_latency_bars_are_the_quantiles_and_drift_bars_the_ratios() -> None:
    quantiles = pd.DataFrame({"method": ["POST"], "route": ["/predict"], "requests": [10],
                              "mean_ms": [3.0], "p50_ms": [3.0], "p99_ms": [475.0]})  # fmt: skip
    latency = charts.latency_figure(quantiles)
    assert [t.name for t in latency.data] == ["p50", "p99"]
    assert list(_trace(latency, "p99").y) == [475.0]

    checks = pd.DataFrame({
        "ticker": ["A", "B", "C"], "model_type": ["GARCH"] * 3,
        "detector": ["psi", "cusum", "rmse"], "statistic": [0.1, 9.0, 2.0],
        "threshold": [0.2, 4.5, 4.0], "fired": [False, True, False], "ratio": [0.5, 2.0, 0.5],
    })  # fmt: skip
    drift = charts.drift_figure(checks, top=2)
    (bars,) = drift.data
    assert list(bars.x) == [0.5, 2.0], "the largest ratio last, at the top"
    assert bars.marker.color[-1] == "#d62728", "a fired check is red"


def test_a_model_keeps_its_colour_everywhere() -> None:
    assert charts.model_color("garch") == charts.MODEL_COLORS["GARCH"]
    assert charts.model_color("XGB") == charts.model_color("XGB")


def test_accuracy_of_one_day_sits_on_a_date_axis_a_week_either_side() -> None:
    frame = pd.DataFrame({
        "model_type": ["GARCH", "HAR"], "as_of_date": pd.to_datetime(["2018-12-31"] * 2),
        "rmse_vol_pct": [0.57, 0.59], "n_forecasts": [20, 20],
    })  # fmt: skip
    figure = charts.accuracy_figure(frame, "rmse_vol_pct")
    assert figure.layout.xaxis.type == "date"
    low, high = (pd.Timestamp(x) for x in figure.layout.xaxis.range)
    assert (low, high) == (pd.Timestamp("2018-12-24"), pd.Timestamp("2019-01-07"))
    assert {t.mode for t in figure.data} == {"lines+markers"}
    assert list(_trace(figure, "HAR").x) == [pd.Timestamp("2018-12-31")]
    # many days: Plotly chooses the range
    many = frame.assign(as_of_date=pd.to_datetime(["2018-12-28", "2018-12-31"]))
    assert charts.accuracy_figure(many, "rmse_vol_pct").layout.xaxis.range is None


def _record() -> tuple[pd.DataFrame, pd.DataFrame]:
    dates = pd.bdate_range("2018-12-03", periods=6)
    realized = pd.DataFrame({"date": dates, "realized_vol_pct": [1.0, 2.0, 0.5, 1.5, 1.2, 0.8]})
    stored = pd.DataFrame({
        "model_type": ["GARCH"] * 4 + ["HAR"] * 2, "model_version": "1",
        "step": [1, 1, 5, 5, 1, 1],
        "origin_date": [dates[0], dates[1], dates[0], dates[0], dates[0], dates[1]],
        "forecast_date": [dates[1], dates[2], dates[5], dates[5], dates[1], dates[2]],
        "vol_pct": [1.1, 1.3, 0.9, 0.95, 0.7, 0.8],
    })  # fmt: skip
    return stored, realized


def _in_panel(figure: Any, name: str, yaxis: str) -> Any:
    found = [t for t in figure.data if t.name == name and t.yaxis == yaxis]
    assert len(found) == 1, f"{name!r} on {yaxis}: {[(t.name, t.yaxis) for t in figure.data]}"
    return found[0]


def test_the_record_draws_each_step_against_realized_volatility() -> None:
    stored, realized = _record()
    figure = charts.record_figure(stored, realized)
    # one panel per step, realized vol and each model in both
    assert [a.text for a in figure.layout.annotations] == [
        "1 trading day ahead", "5 trading days ahead",
    ]  # fmt: skip
    step1 = _in_panel(figure, "GARCH forecast", "y")
    assert list(step1.y) == [1.1, 1.3]
    assert list(step1.x) == list(pd.to_datetime(["2018-12-04", "2018-12-05"]))
    assert list(_in_panel(figure, "GARCH forecast", "y2").y) == [0.9, 0.95]
    assert list(_in_panel(figure, "HAR forecast", "y2").y) == []
    assert list(_in_panel(figure, "realized vol (daily %)", "y2").y) == [1.0, 2.0, 0.5, 1.5,
                                                                          1.2, 0.8]  # fmt: skip
    assert figure.layout.yaxis2.matches == "y", "both steps on one scale"
    assert figure.layout.yaxis.title.text == "daily %"


def test_the_annualised_record_is_the_daily_one_times_the_root_of_252() -> None:
    stored, realized = _record()
    figure = charts.record_figure(stored, realized, annualised=True)
    root = np.sqrt(252)
    np.testing.assert_allclose(_in_panel(figure, "GARCH forecast", "y").y,
                               [1.1 * root, 1.3 * root])  # fmt: skip
    np.testing.assert_allclose(_in_panel(figure, "realized vol (annualised %)", "y").y,
                               realized["realized_vol_pct"] * 15.874507866387544)  # fmt: skip
    assert figure.layout.yaxis.title.text == "annualised %"
    assert charts.record_figure(stored.iloc[:0], realized).layout.annotations[0].text == (
        "No stored forecasts in this date range"
    )


def test_the_ab_view_draws_both_models_on_one_shared_y_axis() -> None:
    stored, realized = _record()
    figure = charts.ab_figure(stored, realized, "GARCH", "HAR", step=1, annualised=True)
    assert figure.layout.yaxis2.matches == "y", "A and B on one scale"
    a = _in_panel(figure, "GARCH forecast, h=1", "y")
    b = _in_panel(figure, "HAR forecast, h=1", "y2")
    np.testing.assert_allclose(a.y, np.array([1.1, 1.3]) * np.sqrt(252))
    np.testing.assert_allclose(b.y, np.array([0.7, 0.8]) * np.sqrt(252))
    assert [t.text for t in figure.layout.annotations] == ["A: GARCH", "B: HAR"]
