"""The prediction service: every route, every error path, alias moves, stored predictions.

The registry is a real MLflow store trained by volforecast's own job; the app runs with its
real lifespan (FastAPI's TestClient) and, in the last tests, as ``volforecast serve`` under
uvicorn, and the registry as a real ``mlflow server`` that is then stopped.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from sqlalchemy import Engine, func, select

from tests.conftest import make_settings
from tests.integration.servers import clean_env, free_port, serve_mlflow, volforecast_server
from volforecast.api.app import create_app
from volforecast.api.client import ApiClient
from volforecast.api.routes import health as health_route
from volforecast.core.features import DailyData
from volforecast.core.risk import normal_var_pct
from volforecast.data import db
from volforecast.data.repositories.predictions import (
    PREDICTIONS,
    PredictionRepository,
    PredictionRow,
)
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.evaluation.test_window import FIT_FRACTION
from volforecast.jobs.risk import RISK_SEED
from volforecast.jobs.train import TrainConfig, train
from volforecast.models.catalog import build_model
from volforecast.registry.aliases import Registry
from volforecast.registry.promotion_log import PromotionLog
from volforecast.registry.tracking import connect
from volforecast.settings import Settings

pytestmark = pytest.mark.slow

DAYS = 900
LATER = 15
"""Closes stored after training: a forecast must start from them, not from the training end."""
GARCH_ONLY = TrainConfig(models=("garch",), plots=False)
QUICK = {"model_refresh_s": 0.2, "prices_refresh_s": 0.0, "write_interval_s": 0.1}


def _sample() -> pd.DataFrame:
    frame = load_sample().frame
    return frame.groupby("ticker").tail(DAYS).reset_index(drop=True)


def _store(settings: Settings, frame: pd.DataFrame) -> None:
    engine = db.create_db_engine(settings)
    db.ensure_schema(engine)
    PriceRepository(engine).upsert(frame, ingested_at=dt.datetime.now(dt.UTC))
    engine.dispose()


def _trained_home(home: Path, database_url: str = "", **api: Any) -> Settings:
    """^GSPC's GARCH in production, trained before the last LATER closes were stored."""
    settings = make_settings(home=home, database_url=database_url, api={**QUICK, **api})
    frame = _sample()
    _store(settings, frame.groupby("ticker").head(DAYS - LATER))
    engine = db.create_db_engine(settings)
    report = train(engine, settings, GARCH_ONLY, ["^GSPC"])
    engine.dispose()
    assert report.complete, report.outcomes
    _store(settings, frame)
    return settings


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """An embedded home (SQLite, local MLflow store) with one model in production."""
    return _trained_home(tmp_path_factory.mktemp("api") / "var")


@pytest.fixture
def client(trained: Settings) -> Iterator[TestClient]:
    """The app, started and stopped through its lifespan."""
    with TestClient(create_app(trained)) as test_client:
        yield test_client


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _stored(settings: Settings, ticker: str = "^GSPC") -> int:
    engine = db.create_db_engine(settings)
    with engine.connect() as connection:
        count = connection.execute(
            select(func.count()).select_from(PREDICTIONS).where(PREDICTIONS.c.ticker == ticker)
        ).scalar_one()
    engine.dispose()
    return int(count)


def test_root_docs_and_schema_answer(client: TestClient) -> None:
    root = client.get("/")
    assert root.status_code == 200
    assert root.json()["links"]["predict"] == "/predict"
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/", "/health", "/models", "/predict", "/predictions/{ticker}", "/metrics"} <= set(
        schema["paths"]
    )


def test_the_registered_model_loads_in_a_fresh_interpreter(trained: Settings) -> None:
    # As `mlflow models serve` loads it: no volforecast module imported beforehand.
    code = (
        "import mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model('models:/garch_volatility_gspc@production')\n"
        "print(m.predict(pd.DataFrame({'horizon': [3]}))['vol_pct'].round(6).tolist())"
    )
    env = clean_env() | {"MLFLOW_TRACKING_URI": trained.mlflow_tracking_uri}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    vol_pct = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(vol_pct) == 3
    assert all(v > 0 for v in vol_pct)


def test_health_checks_database_registry_and_models(client: TestClient) -> None:
    answer = client.get("/health")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "registry", "models"}
    assert body["models_served"] == 1


