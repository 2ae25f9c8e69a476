"""A training run killed at each stage boundary: the next run leaves every version decided."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from sqlalchemy import Engine

from tests.factories import clean_prices
from tests.faults.conftest import Cli
from tests.integration.servers import clean_env
from volforecast.cli import ExitCode
from volforecast.data.repositories.metrics import MetricRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.registry.names import PRODUCTION, TAG_DECISION
from volforecast.registry.promotion_log import PromotionLog

pytestmark = pytest.mark.slow

TRAIN = ("train", "--tickers", "AAA", "--models", "garch", "--no-plots")
NAME = "garch_volatility_aaa"
SETTLED = {"promoted", "not_promoted", "abandoned"}


def _store(engine: Engine, *tickers: str) -> None:
    frames = [clean_prices(t, 700, seed=i) for i, t in enumerate(tickers)]
    for frame in frames:
        PriceRepository(engine).upsert(frame, ingested_at=dt.datetime.now(dt.UTC))


def _client(home: Path) -> MlflowClient:
    uri = f"sqlite:///{home / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def assert_every_version_decided(client: MlflowClient, engine: Engine, name: str) -> None:
    """The registry and the log agree: each version judged once, production explained."""
    events = PromotionLog(engine).events(name)
    versions = client.search_model_versions(f"name = '{name}'")
    assert versions
    for version in versions:
        number = str(version.version)
        decision = (version.tags or {}).get(TAG_DECISION)
        assert decision in SETTLED, f"v{number} is {decision}"
        judged = [e.action for e in events if e.candidate == number and e.action != "register"]
        assert len(judged) == 1, f"v{number} has decisions {judged}"
        assert client.get_run(version.run_id).info.status != "RUNNING"
        if decision != "abandoned":
            metrics = MetricRepository(engine).load(run_id=version.run_id)
            assert not metrics.empty, f"v{number} has no metric rows"
    production = client.get_registered_model(name).aliases.get(PRODUCTION)
    assert production is not None
    promoted = [e for e in events if e.action == "promote" and e.candidate == str(production)]
    assert promoted, f"production v{production} has no promote entry"


BOUNDARIES = {
    "train.after_log_model": "trains",
    "train.after_register": "abandons and trains",
    "promotion.register.after_alias_move": "abandons and trains",
    "promotion.after_challenger": "abandons and trains",
    "promotion.promote.before_alias_move": "abandons and trains",
    "promotion.promote.after_alias_move": "records the promotion",
    "train.after_decision": "keeps the decision",
}
ON_POSTGRESQL_TOO = {"train.after_register", "promotion.promote.after_alias_move"}
"""Every boundary on SQLite; on PostgreSQL the ones that tell the lease and the log apart."""
CASES = [
    pytest.param(database, boundary, then, id=f"{database}-{boundary}",
                 marks=[pytest.mark.postgres] if database == "postgres" else [])
    for boundary, then in BOUNDARIES.items()
    for database in ("sqlite", "postgres")
    if database == "sqlite" or boundary in ON_POSTGRESQL_TOO
]  # fmt: skip


@pytest.mark.parametrize(("database_url", "boundary", "then"), CASES, indirect=["database_url"])
def test_a_first_training_killed_at_a_boundary_is_settled_by_the_next(
    cli: Cli, engine: Engine, tmp_path: Path, boundary: str, then: str
) -> None:
    _store(engine, "AAA")
    killed = cli(*TRAIN, VOLFORECAST_FAULT_AT=boundary)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr

    done = cli(*TRAIN)
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    client = _client(tmp_path / "var")
    assert_every_version_decided(client, engine, NAME)
    versions = {str(v.version): v.tags[TAG_DECISION] for v in client.search_model_versions("")}
    production = str(client.get_registered_model(NAME).aliases[PRODUCTION])
    aliases = client.get_registered_model(NAME).aliases
    assert aliases.get("challenger") is None, "a decided or abandoned version is no challenger"
    if then == "abandons and trains":
        assert versions == {"1": "abandoned", "2": "promoted"}
        assert "recovered" in done.stdout
    elif then == "trains":
        assert versions == {"1": "promoted"}
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"], "the killed run"
    else:
        assert versions == {"1": "promoted"}
        assert production == "1"
        assert "unchanged since v1" in done.stdout


def test_a_challenger_killed_after_its_rejection_keeps_it(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    _store(engine, "AAA")
    assert cli(*TRAIN).returncode == ExitCode.OK
    killed = cli(*TRAIN, "--force", VOLFORECAST_FAULT_AT="train.after_decision")
    assert killed.returncode == -signal.SIGKILL
    done = cli(*TRAIN)
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    client = _client(tmp_path / "var")
    assert_every_version_decided(client, engine, NAME)
    versions = {str(v.version): v.tags[TAG_DECISION] for v in client.search_model_versions("")}
    assert versions == {"1": "promoted", "2": "not_promoted"}


def test_a_run_still_deciding_is_left_alone_by_another(
    database_url: str, cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    _store(engine, "AAA", "BBB")
    marker = tmp_path / "paused"
    env = clean_env(home=str(tmp_path / "var"), database_url=database_url)
    env |= {"VOLFORECAST_FAULT_AT": "train.after_register", "VOLFORECAST_FAULT_ACTION": "pause",
            "VOLFORECAST_FAULT_FILE": str(marker)}  # fmt: skip
    first = subprocess.Popen(
        [sys.executable, "-m", "volforecast", *TRAIN],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert first.poll() is None, first.communicate()[0]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    other = cli("train", "--tickers", "BBB", "--models", "garch", "--no-plots")
    assert other.returncode == ExitCode.OK, other.stdout + other.stderr
    assert "recovered" not in other.stdout
    marker.unlink()
    output, _ = first.communicate(timeout=300)
    assert first.returncode == ExitCode.OK, output
    client = _client(tmp_path / "var")
    versions = {str(v.version): v.tags[TAG_DECISION] for v in client.search_model_versions(
        f"name = '{NAME}'")}  # fmt: skip
    assert versions == {"1": "promoted"}


def test_a_pending_version_promoted_by_hand_is_not_promoted_again(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    _store(engine, "AAA")
    assert cli(*TRAIN, VOLFORECAST_FAULT_AT="train.after_register").returncode == -signal.SIGKILL
    promoted = cli("models", "promote", NAME, "1")
    assert promoted.returncode == ExitCode.OK, promoted.stdout + promoted.stderr
    done = cli(*TRAIN)
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    events = PromotionLog(engine).events(NAME)
    assert [(e.action, e.version) for e in events if e.action == "promote"] == [("promote", "1")]
    version = _client(tmp_path / "var").get_model_version(NAME, "1")
    assert version.tags[TAG_DECISION] == "promoted"


def test_a_worker_killed_mid_log_ends_the_job_in_one_sentence_and_the_next_run_settles_it(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    _store(engine, "AAA", "BBB")
    train_all = ("train", "--all", "--models", "garch", "--no-plots", "--workers", "2")
    # The workers log and register: each is killed after registering, before any decision.
    killed = cli(*train_all, VOLFORECAST_FAULT_AT="train.after_register")
    assert killed.returncode == ExitCode.ERROR, killed.stdout + killed.stderr
    assert "a worker process" in killed.stderr
    assert "Traceback" not in killed.stderr

    done = cli(*train_all)
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    client = _client(tmp_path / "var")
    for name in (NAME, "garch_volatility_bbb"):
        assert_every_version_decided(client, engine, name)
