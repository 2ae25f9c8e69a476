"""The LSTM's one set of defaults, its progress per epoch, and a training stopped with Ctrl-C.

The defaults in :class:`LstmConfig` are what ``volforecast train``, ``volforecast backtest``,
the training DAG and the benchmarks use; the loss of every epoch reaches the MLflow run while
it trains; Ctrl-C says what was kept and exits 130; MLflow's chatter waits for --verbose.
Training here is kept short through the overrides every caller has.
"""

from __future__ import annotations

import ast
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from typer.testing import CliRunner

from tests.conftest import make_settings
from volforecast.cli import ExitCode, app
from volforecast.core.features import DailyData
from volforecast.data import db
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample
from volforecast.evaluation.backtest import BacktestConfig, blocks, walk_forward
from volforecast.jobs.train import TrainConfig, train
from volforecast.models.lstm.config import BACKTEST_REFIT, WEEKLY_RETRAIN, LstmConfig
from volforecast.models.lstm.training import EpochReport

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "volforecast"
LSTM_FIELDS = {"batch_size", "stride", "patience", "max_epochs", "learning_rate", "hidden_size"}
LSTM_OPTIONS = {"--lstm-batch-size", "--lstm-stride", "--lstm-patience", "--lstm-epochs"}


def test_the_help_of_train_and_backtest_states_lstm_configs_defaults() -> None:
    defaults = LstmConfig()
    for command in ("train", "backtest"):
        result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "240"})
        assert result.exit_code == 0
        text = " ".join(result.output.split())
        for option in LSTM_OPTIONS:
            assert option in text, (command, option)
        assert f"(default {defaults.max_epochs})" in text
        assert f"(default {defaults.batch_size})" in text
        assert f"(default {defaults.stride})" in text
        assert f"(default {defaults.patience})" in text


