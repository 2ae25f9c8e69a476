"""Monitoring end to end: the daily job on a real registry and database, the replay of 2008
and 2017 on the bundled index sample, and the retraining queue through the CLI.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.integration.servers import clean_env
from tests.integration.test_api import LATER, _trained_home
from volforecast.cli import ExitCode, app
from volforecast.data import db
from volforecast.data.repositories.monitoring import (
    ACCURACY,
    CHECKS,
    RETRAIN,
    AccuracyRow,
    CheckRow,
    MonitoringRepository,
)
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.errors import DatabaseUnavailableError
from volforecast.jobs.monitor import monitor, replay
from volforecast.jobs.predict_daily import predict_all
from volforecast.registry.serving import ProductionModels
from volforecast.registry.tracking import connect
from volforecast.settings import Settings

pytestmark = pytest.mark.slow

DETECTORS = {"level_shift", "cusum", "kupiec_95", "kupiec_99", "ljung_box", "psi", "rmse"}


# ---------------------------------------------------------------------- replay


@pytest.fixture(scope="module")
def index_prices() -> pd.DataFrame:
    return load_sample().frame


def test_replay_of_2008_alerts_within_days_of_the_september_spike(
    index_prices: pd.DataFrame,
) -> None:
    # Given the S&P 500 and NASDAQ indices replayed from June to December 2008 as if live
    report = replay(index_prices, make_settings(), start=dt.date(2008, 6, 2),
                    end=dt.date(2008, 12, 31))  # fmt: skip
    for alert in report.alerts:
        print(alert.message)  # the alert dates, for `pytest -s`
    # Then each index raises an alert in the weeks of Lehman's failure and the crash of
    # 29 September (realized volatility rose from about 1 % a day to over 4 %)
    assert report.tickers == 2
    assert not report.failures
    spike = [a for a in report.alerts
             if dt.date(2008, 9, 15) <= a.observed_on <= dt.date(2008, 10, 3)]  # fmt: skip
    assert {a.ticker for a in spike} == {"^GSPC", "^IXIC"}, [a.message for a in report.alerts]
    # And the models were retrained on what the spike taught
    assert any(dt.date(2008, 9, 15) <= day <= dt.date(2008, 10, 10) for _, day in report.retrains)


def test_replay_of_calm_2017_alerts_on_few_days(index_prices: pd.DataFrame) -> None:
    report = replay(index_prices, make_settings(), start=dt.date(2017, 1, 3),
                    end=dt.date(2017, 12, 29))  # fmt: skip
    for alert in report.alerts:
        print(alert.message)
    days_with_alert = len(report.alert_days())
    assert report.days == 251
    assert days_with_alert <= 0.1 * report.days, [a.message for a in report.alerts]


def test_replay_from_the_command_line(index_prices: pd.DataFrame, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    prices = tmp_path / "indices.parquet"
    index_prices.to_parquet(prices)
    monkeypatch.chdir(tmp_path)
    for key in [k for k in clean_env() if k.startswith("VOLFORECAST_")]:
        monkeypatch.delenv(key, raising=False)
    result = CliRunner().invoke(app, [
        "monitor", "replay", "--prices", str(prices), "--from", "2008-09-01",
        "--to", "2008-10-31", "--tickers", "^GSPC", "--report-json", "replay.json",
    ])  # fmt: skip
    assert result.exit_code == ExitCode.OK, result.output
    assert "Alerts per week" in result.output
    payload = json.loads((tmp_path / "replay.json").read_text())
    assert payload["tickers"] == 1
    assert payload["alerts"]
    assert {a["ticker"] for a in payload["alerts"]} == {"^GSPC"}

    bad = CliRunner().invoke(app, ["monitor", "replay", "--prices", str(prices),
                                   "--from", "2008-10-31", "--to", "2008-09-01"])  # fmt: skip
    assert bad.exit_code == ExitCode.USAGE
    assert "must start before it ends" in bad.output


# ---------------------------------------------------------------------- the daily job


def forecast_since_training(home: Path) -> Settings:
    """^GSPC's GARCH in production, with LATER closes since, each forecast on its evening."""
    settings = _trained_home(home)
    engine = db.create_db_engine(settings)
    models = ProductionModels(connect(settings))
    models.refresh()
    dates = PriceRepository(engine).load(["^GSPC"])["date"].dt.date.tolist()
    for day in dates[-LATER - 1 :]:
        report = predict_all(engine, settings, models, as_of=day)
        assert report.complete, report.failures
    engine.dispose()
    return settings


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """See :func:`forecast_since_training`."""
    return forecast_since_training(tmp_path_factory.mktemp("monitor") / "var")


