"""The banner for stale prices, at the top of the dashboard (AppTest on a real database)."""

from __future__ import annotations

import datetime as dt

import pytest
import streamlit as st
from sqlalchemy import Engine

from tests.dashboard.conftest import UseEnv, run_app
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.jobs import freshness
from volforecast.settings import Settings

BANNER = "Prices are stale since"


def _banners(texts: list[str]) -> list[str]:
    return [t for t in texts if t.startswith(BANNER)]


def test_stale_prices_raise_a_banner_and_fresh_ones_none(
    engine: Engine, settings: Settings, use_env: UseEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the sample's last month, which ends on 31 December 2018
    frame = load_sample().frame
    PriceRepository(engine).upsert(frame[frame["date"] >= "2018-12-01"],
                                   ingested_at=dt.datetime.now(dt.UTC))  # fmt: skip
    use_env(settings)
    # When the dashboard runs today, the banner names the first session missing and the last close
    at = run_app()
    assert not at.exception
    (banner,) = _banners([str(w.value) for w in at.warning])
    assert banner.startswith(f"{BANNER} 2019-01-02: the last stored close is 2018-12-31")
    assert "volforecast ingest --configured" in banner

    # When the latest closed session is that close's own, there is no banner
    monkeypatch.setattr(freshness, "latest_closed_session", lambda now=None: dt.date(2018, 12, 31))
    st.cache_data.clear()
    at = run_app()
    assert not at.exception
    assert _banners([str(w.value) for w in at.warning]) == []


def test_an_empty_database_gets_no_banner_the_tabs_say_what_to_load(
    engine: Engine, settings: Settings, use_env: UseEnv
) -> None:
    use_env(settings)
    at = run_app()
    assert _banners([str(w.value) for w in at.warning]) == []
