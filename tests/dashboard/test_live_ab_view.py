"""The comparison tab's live A/B: a waiting challenger's record with its Diebold–Mariano p."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_settings
from tests.dashboard.conftest import UseEnv, run_app
from tests.factories import live_forecasts
from volforecast.data import db
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.jobs.live_ab import live_record_of
from volforecast.jobs.train import TrainConfig, train
from volforecast.registry.aliases import Registry
from volforecast.registry.decision import losses_frame
from volforecast.registry.promotion_log import PromotionLog
from volforecast.registry.tracking import connect
from volforecast.settings import PromotionSettings

pytestmark = pytest.mark.slow


def _tab(at: Any, label: str) -> Any:
    (tab,) = [t for t in at.tabs if t.label == label]
    return tab


def test_the_comparison_tab_shows_a_waiting_challengers_live_record(
    sqlite_url: str, tmp_path: Path, use_env: UseEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given GARCH v1 in production for ^GSPC and v2 waiting for 30 live days, with 12
    # hand-made live days on which v2 forecasts closer to what was realized
    settings = make_settings(home=tmp_path / "var", database_url=sqlite_url,
                             promotion=PromotionSettings(min_live_days=30))  # fmt: skip
    engine = db.create_db_engine(settings)
    db.ensure_schema(engine)
    sample = load_sample().frame
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    PriceRepository(engine).upsert(sample[sample["date"] <= "2018-06-01"], ingested_at=now)
    for force in (False, True):
        train(engine, settings, TrainConfig(models=("garch",), plots=False, champions=False,
                                            force=force), ["^GSPC"])  # fmt: skip
    PriceRepository(engine).upsert(sample, ingested_at=now)
    client = connect(settings)
    dates = pd.bdate_range("2017-01-02", periods=60)
    losses = 0.2 + np.random.default_rng(1).exponential(0.5, len(dates))
    registry = Registry(client, PromotionLog(engine), settings.promotion, actor="tests")
    registry.consider("garch_volatility_gspc", "2", losses_frame("X", dates, losses),
                      lambda _v: losses_frame("X", dates, 2 * losses))  # fmt: skip
    datasets, _ = daily_data_by_ticker(PriceRepository(engine).load(["^GSPC"]), settings.quality)
    factors = {"^GSPC": {"1": 1.6, "2": 1.05}}
    PredictionRepository(engine).upsert(live_forecasts(datasets, "2018-06-01", factors, days=12))
    expected = live_record_of(engine, settings, client, "garch_volatility_gspc").summary()
    engine.dispose()

    # When the dashboard runs (the API down: it reads the database and the registry)
    use_env(settings)
    monkeypatch.setenv("VOLFORECAST_PROMOTION__MIN_LIVE_DAYS", "30")
    at = run_app()
    assert not at.exception, [str(e.value) for e in at.exception]

    # Then the comparison tab shows the live days, both means and the DM p-value
    tab = _tab(at, "Model comparison")
    assert any("Live A/B" in str(s.value) for s in tab.subheader)
    metrics = {m.label: m.value for m in tab.metric}
    assert metrics["Live days"] == "12 of 30"
    assert metrics["Diebold–Mariano p-value"] == f"{expected['dm_pvalue']:.3g}"
    assert float(metrics["Mean QLIKE, challenger v2"]) < float(metrics["Mean QLIKE, production v1"])
    (days,) = [d.value for d in tab.dataframe if "qlike_challenger" in d.value.columns]
    assert len(days) == 12
    assert any("waiting" in str(c.value) for c in tab.caption)
