"""How the DAGs call volforecast: its command line, in the project's own environment.

Airflow 3.3 pins older libraries than volforecast does, so each lives in its own virtual
environment (``.venv-airflow`` and ``.venv``). A task runs ``volforecast …`` as a subprocess
with the worker's ``VOLFORECAST_*`` settings and reads the JSON report the command writes.
The jobs behind the commands are the same plain functions the CLI and the API call.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

log = logging.getLogger(__name__)

PROJECT_BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "volforecast"
PARTIAL = 3
"""Exit code of a job that did part of its work: some tickers failed, the rest is stored."""
STALE = 5
"""Exit code of a job refused because the last stored close is older than the run's session."""

STOCK_PRICES = Asset("volforecast://market/stock_prices")
"""``market.stock_prices``: ``ml_ingest_prices`` updates it, ``ml_predict_volatility`` waits
on it. Each event's extra holds the run's date (``as_of``) and the last stored close."""


def dag_args(doc: str | None, tag: str, retries: int, delay: int, max_delay: int) -> dict[str, Any]:
    """What every volforecast DAG shares; failed tasks retry, backing off from ``delay`` minutes."""
    return {
        # Early enough to backfill any stored history; catchup is off, so nothing runs for the
        # past unless asked (a run before start_date would get no task at all).
        "start_date": dt.datetime(1999, 1, 1, tzinfo=dt.UTC),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": {
            "owner": "volforecast",
            "retries": retries,
            "retry_delay": dt.timedelta(minutes=delay),
            "retry_exponential_backoff": True,
            "max_retry_delay": dt.timedelta(minutes=max_delay),
        },
        "tags": ["volforecast", tag],
        "doc_md": doc,
    }


def volforecast_bin() -> str:
    """``$VOLFORECAST_BIN``, else the project's ``.venv``, else ``volforecast`` on PATH."""
    if os.environ.get("VOLFORECAST_BIN"):
        return os.environ["VOLFORECAST_BIN"]
    if PROJECT_BIN.exists():
        return str(PROJECT_BIN)
    return shutil.which("volforecast") or "volforecast"


def run(*args: str, final: frozenset[int] = frozenset()) -> dict[str, Any]:
    """Run ``volforecast ARGS --report-json FILE`` and return the report.

    Exit codes in ``final`` fail the task without a retry (a retry would meet the same).

    Exit code 0 and 3 (partial: some tickers failed for reasons a retry cannot mend, such as
    too short a history; they are in the report) return the report. Any other code raises,
    so that Airflow retries the task: a database or MLflow server that is down is exit 4.
    Stale prices (exit 5) fail the task at once with the command's sentence: a retry minutes
    later would not bring the missing close.
    """
    with tempfile.TemporaryDirectory(prefix="volforecast-task-") as folder:
        report = Path(folder) / "report.json"
        command = [volforecast_bin(), *args, "--report-json", str(report)]
        log.info("running %s", " ".join(command))
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        for line in (done.stdout + done.stderr).splitlines():
            log.info("%s", line)
        payload: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
        if done.returncode == STALE:
            stale = payload.get("stale") or ["the stored prices are stale"]
            raise AirflowFailException(f"volforecast {args[0]}: {stale[0]}")
        if done.returncode not in {0, PARTIAL}:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            msg = f"volforecast {args[0]} exited with code {done.returncode}: {last[0]}"
            if done.returncode in final:
                raise AirflowFailException(msg)
            raise RuntimeError(msg)
        if done.returncode == PARTIAL:
            log.warning("volforecast %s finished partly; see the report", args[0])
        return payload


def summarize(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """The families of several trainings' ``outcomes`` compared, by volforecast's own job.

    ``volforecast.jobs.train_summary`` runs in the project's environment, the one
    ``volforecast_bin()`` belongs to: its summary is the one each training report carries.
    """
    command = [_project_python(), "-m", "volforecast.jobs.train_summary"]
    done = subprocess.run(  # noqa: S603  (our own interpreter and module)
        command, input=json.dumps(outcomes), capture_output=True, text=True, check=True
    )
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def _project_python() -> str:
    """The interpreter volforecast's script runs under: its ``#!`` line (venv, pipx, image)."""
    script = Path(shutil.which(volforecast_bin()) or volforecast_bin()).resolve()
    with script.open("rb") as head:
        first = head.readline().decode(errors="replace").strip()
    interpreter = first.removeprefix("#!").split()[0] if first.startswith("#!") else ""
    if Path(interpreter).name.startswith("python") and Path(interpreter).exists():
        return interpreter
    return str(script.with_name("python"))  # a launcher (pip's for long paths, say)


def run_date(context: Any) -> str:
    """The date a run is for, ISO: its logical date, else that of the asset event it consumed.

    A run started by an asset event has no logical date of its own (Airflow 3); the ingestion
    run put its date in the event's extra. With neither (a manual asset-scheduled run), the
    day the run was due.
    """
    if context.get("logical_date") is not None:
        return str(context["logical_date"].date().isoformat())
    events = [e for batch in context.get("triggering_asset_events", {}).values() for e in batch]
    dated = [e.extra["as_of"] for e in events if (e.extra or {}).get("as_of")]
    if dated:
        return str(max(dated))
    return str(context["dag_run"].run_after.date().isoformat())


def chunks(items: list[str], size: int) -> list[list[str]]:
    """``items`` in consecutive chunks of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), max(size, 1))]
