"""Baselines against independent computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from tests.factories import quarterly_reports
from volforecast.core.features import (
    DailyData,
    market_log_rv,
    season_peaks,
    seasonal_regressors,
)
from volforecast.core.losses import qlike_losses
from volforecast.errors import InsufficientDataError, InvalidSeriesError
from volforecast.models.base import STATE_FILE, VolatilityModel
from volforecast.models.baselines import EwmaModel, HarModel, HistoricalModel
from volforecast.models.catalog import build_model


def test_ewma_is_the_riskmetrics_recursion(gspc: DailyData) -> None:
    data = gspc.head(1500)
    sigma2 = np.mean(data.returns_pct[:30] ** 2)
    for r in data.returns_pct:
        sigma2 = 0.94 * sigma2 + 0.06 * r * r
    forecast = EwmaModel().fit(data).forecast(10).sigma2
    assert_allclose(forecast, np.full(10, sigma2), rtol=1e-12)


def test_historical_is_the_rolling_mean_square(gspc: DailyData) -> None:
    data = gspc.head(1500)
    expected = pd.Series(data.returns_pct**2).rolling(22).mean().iloc[-1]
    assert_allclose(HistoricalModel(22).fit(data).forecast(3).sigma2, expected, rtol=1e-12)


def test_har_steps_are_least_squares_on_independently_built_regressors(gspc: DailyData) -> None:
    data = gspc.head(2000)
    model = HarModel(horizon=5).fit(data)
    log_rv = pd.Series(np.log(data.rv_sigma2))
    rv = pd.Series(data.rv_sigma2)
    negative = pd.Series(np.minimum(data.returns_pct, 0))
    x = pd.DataFrame(
        {
            "const": 1.0,
            "daily": log_rv,
            "weekly": np.log(rv.rolling(5).mean()),
            "monthly": np.log(rv.rolling(22).mean()),
            "quarterly": np.log(rv.rolling(66).mean()),
            "neg_return": negative,
            "neg_return_week": negative.rolling(5).mean(),
        }
    )
    step = 5
    target = log_rv.shift(-step)
    rows = x.notna().all(axis=1) & target.notna()
    coef, *_ = np.linalg.lstsq(x[rows].to_numpy(), target[rows].to_numpy(), rcond=None)
    fitted = [model.params[f"s{step}.{name}"] for name in x.columns]
    assert_allclose(fitted, coef, rtol=1e-8)
    resid = target[rows].to_numpy() - x[rows].to_numpy() @ coef
    s2 = resid.var(ddof=x.shape[1])
    expected = np.exp(x.iloc[-1].to_numpy() @ coef + s2 / 2)
    assert model.forecast(5).sigma2[-1] == pytest.approx(expected, rel=1e-8)


def test_plain_log_har_has_four_terms(gspc: DailyData) -> None:
    model = HarModel(leverage=False, quarterly=False).fit(gspc.head(1000))
    assert model.terms == ("const", "daily", "weekly", "monthly")
    assert model.fit_report.persistence == pytest.approx(
        sum(model.params[f"s1.{k}"] for k in ("daily", "weekly", "monthly"))
    )
    assert 0.5 < model.fit_report.persistence < 1.0


def test_seasonal_terms_expect_the_next_report_day() -> None:
    origin = 1500
    data = quarterly_reports(origin + 1, first=origin + 5 - 63 * 23)
    seasonal = HarModel(seasonal=True).fit(data).forecast(10).sigma2
    plain = HarModel().fit(data).forecast(10).sigma2
    # Step 5 is the report day. The terms look two sessions either side of a year-ago date
    # (reports drift), so the seasonal model raises steps 3 to 7, and only those.
    window = slice(2, 7)
    outside = np.r_[seasonal[:2], seasonal[7:]]
    assert seasonal[window].min() > 1.2 * outside.max()
    assert plain.max() < 1.1 * plain.min()


def test_a_har_saved_before_the_seasonal_and_split_terms_loads_without_them(
    gspc: DailyData, tmp_path: Path
) -> None:
    model = HarModel(horizon=5).fit(gspc.head(1500))
    state = model.save(tmp_path / "har") / STATE_FILE
    payload = json.loads(state.read_text())
    del payload["options"]["seasonal"]
    del payload["options"]["split"]
    del payload["options"]["seasonal_variance"]
    del payload["options"]["half_life_days"]
    del payload["extra"]["fitted_with_split"]
    state.write_text(json.dumps(payload))
    loaded = VolatilityModel.load(tmp_path / "har")
    assert isinstance(loaded, HarModel)
    assert not loaded.seasonal
    assert not loaded.split
    assert not loaded.seasonal_variance
    assert loaded.half_life_days is None
    assert loaded.terms == model.terms
    assert_allclose(loaded.forecast(5).sigma2, model.forecast(5).sigma2, rtol=1e-12)


def test_the_catalog_har_has_the_seasonal_and_split_terms() -> None:
    model = build_model("har")
    terms = model.terms
    assert terms[-4:] == ("season_63", "season_126", "season_189", "season_252")
    assert model.variance_terms == ("const", *terms[-4:])
    assert "session_daily" in terms
    assert "overnight_weekly" in terms
    assert model.options["half_life_days"] == 1000.0


def test_split_har_steps_are_least_squares_on_independently_built_regressors(
    ixic: DailyData,
) -> None:
    data = ixic.head(2000)
    model = HarModel(horizon=3, split=True).fit(data)
    rv = pd.Series(data.rv_sigma2)
    overnight = pd.Series(data.overnight_sigma2)
    session = np.maximum(rv - overnight, 0.01 * rv)
    negative = pd.Series(np.minimum(data.returns_pct, 0))

    def overnight_mean(k: int) -> pd.Series:
        return np.log(np.maximum(overnight.rolling(k).mean(), 0.01 * rv.rolling(k).mean()))

    x = pd.DataFrame(
        {
            "const": 1.0,
            "session_daily": np.log(session),
            "session_weekly": np.log(session.rolling(5).mean()),
            "session_monthly": np.log(session.rolling(22).mean()),
            "session_quarterly": np.log(session.rolling(66).mean()),
            "overnight_weekly": overnight_mean(5),
            "overnight_monthly": overnight_mean(22),
            "neg_return": negative,
            "neg_return_week": negative.rolling(5).mean(),
        }
    )
    assert model.terms == tuple(x.columns)
    step = 3
    target = np.log(rv).shift(-step)
    rows = x.notna().all(axis=1) & target.notna()
    coef, *_ = np.linalg.lstsq(x[rows].to_numpy(), target[rows].to_numpy(), rcond=None)
    assert_allclose([model.params[f"s{step}.{name}"] for name in x.columns], coef, rtol=1e-8)
    assert model.fit_report.persistence == pytest.approx(
        sum(model.params[f"s1.{name}"] for name in x.columns[1:7])
    )


def _qlike(
    model: HarModel, data: DailyData, sigma2: np.ndarray, origins: np.ndarray, step: int
) -> float:
    """Mean QLIKE of the forecasts ``step`` days ahead against the simulation's true variance."""
    predicted = model.forecast_paths(data, origins, step)[:, step - 1]
    return float(qlike_losses(sigma2[origins + step], predicted).mean())


