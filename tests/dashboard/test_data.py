"""The dashboard's reads and shaping, checked against hand-computed numbers and real databases."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import generate_latest
from sqlalchemy import Engine

from tests.conftest import make_settings
from tests.integration.servers import free_port
from volforecast.api.client import ApiClient
from volforecast.api.observability import LATENCY_BUCKETS_S, ServiceMetrics
from volforecast.api.schemas import ModelInfo
from volforecast.core.features import DailyData
from volforecast.dashboard import prometheus, sources, tables
from volforecast.dashboard import risk as risk_view
from volforecast.dashboard.sources import api, store
from volforecast.data import db
from volforecast.data.repositories.monitoring import AccuracyRow, MonitoringRepository
from volforecast.data.repositories.predictions import PredictionRepository, PredictionRow
from volforecast.data.sources import load_sample

NOW = dt.datetime(2024, 1, 15, 18, tzinfo=dt.UTC)
Z95 = 1.6448536269514722
Z99 = 2.3263478740408408


def _paths(model_type: str, vol_pct: list[float], version: str = "1") -> pd.DataFrame:
    steps = len(vol_pct)
    return pd.DataFrame({
        "model_type": model_type,
        "model_version": version,
        "origin_date": pd.Timestamp("2024-01-12"),
        "step": np.arange(1, steps + 1),
        "forecast_date": pd.bdate_range("2024-01-15", periods=steps),
        "vol_pct": vol_pct,
    })  # fmt: skip


# ---------------------------------------------------------------- configuration


def test_the_api_url_and_key_come_from_the_settings() -> None:
    default = api.DashboardConfig.from_settings(make_settings())
    assert default == api.DashboardConfig("http://127.0.0.1:8000")
    config = api.DashboardConfig.from_settings(
        make_settings(dashboard={"api_url": "http://api:8000/"}, api={"api_key": "k"})
    )
    assert (config.api_url, config.api_key) == ("http://api:8000", "k")
    assert config.client().session.headers["X-API-Key"] == "k"


# ---------------------------------------------------------------- realized volatility


def test_volatility_history_is_the_root_of_the_realized_variance() -> None:
    frame = load_sample().frame
    prices = frame[frame["ticker"] == "^GSPC"].tail(60)
    history = tables.volatility_history(prices, smoothing_days=3)
    features = DailyData.from_prices(prices)
    assert list(history.columns) == list(tables.HISTORY_COLUMNS)
    assert len(history) == 59, "the first day only anchors the first return"
    np.testing.assert_allclose(history["rv_vol_pct"], np.sqrt(features.rv_sigma2))
    np.testing.assert_allclose(history["abs_return_pct"], np.abs(features.returns_pct))
    # The smoothing averages variances over three days, then takes the root.
    sigma2 = features.rv_sigma2
    assert history["rv_vol_smooth_pct"].iloc[10] == pytest.approx(math.sqrt(sigma2[8:11].mean()))
    assert history["rv_vol_smooth_pct"].iloc[0] == pytest.approx(math.sqrt(sigma2[0]))


def test_volatility_history_of_too_few_prices_is_empty() -> None:
    prices = load_sample().frame.head(1)
    assert tables.volatility_history(prices).empty


# ---------------------------------------------------------------- forecasts and VaR


def test_var_is_the_normal_quantile_times_the_forecast_volatility() -> None:
    shaped = tables.with_var(_paths("GARCH", [1.0, 2.0, 0.5]))
    np.testing.assert_allclose(shaped["var95_pct"], [Z95, 2 * Z95, 0.5 * Z95], rtol=1e-12)
    np.testing.assert_allclose(shaped["var99_pct"], [Z99, 2 * Z99, 0.5 * Z99], rtol=1e-12)


def test_a_stored_var_makes_the_band_its_own_multiple_of_the_volatility() -> None:
    paths = pd.concat([_paths("GARCH", [1.0, 2.0]), _paths("HAR", [0.5, 0.6])])
    # GARCH's stored 1-day VaR from the paths' close, version and all; none of HAR's.
    risk = pd.DataFrame({
        "model_type": "GARCH", "model_version": "1", "origin_date": dt.date(2024, 1, 12),
        "days": [1, 1, 10], "level": [0.95, 0.99, 0.99], "var_pct": [1.7, 2.9, 9.0],
    })  # fmt: skip
    multiples = risk_view.tail_multiples(risk, paths)
    assert multiples == {("GARCH", 0.95): 1.7, ("GARCH", 0.99): 2.9}
    shaped = tables.with_var(paths, multiples=multiples)
    np.testing.assert_allclose(shaped["var99_pct"], [2.9, 5.8, 0.5 * Z99, 0.6 * Z99])
    # Another version's figures are not this path's.
    assert risk_view.tail_multiples(risk.assign(model_version="2"), paths) == {}


def test_each_days_served_var_is_drawn_on_the_day_after_its_close_with_its_breaches() -> None:
    history = pd.DataFrame({
        "date": pd.to_datetime(["2024-01-10", "2024-01-11", "2024-01-12", "2024-01-16"]),
        "returns_pct": [0.5, -2.0, -1.2, 0.3],
    })  # fmt: skip
    risk = pd.DataFrame({
        "model_type": "GARCH", "model_version": "1", "days": 1,
        "origin_date": [dt.date(2024, 1, d) for d in (2, 2, 10, 10, 11, 11, 16, 16)],
        "level": [0.95, 0.99] * 4, "var_pct": [9.9, 9.9, 1.5, 2.5, 1.0, 1.8, 1.1, 1.9],
    })  # fmt: skip
    shown = risk_view.served_var(history, risk, "GARCH")
    # The close of the 16th forecasts a day not stored yet; the 11th's VaR is for the 12th;
    # the 2nd is no day of the history, so its VaR is for no day of it either.
    assert list(shown["date"]) == list(pd.to_datetime(["2024-01-11", "2024-01-12"]))
    np.testing.assert_allclose(shown["var99_pct"], [2.5, 1.8])
    assert list(shown["breach95"]) == [True, True]
    assert list(shown["breach99"]) == [False, False]
    summary = risk_view.breach_summary(shown)
    assert list(summary["breaches"]) == [2, 0]
    assert list(summary["expected %"]) == pytest.approx([5.0, 1.0])


def test_the_forecast_table_has_one_row_per_step_and_columns_per_model() -> None:
    paths = pd.concat([_paths("LSTM", [0.8, 0.9]), _paths("GARCH", [1.2, 1.1])])
    table = tables.forecast_table(paths)
    assert list(table.columns) == [
        "step", "date",
        "GARCH vol %", "GARCH VaR 95 %", "GARCH VaR 99 %",
        "LSTM vol %", "LSTM VaR 95 %", "LSTM VaR 99 %",
    ]  # fmt: skip
    assert list(table["step"]) == [1, 2]
    assert list(table["date"]) == [dt.date(2024, 1, 15), dt.date(2024, 1, 16)]
    np.testing.assert_allclose(table["GARCH vol %"], [1.2, 1.1])
    np.testing.assert_allclose(table["LSTM VaR 99 %"], [0.8 * Z99, 0.9 * Z99])


def test_production_model_types_are_those_that_may_serve_the_ticker() -> None:
    # The listing's fields the choice reads; the others do not matter to it
    models = [ModelInfo.model_construct(**m) for m in [
        {"model_type": "HAR", "ticker": "^GSPC", "stage": "production"},
        {"model_type": "GARCH", "ticker": "^IXIC", "stage": "production"},
        {"model_type": "GARCH", "ticker": "^GSPC", "stage": "production"},
        {"model_type": "LSTM", "ticker": None, "stage": "production"},
        {"model_type": "EWMA", "ticker": "^GSPC", "stage": "challenger"},
    ]]  # fmt: skip
    assert api.production_model_types(models, "^GSPC") == ["GARCH", "LSTM", "HAR"]
    assert api.production_model_types(models, "AAPL") == ["LSTM"]


def test_the_newest_stored_path_of_each_model_is_read_back(engine: Engine) -> None:
    # Given two origins of GARCH (two versions on the newer one) and one of LSTM
    def rows(model: str, origin: dt.date, version: str, level: float) -> list[PredictionRow]:
        return [
            PredictionRow("AAPL", model, origin, step, origin + dt.timedelta(days=step),
                          level + step / 10, version, None, NOW)
            for step in (1, 2, 3)
        ]  # fmt: skip

    older, newer = dt.date(2024, 1, 11), dt.date(2024, 1, 12)
    PredictionRepository(engine).upsert(
        rows("GARCH", older, "1", 1.0) + rows("GARCH", newer, "2", 2.0)
        + rows("GARCH", newer, "10", 3.0) + rows("LSTM", older, "1", 4.0)
    )  # fmt: skip
    # When the dashboard reads them
    stored = store.stored_forecasts(engine, "AAPL")
    # Then each model's newest origin, at its highest version (10 after 2, as numbers)
    assert stored.source == "database"
    garch = stored.paths[stored.paths["model_type"] == "GARCH"]
    assert set(garch["model_version"]) == {"10"}
    np.testing.assert_allclose(garch["vol_pct"], [3.1, 3.2, 3.3])
    assert set(stored.paths[stored.paths["model_type"] == "LSTM"]["origin_date"]) == {
        pd.Timestamp(older)
    }
    assert store.stored_forecasts(engine, "MSFT").paths.empty


def test_a_down_api_raises_the_message_to_show() -> None:
    client = ApiClient(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    status = api.api_status(client)
    assert not status.up
    with pytest.raises(sources.ApiUnavailableError, match="start it with `volforecast serve`"):
        api.api_forecasts(client, "^GSPC", ["GARCH"])
    with pytest.raises(sources.ApiUnavailableError):
        api.api_models(client)


# ---------------------------------------------------------------- the database's state


def test_a_missing_sqlite_database_is_reported_without_being_created(tmp_path: Path) -> None:
    path = tmp_path / "none" / "volforecast.db"
    engine = db.create_db_engine(make_settings(database_url=f"sqlite:///{path}"))
    with pytest.raises(sources.DatabaseNotReadyError, match="volforecast db upgrade"):
        store.check_database(engine)
    assert not path.exists()


def test_an_unmigrated_database_asks_for_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "volforecast.db"
    engine = db.create_db_engine(make_settings(database_url=f"sqlite:///{path}"))
    with engine.connect():  # an empty file, as another tool might leave
        pass
    with pytest.raises(sources.DatabaseNotReadyError, match="has no volforecast tables"):
        store.check_database(engine)
    engine.dispose()


def test_a_migrated_database_is_ready(engine: Engine) -> None:
    store.check_database(engine)
    assert store.stored_tickers(engine) == []


# ---------------------------------------------------------------- accuracy and monitoring


def test_accuracy_and_the_ab_summary(engine: Engine) -> None:
    def row(model: str, day: int, rmse: float) -> AccuracyRow:
        return AccuracyRow("^GSPC", model, 1, "range", dt.date(2024, 1, day), 20, rmse,
                           rmse / 2, rmse / 10)  # fmt: skip

    MonitoringRepository(engine).upsert_accuracy(
        [row("GARCH", 10, 1.0), row("GARCH", 11, 0.8), row("LSTM", 10, 0.5), row("LSTM", 11, 0.6)],
        computed_at=NOW,
    )
    accuracy = store.accuracy(engine, "^GSPC")
    assert len(accuracy) == 4
    latest = tables.latest_accuracy(accuracy)
    assert latest.set_index("model_type")["rmse_vol_pct"].to_dict() == {"GARCH": 0.8, "LSTM": 0.6}
    summary = tables.ab_summary(accuracy, "GARCH", "LSTM", "rmse_vol_pct").iloc[0]
    assert (summary["GARCH"], summary["LSTM"]) == (0.8, 0.6)
    assert summary["b vs a %"] == pytest.approx(100 * (0.6 - 0.8) / 0.8)


# ---------------------------------------------------------------- the API's /metrics


def test_histogram_quantiles_interpolate_within_a_bucket() -> None:
    bounds = [0.1, 0.2, math.inf]
    assert prometheus.histogram_quantile(0.5, bounds, [5, 10, 10]) == pytest.approx(0.1)
    assert prometheus.histogram_quantile(0.75, bounds, [5, 10, 10]) == pytest.approx(0.15)
    assert prometheus.histogram_quantile(0.25, bounds, [5, 10, 10]) == pytest.approx(0.05)
    # In the +Inf bucket nothing is known beyond the largest finite bound.
    assert prometheus.histogram_quantile(0.99, bounds, [5, 10, 12]) == pytest.approx(0.2)
    assert math.isnan(prometheus.histogram_quantile(0.5, bounds, [0, 0, 0]))


def test_request_counts_and_latencies_are_read_from_the_services_metrics() -> None:
    # Given the service's own metrics after ten /predict requests and one /models
    metrics = ServiceMetrics()
    for seconds in (0.002, 0.002, 0.002, 0.004, 0.004, 0.004, 0.004, 0.02, 0.02, 0.3):
        metrics.requests.labels("POST", "/predict", "200").inc()
        metrics.latency.labels("POST", "/predict").observe(seconds)
    metrics.requests.labels("GET", "/models", "503").inc()
    metrics.latency.labels("GET", "/models").observe(0.0005)
    text = generate_latest(metrics.registry).decode()
    # When the dashboard parses the text
    counts = prometheus.request_counts(text)
    quantiles = prometheus.latency_quantiles(text).set_index("route")
    # Then the counts are the requests, and the quantiles Prometheus' interpolation
    assert counts.to_dict("records") == [
        {"method": "GET", "route": "/models", "status": "503", "requests": 1},
        {"method": "POST", "route": "/predict", "status": "200", "requests": 10},
    ]
    predict = quantiles.loc["/predict"]
    assert predict["requests"] == 10
    assert predict["mean_ms"] == pytest.approx(1000 * 0.362 / 10)
    assert LATENCY_BUCKETS_S[1:3] == (0.0025, 0.005), "the ranks below assume these buckets"
    # rank 5 of 10 lies in (2.5 ms, 5 ms], which holds observations 4 to 7
    assert predict["p50_ms"] == pytest.approx(2.5 + 2.5 * (5 - 3) / 4)
    # rank 9.9 lies in (250 ms, 500 ms], which holds observation 10 alone
    assert predict["p99_ms"] == pytest.approx(250 + 250 * (9.9 - 9) / 1)
    # rank 0.5 of 1 lies in (0, 1 ms]
    assert quantiles.loc["/models", "p50_ms"] == pytest.approx(0.5)
