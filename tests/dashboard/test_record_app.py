"""The record in the running app (AppTest): ?ticker=, the chart, the toggle, the DM p-value."""

from __future__ import annotations

import base64
import datetime as dt

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import RUN_TIMEOUT_S, UseEnv
from tests.integration.test_api import _sample, _store
from volforecast.core.features import DailyData
from volforecast.dashboard import APP_PATH
from volforecast.data.repository import PredictionRepository, PredictionRow
from volforecast.evaluation.stats import diebold_mariano
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
