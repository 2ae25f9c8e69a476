"""The live A/B of a waiting challenger, on a real MLflow registry (SQLite) and database.

GARCH versions are trained on the bundled sample up to June 2018; the stored forecasts the
live record judges are hand-made from what was realized afterwards, so which version wins
each day is known: on ^GSPC the challenger forecasts close to the realized variance and
production far above it, on ^IXIC the other way round.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.factories import live_forecasts
from volforecast.api.app import create_app
from volforecast.cli import ExitCode, app
from volforecast.data import db
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.jobs.live_ab import live_record_of, promote_live, waiting_challengers
from volforecast.jobs.predict_daily import predict_all
from volforecast.jobs.train import TrainConfig, train
from volforecast.registry import names
from volforecast.registry.aliases import Registry
from volforecast.registry.decision import losses_frame
from volforecast.registry.promotion_log import PromotionLog
from volforecast.registry.serving import ProductionModels
from volforecast.registry.tracking import connect
from volforecast.settings import PromotionSettings, Settings, get_settings

pytestmark = pytest.mark.slow

TRAINED_UNTIL = "2018-06-01"
MIN_DAYS = 5
GSPC, IXIC = "garch_volatility_gspc", "garch_volatility_ixic"


@pytest.fixture
def live(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[Settings, Engine, MlflowClient]]:
    """v1 in production and v2 challenger of GARCH for ^GSPC and ^IXIC; the whole sample."""
    settings = make_settings(
        home=tmp_path / "var", database_url=sqlite_url,
        promotion=PromotionSettings(min_live_days=MIN_DAYS),
        api={"model_refresh_s": 0.2, "prices_refresh_s": 0.0, "write_interval_s": 0.1},
    )  # fmt: skip
    engine = db.create_db_engine(settings)
    db.ensure_schema(engine)
    sample = load_sample().frame
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    PriceRepository(engine).upsert(sample[sample["date"] <= TRAINED_UNTIL], ingested_at=now)
    config = TrainConfig(models=("garch",), plots=False, champions=False)
    train(engine, settings, config, ["^GSPC", "^IXIC"])
    # The same prices again: v2 equals v1, so the training leaves it challenger, not promoted.
    train(engine, settings, TrainConfig(models=("garch",), plots=False, champions=False,
                                        force=True), ["^GSPC", "^IXIC"])  # fmt: skip
    PriceRepository(engine).upsert(sample, ingested_at=now)
    yield settings, engine, connect(settings)
    engine.dispose()


def _win(registry: Registry, name: str) -> None:
    """Have the training's decision judge v2 on losses where it clearly beats v1."""
    dates = pd.bdate_range("2017-01-02", periods=60)
    losses = 0.2 + np.random.default_rng(1).exponential(0.5, len(dates))
    decision = registry.consider(
        name, "2", losses_frame("X", dates, losses), lambda _v: losses_frame("X", dates, losses * 2)
    )
    assert decision.live, decision
    assert not decision.promote
    assert f"waiting for {MIN_DAYS} live days" in decision.reason


def _gspc_waits(live: tuple[Settings, Engine, MlflowClient]) -> Registry:
    """The registry, after ^GSPC's v2 won at training and waits for live evidence."""
    settings, engine, client = live
    registry = Registry(client, PromotionLog(engine), settings.promotion, actor="tests")
    _win(registry, GSPC)
    return registry


def _store_forecasts(settings: Settings, engine: Engine) -> list[dt.date]:
    """Hand-made 1-day forecasts of v1 and v2 from the last trained close on; their origins.

    On ^GSPC v2 forecasts 1.05 times the next day's realized volatility and v1 2.5 times
    it; on ^IXIC the factors are swapped.
    """
    prices = PriceRepository(engine).load(["^GSPC", "^IXIC"])
    datasets, _ = daily_data_by_ticker(prices, settings.quality)
    factors = {"^GSPC": {"1": 2.5, "2": 1.05}, "^IXIC": {"1": 1.05, "2": 2.5}}
    rows = live_forecasts(datasets, TRAINED_UNTIL, factors, days=12)
    PredictionRepository(engine).upsert(rows)
    return sorted({r.origin_date for r in rows})


