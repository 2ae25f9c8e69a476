"""The record in the running app (AppTest): ?ticker=, the chart, the toggle, the DM p-value."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from tests.conftest import make_settings
from tests.dashboard.conftest import RUN_TIMEOUT_S, TICKERS, UseEnv
from tests.integration.test_api import _sample, _store
from tests.integration.test_training import LSTM_QUICK
from volforecast.core.features import DailyData
from volforecast.dashboard import APP_PATH
from volforecast.dashboard.sources import registry
from volforecast.data import db
from volforecast.data.repositories.predictions import PredictionRepository, PredictionRow
from volforecast.evaluation.stats import diebold_mariano
from volforecast.jobs.train import TrainConfig, train
from volforecast.registry.tracking import connect
from volforecast.settings import Settings

STORED_AT = dt.datetime(2024, 1, 15, 18, tzinfo=dt.UTC)
LEVELS = {"GARCH": 1.0, "HAR": 0.8}
DAYS = 25


def _seed(settings: Settings, engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sample prices, and GARCH and HAR forecasts made on each of the last DAYS sessions."""
    prices = _sample()
    _store(settings, prices)
    gspc = prices[prices["ticker"] == "^GSPC"]
    sessions = pd.to_datetime(gspc["date"]).tail(DAYS + 5).reset_index(drop=True)
    rng = np.random.default_rng(5)
    rows = [
        PredictionRow("^GSPC", model, sessions[i].date(), step, sessions[i + step].date(),
                      level + float(rng.uniform(-0.2, 0.2)), "1", None, STORED_AT)
        for model, level in LEVELS.items()
        for i in range(DAYS)
        for step in (1, 5)
    ]  # fmt: skip
    PredictionRepository(engine).upsert(rows)
    stored = pd.DataFrame([vars(r) for r in rows])
    return stored, gspc


def _qlike(stored: pd.DataFrame, prices: pd.DataFrame, model: str, step: int) -> np.ndarray:
    daily = DailyData.from_prices(prices)
    s2 = pd.Series(daily.rv_sigma2, index=daily.dates.date)
    own = stored[(stored["model_type"] == model) & (stored["step"] == step)]
    own = own.sort_values("forecast_date")
    ratio = (
        s2.reindex(own["forecast_date"]).to_numpy() / own["predicted_volatility"].to_numpy() ** 2
    )
    return np.asarray(ratio - np.log(ratio) - 1)


def _chart(at: AppTest, key: str) -> go.Figure:
    (chart,) = [c for c in at.get("plotly_chart") if key in c.proto.id]
    return pio.from_json(chart.proto.spec, skip_invalid=True)


def _forecasts(figure: go.Figure, name: str, yaxis: str = "y") -> np.ndarray:
    (trace,) = [t for t in figure.data if t.name == name and t.yaxis == yaxis]
    values = trace.y
    if isinstance(values, dict):  # Plotly sends numbers as typed arrays, base64-encoded
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values, dtype=np.float64)


def _run(ticker: str) -> AppTest:
    at = AppTest.from_file(str(APP_PATH), default_timeout=RUN_TIMEOUT_S)
    at.query_params["ticker"] = ticker
    return at.run()


def test_the_record_opens_on_the_linked_ticker_and_shows_the_dm_p_value(
    settings: Settings, engine: Engine, use_env: UseEnv
) -> None:
    # Given the sample's prices and 25 days of stored GARCH and HAR forecasts of ^GSPC
    stored, prices = _seed(settings, engine)
    use_env(settings)
    # When the dashboard opens at ?ticker=^IXIC, it shows ^IXIC, with no record yet
    at = _run("^IXIC")
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="ticker").value == "^IXIC"
    assert any("No forecasts of ^IXIC stored yet" in i.value for i in at.info)

    # When it opens at ?ticker=^GSPC
    at = _run("^GSPC")
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="ticker").value == "^GSPC"
    # Then the record chart draws each model's stored step-1 forecasts on their dates
    daily = _forecasts(_chart(at, "record_chart"), "GARCH forecast")
    expected = stored[(stored["model_type"] == "GARCH") & (stored["step"] == 1)]
    np.testing.assert_allclose(daily, expected["predicted_volatility"])
    # and the annualised toggle multiplies what is drawn by sqrt(252)
    at.toggle(key="annualised").set_value(True).run()
    annual = _forecasts(_chart(at, "record_chart"), "GARCH forecast")
    np.testing.assert_allclose(annual, daily * np.sqrt(252))

    # And the comparison tab tests A against B: the p-value of DM on QLIKE, on one y axis
    ab = _chart(at, "ab_chart")
    assert ab.layout.yaxis2.matches == "y"
    dm = diebold_mariano(_qlike(stored, prices, "GARCH", 1), _qlike(stored, prices, "HAR", 1))
    shown = {m.label: m.value for m in at.metric}
    assert shown["Diebold–Mariano p-value"] == f"{dm.pvalue:.3g}"
    assert shown["DM statistic"] == f"{dm.statistic:.2f}"
    # with the 5-day step, overlapping forecasts are allowed for
    at.radio(key="ab_step").set_value(5).run()
    dm5 = diebold_mariano(_qlike(stored, prices, "GARCH", 5), _qlike(stored, prices, "HAR", 5),
                          horizon=5)  # fmt: skip
    assert {m.label: m.value for m in at.metric}["Diebold–Mariano p-value"] == f"{dm5.pvalue:.3g}"


def test_an_unknown_linked_ticker_says_so_and_shows_another(
    settings: Settings, engine: Engine, use_env: UseEnv
) -> None:
    _store(settings, _sample())
    use_env(settings)
    at = _run("NOPE")
    assert not at.exception, [e.value for e in at.exception]
    assert any("No prices stored for NOPE" in w.value for w in at.sidebar.warning)
    assert at.selectbox(key="ticker").value in {"^GSPC", "^IXIC", "^VIX"}


@pytest.mark.slow
def test_a_pooled_lstm_is_compared_on_its_own_figures_for_the_ticker(
    use_env: UseEnv, tmp_path: Path
) -> None:
    # Given GARCH per ticker and a pooled LSTM over both tickers, trained for real
    settings = make_settings(home=tmp_path / "var")
    _store(settings, _sample())
    engine = db.create_db_engine(settings)
    config = TrainConfig(models=("garch", "lstm"), lstm_settings=LSTM_QUICK, plots=False)
    report = train(engine, settings, config, TICKERS)
    engine.dispose()
    assert report.complete, report.outcomes
    client = connect(settings, check=False)
    run_id = client.get_model_version("lstm_volatility_pooled", "1").run_id
    by_ticker = pd.read_csv(
        client.download_artifacts(run_id, registry.METRICS_BY_TICKER, str(tmp_path)), index_col=0
    )
    use_env(settings)  # the API is down: the registry is read directly
    # When ^IXIC is compared
    at = _run("^IXIC")
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if "scope" in d.value.columns)
    lstm = table[table["model_type"] == "LSTM"].iloc[0]
    # Then the LSTM's figures are its own for ^IXIC, not its mean over both tickers
    assert lstm["scope"] == "this ticker (pooled model's own)"
    assert lstm["qlike_h1_range"] == pytest.approx(by_ticker.loc["^IXIC", "qlike_h1_range"])
    assert lstm["qlike_h1_range"] != pytest.approx(by_ticker["qlike_h1_range"].mean())
    assert table[table["model_type"] == "GARCH"].iloc[0]["scope"] == "this ticker"
