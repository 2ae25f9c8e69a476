"""Fixtures of the dashboard tests: the app's environment, and a home with trained models."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import make_settings
from tests.integration.servers import free_port
from tests.integration.test_api import GARCH_ONLY, QUICK, _sample, _store
from volforecast.dashboard import APP_PATH
from volforecast.dashboard.sources.api import API_URL_ENV
from volforecast.data import db
from volforecast.jobs.predict_daily import predict_all
from volforecast.jobs.train import train
from volforecast.registry.serving import ProductionModels
from volforecast.registry.tracking import connect
from volforecast.settings import Settings, get_settings

TICKERS = ["^GSPC", "^IXIC"]
BACKFILL_DAYS = 20
RUN_TIMEOUT_S = 120.0
"""The first run imports plotly, pandas and the app; later runs take well under a second."""

UseEnv = Callable[..., None]


@pytest.fixture
def use_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[UseEnv]:
    """Point the app at a home and database, and at an API URL (one nothing answers, by default).

    The app reads its settings when it runs, from the environment, as ``streamlit run`` does;
    caches are emptied before and after, so no test sees another's reads.
    """
    for key in [k for k in os.environ if k.startswith("VOLFORECAST_")]:
        monkeypatch.delenv(key)

    def use(settings: Settings, api_url: str | None = None) -> None:
        monkeypatch.setenv("VOLFORECAST_HOME", str(settings.home))
        monkeypatch.setenv("VOLFORECAST_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("VOLFORECAST_MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
        monkeypatch.setenv(API_URL_ENV, api_url or f"http://127.0.0.1:{free_port()}")
        get_settings.cache_clear()

    st.cache_data.clear()
    st.cache_resource.clear()
    yield use
    st.cache_data.clear()
    st.cache_resource.clear()  # disposes the engines: a test database can then be dropped
    get_settings.cache_clear()


def run_app() -> AppTest:
    """The dashboard, run once as ``streamlit run`` would."""
    return AppTest.from_file(str(APP_PATH), default_timeout=RUN_TIMEOUT_S).run()


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home with the sample's last 900 days, GARCH in production for both, paths stored.

    The paths of the last BACKFILL_DAYS closes too, as a backfill stores them: the risk
    section draws each day's VaR against the return of the day after.
    """
    home: Path = tmp_path_factory.mktemp("dashboard") / "var"
    settings = make_settings(home=home, api=QUICK)
    _store(settings, _sample())
    engine = db.create_db_engine(settings)
    report = train(engine, settings, GARCH_ONLY, TICKERS)
    assert report.complete, report.outcomes
    models = ProductionModels(connect(settings))
    models.refresh()
    closes = sorted(_sample()["date"].unique())[-BACKFILL_DAYS:]
    for close in closes:
        assert predict_all(engine, settings, models, as_of=pd.Timestamp(close).date()).complete
    engine.dispose()
    return settings
