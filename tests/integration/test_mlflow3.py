"""MLflow 3 as its users know it, against a real local store, and a home that can be moved.

A training run logs its model as ``garch_gspc`` with the run's metrics on the logged model,
the prices it read as a dataset with a digest of every row, and descriptions on the registered
model and version. A model logged as ``model`` (as versions before were) still loads. The
whole ``VOLFORECAST_HOME`` moved elsewhere still serves through the API and ``volforecast
predict``; a file deleted from it is named in the error.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.integration.servers import serve_mlflow
from volforecast.api.app import create_app
from volforecast.cli import ExitCode, app
from volforecast.data import db
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.jobs.train import TrainConfig, train
from volforecast.registry.datasets import PriceStoreSource
from volforecast.registry.fingerprint import data_hash
from volforecast.registry.pyfunc import (
    ARTIFACT_KEY,
    MODEL_CODE,
    SIGNATURE,
    input_example,
    pip_requirements,
)
from volforecast.registry.serving import ProductionModels, download_models
from volforecast.registry.tracking import connect
from volforecast.settings import Settings, get_settings

pytestmark = pytest.mark.slow

DAYS = 900
GARCH = TrainConfig(models=("garch",), plots=False)
NAME = "garch_volatility_gspc"


def _prices() -> pd.DataFrame:
    frame = load_sample().frame
    return frame[frame["ticker"] == "^GSPC"].tail(DAYS).reset_index(drop=True)


def _train(settings: Settings, frame: pd.DataFrame, *, force: bool = False) -> None:
    engine = db.create_db_engine(settings)
    db.ensure_schema(engine)
    PriceRepository(engine).upsert(frame, ingested_at=dt.datetime.now(dt.UTC))
    report = train(engine, settings, TrainConfig(models=("garch",), plots=False, force=force),
                   ["^GSPC"])  # fmt: skip
    engine.dispose()
    assert report.complete, report.outcomes


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """An embedded home (SQLite, local MLflow store) with ^GSPC's GARCH in production."""
    settings = make_settings(home=tmp_path_factory.mktemp("mlflow3") / "var")
    _train(settings, _prices())
    return settings


def _client(settings: Settings) -> MlflowClient:
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri)


def _copy(settings: Settings, home: Path) -> Settings:
    """The trained home copied to ``home``, its store opened there once (so it records it)."""
    shutil.copytree(settings.home, home)
    copied = make_settings(home=home)
    connect(copied, check=False)
    return copied


def test_the_logged_model_is_named_after_what_it_is_and_holds_the_metrics(
    trained: Settings,
) -> None:
    client = _client(trained)
    version = client.get_model_version(NAME, "1")
    run = client.get_run(str(version.run_id))

    logged = client.get_logged_model(str(version.source).removeprefix("models:/"))

    assert logged.name == "garch_gspc"
    assert logged.source_run_id == run.info.run_id
    on_model = {m.key: m.value for m in logged.metrics or []}
    assert on_model == run.data.metrics, "the logged model holds every metric of its run"
    assert on_model["qlike_h1_range"] > 0
    assert logged.params == run.data.params
    assert logged.tags["volforecast.ticker"] == "^GSPC"
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": NAME, "version": "1"}]
    found = client.search_logged_models(
        [run.info.experiment_id], filter_string="tags.`volforecast.ticker` = '^GSPC'"
    )
    assert [m.name for m in found] == ["garch_gspc"]


