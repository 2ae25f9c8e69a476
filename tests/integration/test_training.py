"""The training pipeline against a real ``mlflow server`` (SQLite, and PostgreSQL as its backend).

The server is started the way a user starts it, with ``volforecast mlflow``; everything is
checked through the plain MLflow client and ``mlflow.pyfunc.load_model``, not through
volforecast's own readers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import make_settings
from tests.factories import clean_prices
from tests.integration.servers import free_port, serve_mlflow
from volforecast.core.features import DailyData
from volforecast.data import db
from volforecast.data.repositories.market import MarketRepository
from volforecast.data.repositories.metrics import MetricRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import PriceBatch, load_sample
from volforecast.errors import RegistryError, TrackingUnavailableError
from volforecast.evaluation.test_window import FIT_FRACTION
from volforecast.jobs.champion import decide_champions
from volforecast.jobs.ingest import ingest
from volforecast.jobs.predict_daily import predict_all
from volforecast.jobs.train import TrainConfig, train
from volforecast.models.catalog import build_model
from volforecast.registry import names
from volforecast.registry.aliases import Registry
from volforecast.registry.champion import ChampionChoice
from volforecast.registry.champion_book import ChampionBook, log_name
from volforecast.registry.decision import losses_frame
from volforecast.registry.promotion_log import PromotionLog
from volforecast.registry.serving import ProductionModels, download_models
from volforecast.registry.tracking import check_server, connect
from volforecast.settings import ChampionSettings, PromotionSettings, Settings

pytestmark = pytest.mark.slow

# Small and quick: the pipeline is under test here, not the network's accuracy.
LSTM_QUICK = {"max_epochs": 2, "batch_size": 256, "stride": 10}
DAYS = 1500


@pytest.fixture(scope="module")
def mlflow_sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``volforecast mlflow`` on a free port with its default SQLite backend store."""
    home = tmp_path_factory.mktemp("mlflow-sqlite")
    yield from serve_mlflow(home, f"sqlite:///{home / 'mlflow.db'}")


