"""The walk-forward backtest: schedule, no look-ahead, output layout, failures contained."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from pandera.errors import SchemaError
from threadpoolctl import threadpool_info

from volforecast.core.calendar import trading_days_after
from volforecast.core.features import DailyData, market_log_rv
from volforecast.evaluation import backtest
from volforecast.evaluation.backtest import (
    OUTPUT_COLUMNS,
    BacktestConfig,
    TickerForecasts,
    blocks,
    learned_combination,
    walk_forward,
)

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
    assert data.overnight_sigma2 is not None
    returns = data.returns_pct.copy()
    rv = data.rv_sigma2.copy()
    overnight = data.overnight_sigma2.copy()
    returns[cut:] *= 3.0
    rv[cut:] *= 9.0
    overnight[cut:] *= 9.0
    rewritten = replace(data, returns_pct=returns, rv_sigma2=rv, overnight_sigma2=overnight)
    changed = walk_forward([rewritten], CONFIG)
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


def test_the_output_refuses_a_forecast_of_zero_volatility() -> None:
    # Given forecasts from two origins, one step of which is a variance of zero
    dates = pd.DatetimeIndex(trading_days_after(dt.date(2016, 12, 30), 2))
    sigma2 = np.ones((2, CONFIG.horizon))
    sigma2[1, 3] = 0.0
    item = TickerForecasts("AAA", np.arange(2), dates, {"garch": sigma2})
    # When the output file's frame is made, then the backtest schema refuses it
    with pytest.raises(SchemaError, match=r"'predicted_volatility'.*greater_than\(0\)"):
        backtest.BacktestResult(CONFIG, {"AAA": item}).to_frame()


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


def test_a_block_whose_forecast_is_not_a_positive_number_fails_alone(
    gspc: DailyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An explosive EGARCH fit in 2008 overflowed its simulated paths; the run must go on.
    from volforecast.models.garch import GarchModel  # noqa: PLC0415

    second, second_last = blocks(CONFIG)[1]
    real = GarchModel._forecast_paths

    def explodes_in_the_second_block(
        self: GarchModel, data: DailyData, origins: np.ndarray, horizon: int
    ) -> np.ndarray:
        paths = real(self, data, origins, horizon)
        explodes = second <= data.dates[origins[0]] <= second_last
        return paths * np.inf if explodes else paths

    monkeypatch.setattr(GarchModel, "_forecast_paths", explodes_in_the_second_block)
    result = walk_forward([gspc.until(pd.Timestamp("2017-06-30"))], CONFIG)
    assert result.failures == [
        f"^GSPC/garch at {second.date()}: garch produced a variance that is not a positive number"
    ]
    item = result.tickers["^GSPC"]
    in_second = (item.origin_dates >= second) & (item.origin_dates <= second_last)
    assert np.isnan(item.sigma2["garch"][in_second]).all()
    assert np.isfinite(item.sigma2["garch"][~in_second]).all(), "the other blocks are kept"
    assert np.isfinite(item.sigma2["har"]).all()


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


def _two_members(
    ticker: str, seed: int, dates: pd.DatetimeIndex
) -> tuple[DailyData, TickerForecasts]:
    """A ticker whose ``good`` member nearly knows each day's variance and ``bad`` does not."""
    rng = np.random.default_rng(seed)
    rv = np.exp(rng.normal(0.0, 0.6, len(dates)))
    data = DailyData(ticker, dates, rng.normal(0.0, 1.0, len(dates)), rv)
    positions = np.arange(60, len(dates))  # the last origins' targets run past the data
    at = np.minimum(positions[:, None] + np.arange(1, 6), len(dates) - 1)
    good = rv[at] * np.exp(rng.normal(0.0, 0.2, at.shape))
    bad = np.full(at.shape, 3.0 * rv.mean())
    item = TickerForecasts(ticker, positions, dates[positions], {"good": good, "bad": bad})
    return data, item


