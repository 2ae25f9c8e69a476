"""A waiting challenger's forecasts are stored apart: ``served_as``, on a real registry and store.

GARCH v1 serves ^GSPC and v2, trained on the same prices, waits for live evidence. The daily
job and the API store v2's paths beside v1's; the challenger's are then scaled tenfold, so
any of them read as the model's forecast changes what the monitor and the dashboard show.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from sqlalchemy import Engine, text

from tests.conftest import make_settings
from volforecast.api.app import create_app
from volforecast.dashboard import record
from volforecast.dashboard.sources import store
from volforecast.data import db
from volforecast.data.repositories.monitoring import MonitoringRepository
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.jobs.live_ab import waiting_challengers
from volforecast.jobs.monitor import monitor
from volforecast.jobs.predict_daily import predict_all
from volforecast.jobs.train import TrainConfig, train
from volforecast.monitoring.accuracy import accuracy_rows
from volforecast.registry import names
from volforecast.registry.aliases import Registry
from volforecast.registry.champion import ChampionChoice
from volforecast.registry.champion_book import ChampionBook
from volforecast.registry.decision import losses_frame
from volforecast.registry.promotion_log import PromotionLog
from volforecast.registry.serving import ProductionModels
from volforecast.registry.tracking import connect
from volforecast.settings import PromotionSettings, Settings

pytestmark = pytest.mark.slow

GSPC = "garch_volatility_gspc"
ORIGIN = dt.date(2018, 11, 30)
"""The latest close when the daily job and the API forecast."""
MONITORED = dt.date(2018, 12, 14)


@pytest.fixture
def waiting(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[Settings, Engine, MlflowClient]]:
    """v1 of ^GSPC's GARCH in production, v2 waiting; prices up to ORIGIN; the champion GARCH."""
    settings = make_settings(
        home=tmp_path / "var", database_url=sqlite_url,
        promotion=PromotionSettings(min_live_days=5),
        api={"model_refresh_s": 0.2, "prices_refresh_s": 0.0, "write_interval_s": 0.1},
    )  # fmt: skip
    engine = db.create_db_engine(settings)
    db.ensure_schema(engine)
    sample = load_sample().frame
    sample = sample[sample["ticker"] == "^GSPC"]
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    PriceRepository(engine).upsert(sample[sample["date"] <= "2018-06-01"], ingested_at=now)
    for force in (False, True):  # the same prices twice: v2 equals v1 and stays challenger
        config = TrainConfig(models=("garch",), plots=False, champions=False, force=force)
        train(engine, settings, config, ["^GSPC"])
    client = connect(settings)
    registry = Registry(client, PromotionLog(engine), settings.promotion, actor="tests")
    dates = pd.bdate_range("2017-01-02", periods=60)
    losses = 0.2 + np.random.default_rng(1).exponential(0.5, len(dates))
    decision = registry.consider(
        GSPC, "2", losses_frame("X", dates, losses), lambda _v: losses_frame("X", dates, losses * 2)
    )
    assert decision.live, decision
    ChampionBook(engine).record(ChampionChoice("^GSPC", "garch", None, "test"), actor="tests",
                                now=now)  # fmt: skip
    PriceRepository(engine).upsert(sample[sample["date"] <= str(ORIGIN)], ingested_at=now)
    yield settings, engine, client
    engine.dispose()


def _models(client: MlflowClient, alias: names.Alias = names.PRODUCTION) -> ProductionModels:
    models = ProductionModels(client, alias=alias)
    models.refresh()
    return models


def _stored(engine: Engine) -> pd.DataFrame:
    return PredictionRepository(engine).frame(["^GSPC"], served_as=None)