def test_health_says_stale_since_in_its_body_and_stays_200(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sample ends on 31 December 2018: stale today, yet the service itself is fine.
    answer = client.get("/health")
    assert answer.status_code == 200, "stale data must not get a working API killed"
    body = answer.json()
    assert body["status"] == "ok"
    assert body["prices"]["fresh"] is False
    assert body["prices"]["last_close"] == "2018-12-31"
    assert body["prices"]["detail"].startswith("stale since 2019-01-02: last close 2018-12-31")
    # As of that session, the same prices are fresh.
    monkeypatch.setattr(health_route, "latest_closed_session", lambda: dt.date(2018, 12, 31))
    prices = client.get("/health").json()["prices"]
    assert prices["fresh"] is True
    assert prices["detail"] == "fresh: last close 2018-12-31, NYSE session 2018-12-31"


def test_models_lists_the_production_version_with_its_metrics(client: TestClient) -> None:
    answer = client.get("/models")
    assert answer.status_code == 200
    (model,) = answer.json()
    assert model["model_name"] == "garch_volatility_gspc"
    assert model["ticker"] == "^GSPC"
    assert model["stage"] == "production"
    assert model["version"] == "1"
    assert model["metrics"]["qlike_h1_range"] > 0
    assert model["converged"] is True


def test_predict_answers_with_production_from_the_latest_stored_close(
    client: TestClient, trained: Settings
) -> None:
    answer = client.post("/predict", json={"ticker": "^GSPC", "model_type": "GARCH", "horizon": 5})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_type"] == "GARCH"
    assert body["model_version"] == "1"
    assert len(body["forecasts"]) == len(body["forecast_dates"]) == 5

    # The same model fitted independently on the training window, moved to the last close.
    engine = db.create_db_engine(trained)
    prices = PriceRepository(engine).load(["^GSPC"])
    engine.dispose()
    data = DailyData.from_prices(prices, "^GSPC")
    trained_on = data.head(len(data) - LATER)
    own = build_model("garch").fit(trained_on.head(int(len(trained_on) * FIT_FRACTION)))
    expected = own.update(data).forecast(5)
    assert body["origin_date"] == data.last_date.date().isoformat()
    assert body["forecast_dates"] == [d.isoformat() for d in expected.forecast_dates]
    np.testing.assert_allclose(body["forecasts"], expected.vol_pct, rtol=1e-8)
    # Trading days: no weekend, no holiday (2019-01-01 is skipped after 2018-12-31).
    dates = [dt.date.fromisoformat(d) for d in body["forecast_dates"]]
    assert all(d.weekday() < 5 for d in dates)
    assert dt.date(2019, 1, 1) not in dates


def test_risk_gives_var_and_es_from_the_models_own_tails(
    client: TestClient, trained: Settings
) -> None:
    answer = client.get("/risk/^gspc", params={"model_type": "garch"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["ticker"], body["model_type"], body["model_version"]) == ("^GSPC", "GARCH", "1")
    levels = [(item["days"], item["level"]) for item in body["items"]]
    assert levels == [(d, c) for d in (1, 10) for c in (0.95, 0.975, 0.99)]
    assert all(0 < item["var_pct"] <= item["es_pct"] for item in body["items"])
    assert body["items"][0]["method"] == "filtered historical simulation"
    assert "each shock feeding the variance" in body["items"][-1]["method"]

    # The same model fitted independently on the training window, moved to the last close,
    # with the service's seed: the same figures.
    engine = db.create_db_engine(trained)
    data = DailyData.from_prices(PriceRepository(engine).load(["^GSPC"]), "^GSPC")
    engine.dispose()
    trained_on = data.head(len(data) - LATER)
    own = build_model("garch").fit(trained_on.head(int(len(trained_on) * FIT_FRACTION)))
    expected = own.update(data).tail_risk(rng=np.random.default_rng(RISK_SEED))
    assert body["origin_date"] == data.last_date.date().isoformat()
    np.testing.assert_allclose([i["var_pct"] for i in body["items"]],
                               [r.var_pct for r in expected], rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose([i["es_pct"] for i in body["items"]],
                               [r.es_pct for r in expected], rtol=1e-6)  # fmt: skip
    # The index's own tails are fatter than the normal's at 99 %.
    vol_pct = client.post("/predict", json={"ticker": "^GSPC", "model_type": "GARCH"})
    one_day_99 = body["items"][2]["var_pct"]
    assert one_day_99 > normal_var_pct(vol_pct.json()["forecasts"][0], 0.99)

    one = client.get("/risk/^GSPC", params={"model_type": "GARCH", "level": 0.99, "days": 10})
    assert one.status_code == 200, one.text
    assert one.json()["items"] == [body["items"][-1]], "asked again: the same figure"
    # Without a model type, the champion (none here) or GARCH answers.
    assert client.get("/risk/^GSPC").json()["items"] == body["items"]


def test_a_garch_card_reads_its_fitted_parameters(client: TestClient) -> None:
    answer = client.get("/models/GARCH_volatility_gspc/card")
    assert answer.status_code == 200, answer.text
    card = answer.json()
    assert (card["model_name"], card["ticker"], card["model_type"]) == (
        "garch_volatility_gspc", "^GSPC", "GARCH"
    )  # fmt: skip
    p = card["params"]
    persistence = p["alpha[1]"] + p["beta[1]"]
    assert card["persistence"] == pytest.approx(persistence)
    assert card["half_life_days"] == pytest.approx(np.log(0.5) / np.log(persistence))
    long_run = p["omega"] / (1 - persistence)
    assert card["long_run_vol_ann_pct"] == pytest.approx(np.sqrt(252 * long_run))
    assert [t["days"] for t in card["term_structure"]] == [1, 5, 22, 126, 252]
    # A year out the path is most of the way home: nearer the long run than the first day.
    first, year = (
        card["term_structure"][0]["vol_ann_pct"],
        card["term_structure"][-1]["vol_ann_pct"],
    )
    assert abs(year - card["long_run_vol_ann_pct"]) < abs(first - card["long_run_vol_ann_pct"])
    shocks = np.array([point["shock_pct"] for point in card["news_impact"]])
    curve = np.array([point["sigma2"] for point in card["news_impact"]])
    np.testing.assert_allclose(
        curve, p["omega"] + p["alpha[1]"] * shocks**2 + p["beta[1]"] * long_run, rtol=1e-10
    )
    assert shocks.min() < 0 < shocks.max()


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/models/har_volatility_gspc/card", 404, "no production version of 'har_volatility_gspc'"),
        ("/models/garch_volatility_gspc/card?ticker=AAPL", 404, "does not serve AAPL"),
        ("/models/garch volatility/card", 422, "name"),
    ],
)
def test_a_card_that_cannot_be_drawn_says_why(
    client: TestClient, path: str, status: int, says: str
) -> None:
    answer = client.get(path)
    assert answer.status_code == status, answer.text
    assert says in answer.text


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("/risk/^GSPC", {"level": 0.9}, 422, "level must be one of 0.95, 0.975, 0.99"),
        ("/risk/^GSPC", {"days": 5}, 422, "days must be one of 1, 10, got 5"),
        ("/risk/^GSPC", {"model_type": "nope"}, 422, "unknown model type"),
        ("/risk/^GSPC", {"model_type": "HAR"}, 404, "no production HAR model"),
        ("/risk/NOPE", {}, 404, "no prices are stored"),
    ],
)
def test_risk_refuses_what_it_cannot_answer_and_says_why(
    client: TestClient, path: str, params: dict[str, Any], status: int, says: str
) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == status, answer.text
    assert says in answer.text