def _invoke(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str, min_days: int = MIN_DAYS
) -> tuple[int, str]:
    monkeypatch.setenv("VOLFORECAST_HOME", str(settings.home))
    monkeypatch.setenv("VOLFORECAST_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VOLFORECAST_PROMOTION__MIN_LIVE_DAYS", str(min_days))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output


def _wait_both(registry: Registry) -> None:
    """Both v2 win at training: each waits, tagged and logged."""
    client, promotions = registry.client, registry.log
    for name in (GSPC, IXIC):
        _win(registry, name)
        assert registry.alias_version(name, names.PRODUCTION) == "1"
        assert registry.alias_version(name, names.CHALLENGER) == "2"
        tags = client.get_model_version(name, "2").tags
        assert tags[names.TAG_DECISION] == names.LIVE
        assert tags[names.TAG_LIVE_SINCE] == TRAINED_UNTIL
        wait = promotions.events(name)[-1]
        assert (wait.action, wait.version, wait.candidate) == ("wait", "1", "2")
        assert wait.metrics["qlike_ratio"] == pytest.approx(0.5)
    assert [w.registered_model for w in waiting_challengers(client)] == [GSPC, IXIC]


def _forecast_beside_production(settings: Settings, engine: Engine, client: MlflowClient) -> None:
    """The daily forecasts: each waiting challenger forecasts beside production."""
    waiting = ProductionModels(client, alias=names.CHALLENGER)
    waiting.refresh()
    production = ProductionModels(client)
    production.refresh()
    done = predict_all(engine, settings, production, horizon=1, as_of=dt.date(2018, 12, 31),
                       challengers=waiting)  # fmt: skip
    assert done.paths == 4, done.failures
    assert set(done.vol_pct_by_model) == {"GARCH", "GARCH (challenger)"}
    stored = PredictionRepository(engine).frame(["^GSPC"], start=dt.date(2019, 1, 1),
                                                served_as=None)  # fmt: skip
    assert sorted(zip(stored["model_version"], stored["served_as"], strict=True)) == [
        ("1", "production"), ("2", "challenger"),
    ]  # fmt: skip


def _compare_the_loser(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, origins: list[dt.date]
) -> None:
    """``models compare`` on ^IXIC's waiting v2, which loses every live day."""
    code, output = _invoke(settings, monkeypatch, "models", "compare", IXIC, "--json")
    assert code == ExitCode.OK, output
    payload = json.loads(output)
    assert payload["status"] == "not beating production"
    assert payload["live_days"] == len(origins)
    assert payload["qlike_challenger"] > payload["qlike_production"]
    assert payload["dm_pvalue"] > 0.5
    assert len(payload["days"]) == payload["live_days"]
    code, output = _invoke(settings, monkeypatch, "models", "compare", IXIC)
    assert code == ExitCode.OK, output
    assert "Live A/B of garch_volatility_ixic" in output
    assert f"not beating production, 12/{MIN_DAYS} live days" in output


def _assert_rejected(registry: Registry, name: str) -> None:
    """v2 of ``name`` was rejected after its live days: logged, no challenger, retagged."""
    assert registry.alias_version(name, names.PRODUCTION) == "1"
    assert registry.alias_version(name, names.CHALLENGER) is None
    tags = registry.client.get_model_version(name, "2").tags
    assert tags[names.TAG_DECISION] == names.NOT_PROMOTED
    rejected = registry.log.events(name)[-1]
    # Logged as the challenger alias's removal: a replay of the log gives where it stands.
    assert (rejected.alias, rejected.action, rejected.version, rejected.previous_version,
            rejected.candidate) == ("challenger", "reject", None, "2", "2")  # fmt: skip
    assert f"rejected after {MIN_DAYS} live days" in rejected.reason