def _api_asks_the_challenger(settings: Settings, engine: Engine) -> None:
    """The API answers the challenger alias, named and not, and stores its 30-day path."""
    with TestClient(create_app(settings)) as api:
        body = {"ticker": "^GSPC", "horizon": 30}
        challenger = body | {"alias": "challenger"}
        answer, deadline = api.post("/predict", json=challenger), time.monotonic() + 10
        while answer.status_code == 404 and time.monotonic() < deadline:  # loaded on a timer
            time.sleep(0.1)
            answer = api.post("/predict", json=challenger)
        assert answer.status_code == 200, answer.text
        # Without a model type the champion family answers; its challenger is not the champion
        assert (answer.json()["model_version"], answer.json()["champion"]) == ("2", False)
        production = api.post("/predict", json=body).json()
        assert (production["model_version"], production["champion"]) == ("1", True)
        named = api.post("/predict", json=body | {"model_type": "garch", "alias": "challenger"})
        assert (named.json()["model_version"], named.json()["champion"]) == ("2", False)
        deadline = time.monotonic() + 10
        while len(_stored(engine)) < 60:  # the writer stores off the request path
            assert time.monotonic() < deadline, "the API never stored its answers"
            time.sleep(0.1)


def _expected_accuracy(settings: Settings, engine: Engine) -> dict[tuple[int, str], float]:
    """v1's accuracy, computed from its own rows alone: what the monitor must find."""
    prices = PriceRepository(engine).load(["^GSPC"], end=MONITORED)
    data = daily_data_by_ticker(prices, settings.quality)[0]["^GSPC"]
    mine = _stored(engine)
    mine = mine[mine["model_version"] == "1"]
    rows = accuracy_rows(mine, data, window_days=settings.monitoring.accuracy_window_days)
    return {(r.horizon, r.proxy): r.rmse_vol_pct for r in rows}


def _monitored(
    settings: Settings, engine: Engine, client: MlflowClient
) -> dict[tuple[int, str], float]:
    monitor(engine, settings, _models(client), as_of=MONITORED)
    found = MonitoringRepository(engine).accuracy(ticker="^GSPC")
    found = found[found["as_of_date"].astype(str) == str(MONITORED)]
    return {(int(r.horizon), str(r.proxy)): float(r.rmse_vol_pct) for r in found.itertuples()}


def _dashboard_shows_version_1(engine: Engine) -> None:
    shown = record.forecast_record(engine, "^GSPC")
    assert not shown.empty
    assert set(shown["model_version"]) == {"1"}
    newest = store.stored_forecasts(engine, "^GSPC").paths
    assert set(newest["model_version"]) == {"1"}
    assert len(newest) == 30


def test_a_challengers_forecasts_never_count_as_the_models_before_or_after_its_promotion(
    waiting: tuple[Settings, Engine, MlflowClient],
) -> None:
    settings, engine, client = waiting
    # Given the daily job's paths of v1 and of the waiting v2 (5 steps), then the API's
    # 30-step path of v2, asked for by alias
    done = predict_all(engine, settings, _models(client), horizon=5, as_of=ORIGIN,
                       challengers=_models(client, names.CHALLENGER))  # fmt: skip
    assert done.paths == 2, done.failures
    _api_asks_the_challenger(settings, engine)
    stored = _stored(engine)
    assert set(stored["origin_date"]) == {ORIGIN}
    assert stored.groupby(["model_version", "served_as"]).size().to_dict() == {
        ("1", "production"): 30, ("2", "challenger"): 30,
    }  # fmt: skip
    # and the challenger forecasting tenfold what production does, and the next two weeks
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE volatility_predictions SET predicted_volatility ="
                " 10 * predicted_volatility WHERE served_as = 'challenger'"
            )
        )
    sample = load_sample().frame
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    PriceRepository(engine).upsert(sample[sample["ticker"] == "^GSPC"], ingested_at=now)
    expected = _expected_accuracy(settings, engine)
    assert (1, "range") in expected

    # When the monitor and the dashboard read them while v2 waits, then v1's alone count
    assert _monitored(settings, engine, client) == pytest.approx(expected)
    _dashboard_shows_version_1(engine)

    # and once v2 is promoted, its challenger days are still not the model's forecasts
    Registry(client, PromotionLog(engine), settings.promotion, actor="tests").promote(GSPC, "2")
    assert waiting_challengers(client) == []
    assert _monitored(settings, engine, client) == pytest.approx(expected)
    _dashboard_shows_version_1(engine)