def test_predict_without_a_model_type_answers_with_the_tickers_champion(tmp_path: Path) -> None:
    settings = make_settings(home=tmp_path / "var", api=QUICK)
    _store(settings, _sample())
    engine = db.create_db_engine(settings)
    report = train(engine, settings, TrainConfig(models=("garch", "har"), plots=False), ["^GSPC"])
    engine.dispose()
    assert report.champions is not None
    (choice,) = report.champions.choices
    assert choice.champion in {"garch", "har"}
    with TestClient(create_app(settings)) as client:
        answer = client.post("/predict", json={"ticker": "^GSPC", "horizon": 3})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["model_type"], body["champion"]) == (choice.champion.upper(), True)
        assert body["model_name"] == f"{choice.champion}_volatility_gspc"
        assert body["model_version"] == "1"
        listed = {m["model_name"]: m["champion_of"] for m in client.get("/models").json()}
        assert listed[body["model_name"]] == ["^GSPC"]
        assert sum(map(len, listed.values())) == 1
        # Named, a family answers whether or not it is the champion.
        other = "HAR" if choice.champion == "garch" else "GARCH"
        named = client.post("/predict", json={"ticker": "^GSPC", "model_type": other})
        assert (named.json()["model_type"], named.json()["champion"]) == (other, False)
        # A ticker with no champion is answered by GARCH, as before champions: here it has
        # no model at all, and the 404 says what to train.
        none = client.post("/predict", json={"ticker": "^IXIC"})
        assert none.status_code == 404
        assert "no production GARCH model for ^IXIC" in none.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"ticker": "NOPE", "model_type": "GARCH", "horizon": 5}, 404, "no prices are stored"),
        ({"ticker": "^IXIC", "model_type": "GARCH", "horizon": 5}, 404, "volforecast train"),
        ({"ticker": "^GSPC", "model_type": "LSTM", "horizon": 5}, 404, "no production LSTM"),
        ({"ticker": "^GSPC", "model_type": "PROPHET", "horizon": 5}, 422, "unknown model type"),
        ({"ticker": "^GSPC", "model_type": "GARCH", "horizon": 0}, 422, "greater than"),
        ({"ticker": "^GSPC", "model_type": "GARCH", "horizon": 31}, 422, "less than"),
        ({"ticker": "^GSPC", "model_type": "GARCH", "horizon": "5"}, 422, "valid integer"),
        ({"ticker": "^GSPC", "model_type": "GARCH", "horizon": 5.5}, 422, "integer"),
        ({"ticker": "", "model_type": "GARCH", "horizon": 5}, 422, "at least 1"),
        ({"ticker": "A B", "model_type": "GARCH", "horizon": 5}, 422, "pattern"),
        ({"ticker": "^GSPC", "model_type": "GARCH", "horizon": 5, "x": 1}, 422, "not permitted"),
        ({"model_type": "GARCH"}, 422, "missing"),
        ([1, 2], 422, "valid dictionary"),
    ],
    ids=lambda v: str(v)[:40] if not isinstance(v, int) else str(v),
)
def test_bad_requests_get_a_4xx_that_says_why(
    client: TestClient, body: Any, status: int, says: str
) -> None:
    answer = client.post("/predict", json=body)
    assert answer.status_code == status, answer.text
    assert says in answer.text


