"""Champions as stored: a decision on a stale incumbent is refused, and serving copes."""

from __future__ import annotations

import datetime as dt

import pytest
from mlflow import MlflowClient
from sqlalchemy import Engine

from volforecast.data import db
from volforecast.jobs.predict import Forecaster
from volforecast.registry.champion import ChampionChoice
from volforecast.registry.champion_book import ChampionBook, log_name
from volforecast.registry.promotion_log import LogConflictError, PromotionLog
from volforecast.registry.serving import ProductionModels
from volforecast.settings import Settings

NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def choice(champion: str, incumbent: str | None, why: str = "test") -> ChampionChoice:
    return ChampionChoice("AAPL", champion, incumbent, why, {"qlike_har": 0.3})


def test_a_decider_that_read_a_stale_incumbent_decides_again(engine: Engine) -> None:
    db.ensure_schema(engine)
    book = ChampionBook(engine)
    book.record(choice("har", None), actor="a", now=NOW)
    # A second decider read "no champion" too: its insert must not land beside the first.
    with pytest.raises(LogConflictError):
        book.record(choice("garch", None), actor="b", now=NOW)
    book.record(choice("lstm", "har"), actor="a", now=NOW)
    # One that still thinks HAR holds it may neither replace nor re-justify LSTM.
    with pytest.raises(LogConflictError):
        book.record(choice("garch", "har"), actor="b", now=NOW)
    with pytest.raises(LogConflictError):
        book.record(choice("har", "har", "stale keep"), actor="b", now=NOW)
    stored = book.all()["AAPL"]
    assert (stored.model, stored.reason) == ("lstm", "test")
    log_ = PromotionLog(engine).events(log_name("AAPL"))
    assert [(e.seq, e.previous_version, e.version) for e in log_] == [
        (1, None, "HAR"), (2, "HAR", "LSTM")
    ]  # fmt: skip


def _forecaster(engine: Engine, settings: Settings, tmp_path) -> Forecaster:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return Forecaster(engine, settings, ProductionModels(client))


def test_a_champion_the_service_has_not_loaded_is_answered_by_garch(
    engine: Engine, settings: Settings, tmp_path
) -> None:
    db.ensure_schema(engine)
    ChampionBook(engine).record(choice("har", None), actor="a", now=NOW)
    forecaster = _forecaster(engine, settings, tmp_path)
    assert forecaster.champions() == {"AAPL": "har"}
    # No HAR version is loaded (right after training, before the models' refresh).
    assert forecaster.champion("AAPL") == ("garch", False)


def test_a_database_from_before_champions_still_serves(tmp_path) -> None:
    settings = Settings(home=tmp_path / "var")
    engine = db.create_db_engine(settings)
    db.upgrade(engine, "0007")
    forecaster = _forecaster(engine, settings, tmp_path)
    assert forecaster.champions() == {}
    assert forecaster.champion("AAPL") == ("garch", False)
    engine.dispose()