def _overnight_noise(n: int, seed: int = 0) -> tuple[DailyData, np.ndarray]:
    """A persistent variance, 30 % of it overnight: a clean range and one squared return."""
    rng = np.random.default_rng(seed)
    log_sigma2 = np.zeros(n)
    for t in range(1, n):
        log_sigma2[t] = 0.98 * log_sigma2[t - 1] + 0.2 * rng.standard_normal()
    session = 0.7 * np.exp(log_sigma2 + 0.3 * rng.standard_normal(n) - 0.045)
    overnight = 0.3 * np.exp(log_sigma2) * rng.standard_normal(n) ** 2
    returns = np.exp(log_sigma2 / 2) * rng.standard_normal(n)
    dates = pd.bdate_range("2001-01-02", periods=n)
    rv = session + overnight
    return DailyData("SIM", dates, returns, rv, overnight_sigma2=overnight), np.exp(log_sigma2)


def test_the_split_har_sees_past_the_noise_of_the_overnight_move() -> None:
    data, sigma2 = _overnight_noise(1600)
    train, origins = 1000, np.arange(1000, 1590)
    split = HarModel(horizon=5, split=True).fit(data.head(train))
    whole = HarModel(horizon=5).fit(data.head(train))
    # One squared return a day blurs the whole day's daily term; the session's range does not.
    assert split.params["s1.session_daily"] > whole.params["s1.daily"]
    assert _qlike(split, data, sigma2, origins, 1) < 0.93 * _qlike(whole, data, sigma2, origins, 1)