def test_malformed_and_oversized_bodies_are_refused(client: TestClient) -> None:
    broken = client.post(
        "/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    big = client.post(
        "/predict", content=b" " * 100_000, headers={"content-type": "application/json"}
    )
    assert big.status_code == 413
    assert "larger than" in big.json()["detail"]


def test_predictions_are_stored_once_and_read_back_by_page(
    tmp_path: Path,
) -> None:
    settings = _trained_home(tmp_path / "var")
    with TestClient(create_app(settings)) as client:
        for horizon in (5, 5, 3, 10, 10, 1):
            ok = client.post(
                "/predict", json={"ticker": "^GSPC", "model_type": "garch", "horizon": horizon}
            )
            assert ok.status_code == 200
        _wait_for(lambda: _stored(settings) == 10)
        page = client.get("/predictions/^GSPC", params={"limit": 4, "offset": 2}).json()
        assert page["total"] == 10
        assert [item["step"] for item in page["items"]] == [3, 4, 5, 6]
        first = page["items"][0]
        assert first["model_type"] == "GARCH"
        assert first["predicted_volatility"] > 0
        window = client.get(
            "/predictions/^gspc",
            params={"model_type": "GARCH", "start": first["forecast_date"],
                    "end": first["forecast_date"]},
        ).json()  # fmt: skip
        assert window["total"] == 1
        assert client.get("/predictions/^GSPC", params={"model_type": "LSTM"}).json()["total"] == 0
        assert client.get("/predictions/^GSPC", params={"limit": 0}).status_code == 422
        assert client.get("/predictions/^GSPC", params={"model_type": "X"}).status_code == 422
        reversed_dates = {"start": "2020-01-02", "end": "2020-01-01"}
        assert client.get("/predictions/^GSPC", params=reversed_dates).status_code == 422
    time.sleep(0.3)
    assert _stored(settings) == 10, "nothing written twice, even after shutdown"