def _count(engine: Engine, table: object) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_monitor_stores_accuracy_and_drift_and_a_rerun_adds_nothing(trained: Settings) -> None:
    engine = db.create_db_engine(trained)
    models = ProductionModels(connect(trained))
    models.refresh()
    report = monitor(engine, trained, models)
    assert report.checked == 1
    assert not report.failures
    # An alert since training queues the ticker for retraining; no alert, no request
    assert report.queued == (["^GSPC"] if report.alerts else [])
    store = MonitoringRepository(engine)
    accuracy = store.accuracy(ticker="^GSPC", horizon=1)
    # 1-day forecasts of the last LATER days were stored: each one is judged
    assert set(accuracy["proxy"]) == {"range", "squared"}
    assert accuracy["n_forecasts"].max() == LATER
    assert (accuracy["rmse_vol_pct"] > 0).all()
    latest = store.latest_checks()
    assert set(latest["detector"]) == DETECTORS
    assert len(set(latest["observed_on"])) == 1
    rows = (_count(engine, ACCURACY), _count(engine, CHECKS), _count(engine, RETRAIN))
    # Running the same day again changes no count
    monitor(engine, trained, models)
    assert (_count(engine, ACCURACY), _count(engine, CHECKS), _count(engine, RETRAIN)) == rows
    engine.dispose()


def test_an_rmse_over_the_threshold_queues_the_ticker_once_and_training_takes_it(
    trained: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    strict = trained.model_copy(update={"monitoring": trained.monitoring.model_copy(
        update={"rmse_threshold_vol_pct": 0.01})})  # fmt: skip
    engine = db.create_db_engine(strict)
    models = ProductionModels(connect(strict))
    models.refresh()
    report = monitor(engine, strict, models)
    assert "^GSPC GARCH rmse" in report.fired_today
    store = MonitoringRepository(engine)
    assert store.pending_retrains() == ["^GSPC"]
    assert "rmse" in store.retrain_queue()["reason"].iloc[0]
    # A second run finds the request pending and adds none
    assert monitor(engine, strict, models).queued == []
    assert len(store.retrain_queue()) == 1

    # `volforecast train --queued` trains the queued ticker and closes its request
    for key, value in clean_env(home=str(strict.home)).items():
        monkeypatch.setenv(key, value)
    from volforecast.settings import get_settings  # noqa: PLC0415

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["train", "--queued", "--models", "garch",
                                          "--no-plots"])  # fmt: skip
    finally:
        get_settings.cache_clear()
    assert result.exit_code == ExitCode.OK, result.output
    assert "retraining 1 queued tickers: ^GSPC" in result.output
    assert store.pending_retrains() == []
    assert store.retrain_queue()["status"].tolist() == ["done"]
    engine.dispose()


def test_monitor_with_the_database_away_says_so(trained: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "not-a-folder"
    folder.write_text("")
    away = trained.model_copy(update={"database_url": f"sqlite:///{folder / 'volforecast.db'}"})
    models = ProductionModels(connect(away))
    models.refresh()
    with pytest.raises(DatabaseUnavailableError):
        monitor(db.create_db_engine(away), away, models)


# ---------------------------------------------------------------------- the tables, both databases


def test_monitoring_rows_are_upserted_on_their_keys(engine: Engine) -> None:
    store = MonitoringRepository(engine)
    now = dt.datetime.now(dt.UTC)
    day = dt.date(2024, 5, 2)
    accuracy = AccuracyRow("AAA", "GARCH", 1, "range", day, 20, 1.0, 0.8, 0.1)
    check = CheckRow("AAA", "GARCH", "cusum", day, 6.0, 5.0, True, True, {"direction": 1.0})
    for _ in range(2):
        store.upsert_accuracy([accuracy], computed_at=now)
        infinite = CheckRow("AAA", "GARCH", "level_shift", day, float("inf"), 3.3, True, False)
        store.upsert_checks([check, infinite], created_at=now)
    assert len(store.accuracy()) == 1
    alerts = store.alerts()
    assert alerts[["ticker", "detector"]].to_numpy().tolist() == [["AAA", "cusum"]]
    assert json.loads(alerts["detail"].iloc[0]) == {"direction": 1.0}
    assert len(store.latest_checks()) == 2
    # Every fired day is known by ticker, model and detector (quiet checks are not)
    assert store.fired_days(["AAA"]) == {("AAA", "GARCH", "cusum"): [day],
                                         ("AAA", "GARCH", "level_shift"): [day]}  # fmt: skip
    # An accuracy window without a usable proxy has no QLIKE, and is stored without one
    store.upsert_accuracy([AccuracyRow("AAA", "GARCH", 30, "squared", day, 1, 0.5, 0.5, None)],
                          computed_at=now)  # fmt: skip
    assert store.accuracy(horizon=30)["qlike"].isna().all()

    # The queue: one pending request per ticker, answering every alert merged into it
    later = day + dt.timedelta(days=1)
    assert store.queue_retrain("AAA", day, "GARCH cusum", now=now)
    assert not store.queue_retrain("AAA", later, "GARCH rmse", now=now)
    queue = store.retrain_queue()
    assert queue["reason"].tolist() == ["GARCH cusum; GARCH rmse"]
    assert queue["requested_on"].tolist() == [later]
    assert store.mark_retrained(["AAA"], now=now) == 1
    # After the retrain, neither merged alert asks again; a newer one does
    assert not store.queue_retrain("AAA", later, "GARCH rmse", now=now)
    assert not store.queue_retrain("AAA", day, "GARCH cusum", now=now)
    assert store.queue_retrain("AAA", later + dt.timedelta(days=1), "GARCH psi", now=now)
    assert store.pending_retrains() == ["AAA"]
