"""One deadline bounds how long ``volforecast train`` waits for a dead MLflow server.

Reproduced on 261f41d: a server that accepted connections and never answered kept ``train``
for a minute before exit code 4, and a refused port for 20 s. A server that stopped answering
in the middle of a training cost a full round of MLflow's retries for each request made after
it (the upload, then the logged model marked FAILED, then the run ended as FAILED): up to two
and a half minutes, or exit code 1 when the registry's reader took the failure for a missing
version. Now the time from the first request the server does not answer to exit code 4 is at
most ``VOLFORECAST_MLFLOW_DEADLINE_S`` (8 s here) plus Python's own way out, at every stage.

Each test runs the real command line in its own process, against a real ``volforecast mlflow``
server behind a proxy that fails on cue where a server is needed. The price store is SQLite:
the fault is the tracking server's, and the database plays no part in it.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest

from tests.conftest import make_settings
from tests.faults.proxy import FailingProxy, Mode
from tests.integration.servers import clean_env, free_port, serve_mlflow
from volforecast.data import db
from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_sample

pytestmark = pytest.mark.slow

DEADLINE_S = 8
SLACK_S = 6.0
"""Beyond the deadline: the error's way out, and Python's own shutdown with torch and MLflow
loaded (1 to 3 s on a busy machine)."""
CLOCKED_CLI = Path(__file__).with_name("first_connect.py")

STAGES = {
    # The stage, and the request that opens it: the first one the server leaves unanswered.
    "fingerprint search": "GET /api/2.0/mlflow/model-versions/search",
    "experiment lookup": "GET /api/2.0/mlflow/experiments/get-by-name",
    "model upload": "PUT /api/2.0/mlflow-artifacts/artifacts/",
    "run logging": "POST /api/2.0/mlflow/runs/log-batch",
    "registration": "POST /api/2.0/mlflow/model-versions/create",
    "promotion": "GET /api/2.0/mlflow/model-versions/get",
    "alias move": "POST /api/2.0/mlflow/registered-models/alias",
}


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``volforecast mlflow`` with its SQLite backend, shared by the module's tests."""
    home = tmp_path_factory.mktemp("mlflow")
    yield from serve_mlflow(home, f"sqlite:///{home / 'mlflow.db'}")


@dataclass(frozen=True)
class Trained:
    """How one ``volforecast train`` process ended."""

    returncode: int
    stderr: str
    ended_at: float
    """``time.monotonic()`` once the process had exited."""
    first_connect_at: float | None
    """``time.monotonic()`` at its first attempt to connect to the tracking server's port."""


def _sample_in(sqlite_url: str) -> str:
    """The sample's S&P 500 under a ticker no other test registers, stored in the database."""
    frame = load_sample().frame
    ticker = f"D{uuid.uuid4().hex[:6].upper()}"
    frame = frame[frame["ticker"] == "^GSPC"].tail(1500).assign(ticker=ticker)
    engine = db.create_db_engine(make_settings(database_url=sqlite_url))
    PriceRepository(engine).upsert(frame, ingested_at=pd.Timestamp.now(tz="UTC").to_pydatetime())
    engine.dispose()
    return ticker


def _train(tmp_path: Path, sqlite_url: str, tracking_uri: str, *, workers: int = 1) -> Trained:
    tickers = ",".join(_sample_in(sqlite_url) for _ in range(workers))
    clock = tmp_path / "first-connect"
    env = clean_env(
        home=str(tmp_path / "var"),
        database_url=sqlite_url,
        mlflow_tracking_uri=tracking_uri,
        mlflow_deadline_s=str(DEADLINE_S),
    )
    env["COLUMNS"] = "1000"  # the error on one line
    port = urlsplit(tracking_uri).port
    done = subprocess.run(
        [sys.executable, str(CLOCKED_CLI), str(port), str(clock),
         "train", "--tickers", tickers, "--models", "garch", "--no-plots",
         "--workers", str(workers)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    ended_at = time.monotonic()
    first = float(clock.read_text()) if clock.exists() else None
    return Trained(done.returncode, done.stderr, ended_at, first)


def _assert_given_up(done: Trained, since: float, server: str) -> None:
    """Exit code 4 within the deadline, with one sentence that names the server and a remedy."""
    waited_s = done.ended_at - since
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    sentence = errors[0].removeprefix("error: ") if len(errors) == 1 else ""
    wrong = {
        f"exit code {done.returncode}": done.returncode != 4,
        f"{waited_s:.1f} s from the first unanswered request to the exit": (
            waited_s > DEADLINE_S + SLACK_S
        ),
        "a traceback": "Traceback" in done.stderr,
        f"{len(errors)} error lines": len(errors) != 1,
        "no server named": server not in sentence,
        "no remedy": "volforecast mlflow" not in sentence,
        "more than one sentence": ". " in sentence,
    }
    problems = [problem for problem, found in wrong.items() if found]
    assert not problems, f"deadline {DEADLINE_S} s: {'; '.join(problems)}\n{done.stderr[-3000:]}"


def test_a_server_that_accepts_connections_and_never_answers(
    tmp_path: Path, sqlite_url: str
) -> None:
    silent = FailingProxy(None)
    try:
        done = _train(tmp_path, sqlite_url, silent.url)
    finally:
        silent.close()
    assert done.first_connect_at is not None, done.stderr
    _assert_given_up(done, done.first_connect_at, silent.url)


def test_a_refused_port(tmp_path: Path, sqlite_url: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = _train(tmp_path, sqlite_url, url)
    assert done.first_connect_at is not None, done.stderr
    _assert_given_up(done, done.first_connect_at, url)


@pytest.mark.parametrize(
    ("mode", "stage"),
    [*(("silent", stage) for stage in STAGES), ("refuse", "model upload")],
    ids=lambda value: value.replace(" ", "-"),
)
def test_a_server_that_stops_answering_during_training(
    mode: Mode, stage: str, mlflow_server: str, tmp_path: Path, sqlite_url: str
) -> None:
    # The requests before the stage are answered by the real server; from the stage's first
    # request on, nothing is (silent), or the port is closed as if the server were killed.
    proxy = FailingProxy(urlsplit(mlflow_server).port, mode=mode, fail_on=STAGES[stage])
    try:
        done = _train(tmp_path, sqlite_url, proxy.url)
    finally:
        proxy.close()
    assert proxy.failed_at is not None, f"no {STAGES[stage]} was sent:\n{done.stderr[-4000:]}"
    _assert_given_up(done, proxy.failed_at, proxy.url)


@pytest.mark.parametrize("stage", ["model upload", "registration"])
def test_a_server_that_stops_answering_while_worker_processes_log(
    stage: str, mlflow_server: str, tmp_path: Path, sqlite_url: str
) -> None:
    # Two tickers, two workers: the workers log and register, so they meet the outage first.
    proxy = FailingProxy(urlsplit(mlflow_server).port, fail_on=STAGES[stage])
    try:
        done = _train(tmp_path, sqlite_url, proxy.url, workers=2)
    finally:
        proxy.close()
    assert proxy.failed_at is not None, f"no {STAGES[stage]} was sent:\n{done.stderr[-4000:]}"
    _assert_given_up(done, proxy.failed_at, proxy.url)
