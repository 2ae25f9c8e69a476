"""The daily job killed while promoting a waiting challenger: the next daily job or training
repairs the registry and the log (production moved, no entry, the version still ``live``)."""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sqlalchemy import Engine

from tests.factories import clean_prices, live_forecasts
from tests.faults.conftest import Cli
from volforecast.cli import ExitCode
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.registry import names
from volforecast.registry.aliases import Registry
from volforecast.registry.decision import losses_frame
from volforecast.registry.promotion_log import PromotionLog
from volforecast.settings import PromotionSettings, Settings

pytestmark = pytest.mark.slow

NAME = "garch_volatility_aaa"
TRAIN = ("train", "--tickers", "AAA", "--models", "garch", "--no-plots")
LIVE = {"VOLFORECAST_PROMOTION__MIN_LIVE_DAYS": "5"}


def _waiting_with_live_days(cli: Cli, engine: Engine, settings: Settings) -> MlflowClient:
    """v1 in production, v2 waiting as challenger with 12 live days on which it wins."""
    prices = clean_prices("AAA", 700)
    trained = prices[prices["date"] <= prices["date"].iloc[640]]
    now = dt.datetime.now(dt.UTC)
    PriceRepository(engine).upsert(trained, ingested_at=now)
    assert cli(*TRAIN).returncode == ExitCode.OK
    assert cli(*TRAIN, "--force").returncode == ExitCode.OK
    uri = f"sqlite:///{settings.home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    registry = Registry(client, PromotionLog(engine), PromotionSettings(min_live_days=5), "tests")
    dates = pd.bdate_range("2017-01-02", periods=60)
    losses = 0.2 + np.random.default_rng(1).exponential(0.5, len(dates))
    won = registry.consider(
        NAME, "2", losses_frame("X", dates, losses), lambda _v: losses_frame("X", dates, losses * 2)
    )
    assert won.live, won
    PriceRepository(engine).upsert(prices, ingested_at=now)
    datasets, _ = daily_data_by_ticker(PriceRepository(engine).load(["AAA"]), settings.quality)
    since = client.get_model_version(NAME, "2").tags[names.TAG_LIVE_SINCE]
    rows = live_forecasts(datasets, since, {"AAA": {"1": 2.5, "2": 1.05}}, days=12)
    PredictionRepository(engine).upsert(rows)
    return client


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("repair", ["daily job", "training"])
def test_a_daily_job_killed_after_moving_production_is_repaired(
    cli: Cli, engine: Engine, settings: Settings, tmp_path: Path, repair: str
) -> None:
    client = _waiting_with_live_days(cli, engine, settings)
    logged = len(PromotionLog(engine).events(NAME))

    killed = cli("models", "live", VOLFORECAST_FAULT_AT="promotion.promote.after_alias_move",
                 **LIVE)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    aliases = {a: str(v) for a, v in client.get_registered_model(NAME).aliases.items()}
    assert (aliases.get(names.PRODUCTION), aliases.get(names.CHALLENGER)) == ("2", "2")
    assert len(PromotionLog(engine).events(NAME)) == logged, "killed before the log's commit"
    assert client.get_model_version(NAME, "2").tags[names.TAG_DECISION] == names.LIVE

    done = cli("models", "live", **LIVE) if repair == "daily job" else cli(*TRAIN, **LIVE)
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert "recovered" in done.stdout
    aliases = {a: str(v) for a, v in client.get_registered_model(NAME).aliases.items()}
    assert aliases.get(names.PRODUCTION) == "2"
    assert aliases.get(names.CHALLENGER) != "2", "a promoted version is no challenger"
    assert client.get_model_version(NAME, "2").tags[names.TAG_DECISION] == names.PROMOTED
    promotions = [e for e in PromotionLog(engine).events(NAME) if e.action == "promote"]
    assert [(e.version, e.previous_version) for e in promotions][-1] == ("2", "1")
    assert promotions[-1].reason.startswith("recovered:")
    assert [e.version for e in promotions].count("2") == 1, "logged once"

    again = cli("models", "live", **LIVE)
    assert again.returncode == ExitCode.OK, again.stdout + again.stderr
    assert "recovered" not in again.stdout
    assert [e.version for e in PromotionLog(engine).events(NAME) if e.action == "promote"].count(
        "2"
    ) == 1
