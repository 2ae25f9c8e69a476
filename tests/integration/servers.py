"""Real servers for the integration tests: started as a user starts them, stopped with SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

STARTUP_S = 120


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(**volforecast: str) -> dict[str, str]:
    """This process's environment without any VOLFORECAST_ setting, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLFORECAST_")}
    env |= {f"VOLFORECAST_{k.upper()}": v for k, v in volforecast.items()}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


@contextlib.contextmanager
def volforecast_server(
    args: list[str], env: dict[str, str], log_path: Path, health_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m volforecast ARGS`` until ``health_url`` answers 200; SIGTERM afterwards."""
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "volforecast", *args],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + STARTUP_S
            while True:
                try:
                    if requests.get(health_url, timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    log_file.flush()
                    pytest.fail(f"{' '.join(args)} did not start:\n{log_path.read_text()}")
                time.sleep(0.3)
            yield server
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=60)


def serve_mlflow(home: Path, backend: str) -> Iterator[str]:
    """``volforecast mlflow`` on a free port with the given backend store; yields its URL."""
    port = free_port()
    env = clean_env(home=str(home), mlflow_backend_store_uri=backend)
    url = f"http://127.0.0.1:{port}"
    with volforecast_server(
        ["mlflow", "--port", str(port), "--workers", "1"], env, home / "server.log",
        f"{url}/health",
    ):  # fmt: skip
        yield url