@pytest.fixture
def two_members() -> tuple[dict[str, DailyData], dict[str, TickerForecasts], list[pd.Timestamp]]:
    dates = pd.DatetimeIndex(trading_days_after(dt.date(2016, 12, 30), 250))
    pairs = [_two_members(f"T{i}", i, dates) for i in range(4)]
    starts = list(dates[60::21])
    return {d.ticker: d for d, _ in pairs}, {i.ticker: i for _, i in pairs}, starts


def test_learned_weights_favour_the_better_member_once_forecasts_are_realized(
    two_members: tuple[dict[str, DailyData], dict[str, TickerForecasts], list[pd.Timestamp]],
) -> None:
    datasets, forecasts, starts = two_members
    combination = learned_combination(datasets, forecasts, ["good", "bad"], starts, min_rows=40)
    assert combination.weights.shape == (len(starts), 5, 2)
    np.testing.assert_allclose(combination.weights[0], 0.5, err_msg="nothing realized yet")
    assert (combination.weights[2:, :, 0] > 0.9).all()
    np.testing.assert_allclose(combination.weights.sum(axis=2), 1.0)
    item = forecasts["T1"]
    late = item.origin_dates >= starts[2]
    w = combination.weights[2]
    block = late & (item.origin_dates < starts[3])
    expected = w[:, 0] * item.sigma2["good"][block] + w[:, 1] * item.sigma2["bad"][block]
    np.testing.assert_allclose(combination.sigma2["T1"][block], expected, rtol=1e-12)


def test_learned_weights_use_no_day_after_the_block_starts(
    two_members: tuple[dict[str, DailyData], dict[str, TickerForecasts], list[pd.Timestamp]],
) -> None:
    datasets, forecasts, starts = two_members
    before = learned_combination(datasets, forecasts, ["good", "bad"], starts, min_rows=40)
    cut = starts[4]
    changed = {
        t: DailyData(t, d.dates, d.returns_pct, np.where(d.dates >= cut, 50.0, d.rv_sigma2))
        for t, d in datasets.items()
    }
    after = learned_combination(changed, forecasts, ["good", "bad"], starts, min_rows=40)
    np.testing.assert_allclose(after.weights[:5], before.weights[:5], rtol=1e-12)
    assert not np.allclose(after.weights[5:], before.weights[5:])
    for ticker, item in forecasts.items():
        seen = item.origin_dates < starts[5]
        np.testing.assert_allclose(after.sigma2[ticker][seen], before.sigma2[ticker][seen])


def test_a_learned_combination_skips_missing_forecasts(
    two_members: tuple[dict[str, DailyData], dict[str, TickerForecasts], list[pd.Timestamp]],
) -> None:
    datasets, forecasts, starts = two_members
    forecasts["T0"].sigma2["bad"][:80] = np.nan  # a member's fit failed for four blocks
    combination = learned_combination(datasets, forecasts, ["good", "bad"], starts, min_rows=40)
    assert np.isfinite(combination.weights).all()
    assert np.isnan(combination.sigma2["T0"][:80]).all()
    assert np.isfinite(combination.sigma2["T0"][80:-5]).all()