def test_metrics_count_requests_and_predictions(client: TestClient) -> None:
    client.post("/predict", json={"ticker": "^GSPC", "model_type": "GARCH", "horizon": 2})
    client.post("/predict", json={"ticker": "NOPE", "model_type": "GARCH", "horizon": 2})
    text = client.get("/metrics").text
    assert (
        'volforecast_http_requests_total{method="POST",route="/predict",status="200"} 1.0' in text
    )
    assert (
        'volforecast_http_requests_total{method="POST",route="/predict",status="404"} 1.0' in text
    )
    assert 'volforecast_predictions_total{model_type="GARCH"} 1.0' in text
    assert 'volforecast_prediction_errors_total{reason="UnknownTickerError"} 1.0' in text
    assert "volforecast_http_request_duration_seconds_bucket" in text
    assert "volforecast_models_served 1.0" in text


def test_an_api_key_guards_every_route_but_the_public_ones(trained: Settings) -> None:
    guarded = trained.model_copy(
        update={"api": trained.api.model_copy(update={"api_key": SecretStr("s3cret")})}
    )
    with TestClient(create_app(guarded)) as client:
        body = {"ticker": "^GSPC", "model_type": "GARCH", "horizon": 1}
        assert client.post("/predict", json=body).status_code == 401
        wrong = client.post("/predict", json=body, headers={"X-API-Key": "guess"})
        assert wrong.status_code == 401
        assert (
            client.post("/predict", json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
        )
        assert client.get("/models").status_code == 401
        assert client.get("/health").status_code == 200
        assert client.get("/").status_code == 200


def test_cors_allows_only_the_configured_origins(trained: Settings) -> None:
    shared = trained.model_copy(
        update={"api": trained.api.model_copy(update={"cors_origins": ["http://dash.example"]})}
    )
    with TestClient(create_app(shared)) as client:
        preflight = {"Access-Control-Request-Method": "POST"}
        allowed = client.options("/predict", headers={"Origin": "http://dash.example", **preflight})
        assert allowed.headers.get("access-control-allow-origin") == "http://dash.example"
        other = client.options("/predict", headers={"Origin": "http://evil.example", **preflight})
        assert "access-control-allow-origin" not in other.headers


def test_a_database_that_is_away_gives_503_and_the_service_recovers(
    trained: Settings, tmp_path: Path
) -> None:
    # The database's folder is a file: SQLite cannot open it, as if a server were down.
    folder = tmp_path / "db"
    folder.write_text("in the way")
    away = trained.model_copy(update={"database_url": f"sqlite:///{folder / 'volforecast.db'}"})
    with TestClient(create_app(away)) as client:
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["checks"]["database"]["ok"] is False
        body = {"ticker": "^GSPC", "model_type": "GARCH", "horizon": 3}
        down = client.post("/predict", json=body)
        assert down.status_code == 503, down.text
        assert client.get("/predictions/^GSPC").status_code == 503
        # The database comes back: the same service answers, with no restart.
        folder.unlink()
        folder.mkdir()
        shutil.copyfile(trained.home / "volforecast.db", folder / "volforecast.db")
        assert client.get("/health").status_code == 200
        assert client.post("/predict", json=body).status_code == 200


def test_an_alias_move_is_served_without_a_restart(tmp_path: Path) -> None:
    settings = _trained_home(tmp_path / "var")
    body = {"ticker": "^GSPC", "model_type": "GARCH", "horizon": 2}
    with TestClient(create_app(settings)) as client:
        first = client.post("/predict", json=body).json()
        assert first["model_version"] == "1"
        engine = db.create_db_engine(settings)
        forced = TrainConfig(models=("garch",), plots=False, force=True)
        train(engine, settings, forced, ["^GSPC"])  # v2, on more closes than v1
        registry = Registry(connect(settings), PromotionLog(engine), settings.promotion, "test")
        registry.promote("garch_volatility_gspc", "2", "test: move the alias")

        def version() -> str:
            return str(client.post("/predict", json=body).json()["model_version"])

        _wait_for(lambda: version() == "2")
        assert client.post("/predict", json=body).json()["forecasts"] != first["forecasts"]
        registry.rollback("garch_volatility_gspc", "test: roll back")
        _wait_for(lambda: version() == "1")
        engine.dispose()


def test_a_registry_that_goes_down_leaves_the_loaded_models_serving(tmp_path: Path) -> None:
    home = tmp_path / "mlflow"
    home.mkdir()
    server = serve_mlflow(home, f"sqlite:///{home / 'mlflow.db'}")
    url = next(server)
    settings = make_settings(home=tmp_path / "var", mlflow_tracking_uri=url, mlflow_retries=0,
                             mlflow_timeout_s=2, api=QUICK)  # fmt: skip
    _store(settings, _sample())
    engine = db.create_db_engine(settings)
    assert train(engine, settings, GARCH_ONLY, ["^GSPC"]).complete
    engine.dispose()
    body = {"ticker": "^GSPC", "model_type": "GARCH", "horizon": 4}
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        assert client.post("/predict", json=body).status_code == 200
        server.close()  # SIGTERM to the mlflow server
        health = client.get("/health")
        assert health.status_code == 503
        assert "serving the 1 models loaded before" in health.json()["checks"]["registry"]["detail"]
        time.sleep(0.5)  # a refresh or two fail meanwhile
        served = client.post("/predict", json=body)
        assert served.status_code == 200, served.text
        assert served.json()["model_version"] == "1"
        assert client.get("/models").status_code == 503


def test_volforecast_serve_runs_under_uvicorn_and_stores_queued_predictions_on_stop(
    trained: Settings, tmp_path: Path
) -> None:
    home = tmp_path / "var"
    shutil.copytree(trained.home, home)
    port = free_port()
    # The writer waits a minute between writes: only the shutdown can store the rows.
    env = clean_env(home=str(home), api__write_interval_s="60")
    url = f"http://127.0.0.1:{port}"
    copied = db.create_db_engine(make_settings(home=home))
    with copied.begin() as connection:  # other tests stored predictions in the copied home
        connection.execute(PREDICTIONS.delete())
    copied.dispose()
    with volforecast_server(["serve", "--port", str(port)], env, tmp_path / "serve.log",
                            f"{url}/health") as server:  # fmt: skip
        # Through the client scripts and `make run` use.
        api = ApiClient(url, timeout_s=30)
        assert api.wait_until_healthy(10)["status"] == "ok"
        answer = api.predict("^GSPC", "GARCH", 7)
        assert len(answer["forecasts"]) == 7
        assert [m["model_name"] for m in api.models()] == ["garch_volatility_gspc"]
        with pytest.raises(requests.HTTPError, match="404: no production LSTM model"):
            api.predict("^GSPC", "LSTM", 7)
        assert requests.get(f"{url}/docs", timeout=10).status_code == 200
        assert "volforecast_predictions_total" in requests.get(f"{url}/metrics", timeout=10).text
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down cleanly, then re-raises the signal so the exit status tells why.
        assert server.wait(timeout=60) in {0, -signal.SIGTERM}
    assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()
    assert _stored(make_settings(home=home)) == 7


def test_prediction_rows_upsert_without_duplicates(engine: Engine) -> None:
    db.ensure_schema(engine)
    repository = PredictionRepository(engine)
    made = dt.datetime(2024, 1, 12, 17, tzinfo=dt.UTC)
    rows = [
        PredictionRow("AAPL", "GARCH", dt.date(2024, 1, 12), step, dt.date(2024, 1, 12 + step),
                      1.0 + step, "3", "run", made)
        for step in range(1, 4)
    ]  # fmt: skip
    assert repository.upsert(rows) == 3
    assert repository.upsert(rows[:2]) == 2  # a retried write
    changed = PredictionRow(*[*vars(rows[0]).values()][:5], 9.0, "3", "run", made)
    repository.upsert([changed])
    page = repository.find("AAPL", limit=2)
    assert page.total == 3
    assert [r.step for r in page.rows] == [1, 2]
    assert page.rows[0].predicted_volatility == 9.0
    assert repository.find("AAPL", model_type="LSTM").total == 0
    assert repository.find("AAPL", start=dt.date(2024, 1, 14)).total == 2


def test_no_generated_request_gets_a_server_error(trained: Settings) -> None:
    # schemathesis drives hypothesis from the app's own OpenAPI schema, operation by operation
    # (its pytest plugin's fixture loader does not run under pytest 9 yet).
    app = create_app(trained)
    with TestClient(app) as client:  # the lifespan runs: models loaded, writer started
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) == 9
        for operation in operations:

            @given(case=operation.as_strategy())
            @hypothesis_settings(
                max_examples=40, deadline=None, suppress_health_check=list(HealthCheck)
            )
            def fuzz(case: Any) -> None:
                case.call_and_validate(checks=[not_a_server_error])

            fuzz()
        answered = client.get("/metrics").text
    # The fuzzing reached the app: every route answered many generated requests.
    for route in ("/predict", "/predictions/{ticker}", "/models", "/risk/{ticker}"):
        assert f'route="{route}"' in answered
    assert 'status="500"' not in answered