def test_a_winning_challenger_waits_and_is_promoted_after_n_live_days_and_not_before(
    live: tuple[Settings, Engine, MlflowClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine, client = live
    promotions = PromotionLog(engine)
    registry = Registry(client, promotions, settings.promotion, actor="tests")
    _wait_both(registry)
    _forecast_beside_production(settings, engine, client)

    origins = _store_forecasts(settings, engine)
    before = len(promotions.events())
    # Judged on the day after origin k, the record holds k + 1 live days.
    early = promote_live(engine, settings, client, as_of=origins[MIN_DAYS - 1])
    assert [o.promoted for o in early.outcomes] == [False, False]
    assert [o.record["live_days"] for o in early.outcomes] == [MIN_DAYS - 1] * 2
    assert [o.record["status"] for o in early.outcomes] == ["waiting", "waiting"]
    assert len(promotions.events()) == before, "a waiting challenger is not logged every day"

    # Before the daily job decides: the loser's record says why it will not be promoted.
    _compare_the_loser(settings, monkeypatch, origins)
    due = promote_live(engine, settings, client, as_of=origins[MIN_DAYS], actor="daily")
    outcome = {o.registered_model: o for o in due.outcomes}
    assert outcome[GSPC].promoted
    assert outcome[GSPC].record["live_days"] == MIN_DAYS
    assert not outcome[IXIC].promoted, "it loses live"
    assert outcome[IXIC].rejected, "its N live days are up: it is rejected, the A/B is over"
    assert outcome[IXIC].record["status"] == "rejected"
    assert due.to_dict()["rejected"] == [f"{IXIC} v2"]
    assert registry.alias_version(GSPC, names.PRODUCTION) == "2"
    assert registry.alias_version(GSPC, names.CHALLENGER) is None
    assert registry.alias_version(IXIC, names.PRODUCTION) == "1"
    _assert_rejected(registry, IXIC)
    promoted = promotions.events(GSPC)[-1]
    assert (promoted.action, promoted.version, promoted.previous_version) == ("promote", "2", "1")
    assert promoted.actor == "daily"
    assert f"after {MIN_DAYS} live days" in promoted.reason
    assert promoted.metrics["qlike_challenger"] < promoted.metrics["qlike_production"]
    assert client.get_model_version(GSPC, "2").tags[names.TAG_DECISION] == names.PROMOTED
    logged = len(promotions.events())
    assert logged == before + 2, "one promotion, one rejection"

    # Re-running the day, through the command the daily DAG runs: nothing moves twice.
    code, output = _invoke(settings, monkeypatch, "models", "live", "--as-of",
                           origins[MIN_DAYS].isoformat())  # fmt: skip
    assert code == ExitCode.OK, output
    assert "no challenger waits for live evidence" in output
    assert GSPC not in output
    assert IXIC not in output
    assert len(promotions.events()) == logged
    assert registry.alias_version(GSPC, names.PRODUCTION) == "2"

    # The record stays readable after the promotion.
    record = live_record_of(engine, settings, client, GSPC, as_of=origins[MIN_DAYS])
    assert record.status == "promoted"
    assert record.live_days == MIN_DAYS


def test_with_no_live_days_asked_the_decision_promotes_a_winner_at_once(
    live: tuple[Settings, Engine, MlflowClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine, client = live
    promotions = PromotionLog(engine)
    registry = Registry(client, promotions, PromotionSettings(), actor="tests")
    dates = pd.bdate_range("2017-01-02", periods=60)
    losses = 0.2 + np.random.default_rng(1).exponential(0.5, len(dates))
    decision = registry.consider(
        GSPC, "2", losses_frame("X", dates, losses), lambda _v: losses_frame("X", dates, losses * 2)
    )
    assert decision.promote
    assert not decision.live
    assert registry.alias_version(GSPC, names.PRODUCTION) == "2"
    assert "wait" not in {e.action for e in promotions.events()}
    assert names.TAG_LIVE_SINCE not in client.get_model_version(GSPC, "2").tags
    assert waiting_challengers(client) == []
    code, output = _invoke(settings, monkeypatch, "models", "compare", GSPC)
    assert code != ExitCode.OK
    assert "no challenger waiting for live evidence" in output


def test_the_api_serves_production_and_the_waiting_challenger_only_when_asked(
    live: tuple[Settings, Engine, MlflowClient],
) -> None:
    settings, engine, client = live
    body = {"ticker": "^GSPC", "model_type": "GARCH", "horizon": 2}
    with TestClient(create_app(settings)) as api:
        refused = api.post("/predict", json=body | {"alias": "challenger"})
        assert refused.status_code == 404, refused.text
        assert "no GARCH challenger of ^GSPC waits for live evidence" in refused.text
        _win(Registry(client, PromotionLog(engine), settings.promotion, actor="tests"), GSPC)

        def asked(alias: str) -> dict[str, object]:
            answer = api.post("/predict", json=body | {"alias": alias})
            assert answer.status_code in {200, 404}, answer.text
            return dict(answer.json())

        deadline = time.monotonic() + 10
        while asked("challenger").get("model_version") != "2":
            assert time.monotonic() < deadline, "the waiting challenger was never loaded"
            time.sleep(0.1)
        served = asked("production")
        assert (served["model_version"], served["alias"]) == ("1", "production")
        assert api.post("/predict", json=body).json()["model_version"] == "1"
        challenger = asked("challenger")
        assert (challenger["model_version"], challenger["alias"]) == ("2", "challenger")
        assert api.post("/predict", json=body | {"alias": "staging"}).status_code == 422


def test_a_training_while_a_challenger_waits_leaves_it_waiting(
    live: tuple[Settings, Engine, MlflowClient],
) -> None:
    settings, engine, client = live
    promotions = PromotionLog(engine)
    registry = Registry(client, promotions, settings.promotion, actor="tests")
    _win(registry, GSPC)
    # It began waiting a week before the retrain's last close: its A/B is within its time.
    client.set_model_version_tag(GSPC, "2", names.TAG_LIVE_SINCE, "2018-12-20")

    # The weekly retrain: v3 is judged against production, never put beside the waiting v2.
    config = TrainConfig(models=("garch",), plots=False, champions=False, force=True)
    report = train(engine, settings, config, ["^GSPC"])
    (outcome,) = report.outcomes
    assert (outcome.version, outcome.promoted) == ("3", False), outcome
    assert registry.alias_version(GSPC, names.CHALLENGER) == "2", "v2 keeps its live days"
    assert registry.alias_version(GSPC, names.PRODUCTION) == "1"
    tags = {v: client.get_model_version(GSPC, v).tags[names.TAG_DECISION] for v in ("2", "3")}
    assert tags == {"2": names.LIVE, "3": names.NOT_PROMOTED}
    judged = [e for e in promotions.events(GSPC) if e.candidate == "3"]
    assert [e.action for e in judged] == ["reject"], "v3 is judged, never registered challenger"
    assert [w.version for w in waiting_challengers(client)] == ["2"]

    # A v4 that wins is not made challenger either; the reason names the waiting version.
    train(engine, settings, config, ["^GSPC"])
    # Past its time (2 N + 10 weekdays), the waiting v2 would be replaced instead.
    client.set_model_version_tag(GSPC, "2", names.TAG_LIVE_SINCE, "2018-06-01")
    v4_tags = client.get_model_version(GSPC, "4").tags
    assert registry._waiting_version(GSPC, "4", v4_tags) is None
    client.set_model_version_tag(GSPC, "2", names.TAG_LIVE_SINCE, "2018-12-20")
    dates = pd.bdate_range("2017-01-02", periods=60)
    losses = 0.2 + np.random.default_rng(2).exponential(0.5, len(dates))
    decision = registry.consider(
        GSPC, "4", losses_frame("X", dates, losses),
        lambda _v: losses_frame("X", dates, losses * 2), lambda _v: 3,
    )  # fmt: skip
    assert not decision.promote
    assert not decision.live
    assert decision.reason.startswith(
        f"v2 is waiting for live evidence (3 of {MIN_DAYS} days); this version was not put "
        "beside it (beats production"
    ), decision.reason
    assert promotions.events(GSPC)[-1].reason == f"v4 not promoted: {decision.reason}"
    assert registry.alias_version(GSPC, names.CHALLENGER) == "2"


def test_the_daily_job_retags_a_challenger_whose_alias_was_moved_by_hand(
    live: tuple[Settings, Engine, MlflowClient],
) -> None:
    settings, engine, client = live
    registry = _gspc_waits(live)
    _win(registry, IXIC)
    client.set_registered_model_alias(GSPC, names.CHALLENGER, "1")  # by hand, in MLflow's UI

    assert [w.registered_model for w in waiting_challengers(client)] == [IXIC]
    day = dt.date(2018, 6, 15)  # within IXIC's A/B time
    report = promote_live(engine, settings, client, as_of=day)
    assert [(s.registered_model, s.version, s.settlement) for s in report.settled] == [
        (GSPC, "2", "decided")
    ]
    assert client.get_model_version(GSPC, "2").tags[names.TAG_DECISION] == names.NOT_PROMOTED
    assert client.get_model_version(IXIC, "2").tags[names.TAG_DECISION] == names.LIVE
    assert [o.registered_model for o in report.outcomes] == [IXIC]
    assert promote_live(engine, settings, client, as_of=day).settled == [], "retagged once"


def test_compare_names_an_unknown_model_as_unknown(
    live: tuple[Settings, Engine, MlflowClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _, _ = live
    code, output = _invoke(settings, monkeypatch, "models", "compare", "garch_volatility_nope")
    assert code == ExitCode.ERROR, output
    assert "garch_volatility_nope is not a registered model" in output
    assert "no challenger waiting" not in output


def test_without_live_days_neither_predict_nor_the_service_looks_for_challengers(
    live: tuple[Settings, Engine, MlflowClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine, client = live
    _win(Registry(client, PromotionLog(engine), settings.promotion, actor="tests"), GSPC)
    code, output = _invoke(settings, monkeypatch, "predict", "--tickers", "^GSPC", "--as-of",
                           "2018-12-31", "--horizon", "1", min_days=0)  # fmt: skip
    assert code == ExitCode.OK, output
    stored = PredictionRepository(engine).frame(
        ["^GSPC"], start=dt.date(2018, 12, 31), served_as=None
    )
    assert sorted(set(stored["model_version"])) == ["1"], "no challenger forecasts with N = 0"
    assert set(stored["served_as"]) == {"production"}

    without = settings.model_copy(update={"promotion": PromotionSettings()})
    with TestClient(create_app(without)) as api:
        asked = api.post("/predict", json={"ticker": "^GSPC", "model_type": "GARCH",
                                           "horizon": 1, "alias": "challenger"})  # fmt: skip
        assert asked.status_code == 404, asked.text
        time.sleep(1.0)  # several of the service's refreshes (every 0.2 s here)
        service = api.app.state.service  # type: ignore[attr-defined]
        assert service.models.last_refresh is not None
        assert service.challengers.last_refresh is None, "the registry was not asked for them"


def test_an_ab_that_never_gets_live_days_ends_and_blocks_no_later_version(
    live: tuple[Settings, Engine, MlflowClient],
) -> None:
    settings, engine, client = live
    registry = _gspc_waits(live)
    # No forecast of v2 is ever stored (its files unreadable, say): within its time it waits.
    in_time = promote_live(engine, settings, client, as_of=dt.date(2018, 6, 15))
    assert [o.rejected for o in in_time.outcomes] == [False]
    assert registry.alias_version(GSPC, names.CHALLENGER) == "2"
    # Past 2 N + 10 weekdays from its first live day it is rejected, and says why.
    late = promote_live(engine, settings, client, as_of=dt.date(2018, 7, 31))
    assert [o.rejected for o in late.outcomes] == [True]
    assert "past the A/B's time" in registry.log.events(GSPC)[-1].reason
    assert registry.alias_version(GSPC, names.CHALLENGER) is None
    assert client.get_model_version(GSPC, "2").tags[names.TAG_DECISION] == names.NOT_PROMOTED


def test_a_waiting_challenger_does_not_hold_back_a_model_without_production(
    live: tuple[Settings, Engine, MlflowClient],
) -> None:
    settings, engine, client = live
    registry = _gspc_waits(live)
    client.delete_model_version(GSPC, "1")  # production deleted by hand, its alias with it
    train(engine, settings, TrainConfig(models=("garch",), plots=False, champions=False,
                                        force=True), ["^GSPC"])  # fmt: skip
    # Nothing to be judged beside: the new version serves at once, as before live A/Bs.
    assert registry.alias_version(GSPC, names.PRODUCTION) == "3"


def test_a_waiting_challenger_promoted_but_not_yet_settled_is_not_served_as_challenger(
    live: tuple[Settings, Engine, MlflowClient],
) -> None:
    client = live[2]
    _gspc_waits(live)
    # A promotion killed after the alias move: production and challenger on v2, still `live`.
    client.set_registered_model_alias(GSPC, names.PRODUCTION, "2")
    waiting = ProductionModels(client, alias=names.CHALLENGER)
    waiting.refresh()
    assert waiting.find("garch", "^GSPC") is None, "its forecasts are production's"