def test_the_prices_are_a_dataset_whose_digest_follows_them(
    trained: Settings, tmp_path: Path
) -> None:
    client = _client(trained)
    run = client.get_run(str(client.get_model_version(NAME, "1").run_id))
    (used,) = run.inputs.dataset_inputs
    assert used.dataset.name == "prices_gspc"
    assert {t.key: t.value for t in used.tags}["mlflow.data.context"] == "training"
    assert used.dataset.digest == run.data.tags["volforecast.data_hash"][:32]
    # The source reads the same rows again, so the digest is the digest of what it names.
    source = PriceStoreSource.from_dict(json.loads(used.dataset.source))
    assert source.tickers == ["^GSPC"]
    engine = db.create_db_engine(trained)
    again = source.load(engine)
    engine.dispose()
    assert data_hash(again)[:32] == used.dataset.digest

    # One close changed far from the start of the table (MLflow's own digest reads only the
    # first 10,000 rows): a new digest.
    moved = _copy(trained, tmp_path / "var")
    changed = _prices()
    changed.loc[DAYS // 2, ["close", "adj_close"]] *= 1.01
    _train(moved, changed, force=True)
    client = _client(moved)
    run_2 = client.get_run(str(client.get_model_version(NAME, "2").run_id))
    (used_2,) = run_2.inputs.dataset_inputs
    assert used_2.dataset.name == "prices_gspc"
    assert used_2.dataset.digest != used.dataset.digest


def test_registered_model_and_version_say_what_they_are_and_how_good(trained: Settings) -> None:
    client = _client(trained)
    model = client.get_registered_model(NAME)
    version = client.get_model_version(NAME, "1")
    params = client.get_run(str(version.run_id)).data.params
    metrics = client.get_run(str(version.run_id)).data.metrics

    assert model.description.startswith("GARCH volatility model of ^GSPC.")
    window = f"test window {params['data.test_start']} to {params['data.test_end']}"
    assert window in version.description
    assert f"QLIKE 1-day (range proxy) {metrics['qlike_h1_range']:.4f}" in version.description


def test_a_model_logged_as_model_by_an_earlier_version_still_loads(
    trained: Settings, tmp_path: Path
) -> None:
    settings = _copy(trained, tmp_path / "var")
    client = connect(settings)
    (model,) = download_models(NAME, "1").values()
    saved = model.save(tmp_path / "saved" / "garch-gspc")
    experiment = client.get_experiment_by_name("volforecast-garch")
    assert experiment is not None
    # As the code before named every logged model.
    with mlflow.start_run(experiment_id=experiment.experiment_id):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(MODEL_CODE), artifacts={ARTIFACT_KEY: str(saved)},
            signature=SIGNATURE, input_example=input_example("^GSPC"),
            pip_requirements=pip_requirements(),
        )  # fmt: skip
    old = mlflow.register_model(info.model_uri, "garch_volatility_old")
    client.set_registered_model_alias("garch_volatility_old", "production", old.version)

    held = ProductionModels(client)
    report = held.refresh()

    assert report.failed == {}
    (served,) = [s for s in held.served() if s.name == "garch_volatility_old"]
    assert served.models["^GSPC"].forecast(5).sigma2.tolist() == model.forecast(5).sigma2.tolist()
    pyfunc = mlflow.pyfunc.load_model("models:/garch_volatility_old@production")
    assert len(pyfunc.predict(pd.DataFrame({"horizon": [3]}))) == 3


@pytest.fixture
def cli_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The CLI in an empty directory, with no VOLFORECAST_ setting but those a test sets."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("VOLFORECAST_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _predict(home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("VOLFORECAST_HOME", str(home))
    get_settings.cache_clear()
    last = _prices()["date"].max().date().isoformat()
    result = CliRunner().invoke(app, ["predict", "--all", "--as-of", last])
    return result.exit_code, result.output


def test_a_moved_home_still_serves(
    trained: Settings, tmp_path: Path, cli_home: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _copy(trained, tmp_path / "a" / "var")
    after = tmp_path / "b" / "var"
    after.parent.mkdir()

    shutil.move(before.home, after)  # mv $HOME_A $HOME_B
    settings = make_settings(home=after)

    with TestClient(create_app(settings)) as api:
        answer = api.post("/predict", json={"ticker": "^GSPC", "model_type": "GARCH",
                                            "horizon": 5})  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert api.get("/health").json()["checks"]["models"]["ok"] is True
    code, output = _predict(after, monkeypatch)
    assert code == ExitCode.OK, output
    experiment = _client(settings).get_experiment_by_name("volforecast-garch")
    assert experiment is not None
    assert experiment.artifact_location == (after / "mlartifacts" / "volforecast-garch").as_uri()
    assert not before.home.exists()


def test_the_mlflow_server_on_a_moved_home_serves_its_models(
    trained: Settings, tmp_path: Path
) -> None:
    home = tmp_path / "b" / "var"
    shutil.move(_copy(trained, tmp_path / "a" / "var").home, home)

    server = serve_mlflow(home, f"sqlite:///{home / 'mlflow.db'}")
    url = next(server)
    try:
        settings = make_settings(home=tmp_path / "client", mlflow_tracking_uri=url)
        report = ProductionModels(connect(settings)).refresh()
    finally:
        server.close()
    assert report.loaded == [f"{NAME} v1"], report.failed


def test_a_missing_model_file_is_named(
    trained: Settings, tmp_path: Path, cli_home: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _copy(trained, tmp_path / "var")
    location = Path(
        str(_client(settings).get_model_version_download_uri(NAME, "1")).removeprefix("file://")
    )
    (lost,) = location.glob("artifacts/*/data.npz")
    lost.unlink()

    report = ProductionModels(connect(settings)).refresh()
    assert "ModelFilesMissingError" in report.failed[NAME]
    assert f"a model file is missing: {lost}" in report.failed[NAME]
    code, output = _predict(settings.home, monkeypatch)
    assert code == ExitCode.ERROR
    flat = " ".join(output.split())
    assert "none of the 1 production models could be loaded" in flat
    assert "no model is in production yet" not in flat

    shutil.rmtree(location)
    report = ProductionModels(connect(settings)).refresh()
    assert f"its model files are missing: {location} does not exist" in report.failed[NAME]