def _uncertain_reports(n: int, seed: int) -> tuple[DailyData, np.ndarray]:
    """Log-AR(1) variance with a report day every 63 sessions whose size is far from known.

    Also returns each day's variance expected the evening before, the best 1-day forecast.
    """
    rng = np.random.default_rng(seed)
    log_base = np.zeros(n)
    for t in range(1, n):
        log_base[t] = 0.9 * log_base[t - 1] + 0.15 * rng.standard_normal()
    report = np.zeros(n, dtype=bool)
    report[10::63] = True
    # A report multiplies the day's variance by 4 in the median, by e^(±1) more or less.
    log_jump = np.where(report, np.log(4.0) + rng.standard_normal(n), 0.0)
    rv = np.exp(log_base + log_jump + 0.3 * rng.standard_normal(n))
    returns = np.exp((log_base + log_jump) / 2) * rng.standard_normal(n)
    # E[rv_t | t - 1]: the AR step's, the jump's and the range's log-normal spreads.
    expected_log_jump = np.where(report, np.log(4.0) + 1.0 / 2, 0.0)
    expected = np.exp(np.r_[0.0, 0.9 * log_base[:-1]] + expected_log_jump + (0.15**2 + 0.3**2) / 2)
    data = DailyData("SIM", pd.bdate_range("2001-01-02", periods=n), returns, rv)
    return data, expected


def test_a_seasonal_variance_corrects_more_where_reports_are_due() -> None:
    data, expected = _uncertain_reports(3000, seed=0)
    train, origins = 2000, np.arange(2000, 2990)
    seasonal = HarModel(horizon=1, seasonal=True, seasonal_variance=True).fit(data.head(train))
    constant = HarModel(horizon=1, seasonal=True).fit(data.head(train))
    assert seasonal.params["s1.var_season_63"] > 0.0
    # One constant spreads the report days' large residuals over every day; by the season
    # terms the correction is large where a report is due and small elsewhere.
    qlike_seasonal = _qlike(seasonal, data, expected, origins, 1)
    assert qlike_seasonal < 0.95 * _qlike(constant, data, expected, origins, 1)


def _drifting_regime(n: int, change: int, seed: int) -> tuple[DailyData, np.ndarray]:
    """Log-AR(1) variance whose level rises and whose persistence falls on day ``change``.

    Also returns each day's variance expected the evening before, the best 1-day forecast.
    """
    rng = np.random.default_rng(seed)
    later = np.arange(n) >= change
    level, phi = np.where(later, 1.0, 0.0), np.where(later, 0.7, 0.97)
    log_sigma2 = np.zeros(n)
    for t in range(1, n):
        log_sigma2[t] = level[t] + phi[t] * (log_sigma2[t - 1] - level[t - 1])
        log_sigma2[t] += 0.2 * rng.standard_normal()
    rv = np.exp(log_sigma2 + 0.3 * rng.standard_normal(n))
    returns = np.exp(log_sigma2 / 2) * rng.standard_normal(n)
    mean_log = level[1:] + phi[1:] * (log_sigma2[:-1] - level[:-1])
    expected = np.exp(np.r_[0.0, mean_log] + (0.2**2 + 0.3**2) / 2)
    data = DailyData("SIM", pd.bdate_range("2001-01-02", periods=n), returns, rv)
    return data, expected


def test_a_half_life_follows_coefficients_that_drift() -> None:
    data, expected = _drifting_regime(4000, change=2800, seed=0)
    train, origins = 3400, np.arange(3400, 3990)
    weighted = HarModel(horizon=1, half_life_days=250).fit(data.head(train))
    equal = HarModel(horizon=1).fit(data.head(train))
    # Equal weights average 2800 days of the old regime with 600 of the new one.
    qlike_weighted = _qlike(weighted, data, expected, origins, 1)
    assert qlike_weighted < 0.9 * _qlike(equal, data, expected, origins, 1)


def test_a_half_life_solves_the_weighted_normal_equations(gspc: DailyData) -> None:
    data, half_life, step = gspc.head(2000), 300.0, 3
    model = HarModel(horizon=step, seasonal=True, seasonal_variance=True, half_life_days=half_life)
    model.fit(data)
    own = model.regressors(data)
    log_rv = np.log(data.rv_sigma2)
    rows = np.flatnonzero(np.isfinite(own).all(axis=1))
    rows = rows[rows + step < len(data)]
    x = np.column_stack([own[rows], seasonal_regressors(season_peaks(data), rows + step)])
    y = log_rv[rows + step]
    w = 0.5 ** ((rows[-1] - rows) / half_life)  # the last target weighs 1
    coef = np.linalg.solve(x.T @ (w[:, None] * x), x.T @ (w * y))
    assert_allclose([model.params[f"s{step}.{n}"] for n in model.terms], coef, rtol=1e-7)
    e = y - x @ coef
    n_eff, k = w.sum() ** 2 / (w @ w), x.shape[1]
    s2 = (w @ e**2) / w.sum() * n_eff / (n_eff - k)
    assert model.params[f"s{step}.resid_var"] == pytest.approx(s2, rel=1e-7)
    z = np.column_stack([np.ones(len(x)), np.maximum(x[:, -4:], 0.0)])
    gamma = np.linalg.solve(z.T @ (w[:, None] * z), z.T @ (w * e**2))
    fitted_gamma = [model.params[f"s{step}.var_{n}"] for n in model.variance_terms]
    assert_allclose(fitted_gamma, gamma, rtol=1e-6, atol=1e-10)