def test_the_backtest_learns_combination_weights_when_asked(
    gspc: DailyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = gspc.until(pd.Timestamp("2017-06-30"))
    config = BacktestConfig(
        CONFIG.train_end, CONFIG.test_end, ("har", "ewma", "har+ewma"), combine="learned"
    )
    equal_config = BacktestConfig(CONFIG.train_end, CONFIG.test_end, ("har", "ewma", "har+ewma"))
    equal = walk_forward([data], equal_config).tickers["^GSPC"].sigma2["har+ewma"]
    item = walk_forward([data], config).tickers["^GSPC"]
    assert list(item.sigma2) == ["har", "ewma", "har+ewma"]
    # One ticker realizes too few forecasts in a quarter to learn from: equal weights stay.
    np.testing.assert_allclose(item.sigma2["har+ewma"], equal, rtol=1e-12)
    # About 20 one-step forecasts are realized a block: let that be enough to learn from.
    monkeypatch.setattr(backtest, "MIN_LEARNING_ROWS", 15)
    item = walk_forward([data], config).tickers["^GSPC"]
    first = item.origin_dates < blocks(config)[1][0]
    np.testing.assert_allclose(item.sigma2["har+ewma"][first], equal[first], rtol=1e-12)
    assert not np.allclose(item.sigma2["har+ewma"][~first, 0], equal[~first, 0])
    with pytest.raises(ValueError, match="combine must be one of"):
        BacktestConfig(CONFIG.train_end, CONFIG.test_end, combine="best")


def test_the_per_ticker_pass_runs_on_one_blas_thread_and_gives_the_rest_back(
    gspc: DailyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    def blas_threads() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    seen: list[set[int]] = []
    fit_one = backtest.backtest_ticker

    def watched(data: DailyData, config: BacktestConfig) -> TickerForecasts:
        seen.append(blas_threads())
        return fit_one(data, config)

    monkeypatch.setattr(backtest, "backtest_ticker", watched)
    before = blas_threads()
    config = BacktestConfig(dt.date(2018, 9, 28), dt.date(2018, 11, 30), ("ewma",))
    backtest.walk_forward([gspc], config)
    # Many small least-squares fits: a second BLAS thread only waits on the first.
    assert seen == [{1}]
    assert blas_threads() == before


def test_the_pooled_model_also_trains_on_tickers_it_does_not_forecast(
    gspc: DailyData, ixic: DailyData
) -> None:
    # As the service's pooled LSTM trains on every stored ticker, whichever are forecast.
    config = BacktestConfig(
        dt.date(2016, 12, 30), dt.date(2017, 2, 28), ("lstm",), refit_every=21,
        lstm_settings={"max_epochs": 1, "batch_size": 256, "stride": 10},
    )  # fmt: skip
    market = market_log_rv([gspc, ixic])
    forecast = gspc.until(pd.Timestamp("2017-06-30")).with_market(market)
    alone = walk_forward([forecast], config)
    pooled = walk_forward([forecast], config, pool_with=[ixic.with_market(market)])
    assert list(pooled.tickers) == ["^GSPC"], "the other ticker is trained on, not forecast"
    paths = pooled.tickers["^GSPC"].sigma2["lstm"]
    assert np.isfinite(paths).all()
    assert not np.allclose(paths, alone.tickers["^GSPC"].sigma2["lstm"])


def test_a_panel_that_changes_trains_in_full_and_late_extra_tickers_stay_out(
    gspc: DailyData, ixic: DailyData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A warm refit trains one epoch; a network rebuilt for a new set of tickers needs all.
    calls: list[tuple[list[str], object]] = []
    real = backtest.fit_panel

    def spy(spec: object, datasets: list[DailyData], **kwargs: object) -> object:
        calls.append(([d.ticker for d in datasets], kwargs.get("max_epochs")))
        return real(spec, datasets, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backtest, "fit_panel", spy)
    config = BacktestConfig(
        dt.date(2016, 12, 30), dt.date(2017, 3, 31), ("lstm",), refit_every=21,
        lstm_settings={"max_epochs": 2, "batch_size": 256, "stride": 10},
    )  # fmt: skip
    market = market_log_rv([gspc, ixic])
    second = blocks(config)[1][0]

    def young(data: DailyData, ticker: str) -> DailyData:  # 200 days just before block two
        cut = data.until(pd.Timestamp("2017-06-30")).with_market(market)
        start = int(cut.dates.searchsorted(second)) - 200
        return replace(cut.tail(len(cut) - start), ticker=ticker)

    gspc_2017 = gspc.until(pd.Timestamp("2017-06-30")).with_market(market)
    walk_forward([gspc_2017, young(ixic, "NEWCO")], config)
    assert calls == [(["^GSPC"], 2), (["^GSPC", "NEWCO"], 2), (["^GSPC", "NEWCO"], 1)]
    calls.clear()
    walk_forward([gspc_2017], config, pool_with=[young(ixic, "LATE")])
    assert calls == [(["^GSPC"], 2), (["^GSPC"], 1), (["^GSPC"], 1)], "LATE is never pooled"
