"""``volforecast mlflow``, ``serve`` and ``dashboard``: the servers, started in the foreground."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from volforecast.cli import out, settings


def mlflow_server(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port (default VOLFORECAST_MLFLOW_PORT, 5000).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 2,
) -> None:
    """Start a real `mlflow server` on the configured backend store and artifact folder.

    The backend is VOLFORECAST_MLFLOW_BACKEND_STORE_URI (SQLite under ./var by default, or
    PostgreSQL); artifacts go to VOLFORECAST_MLFLOW_ARTIFACT_LOCATION and are served through
    the server. Point volforecast at it with
    VOLFORECAST_MLFLOW_TRACKING_URI=http://127.0.0.1:5000. Stops with Ctrl-C.
    """
    from volforecast.registry.relocate import relocate_store  # noqa: PLC0415

    given = settings()
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", given.mlflow_backend_store_uri,
        "--artifacts-destination", given.mlflow_artifact_location,
        "--host", host,
        "--port", str(port or given.mlflow_port),
        "--workers", str(workers),
    ]  # fmt: skip
    given.home.mkdir(parents=True, exist_ok=True)
    # Experiments the embedded store created record file paths: a moved home finds them again.
    relocate_store(given.mlflow_backend_store_uri, Path(given.mlflow_artifact_location))
    out.print(f"starting: {' '.join(command)}")
    executable = shutil.which(command[0]) or sys.executable
    os.execv(executable, command)  # noqa: S606  (replaces this process: signals reach mlflow)


def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface (default VOLFORECAST_API__HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default VOLFORECAST_API__PORT, 8000).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
) -> None:
    """Start the prediction API with uvicorn: /predict, /models, /health, /docs, /metrics.

    Models come from the registry's `production` aliases and are swapped without a restart
    when an alias moves (checked every VOLFORECAST_API__MODEL_REFRESH_S seconds). Set
    VOLFORECAST_API__API_KEY to require an X-API-Key header. Stops with Ctrl-C, after
    writing the predictions still queued.
    """
    import uvicorn  # noqa: PLC0415

    given = settings()
    given.home.mkdir(parents=True, exist_ok=True)
    uvicorn.run(
        "volforecast.api.app:create_app",
        factory=True,
        host=host or given.api.host,
        port=port or given.api.port,
        workers=workers,
        log_level=given.log_level.lower(),
        access_log=False,  # /metrics counts requests; a line per request costs throughput
    )


def dashboard(
    host: Annotated[
        str | None, typer.Option(help="Interface (default VOLFORECAST_DASHBOARD__HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default VOLFORECAST_DASHBOARD__PORT, 8501).")
    ] = None,
) -> None:
    """Start the Streamlit dashboard: forecasts, model comparison, registry, monitoring.

    It reads forecasts and models from the prediction API at VOLFORECAST_DASHBOARD__API_URL
    (start it with `volforecast serve`; without it the stored forecasts are shown) and the
    rest from the database, read-only. Open http://HOST:PORT; ?tab=Monitoring links a tab.
    """
    from volforecast.dashboard import run_streamlit, streamlit_command  # noqa: PLC0415

    given = settings()
    host, port = host or given.dashboard.host, port or given.dashboard.port
    out.print(f"dashboard on http://{host}:{port}, API at {given.dashboard.api_url}")
    raise typer.Exit(run_streamlit(streamlit_command(port, host)))
