"""``POST /predict/batch``: many forecasts in one request, each as ``POST /predict`` answers it.

The registry is a real MLflow store trained by volforecast's own job and the app runs with its
real lifespan, as in ``test_api.py``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_api import _stored, _trained_home, _wait_for
from volforecast.api.app import create_app
from volforecast.api.schemas import MAX_BATCH
from volforecast.registry.tracking import connect
from volforecast.settings import Settings

pytestmark = pytest.mark.slow

GOOD = {"ticker": "^GSPC", "model_type": "GARCH", "horizon": 5}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """^GSPC's GARCH in production on the embedded store; ^IXIC has prices but no model."""
    return _trained_home(tmp_path_factory.mktemp("batch") / "var")


@pytest.fixture
def client(trained: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(trained)) as test_client:
        yield test_client


def test_each_item_is_answered_in_order_as_predict_answers_it_alone(
    client: TestClient, trained: Settings
) -> None:
    items = [
        GOOD,
        {"ticker": "nope", "model_type": "GARCH"},
        {"ticker": "^IXIC", "model_type": "GARCH", "horizon": 2},
        {"ticker": "^gspc", "horizon": 30},  # no model type: the champion, or GARCH
        {"ticker": "^GSPC", "model_type": "LSTM"},
    ]
    answer = client.post("/predict/batch", json={"items": items})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["answered"], body["failed"]) == (2, 3)
    first, unknown, untrained, default, no_lstm = body["items"]
    alone = client.post("/predict", json=GOOD).json()
    assert first["forecasts"] == alone["forecasts"]
    assert first["forecast_dates"] == alone["forecast_dates"]
    assert (first["model_version"], first["origin_date"]) == (
        alone["model_version"], alone["origin_date"],
    )  # fmt: skip
    # Each failure is said as /predict would say it alone, and the batch went on past it.
    for item, status, says in (
        (unknown, 404, "no prices are stored for 'NOPE'"),
        (untrained, 404, "volforecast train"),
        (no_lstm, 404, "no production LSTM"),
    ):
        assert (item["status"], item["title"]) == (status, HTTPStatus(status).phrase)
        assert says in item["detail"], item
        assert "forecasts" not in item
    assert unknown["ticker"] == "NOPE"
    assert (default["model_type"], default["horizon"], len(default["forecasts"])) == (
        "GARCH", 30, 30,
    )  # fmt: skip
    # Steps 1-5 and then 6-30 of one path: 30 rows, each stored once.
    _wait_for(lambda: _stored(trained) >= 30)
    time.sleep(0.3)
    assert _stored(trained) == 30
    metrics = client.get("/metrics").text
    assert 'volforecast_prediction_errors_total{reason="UnknownTickerError"} 1.0' in metrics
    assert 'volforecast_prediction_errors_total{reason="ModelNotFoundError"} 2.0' in metrics


def test_a_cached_batch_answers_the_same_again(client: TestClient) -> None:
    items = [GOOD, {**GOOD, "horizon": 1}, {**GOOD, "alias": "challenger"}]
    cold = client.post("/predict/batch", json={"items": items}).json()
    warm = client.post("/predict/batch", json={"items": items}).json()
    for before, after in zip(cold["items"], warm["items"], strict=True):
        before.pop("timestamp", None)
        after.pop("timestamp", None)
        assert before == after
    assert warm["items"][1]["forecasts"] == warm["items"][0]["forecasts"][:1]
    assert warm["items"][2]["status"] == 404  # no challenger waits


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"items": []}, "at least 1 item"),
        ({"items": [GOOD] * (MAX_BATCH + 1)}, f"at most {MAX_BATCH} items"),
        ({"items": [{**GOOD, "horizon": 31}]}, "body field 'items.0.horizon'"),
        # Outside the schema's model types: the whole batch, as a bad horizon is.
        (
            {"items": [GOOD, {**GOOD, "model_type": "PROPHET"}]},
            "body field 'items.1.model_type': unknown model type 'PROPHET'",
        ),
        ({"items": [GOOD], "extra": 1}, "not permitted"),
        ([GOOD], "valid dictionary"),
    ],
    ids=["empty", "too-many", "bad-item", "unknown-type", "extra-field", "bare-list"],
)
def test_a_malformed_batch_is_refused_whole_with_422(
    client: TestClient, body: object, says: str
) -> None:
    answer = client.post("/predict/batch", json=body)
    assert answer.status_code == 422, answer.text
    assert says in answer.json()["detail"]


def test_the_batch_has_a_body_limit_of_its_own(client: TestClient, trained: Settings) -> None:
    full = json.dumps({"items": [GOOD] * MAX_BATCH}).encode()
    assert trained.api.max_body_bytes < len(full) < trained.api.max_batch_body_bytes
    headers = {"content-type": "application/json"}
    answer = client.post("/predict/batch", content=full, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["answered"] == MAX_BATCH
    # The same size is too large for a single forecast, and the batch's own limit holds.
    padded = full + b" " * (trained.api.max_batch_body_bytes - len(full) + 1)
    assert client.post("/predict", content=full, headers=headers).status_code == 413
    too_big = client.post("/predict/batch", content=padded, headers=headers)
    assert too_big.status_code == 413
    assert f"larger than {trained.api.max_batch_body_bytes} bytes" in too_big.json()["detail"]
    # Streamed without a declared length, the bytes are counted as they come.
    streamed = client.post("/predict/batch", content=iter([full]), headers=headers)
    assert streamed.status_code == 200, streamed.text
    halves = iter([padded[: len(padded) // 2], padded[len(padded) // 2 :]])
    assert client.post("/predict/batch", content=halves, headers=headers).status_code == 413


def test_a_database_that_is_away_gives_503_for_the_batch(trained: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "db"
    folder.write_text("in the way")
    away = trained.model_copy(update={"database_url": f"sqlite:///{folder / 'volforecast.db'}"})
    with TestClient(create_app(away)) as client:
        down = client.post("/predict/batch", json={"items": [GOOD, {**GOOD, "ticker": "^IXIC"}]})
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] == "5"
        assert "database is not answering" in down.json()["detail"]
        folder.unlink()
        folder.mkdir()
        shutil.copyfile(trained.home / "volforecast.db", folder / "volforecast.db")
        back = client.post("/predict/batch", json={"items": [GOOD]})
        assert back.status_code == 200, back.text
        assert back.json()["answered"] == 1


def test_a_model_never_promoted_is_named_rather_than_asked_for_again(tmp_path: Path) -> None:
    settings = _trained_home(tmp_path / "var")
    # As after a fit that did not converge: registered, no version in production.
    connect(settings).delete_registered_model_alias("garch_volatility_gspc", "production")
    with TestClient(create_app(settings)) as client:
        answer = client.post("/predict", json=GOOD)
        assert answer.status_code == 404
        detail = answer.json()["detail"]
        assert "garch_volatility_gspc is registered, but none of its versions was promoted" in (
            detail
        )
        assert "volforecast train" not in detail
        never = client.post("/predict", json={**GOOD, "model_type": "HAR"}).json()["detail"]
        assert "yet: train one with `volforecast train --tickers ^GSPC --models har`" in never
