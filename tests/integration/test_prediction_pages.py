"""``GET /predictions`` pages kept in memory: the service's own rows show at once, another
process's within ``pages_cache_s``, and ``0`` reads the database on every request."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_api import _stored, _trained_home, _wait_for
from volforecast.api.app import create_app
from volforecast.data import db
from volforecast.data.repositories.predictions import PredictionRepository, PredictionRow
from volforecast.settings import Settings

pytestmark = pytest.mark.slow

BODY = {"ticker": "^GSPC", "model_type": "GARCH"}


def _elsewhere(settings: Settings) -> None:
    """Three rows stored by another process (as the daily job would), an older origin."""
    engine = db.create_db_engine(settings)
    made = dt.datetime(2018, 6, 1, 21, tzinfo=dt.UTC)
    PredictionRepository(engine).upsert([
        PredictionRow("^GSPC", "GARCH", dt.date(2018, 6, 1), step, dt.date(2018, 6, 3 + step),
                      1.0, "1", "run", made)
        for step in range(1, 4)
    ])  # fmt: skip
    engine.dispose()


def _total(client: TestClient) -> int:
    answer = client.get("/predictions/^GSPC")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    return int(answer.json()["total"])


def test_a_page_is_kept_until_the_service_stores_rows_or_it_ages(tmp_path: Path) -> None:
    settings = _trained_home(tmp_path / "var", pages_cache_s=60)  # ageing: the next test
    with TestClient(create_app(settings)) as client:
        client.post("/predict", json={**BODY, "horizon": 5})
        _wait_for(lambda: _stored(settings) == 5)
        assert _total(client) == 5
        _elsewhere(settings)
        assert _total(client) == 5, "another process's rows wait for the page to age"
        # The service stores steps 6-10 itself: every kept page is dropped at once.
        client.post("/predict", json={**BODY, "horizon": 10})
        _wait_for(lambda: _stored(settings) == 13)
        assert _total(client) == 13, "the service's own write dropped the kept page"
        _elsewhere(settings)  # the same rows again: nothing new
        newer = client.get("/predictions/^GSPC", params={"limit": 2}).json()
        assert [item["step"] for item in newer["items"]] == [1, 2]
        assert newer["items"][0]["origin_date"] > "2018-06-01"


@pytest.mark.parametrize("pages_cache_s", [0.5, 0.0], ids=["aged", "no-cache"])
def test_another_process_rows_show_once_the_page_ages(tmp_path: Path, pages_cache_s: float) -> None:
    settings = _trained_home(tmp_path / "var", pages_cache_s=pages_cache_s)
    with TestClient(create_app(settings)) as client:
        assert _total(client) == 0
        _elsewhere(settings)
        if pages_cache_s:  # kept until it ages; with no cache, read on every request
            assert _total(client) == 0
            time.sleep(pages_cache_s + 0.1)
        assert _total(client) == 3
