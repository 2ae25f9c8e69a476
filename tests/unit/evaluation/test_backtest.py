"""The walk-forward backtest: schedule, no look-ahead, output layout, failures contained."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from volforecast.core.calendar import trading_days_after
from volforecast.core.features import DailyData
from volforecast.evaluation.backtest import OUTPUT_COLUMNS, BacktestConfig, blocks, walk_forward

CONFIG = BacktestConfig(
    dt.date(2016, 12, 30), dt.date(2017, 3, 31), ("garch", "har", "ewma"), refit_every=21
)


def test_blocks_cover_the_test_period_in_refit_steps() -> None:
    schedule = blocks(CONFIG)
    sessions = trading_days_after(dt.date(2016, 12, 30), 62)  # 2017 Q1 had 62 sessions
    assert sessions[-1] == dt.date(2017, 3, 31)
    assert [(a.date(), b.date()) for a, b in schedule] == [
        (sessions[0], sessions[20]),
        (sessions[21], sessions[41]),
        (sessions[42], sessions[61]),
    ]


def test_unknown_models_and_bad_periods_are_refused_up_front() -> None:
    with pytest.raises(ValueError, match="unknown model 'arima'"):
        BacktestConfig(dt.date(2016, 1, 1), dt.date(2017, 1, 1), ("arima",))
    with pytest.raises(ValueError, match="must end after"):
        BacktestConfig(dt.date(2017, 1, 1), dt.date(2016, 1, 1))


def test_no_forecast_uses_data_after_its_origin(gspc: DailyData) -> None:
    data = gspc.until(pd.Timestamp("2017-06-30"))
    result = walk_forward([data], CONFIG)
    # Rewrite history after 15 February 2017: forecasts made up to that day must not move.
    cut = data.dates.searchsorted(pd.Timestamp("2017-02-15"), side="right")
    returns = data.returns_pct.copy()
    rv = data.rv_sigma2.copy()
    returns[cut:] *= 3.0
    rv[cut:] *= 9.0
    changed = walk_forward([DailyData(data.ticker, data.dates, returns, rv)], CONFIG)
    item, other = result.tickers["^GSPC"], changed.tickers["^GSPC"]
    before = item.origin_dates <= pd.Timestamp("2017-02-15")
    assert before.sum() > 25
    for model in CONFIG.models:
        np.testing.assert_allclose(
            other.sigma2[model][before], item.sigma2[model][before], rtol=1e-10, err_msg=model
        )
        assert not np.allclose(other.sigma2[model][~before], item.sigma2[model][~before])


def test_the_output_has_one_row_per_model_origin_and_step(gspc: DailyData) -> None:
    result = walk_forward([gspc], CONFIG)
    frame = result.to_frame()
    assert list(frame.columns) == list(OUTPUT_COLUMNS)
    assert len(frame) == 3 * 62 * 30
    assert set(frame["model"]) == {"GARCH", "HAR", "EWMA"}
    first = frame[(frame["model"] == "GARCH") & (frame["origin_date"] == dt.date(2017, 1, 3))]
    assert first["forecast_date"].tolist() == trading_days_after(dt.date(2017, 1, 3), 30)
    assert (frame["predicted_volatility"] > 0).all()


def test_a_ticker_too_short_to_fit_fails_alone(gspc: DailyData) -> None:
    young = gspc.until(pd.Timestamp("2017-03-31"))
    young = DailyData("YOUNG", young.dates[-120:], young.returns_pct[-120:], young.rv_sigma2[-120:])
    result = walk_forward([gspc, young], CONFIG)
    assert any(f.startswith("YOUNG/har") for f in result.failures)
    assert not any(f.startswith("^GSPC") for f in result.failures)
    assert np.isfinite(result.tickers["^GSPC"].sigma2["har"]).all()
    young_item = result.tickers["YOUNG"]
    last_block = young_item.origin_dates >= blocks(CONFIG)[-1][0]
    assert np.isnan(young_item.sigma2["garch"][~last_block]).all(), "no fit on too little data"
    assert np.isfinite(young_item.sigma2["garch"][last_block]).all(), "later, a fit once it can"


def test_a_combination_is_the_average_of_its_members_origin_by_origin(gspc: DailyData) -> None:
    data = gspc.until(pd.Timestamp("2017-06-30"))
    config = BacktestConfig(CONFIG.train_end, CONFIG.test_end, ("garch", "har+ewma"))
    assert config.fitted_models == ("garch", "har", "ewma")
    combined = walk_forward([data], config).tickers["^GSPC"]
    members = walk_forward([data], CONFIG).tickers["^GSPC"]
    assert list(combined.sigma2) == ["garch", "har+ewma"], "members not asked for are not kept"
    expected = (members.sigma2["har"] + members.sigma2["ewma"]) / 2
    np.testing.assert_allclose(combined.sigma2["har+ewma"], expected, rtol=1e-12)
    assert not np.allclose(combined.sigma2["har+ewma"], members.sigma2["har"])


def test_a_combination_has_no_forecast_where_a_member_has_none(gspc: DailyData) -> None:
    young = gspc.until(pd.Timestamp("2017-03-31"))
    young = DailyData("YOUNG", young.dates[-120:], young.returns_pct[-120:], young.rv_sigma2[-120:])
    config = BacktestConfig(CONFIG.train_end, CONFIG.test_end, ("garch+har",))
    item = walk_forward([young], config).tickers["YOUNG"]
    assert np.isnan(item.sigma2["garch+har"]).all(), "HAR never has 250 days, so no combination"


@pytest.mark.parametrize("name", ["har+har", "har+", "har+arima"])
def test_a_bad_combination_is_refused_up_front(name: str) -> None:
    with pytest.raises(ValueError, match=r"combination|unknown model"):
        BacktestConfig(CONFIG.train_end, CONFIG.test_end, (name,))
