"""Every model through the same checks: the VolatilityModel contract."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from volforecast.core.calendar import trading_days_after
from volforecast.core.features import DailyData
from volforecast.core.tail_risk import RISK_DAYS, RISK_LEVELS
from volforecast.core.term_structure import TERM_DAYS, extend_path
from volforecast.data.sources import load_sample
from volforecast.errors import (
    ConfigurationError,
    InsufficientDataError,
    InvalidSeriesError,
    ModelNotFittedError,
)
from volforecast.models.base import MAX_HORIZON, TAIL_POOL_DAYS, VolatilityModel
from volforecast.models.catalog import MODEL_NAMES, build_model, registered_members
from volforecast.models.combination import CombinationModel
from volforecast.models.fit_report import FitReport
from volforecast.models.lstm.model import LstmModel
from volforecast.models.pool import POOL_FILE

FITTED = tuple(name for name in MODEL_NAMES if not registered_members(name))
"""The models that fit themselves; a combination is built from fitted members instead."""


def make(name: str) -> VolatilityModel:
    if name == "lstm":  # the contract, not the accuracy: a few epochs are enough
        return LstmModel(max_epochs=3, patience=2, batch_size=64)
    return build_model(name)


def make_fitted(name: str, data: DailyData) -> VolatilityModel:
    members = registered_members(name)
    if members:
        return CombinationModel.of_members({m: make(m).fit(data) for m in members})
    return make(name).fit(data)


@pytest.fixture(scope="module", params=MODEL_NAMES)
def fitted(request: pytest.FixtureRequest, gspc: DailyData) -> tuple[VolatilityModel, DailyData]:
    data = gspc.head(900)
    return make_fitted(request.param, data), data


def test_fit_gives_a_report_and_parameters(fitted: tuple[VolatilityModel, DailyData]) -> None:
    model, data = fitted
    assert model.is_fitted
    assert isinstance(model.fit_report, FitReport)
    assert model.fit_report.converged, model.fit_report
    # An LSTM fits on its training share; a combination with one reports that share too.
    assert model.fit_report.nobs >= len(data) or model.kind in {"lstm", "combination"}
    assert model.params
    assert all(isinstance(v, float) and np.isfinite(v) for v in model.params.values())


@pytest.mark.parametrize("horizon", [1, 5, MAX_HORIZON])
def test_forecast_is_a_positive_path_on_trading_days(
    fitted: tuple[VolatilityModel, DailyData], horizon: int
) -> None:
    model, data = fitted
    forecast = model.forecast(horizon)
    assert forecast.horizon == horizon
    assert forecast.origin_date == data.last_date.date()
    assert list(forecast.forecast_dates) == trading_days_after(forecast.origin_date, horizon)
    assert (forecast.sigma2 > 0).all()
    assert_allclose(forecast.vol_pct**2, forecast.sigma2, rtol=1e-12)
    assert forecast.model == model.model_type
    assert forecast.ticker == data.ticker
    assert not forecast.sigma2.flags.writeable, "a forecast is a frozen value"


def test_var_and_es_come_from_the_models_own_tails(
    fitted: tuple[VolatilityModel, DailyData],
) -> None:
    model, data = fitted
    pool = model.standardized_returns()
    assert len(pool) == min(TAIL_POOL_DAYS, len(data) - 1 - model.warmup_days)
    assert np.isfinite(pool).all()
    # Returns over the model's own one-day volatility: near one (the three-epoch LSTM here
    # forecasts low, so its shocks run large; that is what the tails then carry).
    assert 0.25 < np.mean(pool**2) < 4.0
    risks = model.tail_risk(rng=np.random.default_rng(0), n_sims=4000)
    assert [(r.days, r.level) for r in risks] == [(d, c) for d in RISK_DAYS for c in RISK_LEVELS]
    assert all(0 < r.var_pct <= r.es_pct for r in risks)
    for days in RISK_DAYS:
        var = [r.var_pct for r in risks if r.days == days]
        assert var == sorted(var), "a higher level is a larger loss"
    one, ten = (next(r for r in risks if r.days == d and r.level == 0.99) for d in (1, 10))
    assert ten.var_pct > 1.5 * one.var_pct
    # The same generator state gives the same figures: a served VaR repeats.
    assert model.tail_risk(rng=np.random.default_rng(0), n_sims=4000) == risks


def test_the_term_structure_runs_to_a_year_and_comes_home(
    fitted: tuple[VolatilityModel, DailyData],
) -> None:
    model, _ = fitted
    structure = model.term_structure()
    assert structure.days == TERM_DAYS
    assert all(v > 0 for v in structure.vol_ann_pct)
    one_day = np.sqrt(252 * model.forecast(1).sigma2[0])
    assert structure.vol_ann_pct[0] == pytest.approx(one_day)
    # Carried on past a year, the path reaches the model's own long-run variance.
    path = model.forecast(MAX_HORIZON).sigma2
    long_run = model.long_run_sigma2()
    assert long_run > 0
    assert 0 <= structure.persistence < 1
    far = extend_path(path, long_run, structure.persistence, 5000)
    assert far[-1] == pytest.approx(long_run, rel=1e-6)
    assert structure.long_run_vol_ann_pct == pytest.approx(np.sqrt(252 * long_run))


@pytest.mark.parametrize("horizon", [0, MAX_HORIZON + 1])
def test_horizons_outside_1_to_30_are_refused(
    fitted: tuple[VolatilityModel, DailyData], horizon: int
) -> None:
    with pytest.raises(ValueError, match="between 1 and 30"):
        fitted[0].forecast(horizon)


def test_paths_from_many_origins_use_no_later_data(
    fitted: tuple[VolatilityModel, DailyData], gspc: DailyData
) -> None:
    model, data = fitted
    longer = gspc.head(len(data) + 60)
    origins = np.array([len(data) - 1, len(data) + 10, len(data) + 40])
    paths = model.forecast_paths(longer, origins, MAX_HORIZON)
    assert paths.shape == (3, MAX_HORIZON)
    for row, origin in zip(paths, origins, strict=True):
        truncated = model.forecast_paths(gspc.head(int(origin) + 1), np.array([origin]))
        # float32 networks round differently in different batch sizes: 1e-6, not 1e-12
        assert_allclose(row, truncated[0], rtol=1e-6, err_msg="a later day changed a path")


def test_update_moves_the_origin_with_frozen_parameters(
    fitted: tuple[VolatilityModel, DailyData], gspc: DailyData
) -> None:
    model, data = fitted
    params = model.params
    longer = gspc.head(len(data) + 25)
    expected = model.forecast_paths(longer, np.array([len(longer) - 1]), 10)[0]
    model.update(longer)
    try:
        assert model.params == params
        forecast = model.forecast(10)
        assert forecast.origin_date == longer.last_date.date()
        assert_allclose(forecast.sigma2, expected, rtol=1e-6)
    finally:
        model.update(data)


def test_save_and_load_give_the_same_forecast(
    fitted: tuple[VolatilityModel, DailyData], tmp_path: Path
) -> None:
    model, _ = fitted
    model.version = "7"
    loaded = VolatilityModel.load(model.save(tmp_path / "model"))
    assert type(loaded) is type(model)
    assert loaded.version == "7"
    assert loaded.params == model.params
    assert loaded.fit_report == model.fit_report
    assert_allclose(
        loaded.forecast(MAX_HORIZON).sigma2, model.forecast(MAX_HORIZON).sigma2, rtol=1e-12
    )


def test_a_saved_model_keeps_its_standardized_returns_and_computes_only_the_days_since(
    fitted: tuple[VolatilityModel, DailyData], gspc: DailyData, tmp_path: Path
) -> None:
    model, data = fitted
    saved = model.save(tmp_path / "model")
    assert (saved / POOL_FILE).exists()
    kept = VolatilityModel.load(saved)
    for pool in saved.rglob(POOL_FILE):  # a combination's members' too: none is reused
        pool.unlink()
    fresh = VolatilityModel.load(saved)
    later = gspc.head(len(data) + 20)
    asked: list[int] = []
    one_step = kept._one_step_sigma2

    def counting(data: DailyData, origins: np.ndarray) -> np.ndarray:
        asked.append(len(origins))
        return one_step(data, origins)

    kept._one_step_sigma2 = counting  # type: ignore[method-assign]
    pool = kept.update(later).standardized_returns()
    assert asked == [20], "only the 20 days after the saved ones are forecast"
    assert_allclose(pool, fresh.update(later).standardized_returns(), rtol=1e-10)
    # A price revised 50 days before the end: the values from that day on are computed again.
    returns = later.returns_pct.copy()
    returns[-50] *= 3.0
    revised = dataclasses.replace(later, returns_pct=returns)
    again = kept.update(revised).standardized_returns()
    assert asked[-1] == 50
    assert_allclose(again, fresh.update(revised).standardized_returns(), rtol=1e-10)
    assert_allclose(again[:-50], pool[:-50], rtol=1e-12)


def test_a_pool_file_that_cannot_be_read_is_only_a_lost_cache(
    gspc: DailyData, tmp_path: Path
) -> None:
    model = build_model("garch").fit(gspc.head(900))
    saved = model.save(tmp_path / "model")
    (saved / POOL_FILE).write_bytes(b"not a zip file")
    loaded = VolatilityModel.load(saved)
    assert_allclose(loaded.standardized_returns(), model.standardized_returns(), rtol=1e-12)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_fit_is_reproducible(name: str, gspc: DailyData) -> None:
    data = gspc.head(700)
    first = make_fitted(name, data).forecast(MAX_HORIZON).sigma2
    second = make_fitted(name, data).forecast(MAX_HORIZON).sigma2
    assert_allclose(first, second, rtol=1e-12)


@pytest.mark.parametrize("name", FITTED)
def test_bad_inputs_raise_the_documented_errors(name: str, gspc: DailyData) -> None:
    model = make(name)
    with pytest.raises(ModelNotFittedError):
        model.forecast(1)
    with pytest.raises(InsufficientDataError, match=f"at least {model.min_obs}"):
        model.fit(gspc.head(model.min_obs - 1))
    flat = DailyData("FLAT", gspc.dates[:1000], np.zeros(1000), np.ones(1000))
    with pytest.raises(InvalidSeriesError, match="constant"):
        model.fit(flat)
    returns = pd.Series(gspc.returns_pct[:1000], index=gspc.dates[:1000])
    for bad in (np.nan, np.inf):
        returns.iloc[500] = bad
        with pytest.raises(InvalidSeriesError, match="finite"):
            model.fit(returns)


def test_a_combination_is_built_from_fitted_members_and_refuses_a_fit(gspc: DailyData) -> None:
    model = build_model("har+lstm")
    with pytest.raises(ConfigurationError, match="built from trained members"):
        model.fit(gspc.head(900))
    assert not model.is_fitted


@pytest.mark.parametrize("name", ["garch", "ewma", "har"])
def test_prices_and_returns_are_accepted_as_they_come(name: str) -> None:
    frame = load_sample().frame
    prices = frame[frame["ticker"] == "^IXIC"].tail(600)
    model = build_model(name).fit(prices)
    assert model.data.ticker == "^IXIC"
    log_prices = pd.Series(np.log(prices["adj_close"].to_numpy()), index=prices["date"])
    returns = (100 * log_prices.diff()).rename("IXIC")  # the first value is NaN, as from a diff
    assert build_model(name).fit(returns).forecast(3).ticker == "IXIC"