def _overrides(path: Path) -> list[str]:
    """Every LSTM setting a file passes on its own: config keywords, dict keys, CLI options."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        called = getattr(node, "func", None)
        callee = getattr(called, "id", None) or getattr(called, "attr", None)
        if isinstance(node, ast.Call) and callee == "LstmConfig":
            found += [str(k.arg) for k in node.keywords if k.arg in LSTM_FIELDS]
        elif isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            found += [k for k in keys if k in LSTM_FIELDS]
        elif isinstance(node, ast.Constant) and node.value in LSTM_OPTIONS:
            found.append(node.value)
    return [f"{path.name}: {setting}" for setting in found]


def test_the_dags_and_benchmarks_pass_no_lstm_setting_of_their_own() -> None:
    files = sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "dags").glob("*.py"))
    found = [entry for path in files for entry in _overrides(path)]
    # The DAG passes --lstm-epochs only when its run asks for it; lstm_epoch.py's --stride is
    # LstmConfig's unless given; predict_batch.py trains two epochs on purpose, and says why:
    # it times prediction, not training.
    assert sorted(found) == [
        "lstm_epoch.py: stride",
        "ml_train_volatility_models.py: --lstm-epochs",
        "predict_batch.py: max_epochs",
    ]


def _sample(days: int) -> pd.DataFrame:
    return load_sample().frame.groupby("ticker").tail(days).reset_index(drop=True)


def test_the_backtest_refits_for_the_default_epochs_after_its_first_training() -> None:
    frame = _sample(1200)
    datasets = [DailyData.from_prices(frame[frame["ticker"] == t]) for t in ("^GSPC", "^IXIC")]
    config = BacktestConfig(
        dt.date(2018, 8, 31), dt.date(2018, 11, 30), ("lstm",), lstm_settings={"max_epochs": 2}
    )
    assert config.lstm_refit_epochs == BACKTEST_REFIT.max_epochs
    heard: list[EpochReport] = []
    walk_forward(datasets, config, on_epoch=heard.append)
    refits = len(blocks(config)) - 1
    assert refits >= 2
    trainings = [r.max_epochs for r in heard if r.epoch == 1]
    assert trainings == [2] + [BACKTEST_REFIT.max_epochs] * refits
    assert len(heard) <= 2 + refits * BACKTEST_REFIT.max_epochs


@pytest.mark.slow
def test_each_epochs_losses_reach_the_mlflow_run_and_a_retrain_keeps_to_the_warm_limits(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = make_settings(home=tmp_path / "var", database_url=sqlite_url)
    engine = db.create_db_engine(settings)
    PriceRepository(engine).upsert(_sample(900), ingested_at=dt.datetime.now(dt.UTC))
    heard: list[EpochReport] = []
    threads: list[int] = []

    def on_epoch(report: EpochReport) -> None:
        heard.append(report)
        threads.append(torch.get_num_threads())

    config = TrainConfig(
        models=("lstm",), lstm_settings={"max_epochs": 3, "patience": 3}, workers=2
    )
    report = train(engine, settings, config, on_epoch=on_epoch)
    assert report.complete, [o.message for o in report.failed]
    assert [r.epoch for r in heard] == [1, 2, 3]
    assert threads == [2, 2, 2], "the pooled stage trains on the per-ticker workers' cores"
    uri = settings.mlflow_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(str(report.outcomes[0].run_id))
    assert run.info.status == "FINISHED"
    for key, index in (("train_qlike", 0), ("validation_qlike", 1)):
        history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
        assert [m.step for m in history] == [1, 2, 3], key
        expected = [(r.train_loss, r.validation_loss)[index] for r in heard]
        assert [m.value for m in history] == pytest.approx(expected), key

    # Next week's retrain starts from production's weights: at most the warm-start limits,
    # whatever the settings ask of a training from scratch.
    heard.clear()
    again = TrainConfig(
        models=("lstm",), lstm_settings={"max_epochs": 12, "patience": 12}, force=True
    )
    train(engine, settings, again, on_epoch=heard.append)
    assert {r.max_epochs for r in heard} == {WEEKLY_RETRAIN.max_epochs}
    assert len(heard) <= WEEKLY_RETRAIN.max_epochs
    engine.dispose()


def _env(home: Path) -> dict[str, str]:
    # Nothing an earlier test's MLflow client set in this process (its URIs, its timeouts).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOLFORECAST_", "MLFLOW_"))}
    return env | {"VOLFORECAST_HOME": str(home), "COLUMNS": "200"}


def _ingested_home(tmp_path: Path) -> Path:
    home = tmp_path / "var"
    subprocess.run([SCRIPT, "ingest", "--sample"], env=_env(home), check=True,
                   capture_output=True, cwd=tmp_path)  # fmt: skip
    return home


@pytest.mark.slow
def test_mlflows_chatter_shows_only_with_verbose(tmp_path: Path) -> None:
    home = _ingested_home(tmp_path)
    # Two workers: the sample's two indices are logged by worker processes, which must be as
    # quiet as this one.
    train_ = [SCRIPT, "train", "--all", "--models", "garch", "--no-plots", "--workers", "2"]
    quiet = subprocess.run(
        train_, env=_env(home), capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert quiet.returncode == 0, quiet.stderr
    said = quiet.stdout + quiet.stderr
    assert "garch_volatility_gspc v1" in said
    for chatter in ("Validating input example", "INFO mlflow", "View run", "🏃",
                    "database tables"):  # fmt: skip
        assert chatter not in said, chatter
    verbose = subprocess.run(
        [SCRIPT, "--verbose", *train_[1:], "--force"],
        env=_env(home), capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert verbose.returncode == 0, verbose.stderr
    assert "Validating input example" in verbose.stderr


@pytest.mark.slow
def test_ctrl_c_during_the_lstm_says_what_was_kept_and_exits_130(tmp_path: Path) -> None:
    home = _ingested_home(tmp_path)
    # Far more epochs than the test waits for: it is stopped once the first one is logged.
    slow = ["--lstm-epochs", "1000", "--lstm-patience", "1000", "--lstm-stride", "1",
            "--lstm-batch-size", "64"]  # fmt: skip
    process = subprocess.Popen(
        [SCRIPT, "train", "--all", "--models", "garch,lstm", "--no-plots", *slow],
        env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        client = _client_once_mlflow_is_set_up(home, process)
        run_id = _first_epoch_logged(client, process)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    said = " ".join((out + err).split())
    assert process.returncode == ExitCode.INTERRUPTED == 130, said
    assert "interrupted:" in said
    assert "garch_volatility_gspc v1 (production)" in said
    assert "garch_volatility_ixic v1 (production)" in said
    assert "the pooled LSTM" in said
    assert "was stopped and not registered" in said
    assert "Traceback" not in said
    assert client.search_registered_models("name = 'lstm_volatility_pooled'") == []
    assert client.get_run(run_id).info.status == "KILLED"


def _client_once_mlflow_is_set_up(home: Path, process: subprocess.Popen[str]) -> MlflowClient:
    """A client of the training's MLflow store, once the training has created it.

    Artifacts are written only after MLflow's tables exist, so the test's client never races
    the training to create them.
    """
    artifacts = home / "mlartifacts"
    deadline = time.monotonic() + 300
    while not (artifacts.is_dir() and any(artifacts.iterdir())):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the training logged nothing in 5 minutes"
        time.sleep(0.5)
    uri = make_settings(home=home).mlflow_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _first_epoch_logged(client: MlflowClient, process: subprocess.Popen[str]) -> str:
    """The pooled LSTM's run, once its first epoch's loss is logged."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        experiment = client.get_experiment_by_name("volforecast-lstm")
        if experiment is not None:
            for run in client.search_runs([experiment.experiment_id]):
                if client.get_metric_history(run.info.run_id, "validation_qlike"):
                    return str(run.info.run_id)
        time.sleep(0.5)
    pytest.fail("the pooled LSTM logged no epoch in 5 minutes")