@pytest.fixture(scope="module")
def mlflow_postgres_server(
    tmp_path_factory: pytest.TempPathFactory, postgres_server_url: str
) -> Iterator[str]:
    """``volforecast mlflow`` with a fresh PostgreSQL database as its backend store."""
    name = f"mlflow_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        make_url(postgres_server_url).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    backend = (
        make_url(postgres_server_url)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )
    try:
        yield from serve_mlflow(tmp_path_factory.mktemp("mlflow-postgres"), backend)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres, id="postgresql"),
    ]
)
def tracked(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A fresh database and a tracking server, both SQLite or both PostgreSQL."""
    database_url = request.getfixturevalue(f"{request.param}_url")
    server = request.getfixturevalue(f"mlflow_{request.param}_server")
    return make_settings(
        home=tmp_path / "var", database_url=database_url, mlflow_tracking_uri=server
    )


@pytest.fixture
def engine(tracked: Settings) -> Iterator[Engine]:
    """An engine on the tracked settings' database."""
    engine = db.create_db_engine(tracked)
    yield engine
    engine.dispose()


def _sample(days: int = DAYS) -> pd.DataFrame:
    frame = load_sample().frame
    return frame.groupby("ticker").tail(days).reset_index(drop=True)


def _ingest(engine: Engine, frame: pd.DataFrame) -> None:
    db.ensure_schema(engine)
    PriceRepository(engine).upsert(frame, ingested_at=pd.Timestamp.now(tz="UTC").to_pydatetime())


def _unique_tickers(tag: str) -> pd.DataFrame:
    """The sample renamed to tickers no other test on this server has used."""
    frame = _sample()
    return frame.assign(ticker=frame["ticker"].str.replace("^", f"{tag}", regex=False))


def test_training_two_tickers_tracks_registers_and_serves(
    tracked: Settings, engine: Engine
) -> None:
    tag = f"T{uuid.uuid4().hex[:6].upper()}"
    frame = _unique_tickers(tag)
    tickers = sorted(frame["ticker"].unique())
    _ingest(engine, frame)

    report = train(
        engine, tracked, TrainConfig(models=("garch", "lstm"), lstm_settings=LSTM_QUICK), tickers
    )

    assert report.complete, [o.message for o in report.failed]
    client = MlflowClient(tracking_uri=tracked.mlflow_tracking_uri)
    garch_runs = client.search_runs(
        [client.get_experiment_by_name("volforecast-garch").experiment_id],
        filter_string=f"tags.`volforecast.ticker` = '{tickers[0]}'",
    )
    assert len(garch_runs) == 1
    run = garch_runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["qlike_h1_range"] > 0
    assert {"rmse_h22_squared", "fit_converged", "fit_persistence"} <= set(run.data.metrics)
    assert run.data.params["model.dist"] == "normal"
    assert len(run.data.tags["volforecast.data_hash"]) == 64
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {
        "fit_report.json",
        "data_window.json",
        "fitted_params.json",
        "forecast.png",
    } <= artifacts
    png = client.download_artifacts(run.info.run_id, "forecast.png")
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # MLflow 3: the logged model is named after what it is and holds the run's metrics; the
    # prices are the run's training dataset.
    logged = client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    assert [m.name for m in logged] == [f"garch_{tickers[0].lower()}"]
    assert {m.key: m.value for m in logged[0].metrics or []} == run.data.metrics
    assert logged[0].params == run.data.params
    (used,) = run.inputs.dataset_inputs
    assert used.dataset.digest == run.data.tags["volforecast.data_hash"][:32]

    for ticker in tickers:
        name = f"garch_volatility_{ticker.lower()}"
        production = client.get_model_version_by_alias(name, "production")
        assert production.version == "1"
        assert ticker in client.get_registered_model(name).description
        assert float(production.tags["metric.qlike_h1_range"]) == pytest.approx(
            next(o.qlike for o in report.outcomes if o.ticker == ticker and o.model == "garch"),
            rel=1e-5,
        )
    pooled = client.get_model_version_by_alias("lstm_volatility_pooled", "production")
    assert set(pooled.tags["volforecast.tickers"].split(",")) >= set(tickers)
    assert client.get_logged_model(pooled.source.removeprefix("models:/")).name == "lstm_pooled"
    assert "mean QLIKE 1-day" in pooled.description

    # The registered GARCH, loaded by plain MLflow, forecasts what volforecast computes.
    prices = PriceRepository(engine).load([tickers[0]])
    data = DailyData.from_prices(prices, tickers[0])
    own = build_model("garch").fit(data.head(int(len(data) * FIT_FRACTION))).update(data)
    loaded = mlflow.pyfunc.load_model(f"models:/garch_volatility_{tickers[0].lower()}@production")
    served = loaded.predict(pd.DataFrame({"horizon": [10]}))
    np.testing.assert_allclose(served["sigma2"], own.forecast(10).sigma2, rtol=1e-10)
    assert served["forecast_date"].tolist() == [
        d.isoformat() for d in own.forecast(10).forecast_dates
    ]
    assert served["origin_date"].iloc[0] == data.last_date.date().isoformat()

    lstm = mlflow.pyfunc.load_model("models:/lstm_volatility_pooled@production")
    paths = lstm.predict(pd.DataFrame({"ticker": tickers, "horizon": [5, 5]}))
    assert paths.groupby("ticker").size().to_dict() == dict.fromkeys(tickers, 5)
    assert (paths["vol_pct"] > 0).all()

    stored = MetricRepository(engine).load(run_id=run.info.run_id)
    assert set(stored["metric_name"]) >= {"qlike_h1_range", "mse_h5_squared", "rmse_h22_range"}
    assert set(stored["model_version"]) == {"1"}
    assert len(stored) == len(stored.drop_duplicates(["ticker", "model_type", "metric_name"]))


def _doubled_history(frame: pd.DataFrame) -> pd.DataFrame:
    """The same prices with the returns before the test window doubled: a worse fit."""
    out = []
    for _, group in frame.groupby("ticker"):
        rows = group.sort_values("date").reset_index(drop=True)
        log_returns = np.diff(np.log(rows["adj_close"].to_numpy()))
        cut = int((len(rows) - 1) * FIT_FRACTION)
        log_returns[:cut] *= 2.0
        adjusted = rows["adj_close"].iloc[0] * np.exp(
            np.concatenate(([0.0], np.cumsum(log_returns)))
        )
        scale = adjusted / rows["adj_close"].to_numpy()
        out.append(rows.assign(adj_close=adjusted, close=rows["close"] * scale,
                               open=rows["open"] * scale, high=rows["high"] * scale,
                               low=rows["low"] * scale))  # fmt: skip
    return pd.concat(out, ignore_index=True)


def test_a_worse_challenger_is_not_promoted_and_a_rollback_is_logged(
    tracked: Settings, engine: Engine
) -> None:
    tag = f"W{uuid.uuid4().hex[:6].upper()}"
    frame = _unique_tickers(tag)
    ticker = sorted(frame["ticker"].unique())[0]
    frame = frame[frame["ticker"] == ticker]
    name = f"garch_volatility_{ticker.lower()}"
    config = TrainConfig(models=("garch",), plots=False)
    _ingest(engine, frame)
    first = train(engine, tracked, config, [ticker])
    assert first.outcomes[0].promoted

    _ingest(engine, _doubled_history(frame))
    second = train(engine, tracked, config, [ticker])

    outcome = second.outcomes[0]
    assert outcome.ok
    assert outcome.version == "2"
    assert not outcome.promoted
    assert "does not beat production" in outcome.message
    client = MlflowClient(tracking_uri=tracked.mlflow_tracking_uri)
    assert client.get_model_version_by_alias(name, "production").version == "1"
    assert client.get_model_version_by_alias(name, "challenger").version == "2"
    promotions = PromotionLog(engine)
    decision = promotions.events(name)[-1]
    assert decision.action == "reject"
    assert decision.metrics["qlike_ratio"] > 1.0

    registry = Registry(client, promotions, tracked.promotion, actor="tests")
    registry.promote(name, "2", reason="operator override")
    assert client.get_model_version_by_alias(name, "production").version == "2"
    event = registry.rollback(name, reason="the override was a mistake")
    assert (event.version, event.previous_version, event.action) == ("1", "2", "rollback")
    assert client.get_model_version_by_alias(name, "production").version == "1"
    history = [(e.action, e.version) for e in promotions.events(name) if e.alias == "production"]
    assert history[-3:] == [("reject", "1"), ("promote", "2"), ("rollback", "1")]
    promote_time = promotions.events(name)[-2].created_at
    assert promotions.served_on(name, promote_time) == "2"
    assert promotions.served_on(name, pd.Timestamp.now(tz="UTC").to_pydatetime()) == "1"
    with pytest.raises(RegistryError, match="no production version before"):
        registry.rollback(name)


def test_a_training_run_killed_half_way_leaves_production_untouched(
    tracked: Settings, engine: Engine, tmp_path: Path
) -> None:
    tag = f"K{uuid.uuid4().hex[:6].upper()}"
    frame = _unique_tickers(tag)
    tickers = sorted(frame["ticker"].unique())
    _ingest(engine, frame)
    config = TrainConfig(models=("garch",), plots=False)
    assert train(engine, tracked, config, tickers).complete
    client = MlflowClient(tracking_uri=tracked.mlflow_tracking_uri)
    names = [f"garch_volatility_{t.lower()}" for t in tickers]
    before = {n: client.get_model_version_by_alias(n, "production").version for n in names}

    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFORECAST_")}
    env |= {
        "VOLFORECAST_HOME": str(tmp_path / "var"),
        "VOLFORECAST_DATABASE_URL": tracked.database_url,
        "VOLFORECAST_MLFLOW_TRACKING_URI": tracked.mlflow_tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    experiment = client.get_experiment_by_name("volforecast-garch").experiment_id
    started = {r.info.run_id for r in client.search_runs([experiment], max_results=1000)}
    process = subprocess.Popen(
        [sys.executable, "-m", "volforecast", "train", "--tickers", ",".join(tickers),
         "--models", "garch", "--force"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # Kill it as soon as its first run exists: it is then between logging and registering.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        runs = client.search_runs([experiment], max_results=1000)
        if any(r.info.run_id not in started for r in runs):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"

    for name in names:
        assert client.get_model_version_by_alias(name, "production").version == before[name]
        for alias, version in client.get_registered_model(name).aliases.items():
            # Every alias points at a complete model that loads and forecasts.
            assert client.get_model_version(name, version).status == "READY", alias
            model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
            assert len(model.predict(pd.DataFrame({"horizon": [1]}))) == 1


def test_two_promoters_at_once_do_not_promote_twice(tracked: Settings, engine: Engine) -> None:
    tag = f"C{uuid.uuid4().hex[:6].upper()}"
    frame = _unique_tickers(tag)
    ticker = sorted(frame["ticker"].unique())[0]
    _ingest(engine, frame[frame["ticker"] == ticker])
    config = TrainConfig(models=("garch",), plots=False, force=True)
    for _ in range(3):  # v1 in production, v2 and v3 identical challengers
        train(engine, tracked, config, [ticker])
    name = f"garch_volatility_{ticker.lower()}"
    client = MlflowClient(tracking_uri=tracked.mlflow_tracking_uri)
    assert client.get_model_version_by_alias(name, "production").version == "1"

    dates = pd.bdate_range("2018-01-01", periods=200)
    noise = np.random.default_rng(0).gamma(2.0, 0.5, len(dates))
    losses = {"1": noise * 1.5, "2": noise, "3": noise}  # v2 and v3 beat v1, tie each other

    def losses_of(version: str) -> pd.DataFrame:
        return losses_frame(ticker, dates, losses[version])

    barrier = threading.Barrier(2)
    decisions = {}

    def promoter(version: str) -> None:
        registry = Registry(
            MlflowClient(tracking_uri=tracked.mlflow_tracking_uri),
            PromotionLog(engine),
            PromotionSettings(),
            actor=f"promoter-{version}",
        )
        barrier.wait()
        decisions[version] = registry.consider(name, version, losses_of(version), losses_of)

    threads = [threading.Thread(target=promoter, args=(v,)) for v in ("2", "3")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sum(d.promote for d in decisions.values()) == 1, decisions
    events = PromotionLog(engine).events(name)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    promotes = [e for e in events if e.alias == "production" and e.action == "promote"]
    assert [e.previous_version for e in promotes] == [None, "1"]
    winner = promotes[-1].version
    assert client.get_model_version_by_alias(name, "production").version == winner


def test_a_tracking_server_that_is_down_is_one_clear_error_after_retries() -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(TrackingUnavailableError, match=r"not answering .* 2 attempts"):
        check_server(f"http://127.0.0.1:{port}", retries=1, timeout_s=1.0)
    assert time.monotonic() - started < 10


def test_a_pooled_lstm_that_serves_fewer_tickers_never_replaces_production(
    sqlite_url: str, tmp_path: Path
) -> None:
    # The embedded store is enough here: the rule under test is volforecast's, not MLflow's.
    settings = make_settings(home=tmp_path / "var", database_url=sqlite_url)
    engine = db.create_db_engine(settings)
    _ingest(engine, _sample())
    quick = TrainConfig(models=("lstm",), lstm_settings=LSTM_QUICK, plots=False)
    first = train(engine, settings, quick, ["^GSPC", "^IXIC"])
    assert first.complete
    assert {o.promoted for o in first.outcomes} == {True}

    narrower = TrainConfig(models=("lstm",), lstm_settings=LSTM_QUICK, plots=False, force=True)
    second = train(engine, settings, narrower, ["^GSPC"])
    (outcome,) = second.outcomes
    assert outcome.ok
    assert outcome.version == "2"
    assert not outcome.promoted
    assert "serves 1 tickers this run did not train (^IXIC)" in outcome.message
    client = MlflowClient(settings.mlflow_tracking_uri)
    aliases = client.get_registered_model("lstm_volatility_pooled").aliases
    assert {alias: str(v) for alias, v in aliases.items()} == {"production": "1", "challenger": "2"}
    engine.dispose()


def test_har_trains_and_forecasts_on_the_market_series_that_ingest_stores(
    tracked: Settings, engine: Engine
) -> None:
    tag = f"M{uuid.uuid4().hex[:6].upper()}"
    frame = _unique_tickers(tag)
    tickers = sorted(frame["ticker"].unique())
    ingest(PriceBatch(frame, source="test"), engine=engine, settings=tracked)

    report = train(engine, tracked, TrainConfig(models=("har",), plots=False), tickers)

    assert report.complete, [o.message for o in report.failed]
    models = ProductionModels(connect(tracked))
    models.refresh()
    found = models.find("har", tickers[0])
    assert found is not None
    _, model = found
    assert "s1.market_daily" in model.params
    assert model.fit_report.warnings == ()
    market = MarketRepository(engine).load()
    assert model.data.market_log_rv is not None
    np.testing.assert_allclose(model.data.market_log_rv, market[model.data.dates].to_numpy())

    predicted = predict_all(engine, tracked, models, model_types=["har"])
    assert predicted.failures == []
    assert predicted.paths == len(tickers)


def test_a_pooled_lstm_that_fails_after_training_ends_its_run_as_failed(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run is opened before training so that the epochs reach it live; a failure between
    # the last epoch and registration once left it RUNNING for good, with no version behind it.
    settings = make_settings(home=tmp_path / "var", database_url=sqlite_url)
    engine = db.create_db_engine(settings)
    _ingest(engine, _sample())

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the evaluation broke")

    monkeypatch.setattr("volforecast.jobs.train_pooled.evaluate", broken)
    quick = TrainConfig(models=("lstm",), lstm_settings=LSTM_QUICK, plots=False)
    with pytest.raises(RuntimeError, match="the evaluation broke"):
        train(engine, settings, quick, ["^GSPC", "^IXIC"])
    client = MlflowClient(settings.mlflow_tracking_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert [r.data.metrics.get("validation_qlike") is not None for r in runs] == [True]
    assert client.search_registered_models("name = 'lstm_volatility_pooled'") == []
    engine.dispose()


def test_training_decides_each_tickers_champion_and_logs_only_the_changes(
    tracked: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = f"C{uuid.uuid4().hex[:6].upper()}"
    frame = _unique_tickers(tag)
    tickers = sorted(frame["ticker"].unique())
    _ingest(engine, frame)

    report = train(engine, tracked, TrainConfig(models=("garch", "har")), tickers)

    assert report.complete, [o.message for o in report.failed]
    assert report.champions is not None
    assert [c.ticker for c in report.champions.choices] == tickers
    log_ = PromotionLog(engine)
    for choice in report.champions.choices:
        qlike = {o.model: o.qlike for o in report.outcomes if o.ticker == choice.ticker}
        # The first decision needs no test: the family with the lower test-window QLIKE wins,
        # and its figures are the training's own.
        assert choice.incumbent is None
        assert choice.changed
        assert choice.champion == min(qlike, key=lambda m: qlike[m])
        for model, value in qlike.items():
            assert choice.metrics[f"qlike_{model}"] == pytest.approx(value, rel=1e-9)
        (entry,) = log_.events(log_name(choice.ticker))
        assert (entry.alias, entry.action, entry.version) == (
            "champion",
            "promote",
            choice.champion.upper(),
        )
    stored = ChampionBook(engine).all()
    assert {t: c.model for t, c in stored.items() if t in tickers} == {
        c.ticker: c.champion for c in report.champions.choices
    }
    assert report.to_dict()["champions"]["wins"] == report.champions.wins

    # The same prices again: nothing is retrained, the champions are decided again and kept,
    # and the log gains nothing.
    again = train(engine, tracked, TrainConfig(models=("garch", "har")), tickers)
    assert again.champions is not None
    assert not any(c.changed for c in again.champions.choices)
    # The first run judged its own versions on the losses it had just computed; this run
    # loads and forecasts them: the figures must agree.
    for first, second in zip(report.champions.choices, again.champions.choices, strict=True):
        assert second.metrics == pytest.approx(first.metrics, rel=1e-9, nan_ok=True)
    assert all(len(log_.events(log_name(t))) == 1 for t in tickers)
    assert all(ChampionBook(engine).all()[t].decided_at > stored[t].since for t in tickers)

    # Trained again on the same prices (forced): no challenger beats production, and the
    # champions read production's losses from those decisions instead of loading it again.
    loaded: list[tuple[str, str]] = []

    def download(name: str, version: str) -> Any:
        loaded.append((name, version))
        return download_models(name, version)

    monkeypatch.setattr("volforecast.jobs.champion.download_models", download)
    forced = train(engine, tracked, TrainConfig(models=("garch", "har"), force=True), tickers)
    assert forced.champions is not None
    assert forced.complete
    assert not any(o.promoted for o in forced.outcomes)
    trained = {o.registered_model for o in forced.outcomes}
    assert len(trained) == 2 * len(tickers)
    assert [v for v in loaded if v[0] in trained] == []  # (other tests' pooled LSTM may be)
    for first, third in zip(report.champions.choices, forced.champions.choices, strict=True):
        assert third.metrics == pytest.approx(first.metrics, rel=1e-9, nan_ok=True)

    # A champion set to the loser is handed back at once when no significance is asked for.
    ticker = tickers[0]
    winner = stored[ticker].model
    loser = "har" if winner == "garch" else "garch"
    ChampionBook(engine).record(
        ChampionChoice(ticker, loser, winner, "set by the test"), actor="test",
        now=pd.Timestamp.now(tz="UTC").to_pydatetime(),
    )  # fmt: skip
    settled = decide_champions(
        engine, tracked.model_copy(update={"champion": ChampionSettings(max_pvalue=1.0)}), [ticker]
    )
    (choice,) = settled.choices
    assert (choice.incumbent, choice.champion) == (loser, winner)
    assert [e.version for e in log_.events(log_name(ticker))] == [
        winner.upper(),
        loser.upper(),
        winner.upper(),
    ]


def test_two_workers_log_and_register_every_ticker_and_each_version_is_judged_once(
    sqlite_url: str, tmp_path: Path
) -> None:
    # The embedded store: three processes write one SQLite file, two of them at once.
    settings = make_settings(home=tmp_path / "var", database_url=sqlite_url)
    engine = db.create_db_engine(settings)
    tickers = ["WA", "WB", "WC", "WD"]
    _ingest(engine, pd.concat([clean_prices(t, 700, seed=i) for i, t in enumerate(tickers)]))

    models = ("garch", "har", "lstm", "har+lstm")
    config = TrainConfig(models=models, lstm_settings=LSTM_QUICK, workers=2)
    report = train(engine, settings, config)

    assert report.complete, [o.message for o in report.failed]
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    log_ = PromotionLog(engine)
    jobs = set()
    for model_name in ("garch", "har", "har_lstm"):
        for ticker in tickers:
            name = f"{model_name}_volatility_{ticker.lower()}"
            (version,) = client.search_model_versions(f"name = '{name}'")
            assert version.tags[names.TAG_DECISION] == names.PROMOTED
            assert str(client.get_model_version_by_alias(name, names.PRODUCTION).version) == "1"
            run = client.get_run(str(version.run_id))
            assert run.info.status == "FINISHED"
            jobs.add(run.data.tags[names.TAG_JOB])
            promotions = [e for e in log_.events(name) if e.action == "promote"]
            assert [e.candidate for e in promotions] == ["1"]
            assert not MetricRepository(engine).load(run_id=run.info.run_id).empty
            artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
            assert "forecast.png" in artifacts, "drawn by the worker that logged the run"
    assert len(jobs) == 1, "every run carries the one job's token"
    engine.dispose()