def test_a_half_life_is_positive_and_leaves_enough_days(gspc: DailyData) -> None:
    with pytest.raises(ValueError, match="half_life_days must be positive"):
        HarModel(half_life_days=0)
    with pytest.raises(InsufficientDataError, match="effective days for 7 coefficients"):
        HarModel(horizon=1, half_life_days=3).fit(gspc.head(1000))


def test_a_seasonal_variance_needs_the_season_terms() -> None:
    with pytest.raises(ValueError, match="needs seasonal=True"):
        HarModel(seasonal_variance=True)


def test_a_split_har_fits_returns_alone_with_the_whole_day_and_says_so(
    gspc: DailyData,
) -> None:
    returns = pd.Series(gspc.returns_pct[:1000], index=gspc.dates[:1000])
    model = HarModel(split=True).fit(returns)
    assert "daily" in model.terms
    assert "session_daily" not in model.terms
    assert any("not its session and overnight parts" in w for w in model.fit_report.warnings)


def test_a_split_har_refuses_returns_alone_once_fitted_with_the_parts(
    ixic: DailyData, tmp_path: Path
) -> None:
    model = HarModel(horizon=5, split=True).fit(ixic.head(1500))
    assert model.fit_report.warnings == ()
    loaded = VolatilityModel.load(model.save(tmp_path / "har"))
    assert loaded.data.overnight_sigma2 is not None
    assert_allclose(loaded.forecast(5).sigma2, model.forecast(5).sigma2, rtol=1e-12)
    returns = pd.Series(ixic.returns_pct[:1600], index=ixic.dates[:1600])
    with pytest.raises(InvalidSeriesError, match="fitted with the overnight returns"):
        loaded.update(returns).forecast(5)


def _common_factor(n: int, tickers: int, seed: int = 5) -> tuple[list[DailyData], np.ndarray]:
    """Tickers whose variance is one persistent market factor, each seen with heavy noise."""
    rng = np.random.default_rng(seed)
    log_sigma2 = np.zeros(n)
    for t in range(1, n):
        log_sigma2[t] = 0.98 * log_sigma2[t - 1] + 0.2 * rng.standard_normal()
    dates = pd.bdate_range("2001-01-02", periods=n)
    datasets = []
    for i in range(tickers):
        rv = np.exp(log_sigma2 + 1.0 * rng.standard_normal(n))
        returns = np.sqrt(np.exp(log_sigma2)) * rng.standard_normal(n)
        datasets.append(DailyData(f"T{i}", dates, returns, rv))
    return datasets, np.exp(log_sigma2)


def test_the_market_term_sees_through_one_tickers_noise() -> None:
    datasets, sigma2 = _common_factor(1600, 30)
    market = market_log_rv(datasets)
    data = datasets[0].with_market(market)
    train, origins = 1000, np.arange(1000, 1590)
    with_market = HarModel(horizon=5, market=True).fit(data.head(train))
    alone = HarModel(horizon=5).fit(data.head(train))
    assert with_market.terms[-3:] == ("market_daily", "market_weekly", "market_monthly")
    qlike_market = _qlike(with_market, data, sigma2, origins, 5)
    assert qlike_market < 0.9 * _qlike(alone, data, sigma2, origins, 5)


def test_a_market_har_fits_data_without_the_market_and_says_so(gspc: DailyData) -> None:
    model = HarModel(market=True).fit(gspc.head(1000))
    assert "market_daily" not in model.terms
    assert any("without the market term" in w for w in model.fit_report.warnings)


def test_a_har_fitted_with_the_market_refuses_to_forecast_without_it() -> None:
    datasets, _ = _common_factor(600, 5)
    data = datasets[0].with_market(market_log_rv(datasets))
    model = HarModel(horizon=5, market=True).fit(data)
    assert model.fit_report.warnings == ()
    with pytest.raises(InvalidSeriesError, match="fitted with the market series"):
        model.update(datasets[0]).forecast(5)


def test_a_market_har_keeps_the_market_when_saved(tmp_path: Path) -> None:
    datasets, _ = _common_factor(600, 5)
    data = datasets[0].with_market(market_log_rv(datasets))
    model = HarModel(horizon=5, market=True).fit(data)
    loaded = VolatilityModel.load(model.save(tmp_path / "har"))
    assert loaded.data.market_log_rv is not None
    assert_allclose(loaded.forecast(5).sigma2, model.forecast(5).sigma2, rtol=1e-12)
