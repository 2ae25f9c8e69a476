"""The dashboard shows each ticker's champion: in the registry tab and first in the forecast tab."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Engine

from tests.dashboard.conftest import UseEnv, run_app
from tests.dashboard.test_app import _assert_clean, _forecast_table, _frames, _tab, _texts
from volforecast.data.repositories.predictions import PredictionRepository, PredictionRow
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.registry.champion import ChampionChoice
from volforecast.registry.champion_book import ChampionBook
from volforecast.settings import Settings

NOW = dt.datetime(2024, 1, 15, 18, tzinfo=dt.UTC)


def _paths(ticker: str, origin: dt.date, model_type: str, vol_pct: float) -> list[PredictionRow]:
    days = pd.bdate_range(origin + dt.timedelta(days=1), periods=30).date
    return [
        PredictionRow(ticker, model_type, origin, step, day, vol_pct + step / 100, "1", None, NOW)
        for step, day in enumerate(days, start=1)
    ]


def test_the_champion_is_listed_marked_and_shown_first(
    engine: Engine, settings: Settings, use_env: UseEnv
) -> None:
    # Given two tickers' prices, stored GARCH and HAR paths of ^GSPC, HAR its champion and
    # GARCH ^IXIC's
    prices = load_sample().frame.groupby("ticker").tail(300).reset_index(drop=True)
    PriceRepository(engine).upsert(prices, ingested_at=NOW)
    origin = pd.Timestamp(prices["date"].max()).date()
    rows = _paths("^GSPC", origin, "GARCH", 1.0) + _paths("^GSPC", origin, "HAR", 2.0)
    PredictionRepository(engine).upsert(rows)
    book = ChampionBook(engine)
    book.record(ChampionChoice("^GSPC", "har", None, "first champion"), actor="t", now=NOW)
    book.record(ChampionChoice("^IXIC", "garch", None, "first champion"), actor="t", now=NOW)
    use_env(settings)  # and no API: the forecast tab reads the stored paths

    # When the dashboard runs on ^GSPC
    at = run_app()
    _assert_clean(at)

    # Then the registry tab lists each ticker's champion
    champions = next(f for f in _frames(_tab(at, "Model registry")) if "champion" in f.columns)
    assert dict(zip(champions["ticker"], champions["champion"], strict=True)) == {
        "^GSPC": "HAR", "^IXIC": "GARCH",
    }  # fmt: skip
    assert any("Wins: HAR 1, GARCH 1" in c or "Wins: GARCH 1, HAR 1" in c
               for c in _texts(at.caption)), _texts(at.caption)  # fmt: skip
    # the forecast tab marks it, puts it first and shows it alone at first
    forecast = _tab(at, "Volatility Forecast")
    labels = [m.label for m in forecast.metric]
    assert labels[2:] == ["HAR (champion) next day", "GARCH next day"], labels
    chosen = at.multiselect(key="models_^GSPC")
    assert chosen.value == ["HAR"]
    assert "HAR (champion)" in chosen.options
    table = _forecast_table(at)
    assert "HAR vol %" in table.columns
    assert "GARCH vol %" not in table.columns

    # When the user adds GARCH, both are shown
    chosen.select("GARCH").run()
    _assert_clean(at)
    assert {"HAR vol %", "GARCH vol %"} <= set(_forecast_table(at).columns)
