"""The record: stored forecasts read back from a real database, realized volatility, DM, links."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from tests.conftest import make_settings
from volforecast.core.features import DailyData
from volforecast.dashboard import record, sources, tables
from volforecast.dashboard.sources import registry, store
from volforecast.data.repositories.predictions import PredictionRepository, PredictionRow, ServedAs
from volforecast.data.sources import load_sample
from volforecast.evaluation.stats import diebold_mariano
from volforecast.settings import Settings

EARLY = dt.datetime(2024, 1, 15, 18, tzinfo=dt.UTC)
LATE = EARLY + dt.timedelta(hours=1)


def _row(model: str, origin: dt.date, step: int, vol_pct: float, *, version: str = "1",
         stored: dt.datetime = EARLY,
         served_as: ServedAs = "production") -> PredictionRow:  # fmt: skip
    forecast_date = (pd.Timestamp(origin) + pd.offsets.BDay(step)).date()
    return PredictionRow("AAPL", model, origin, step, forecast_date, vol_pct, version, None,
                         stored, served_as)  # fmt: skip


def test_the_record_keeps_steps_1_and_5_and_the_latest_stored_forecast_of_a_day(
    engine: Engine,
) -> None:
    # Given GARCH paths made on two days (steps 1, 2 and 5), one day forecast again by a
    # later version, and a HAR step-1 forecast
    first, second = dt.date(2024, 1, 8), dt.date(2024, 1, 9)
    PredictionRepository(engine).upsert([
        _row("garch", first, 1, 1.1), _row("garch", first, 2, 1.2), _row("garch", first, 5, 1.5),
        _row("garch", second, 1, 2.1), _row("garch", second, 5, 2.5),
        _row("garch", second, 1, 3.1, version="2", stored=LATE),
        _row("har", first, 1, 0.9),
    ])  # fmt: skip
    # When the dashboard reads the record
    stored = record.forecast_record(engine, "AAPL")
    # Then steps 1 and 5 only, one row per model, step and day, the later store winning
    assert list(stored.columns) == list(record.RECORD_COLUMNS)
    garch = stored[stored["model_type"] == "GARCH"]
    assert garch[["step", "forecast_date", "vol_pct", "model_version"]].to_numpy().tolist() == [
        [1, pd.Timestamp("2024-01-09"), 1.1, "1"],
        [1, pd.Timestamp("2024-01-10"), 3.1, "2"],
        [5, pd.Timestamp("2024-01-15"), 1.5, "1"],
        [5, pd.Timestamp("2024-01-16"), 2.5, "1"],
    ]
    assert stored["model_type"].tolist()[-1] == "HAR"
    # and a date range keeps the forecast dates inside it
    january_10 = record.forecast_record(engine, "AAPL", start=dt.date(2024, 1, 10),
                                        end=dt.date(2024, 1, 15))  # fmt: skip
    assert sorted(january_10["vol_pct"]) == [1.5, 3.1]
    assert record.date_bounds(stored) == (dt.date(2024, 1, 9), dt.date(2024, 1, 16))
    assert record.forecast_record(engine, "MSFT").empty
    assert record.date_bounds(record.forecast_record(engine, "MSFT")) is None


def test_a_challengers_forecasts_never_show_as_the_models_before_or_after_its_promotion(
    engine: Engine,
) -> None:
    # Given production v1 and a challenger v2 waiting for live evidence, forecasting in the
    # same daily run (the same stored moment), and v2's path asked of the API later on
    day, next_day = dt.date(2024, 1, 8), dt.date(2024, 1, 9)
    repository = PredictionRepository(engine)
    repository.upsert([
        _row("garch", day, 1, 1.0, version="1"), _row("garch", day, 5, 1.5, version="1"),
        _row("garch", day, 1, 3.0, version="2", served_as="challenger"),
        _row("garch", day, 5, 3.5, version="2", stored=LATE, served_as="challenger"),
    ])  # fmt: skip
    # When the dashboard reads the record and the newest path, then production's count
    stored = record.forecast_record(engine, "AAPL")
    assert stored[["step", "vol_pct", "model_version"]].to_numpy().tolist() == [
        [1, 1.0, "1"], [5, 1.5, "1"],
    ]  # fmt: skip
    newest = store.stored_forecasts(engine, "AAPL").paths
    assert newest[["step", "vol_pct", "model_version"]].to_numpy().tolist() == [
        [1, 1.0, "1"], [5, 1.5, "1"],
    ]  # fmt: skip
    # and once v2 is promoted and forecasts as production, only its production days count
    repository.upsert([_row("garch", next_day, 1, 2.0, version="2", stored=LATE)])
    stored = record.forecast_record(engine, "AAPL")
    assert stored[["forecast_date", "vol_pct", "model_version"]].to_numpy().tolist() == [
        [pd.Timestamp("2024-01-09"), 1.0, "1"], [pd.Timestamp("2024-01-10"), 2.0, "2"],
        [pd.Timestamp("2024-01-15"), 1.5, "1"],
    ]  # fmt: skip
    assert store.stored_forecasts(engine, "AAPL").paths["vol_pct"].tolist() == [2.0]


def test_of_forecasts_stored_at_the_same_moment_the_higher_version_counts(engine: Engine) -> None:
    # Given two production versions' forecasts of one day stored at one moment (v10 and v9,
    # so that versions compare as numbers), the monitor's rule decides
    day = dt.date(2024, 1, 8)
    PredictionRepository(engine).upsert([
        _row("har", day, 1, 4.0, version="10"), _row("har", day, 1, 2.0, version="9"),
    ])  # fmt: skip
    stored = record.forecast_record(engine, "AAPL")
    assert stored[["model_type", "vol_pct", "model_version"]].to_numpy().tolist() == [
        ["HAR", 4.0, "10"],
    ]  # fmt: skip


def test_realized_volatility_is_the_proxy_the_monitor_scores_against() -> None:
    prices = load_sample().frame
    prices = prices[prices["ticker"] == "^GSPC"].tail(60)
    realized = record.realized_record(tables.volatility_history(prices, smoothing_days=5))
    # the monitor's "range" truth: the root of DailyData's range-based variance, unsmoothed
    daily = DailyData.from_prices(prices)
    np.testing.assert_allclose(realized["realized_vol_pct"], np.sqrt(daily.rv_sigma2))
    assert list(realized["date"]) == list(daily.dates)


def test_annualising_multiplies_by_the_root_of_252_and_renames() -> None:
    frame = pd.DataFrame({"vol_pct": [1.0, 2.0], "realized_vol_pct": [0.5, 4.0], "step": [1, 5]})
    out = record.annualised(frame, ["vol_pct", "realized_vol_pct"])
    assert list(out.columns) == ["vol_ann_pct", "realized_vol_ann_pct", "step"]
    np.testing.assert_allclose(out["vol_ann_pct"], [15.874507866387544, 31.749015732775089])
    np.testing.assert_allclose(out["realized_vol_ann_pct"], [0.5 * math.sqrt(252), 63.4980314])
    assert list(out["step"]) == [1, 5]


def _two_models(days: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    dates = pd.bdate_range("2024-01-02", periods=days)
    realized = pd.DataFrame({"date": dates, "realized_vol_pct": rng.uniform(0.5, 2.0, days)})
    rows = [
        {"model_type": model, "model_version": "1", "step": step,
         "origin_date": day - pd.offsets.BDay(step), "forecast_date": day,
         "vol_pct": base + rng.uniform(-0.3, 0.3)}
        for model, base in (("GARCH", 1.2), ("HAR", 1.0))
        for step in (1, 5)
        for day in dates
    ]  # fmt: skip
    return pd.DataFrame(rows), realized


def test_the_diebold_mariano_test_compares_qlike_on_the_common_days() -> None:
    stored, realized = _two_models(40, np.random.default_rng(7))
    # HAR misses the first five days: only the 35 both forecast count
    stored = stored[~((stored["model_type"] == "HAR") & (stored["forecast_date"] < "2024-01-09"))]
    test = record.dm_comparison(stored, realized, "GARCH", "HAR", 5)
    assert test is not None
    days = realized[realized["date"] >= "2024-01-09"]
    s2 = days["realized_vol_pct"].to_numpy() ** 2

    def losses(model: str) -> np.ndarray:
        own = stored[(stored["model_type"] == model) & (stored["step"] == 5)]
        f2 = own.set_index("forecast_date")["vol_pct"].reindex(days["date"]).to_numpy() ** 2
        return s2 / f2 - np.log(s2 / f2) - 1  # QLIKE, by hand

    expected = diebold_mariano(losses("GARCH"), losses("HAR"), horizon=5)
    assert test.n_days == 35
    assert test.pvalue == pytest.approx(expected.pvalue)
    assert test.statistic == pytest.approx(expected.statistic)
    assert test.mean_loss_a == pytest.approx(losses("GARCH").mean())
    assert 0 < test.pvalue < 1


def test_the_diebold_mariano_test_waits_for_ten_common_days() -> None:
    stored, realized = _two_models(9, np.random.default_rng(1))
    assert record.dm_comparison(stored, realized, "GARCH", "HAR", 1) is None
    stored, realized = _two_models(12, np.random.default_rng(1))
    assert record.dm_comparison(stored, realized, "GARCH", "LSTM", 1) is None
    assert record.dm_comparison(stored, realized, "GARCH", "HAR", 1) is not None


def test_registry_links_open_the_version_in_the_mlflow_ui(tmp_path: Path) -> None:
    server = make_settings(home=tmp_path, mlflow_tracking_uri="http://bob:s3cret@mlflow.lan:5000/")
    ui = record.mlflow_ui_url(server)
    assert ui == "http://mlflow.lan:5000"
    assert record.registry_link(ui, "garch_volatility_gspc", "3") == (
        "http://mlflow.lan:5000/#/models/garch_volatility_gspc/versions/3"
    )
    local = make_settings(home=tmp_path, mlflow_port=5123)
    assert record.mlflow_ui_url(local) == "http://127.0.0.1:5123"


def test_a_pooled_models_own_figures_are_read_for_one_ticker(tmp_path: Path) -> None:
    from volforecast.registry.tracking import connect  # noqa: PLC0415

    settings: Settings = make_settings(home=tmp_path / "var")
    client = connect(settings, check=False)
    experiment = client.create_experiment("pooled", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment)
    table = pd.DataFrame({"qlike_h1_range": [0.31, 0.42], "rmse_h1_range": [0.2, 0.5]},
                         index=["^GSPC", "^IXIC"])  # fmt: skip
    (tmp_path / registry.METRICS_BY_TICKER).write_text(table.to_csv())
    client.log_artifact(run.info.run_id, str(tmp_path / registry.METRICS_BY_TICKER))
    client.create_registered_model("lstm_volatility_pooled")
    version = client.create_model_version("lstm_volatility_pooled", "runs:/x/model",
                                          run_id=run.info.run_id)  # fmt: skip
    own = registry.pooled_ticker_metrics(settings, "lstm_volatility_pooled", version.version,
                                       "^IXIC")  # fmt: skip
    assert own == {"qlike_h1_range": 0.42, "rmse_h1_range": 0.5}
    assert registry.pooled_ticker_metrics(settings, "lstm_volatility_pooled", version.version,
                                        "AAPL") is None  # fmt: skip
    with pytest.raises(sources.DashboardError, match="per-ticker metrics"):
        registry.pooled_ticker_metrics(settings, "lstm_volatility_pooled", "99", "^IXIC")
