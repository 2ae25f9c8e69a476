"""How the DAGs call volforecast: its command line, in the project's own environment.

Airflow 3.3 pins older libraries than volforecast does, so each lives in its own virtual
environment (``.venv-airflow`` and ``.venv``). A task runs ``volforecast …`` as a subprocess
with the worker's ``VOLFORECAST_*`` settings and reads the JSON report the command writes.
The jobs behind the commands are the same plain functions the CLI and the API call.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROJECT_BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "volforecast"
PARTIAL = 3
"""Exit code of a job that did part of its work: some tickers failed, the rest is stored."""


def volforecast_bin() -> str:
    """``$VOLFORECAST_BIN``, else the project's ``.venv``, else ``volforecast`` on PATH."""
    if os.environ.get("VOLFORECAST_BIN"):
        return os.environ["VOLFORECAST_BIN"]
    if PROJECT_BIN.exists():
        return str(PROJECT_BIN)
    return shutil.which("volforecast") or "volforecast"


def run(*args: str) -> dict[str, Any]:
    """Run ``volforecast ARGS --report-json FILE`` and return the report.

    Exit code 0 and 3 (partial: some tickers failed for reasons a retry cannot mend, such as
    too short a history; they are in the report) return the report. Any other code raises,
    so that Airflow retries the task: a database or MLflow server that is down is exit 4.
    """
    with tempfile.TemporaryDirectory(prefix="volforecast-task-") as folder:
        report = Path(folder) / "report.json"
        command = [volforecast_bin(), *args, "--report-json", str(report)]
        log.info("running %s", " ".join(command))
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        for line in (done.stdout + done.stderr).splitlines():
            log.info("%s", line)
        if done.returncode not in {0, PARTIAL}:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            msg = f"volforecast {args[0]} exited with code {done.returncode}: {last[0]}"
            raise RuntimeError(msg)
        if done.returncode == PARTIAL:
            log.warning("volforecast %s finished partly; see the report", args[0])
        payload: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
        return payload


def chunks(items: list[str], size: int) -> list[list[str]]:
    """``items`` in consecutive chunks of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), max(size, 1))]
