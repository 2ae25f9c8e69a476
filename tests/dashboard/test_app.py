"""The Streamlit app, driven by AppTest on real databases: empty, missing, and with trained models.

The API is either a port nothing listens on (down) or a real ``volforecast serve`` under
uvicorn; the database is SQLite and PostgreSQL where the fixture is parametrized.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from tests.conftest import make_settings
from tests.dashboard.conftest import TICKERS, UseEnv, run_app
from tests.integration.servers import clean_env, free_port, volforecast_server
from volforecast.core.risk import normal_quantile
from volforecast.dashboard.sources import store
from volforecast.dashboard.sources.store import NO_PRICES
from volforecast.data import db
from volforecast.data.repositories.monitoring import CheckRow, MonitoringRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.settings import Settings

API_DOWN = "is not answering: start it with `volforecast serve`"
NOW = dt.datetime(2024, 1, 15, 18, tzinfo=dt.UTC)


def _texts(elements: Any) -> list[str]:
    return [str(e.value) for e in elements]


def _assert_clean(at: AppTest) -> None:
    """No exception escaped, and no tab failed."""
    assert not at.exception, _texts(at.exception)
    assert not at.error, _texts(at.error)


def _tab(at: AppTest, label: str) -> Any:
    (tab,) = [t for t in at.tabs if t.label == label]
    return tab


def _frames(tab: Any) -> list[pd.DataFrame]:
    return [d.value for d in tab.dataframe]


def _charts(tab: Any) -> list[dict[str, Any]]:
    return [json.loads(c.proto.spec) for c in tab.get("plotly_chart")]


def _forecast_table(at: AppTest) -> pd.DataFrame:
    tables = [f for f in _frames(_tab(at, "Volatility Forecast")) if "step" in f.columns]
    assert tables, "the forecast tab shows no forecast table"
    return tables[0]


def test_the_first_tab_is_the_forecast(engine: Engine, settings: Settings, use_env: UseEnv) -> None:
    use_env(settings)
    at = run_app()
    assert [t.label for t in at.tabs] == [
        "Volatility Forecast", "Model comparison", "Model registry", "Monitoring",
    ]  # fmt: skip


def test_an_empty_database_and_a_down_api_give_messages_not_tracebacks(
    engine: Engine, settings: Settings, use_env: UseEnv
) -> None:
    # Given a migrated database with nothing in it, and no API
    use_env(settings)
    # When the dashboard runs
    at = run_app()
    # Then it says what to run, and nothing raised
    _assert_clean(at)
    assert NO_PRICES in _texts(at.info), "the forecast tab must say how to ingest prices"
    assert any(API_DOWN in w for w in _texts(at.warning)), _texts(at.warning)
    assert any("run `volforecast train`" in w for w in _texts(at.warning) + _texts(at.info))
    monitoring = _tab(at, "Monitoring")
    infos = _texts(monitoring.info)
    assert any("No alerts" in i for i in infos), infos
    assert any("Nothing queued" in i for i in infos), infos


def test_a_tab_that_fails_says_so_and_the_others_still_draw(
    engine: Engine, settings: Settings, use_env: UseEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_engine: Engine) -> None:
        raise RuntimeError("the log table is unreadable")

    monkeypatch.setattr(store, "promotion_log", broken)
    use_env(settings)
    at = run_app()
    assert not at.exception, _texts(at.exception)
    (error,) = _texts(at.error)
    assert "The Model registry tab failed: RuntimeError: the log table is unreadable" in error
    assert NO_PRICES in _texts(_tab(at, "Volatility Forecast").info)
    assert _texts(_tab(at, "Monitoring").subheader)[0] == "Alerts"


def test_a_database_that_does_not_exist_is_reported_and_not_created(
    tmp_path: Path, use_env: UseEnv
) -> None:
    missing = tmp_path / "nowhere" / "volforecast.db"
    use_env(make_settings(home=tmp_path / "var", database_url=f"sqlite:///{missing}"))
    at = run_app()
    _assert_clean(at)
    assert any("run `volforecast db upgrade`" in w for w in _texts(at.warning)), _texts(at.warning)
    assert not missing.exists(), "looking at the dashboard must not create a database"


def test_the_monitoring_tab_shows_stored_alerts_and_quality_findings(
    engine: Engine, settings: Settings, use_env: UseEnv
) -> None:
    # Given a level-shift alert, two data-quality alerts, a quiet check and a queued retrain
    repository = MonitoringRepository(engine)
    day = dt.date(2024, 1, 12)
    repository.upsert_checks([
        CheckRow("^GSPC", "GARCH", "level_shift", day, 4.25, 3.09, fired=True, alert=True,
                 detail={"z": 4.25}),
        CheckRow("^GSPC", "GARCH", "data_quality", day, 2.0, 0.0, fired=True, alert=True),
        CheckRow("^IXIC", "GARCH", "psi", day, 0.05, 0.25, fired=False, alert=False),
        CheckRow("^IXIC", "GARCH", "data_quality", day - dt.timedelta(days=3), 3.0, 0.0,
                 fired=True, alert=True),
    ], created_at=NOW)  # fmt: skip
    repository.queue_retrain("^GSPC", day, "level_shift", now=NOW)
    use_env(settings)
    # When the dashboard runs
    at = run_app()
    # Then the monitoring tab lists them
    _assert_clean(at)
    frames = _frames(_tab(at, "Monitoring"))
    alerts = next(f for f in frames if "detector" in f.columns and "level_shift" in set(f.detector))
    row = alerts[alerts["detector"] == "level_shift"].iloc[0]
    assert (row["ticker"], row["statistic"], row["threshold"]) == ("^GSPC", 4.25, 3.09)
    assert row["observed_on"] == day
    assert "data_quality" not in set(alerts["detector"]), "quality findings have their own table"
    quality = next(f for f in frames if "kind" in f.columns)
    # Each ticker's latest verdict once, though it is an alert too
    assert quality[["kind", "ticker", "statistic"]].to_dict("records") == [
        {"kind": "latest check", "ticker": "^GSPC", "statistic": 2.0},
        {"kind": "latest check", "ticker": "^IXIC", "statistic": 3.0},
    ]
    drift = next(f for f in frames if "ratio" in f.columns)
    assert drift.set_index("detector").loc["psi", "ratio"] == pytest.approx(0.05 / 0.25)
    queue = next(f for f in frames if "requested_on" in f.columns)
    assert list(queue["ticker"]) == ["^GSPC"]
    assert list(queue["status"]) == ["pending"]


def test_the_monitoring_tab_shows_the_stored_quality_findings_and_never_runs_the_gate(
    engine: Engine, settings: Settings, use_env: UseEnv
) -> None:
    # Given the monitor's data-quality finding for ^GSPC and stored prices to choose from
    MonitoringRepository(engine).upsert_checks(
        [CheckRow("^GSPC", "-", "data_quality", dt.date(2024, 1, 12), 2.0, 0.0, fired=True,
                  alert=True, detail={"rows_rejected": 3.0})],
        created_at=NOW,
    )  # fmt: skip
    prices = load_sample().frame
    PriceRepository(engine).upsert(prices[prices["ticker"] == "^GSPC"].tail(30), ingested_at=NOW)
    use_env(settings)
    # When the dashboard runs with a ticker chosen
    at = run_app()
    # Then the finding is shown as the monitor stored it, and nothing offers to run the gate
    _assert_clean(at)
    monitoring = _tab(at, "Monitoring")
    quality = next(f for f in _frames(monitoring) if "kind" in f.columns)
    assert quality[["kind", "ticker", "statistic", "detail"]].to_dict("records") == [
        {"kind": "latest check", "ticker": "^GSPC", "statistic": 2.0, "detail": "rows_rejected=3"}
    ]
    assert [b.key for b in monitoring.button] == [], "the page must not run the quality gate"
    assert any("volforecast monitor run --all" in c for c in _texts(monitoring.caption))


def test_with_the_api_down_the_forecast_tab_shows_the_stored_paths(
    trained_home: Settings, use_env: UseEnv
) -> None:
    # Given stored GARCH paths of both tickers and no API
    use_env(trained_home)
    # When the dashboard runs
    at = run_app()
    # Then it says so and draws the stored paths, the chart and the table
    _assert_clean(at)
    assert any(API_DOWN in w and "stored in the database instead" in w
               for w in _texts(at.warning)), _texts(at.warning)  # fmt: skip
    # the forward paths, then the record of the forecasts stored so far
    chart, risk_chart, record_chart = _charts(_tab(at, "Volatility Forecast"))
    assert "GARCH forecast" in [trace.get("name") for trace in record_chart["data"]]
    names = [trace.get("name", "") for trace in chart["data"]]
    assert "|return| %" in names
    assert "GARCH v1 forecast vol %" in names
    table = _forecast_table(at)
    assert len(table) == 30
    assert list(table["step"]) == list(range(1, 31))
    # The bands are the model's own tails: its stored 1-day VaR's multiple of its volatility,
    # wider than the normal's on the index's fat tails.
    stored = store.stored_risk(db.create_db_engine(trained_home), "^GSPC")
    one_day = stored[(stored["days"] == 1) & (stored["level"] == 0.99)]
    multiple = one_day["var_pct"].iloc[-1] / table["GARCH vol %"].iloc[0]
    assert multiple > normal_quantile(0.99)
    np.testing.assert_allclose(table["GARCH VaR 99 %"], multiple * table["GARCH vol %"])
    # The served VaR of each day on the returns' axis, the days past it marked.
    risk_names = [trace.get("name", "") for trace in risk_chart["data"]]
    assert risk_names[:2] == ["return %", "-VaR 95 % (GARCH)"]
    assert "breach of VaR 99 %" in risk_names
    (breaches,) = [f for f in _frames(_tab(at, "Volatility Forecast")) if "breaches" in f.columns]
    assert list(breaches["VaR"]) == ["95%", "99%"]
    assert (breaches["days"] >= 1).all()

    # When another ticker is chosen, its own paths are shown
    gspc = table["GARCH vol %"].to_numpy()
    at.selectbox(key="ticker").select("^IXIC").run()
    _assert_clean(at)
    assert any("^IXIC" in s for s in _texts(at.subheader))
    ixic = _forecast_table(at)["GARCH vol %"].to_numpy()
    assert len(ixic) == 30
    assert not np.allclose(ixic, gspc)


@pytest.fixture(scope="module")
def api_url(trained_home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``volforecast serve`` over the trained home, stopped after the module."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with volforecast_server(["serve", "--port", str(port)], clean_env(home=str(trained_home.home)),
                            log, f"{url}/health"):  # fmt: skip
        yield url


@pytest.mark.slow
def test_with_the_api_up_every_tab_draws_from_it(
    trained_home: Settings, api_url: str, use_env: UseEnv
) -> None:
    # Given GARCH in production for both tickers behind a running API
    use_env(trained_home, api_url)
    # When the dashboard runs
    at = run_app()
    # Then the forecast comes from the API, with no warning but the banner for the sample's
    # old prices
    _assert_clean(at)
    (stale,) = _texts(at.warning)
    assert stale.startswith("Prices are stale since 2019-01-02: the last stored close is 2018")
    forecast = _tab(at, "Volatility Forecast")
    assert len(_charts(forecast)) == 3, "the forward paths, the served VaR and the record"
    table = _forecast_table(at)
    assert len(table) == 30
    assert (table["GARCH vol %"] > 0).all()
    assert any("Forecasts from the prediction API" in c for c in _texts(forecast.caption))

    # The registry lists both production versions
    versions = next(f for f in _frames(_tab(at, "Model registry")) if "alias" in f.columns)
    assert sorted(versions["serves"]) == TICKERS
    assert set(versions["alias"]) == {"production"}
    # each row links to its version in the MLflow UI (`volforecast mlflow`'s, for a local store)
    assert sorted(versions["mlflow"]) == [
        f"http://127.0.0.1:{trained_home.mlflow_port}/#/models/garch_volatility_{t}/versions/1"
        for t in ("gspc", "ixic")
    ]

    # and draws the card of the chosen production model: GARCH's term structure and news impact
    registry = _tab(at, "Model registry")
    assert "Model card" in _texts(registry.subheader)
    metrics = {m.label: m.value for m in registry.metric}
    assert float(metrics["Persistence"]) < 1
    assert metrics["Long-run volatility"].endswith("% a year")
    term, news = _charts(registry)
    assert term["data"][0]["x"] == [1, 5, 22, 126, 252]
    assert all(v > 0 for v in term["data"][0]["y"])
    assert news["layout"]["title"]["text"] == "News impact"

    # The monitoring tab counts the dashboard's own requests to the API
    frames = _frames(_tab(at, "Monitoring"))
    latency = next(f for f in frames if "p50_ms" in f.columns)
    predict = latency[latency["route"] == "/predict"].iloc[0]
    assert predict["requests"] >= 1
    assert 0 < predict["p50_ms"] <= predict["p99_ms"]

    # And choosing the other ticker asks the API for it
    at.selectbox(key="ticker").select("^IXIC").run()
    _assert_clean(at)
    assert any("^IXIC" in s for s in _texts(at.subheader))
    assert len(_forecast_table(at)) == 30
