"""The DAGs, parsed and run by real Airflow 3 in its own environment (``.venv-airflow``).

The DAGs call volforecast's command line in this environment; ``dag.test()`` runs them end
to end on the bundled sample. Airflow's environment comes from ``make airflow-install``;
without it these tests skip, unless ``VOLFORECAST_TEST_REQUIRE_AIRFLOW=1`` (CI) makes that
a failure.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import REPO, skip_or_fail
from tests.factories import live_forecasts
from tests.integration.servers import clean_env
from volforecast.data.db import create_db_engine
from volforecast.data.repositories.monitoring import MonitoringRepository
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.models.catalog import CANDIDATES, is_pooled, registered_members
from volforecast.models.lstm.config import LstmConfig
from volforecast.registry.aliases import Registry
from volforecast.registry.champion_book import ChampionBook, log_name
from volforecast.registry.decision import losses_frame
from volforecast.registry.promotion_log import PromotionLog
from volforecast.settings import ChampionSettings, PromotionSettings, Settings

pytestmark = pytest.mark.slow

AIRFLOW_BIN = REPO / ".venv-airflow" / "bin"
DAGS = REPO / "dags"
RUNNER = Path(__file__).with_name("airflow_runner.py")
VOLFORECAST = str(Path(sys.executable).with_name("volforecast"))
PRICES_ASSET = "volforecast://market/stock_prices"


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An Airflow home with a migrated SQLite metadata database, and the DAGs folder."""
    if not (AIRFLOW_BIN / "airflow").exists():
        skip_or_fail("Airflow's environment is missing: run `make airflow-install`",
                     "VOLFORECAST_TEST_REQUIRE_AIRFLOW")  # fmt: skip
    home = tmp_path_factory.mktemp("airflow")
    env = clean_env() | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Unpaused, as in production: an asset event queues only DAGs that are switched on.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "VOLFORECAST_BIN": VOLFORECAST,
    }
    subprocess.run([str(AIRFLOW_BIN / "airflow"), "db", "migrate"], env=env, check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    return env


def _airflow(env: dict[str, str], *args: str) -> dict[str, Any]:
    return _airflow_logged(env, *args)[0]


def _airflow_logged(env: dict[str, str], *args: str) -> tuple[dict[str, Any], str]:
    """The runner's JSON answer, and everything the run logged."""
    done = subprocess.run([str(AIRFLOW_BIN / "python"), str(RUNNER), *args], env=env,
                          capture_output=True, text=True, timeout=900, check=False)  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result, done.stdout + done.stderr


def _volforecast(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([VOLFORECAST, *args], env=env, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]


def _project(airflow_env: dict[str, str], home: Path) -> dict[str, str]:
    env = airflow_env | {"VOLFORECAST_HOME": str(home)}
    _volforecast(env, "ingest", "--sample")
    return env


def test_the_dags_parse_with_their_schedules_order_retries_and_mapping(
    airflow_env: dict[str, str],
) -> None:
    described = _airflow(airflow_env, "describe", str(DAGS))
    assert described["import_errors"] == {}
    dags = described["dags"]
    assert set(dags) == {"ml_train_volatility_models", "ml_predict_volatility", "ml_ingest_prices"}

    train = dags["ml_train_volatility_models"]
    assert train["schedule"] == "0 2 * * 1"  # Mondays 02:00
    assert train["catchup"] is False
    tasks = train["tasks"]
    assert tasks["check_data_quality"]["upstream"] == []
    assert tasks["chunk_tickers"]["upstream"] == ["check_data_quality"]
    assert tasks["train_per_ticker"]["upstream"] == ["chunk_tickers"]
    assert tasks["train_per_ticker"]["mapped"] is True, "mapped over chunks of tickers"
    assert tasks["train_lstm"]["upstream"] == ["check_data_quality", "train_per_ticker"]
    assert tasks["train_combinations"]["upstream"] == ["chunk_tickers", "train_lstm"]
    assert tasks["train_combinations"]["mapped"] is True, "mapped over chunks of tickers"
    assert "ALL_DONE" in tasks["train_combinations"]["trigger_rule"]
    assert tasks["choose_champions"]["upstream"] == ["check_data_quality", "train_combinations"]
    assert tasks["compare_models"]["upstream"] == [
        "choose_champions",
        "train_combinations",
        "train_lstm",
        "train_per_ticker",
    ]
    assert "ALL_DONE" in tasks["choose_champions"]["trigger_rule"]
    assert all(t["retries"] >= 2 and t["exponential_backoff"] for t in tasks.values())
    assert "ALL_DONE" in tasks["compare_models"]["trigger_rule"]

    ingest = dags["ml_ingest_prices"]
    assert ingest["schedule"] == "30 22 * * 1-5"  # weekdays, after the NYSE's close
    assert ingest["tasks"]["load_prices"]["outlets"] == [PRICES_ASSET]
    assert ingest["tasks"]["load_prices"]["retries"] >= 2

    predict = dags["ml_predict_volatility"]
    # It waits for prices: scheduled on the asset the ingestion updates, not on a clock.
    assert predict["timetable"] == "AssetTriggeredTimetable"
    assert predict["schedule_assets"] == [PRICES_ASSET]
    tasks = predict["tasks"]
    assert tasks["log_prediction_statistics"]["upstream"] == ["generate_and_store_predictions"]
    assert tasks["monitor_models"]["upstream"] == ["generate_and_store_predictions"]
    assert tasks["tickers_to_retrain"]["upstream"] == ["monitor_models"]
    assert tasks["trigger_retraining"]["upstream"] == ["tickers_to_retrain"]
    assert tasks["promote_live_challengers"]["upstream"] == ["generate_and_store_predictions"]
    assert all(t["retries"] >= 2 for t in tasks.values())


def test_the_training_dag_registers_models_and_a_failing_chunk_costs_only_itself(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    env = _project(airflow_env, tmp_path / "var")
    # NOPE has no prices: its chunk fails, is retried, fails again; the others are kept.
    conf = {"tickers": ["^GSPC", "^IXIC", "NOPE"], "chunk_size": 1, "lstm_epochs": 2}
    result = _airflow(env, "test", str(DAGS), "ml_train_volatility_models",
                      "--conf", json.dumps(conf), "--retry-delay-s", "0.5")  # fmt: skip
    states = {(t["task_id"], t["map_index"]): t for t in result["tasks"]}
    assert states[("train_per_ticker", 0)]["state"] == "success"
    assert states[("train_per_ticker", 1)]["state"] == "success"
    assert states[("train_per_ticker", 2)]["state"] == "failed"
    assert states[("train_per_ticker", 2)]["try_number"] == 3, "tried once and retried twice"
    assert states[("train_lstm", -1)]["state"] == "success"
    assert states[("train_combinations", 0)]["state"] == "success"
    assert states[("train_combinations", 1)]["state"] == "success"
    assert states[("choose_champions", -1)]["state"] == "success"
    assert states[("compare_models", -1)]["state"] == "success"

    # The registry named too: an earlier test's MLFLOW_REGISTRY_URI may linger in os.environ.
    uri = Settings(home=tmp_path / "var").mlflow_tracking_uri
    client = MlflowClient(uri, registry_uri=uri)
    names = [f"{family}_volatility_{index}" for family in ("garch", "gjr_garch_t", "har",
             "har_lstm", "har_lstm_gjr_garch_t") for index in ("gspc", "ixic")]  # fmt: skip
    names.append("lstm_volatility_pooled")
    for name in names:
        assert "production" in client.get_registered_model(name).aliases, name
    engine = create_db_engine(Settings(home=tmp_path / "var"))
    champions = ChampionBook(engine).all()
    assert set(champions) == {"^GSPC", "^IXIC"}
    for ticker, champion in champions.items():
        # A first champion, every candidate trained by the DAG judged: the preferred blend,
        # unless another candidate's lower test-window QLIKE is significant.
        (change,) = PromotionLog(engine).events(log_name(ticker))
        qlikes = {k.removeprefix("qlike_"): v for k, v in change.metrics.items() if "qlike" in k}
        assert set(qlikes) == set(CANDIDATES), change.metrics
        preferred = ChampionSettings().preferred
        if champion.model == preferred:
            best = min(qlikes, key=qlikes.__getitem__)
            # Not significant: above the level, or too few common origins to test (NaN).
            assert best == preferred or not change.metrics["dm_pvalue"] <= 0.05, change.metrics
        else:
            assert champion.model == min(qlikes, key=qlikes.__getitem__), change.metrics
            assert change.metrics["dm_pvalue"] <= 0.05, change.metrics
    engine.dispose()
    # The DAG trains the LSTM with `volforecast train`'s defaults; only the run's own epoch
    # limit (lstm_epochs) is passed.
    pooled = client.get_model_version_by_alias("lstm_volatility_pooled", "production")
    params = client.get_run(str(pooled.run_id)).data.params
    defaults = LstmConfig()
    for setting in ("batch_size", "stride", "patience", "learning_rate", "hidden_size"):
        assert params[f"model.{setting}"] == str(getattr(defaults, setting)), setting
    assert params["model.max_epochs"] == "2"


def test_the_prediction_dag_stores_one_set_per_date_however_often_it_runs(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    # The models are trained on the prices up to June 2018, as last week's run would have
    # been; the prices of the rest of the year arrive afterwards, so the monitor has days
    # to judge.
    env = airflow_env | {"VOLFORECAST_HOME": str(tmp_path / "var")}
    early = tmp_path / "until-june.parquet"
    sample = load_sample().frame
    sample[sample["date"] <= "2018-06-01"].to_parquet(early)
    _volforecast(env, "ingest", "--file", str(early))
    _volforecast(env, "train", "--all", "--models", "garch", "--no-plots")
    _volforecast(env, "ingest", "--sample")
    triggered = []
    for logical_date in ("2018-12-31T17:00:00+00:00", "2018-12-31T17:00:00+00:00",
                         "2018-06-29T17:00:00+00:00"):  # fmt: skip
        result = _airflow(env, "test", str(DAGS), "ml_predict_volatility",
                          "--logical-date", logical_date)  # fmt: skip
        others = {t["state"] for t in result["tasks"] if t["task_id"] != "trigger_retraining"}
        assert others == {"success"}, result

        states = {t["task_id"]: t["state"] for t in result["tasks"]}
        # The trigger runs only when this run queued a ticker; either way nothing failed
        assert states["trigger_retraining"] in {"success", "skipped"}, result
        triggered.append(states["trigger_retraining"] == "success")

    engine = create_db_engine(Settings(home=tmp_path / "var"))
    stored = PredictionRepository(engine).find("^GSPC", limit=1000)
    store = MonitoringRepository(engine)
    checks, queue = store.latest_checks(), store.retrain_queue()
    engine.dispose()
    origins = {r.origin_date for r in stored.rows}
    assert origins == {dt.date(2018, 12, 31), dt.date(2018, 6, 29)}, "the backfill's own close"
    assert stored.total == 2 * 30, "two dates, 30 steps each, nothing stored twice"

    # The monitor judged both models on each date; a queued ticker started one training
    # run, for it alone and without the pooled LSTM, and the rerun of the date did not
    # start another while the request is pending.
    assert set(checks["ticker"]) == {"^GSPC", "^IXIC"}
    assert len(queue) > 0, "the sell-off of October 2018 raises alerts"
    # (Runs of the training DAG's own test share this Airflow home: only triggered ones count.)
    runs = [r for r in result["other_runs"] if r["dag_id"] == "ml_train_volatility_models"
            and r["run_type"] == "operator_triggered"]  # fmt: skip
    assert len(runs) == sum(triggered) == (1 if len(queue) else 0), (runs, queue)
    for run in runs:
        assert run["conf"]["lstm"] is False
        assert set(run["conf"]["tickers"]) == set(queue["ticker"])


def test_ingestion_loads_the_drop_folder_and_its_asset_event_queues_the_predictions(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    # Given the first half of 2018 loaded, models trained on it, and the next files dropped
    home = tmp_path / "var"
    env = airflow_env | {"VOLFORECAST_HOME": str(home)}
    sample = load_sample().frame.drop(columns=["source"])
    sample[sample["date"] <= "2018-06-29"].to_parquet(tmp_path / "first-half.parquet")
    _volforecast(env, "ingest", "--file", str(tmp_path / "first-half.parquet"))
    _volforecast(env, "train", "--all", "--models", "garch", "--no-plots")
    drop = home / "incoming"
    drop.mkdir(parents=True)
    sample[sample["date"] > "2018-06-29"].to_csv(drop / "second-half.csv", index=False)
    (drop / "garbled.csv").write_text("not,prices\n1,2\n")

    # When the ingestion DAG runs for 31 December 2018
    result, log = _airflow_logged(env, "test", str(DAGS), "ml_ingest_prices",
                                  "--logical-date", "2018-12-31T22:30:00+00:00")  # fmt: skip
    # Then the good file loaded and the bad one was set aside; the task succeeded
    assert {t["task_id"]: t["state"] for t in result["tasks"]} == {"load_prices": "success"}
    assert [p.name.split("-", 1)[1] for p in (drop / "loaded").iterdir()] == ["second-half.csv"]
    assert any(p.name.endswith("garbled.csv") for p in (drop / "failed").iterdir())
    assert "garbled.csv" in log
    # And the asset event carries the run's date; it queued the prediction DAG
    assets = _airflow(env, "assets", str(DAGS))
    events = [e for e in assets["events"] if e["source_dag_id"] == "ml_ingest_prices"]
    assert events[-1]["uri"] == PRICES_ASSET
    assert events[-1]["extra"] == {"as_of": "2018-12-31", "last_close": "2018-12-31"}
    assert {"uri": PRICES_ASSET, "dag_id": "ml_predict_volatility"} in assets["queued"]

    # When the prediction DAG then runs without a logical date (as an asset event starts it),
    # it is for the day it was due: the session's close is stored, so it forecasts from it
    result = _airflow(env, "test", str(DAGS), "ml_predict_volatility", "--logical-date", "none",
                      "--run-after", "2018-12-31T23:00:00+00:00")  # fmt: skip
    states = {t["task_id"]: t["state"] for t in result["tasks"]}
    assert states["generate_and_store_predictions"] == "success", result
    engine = create_db_engine(Settings(home=home))
    origins = {r.origin_date for r in PredictionRepository(engine).find("^GSPC", limit=100).rows}
    engine.dispose()
    assert origins == {dt.date(2018, 12, 31)}

    # When the next day's only file is bad, the ingestion fails at once (a retry would find
    # the folder empty and succeed) and updates no asset
    (drop / "garbled-again.csv").write_text("not,prices\n1,2\n")
    result = _airflow(env, "test", str(DAGS), "ml_ingest_prices", "--logical-date",
                      "2019-01-02T22:30:00+00:00", "--retry-delay-s", "0.5")  # fmt: skip
    (task,) = result["tasks"]
    assert (task["state"], task["try_number"]) == ("failed", 1), result
    after = [e for e in _airflow(env, "assets", str(DAGS))["events"]
             if e["source_dag_id"] == "ml_ingest_prices"]  # fmt: skip
    assert after == events


def test_the_prediction_dag_stops_loudly_on_stale_prices_without_retrying(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    # Given the sample, which ends on 31 December 2018, and models trained on it
    env = _project(airflow_env, tmp_path / "var")
    _volforecast(env, "train", "--all", "--models", "garch", "--no-plots")
    # When the prediction DAG runs for 2 January 2019 (no ingestion brought its close)
    result, log = _airflow_logged(env, "test", str(DAGS), "ml_predict_volatility",
                                  "--logical-date", "2019-01-02T23:00:00+00:00")  # fmt: skip
    # Then its first task fails at once, saying which close is the last, and nothing follows
    states = {t["task_id"]: t for t in result["tasks"]}
    assert result["state"] == "failed"
    assert states["generate_and_store_predictions"]["state"] == "failed"
    assert states["generate_and_store_predictions"]["try_number"] == 1, "a retry cannot help"
    assert states["monitor_models"]["state"] == "upstream_failed"
    assert "prices are stale: the last stored close is 2018-12-31" in log
    engine = create_db_engine(Settings(home=tmp_path / "var"))
    assert PredictionRepository(engine).find("^GSPC").total == 0, "nothing from stale prices"
    engine.dispose()


def test_airflow_keeps_its_metadata_in_postgresql(
    airflow_env: dict[str, str], postgres_server_url: str
) -> None:
    # `make airflow-install` once left out the PostgreSQL driver, so Airflow could only use
    # SQLite and the soak had to lend it the project's.
    from sqlalchemy import make_url  # noqa: PLC0415

    url = make_url(postgres_server_url)
    for driver in ("postgresql+psycopg2", "postgresql+psycopg"):
        env = airflow_env | {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url.set(
            drivername=driver).render_as_string(hide_password=False)}  # fmt: skip
        done = subprocess.run([str(AIRFLOW_BIN / "airflow"), "db", "check"], env=env,
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, (driver, (done.stdout + done.stderr)[-2000:])
        assert "Connection successful" in done.stdout + done.stderr, driver


def test_the_training_summary_runs_under_the_interpreter_of_volforecasts_script(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    # pipx and images put the script where no `python` stands beside it; its #! line names
    # the environment that has volforecast.
    script = tmp_path / "bin" / "volforecast"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\nimport sys\n")
    script.chmod(0o755)
    code = ("import json, _volforecast as v; print(json.dumps([v._project_python(), "
            "v.summarize([])]))")  # fmt: skip
    done = subprocess.run([str(AIRFLOW_BIN / "python"), "-c", code], cwd=DAGS, text=True,
                          env=airflow_env | {"VOLFORECAST_BIN": str(script)},
                          capture_output=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    python, summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert python == sys.executable
    assert summary == {"lstm_better_than_garch": "0 of 0 tickers"}


def test_the_training_dag_trains_every_per_ticker_candidate_of_the_catalog() -> None:
    # The DAG runs in Airflow's environment, which cannot import the catalog: its list is
    # written out, and must say what the catalog says.
    text = (DAGS / "ml_train_volatility_models.py").read_text()
    listed = re.search(r'^PER_TICKER = "([^"]+)"', text, re.MULTILINE)
    combined = re.search(r'^COMBINATIONS = "([^"]+)"', text, re.MULTILINE)
    assert listed is not None
    assert combined is not None
    assert tuple(listed.group(1).split(",")) == tuple(
        c for c in CANDIDATES if not is_pooled(c) and not registered_members(c)
    )
    assert tuple(combined.group(1).split(",")) == tuple(
        c for c in CANDIDATES if registered_members(c)
    )
    assert [c for c in CANDIDATES if is_pooled(c)] == ["lstm"], "train_lstm trains the pooled one"


def test_the_prediction_dag_promotes_a_waiting_challenger_after_n_live_days_and_not_before(
    airflow_env: dict[str, str], tmp_path: Path
) -> None:
    # GARCH v1 serves; v2 won at training with VOLFORECAST_PROMOTION__MIN_LIVE_DAYS=3, so it
    # waits. Its live days are hand-made stored forecasts, better than production's.
    home = tmp_path / "var"
    env = airflow_env | {"VOLFORECAST_HOME": str(home),
                         "VOLFORECAST_PROMOTION__MIN_LIVE_DAYS": "3"}  # fmt: skip
    early = tmp_path / "until-june.parquet"
    sample = load_sample().frame
    sample[sample["date"] <= "2018-06-01"].to_parquet(early)
    _volforecast(env, "ingest", "--file", str(early))
    _volforecast(env, "train", "--tickers", "^GSPC", "--models", "garch", "--no-plots")
    _volforecast(env, "train", "--tickers", "^GSPC", "--models", "garch", "--no-plots", "--force")
    _volforecast(env, "ingest", "--sample")
    settings = Settings(home=home, promotion=PromotionSettings(min_live_days=3))
    engine = create_db_engine(settings)
    client = MlflowClient(settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    promotions = PromotionLog(engine)
    dates = pd.bdate_range("2017-01-02", periods=60)
    losses = 0.2 + np.random.default_rng(1).exponential(0.5, len(dates))
    registry = Registry(client, promotions, settings.promotion, actor="tests")
    assert registry.consider("garch_volatility_gspc", "2", losses_frame("X", dates, losses),
                             lambda _v: losses_frame("X", dates, 2 * losses)).live  # fmt: skip
    datasets, _ = daily_data_by_ticker(PriceRepository(engine).load(["^GSPC"]), settings.quality)
    rows = live_forecasts(datasets, "2018-06-01", {"^GSPC": {"1": 2.5, "2": 1.05}}, days=3,
                          challenger="2")  # fmt: skip
    PredictionRepository(engine).upsert(rows)
    origins = sorted({r.origin_date for r in rows})
    logged = len(promotions.events())

    def run_day(day: dt.date) -> None:
        result = _airflow(env, "test", str(DAGS), "ml_predict_volatility",
                          "--logical-date", f"{day.isoformat()}T17:00:00+00:00")  # fmt: skip
        states = {t["task_id"]: t["state"] for t in result["tasks"]}
        assert states["promote_live_challengers"] == "success", result

    # Two live days on the third session: it keeps waiting, and nothing is logged.
    run_day(origins[2])
    assert registry.alias_version("garch_volatility_gspc", "production") == "1"
    assert registry.alias_version("garch_volatility_gspc", "challenger") == "2"
    assert len(promotions.events()) == logged
    # That run forecast with both versions, stored side by side: it rewrote the day's
    # hand-made rows, each still what it was served as.
    next_day = dt.date(2018, 6, 6)  # the session after origins[2], 2018-06-05
    stored = PredictionRepository(engine).frame(
        ["^GSPC"], start=next_day, end=next_day, served_as=None
    )
    day = stored[stored["origin_date"] == origins[2]]
    assert (
        pd.to_datetime(day["prediction_timestamp"], utc=True) > rows[0].prediction_timestamp
    ).all()
    assert dict(zip(day["model_version"], day["served_as"], strict=True)) == {
        "1": "production",
        "2": "challenger",
    }

    # Three live days: promoted, logged once; the same day again moves nothing.
    assert origins[2] == dt.date(2018, 6, 5)
    run_day(next_day)
    assert registry.alias_version("garch_volatility_gspc", "production") == "2"
    assert registry.alias_version("garch_volatility_gspc", "challenger") is None
    events = promotions.events("garch_volatility_gspc")
    assert (events[-1].action, events[-1].version, events[-1].previous_version) == (
        "promote", "2", "1")  # fmt: skip
    assert "after 3 live days" in events[-1].reason
    run_day(next_day)
    assert len(promotions.events()) == logged + 1
    engine.dispose()
