"""The model registry read directly: its versions when the API is down, a pooled model's figures.

Versions are listed with :meth:`~volforecast.api.schemas.ModelInfo.from_version`, as the API's
``GET /models`` lists them. MLflow takes seconds to import: only the reads that need it pay.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from volforecast.api.schemas import ModelInfo
from volforecast.dashboard.sources import DashboardError, first_line
from volforecast.errors import VolforecastError
from volforecast.settings import Settings

METRICS_BY_TICKER = "metrics_by_ticker.csv"
"""The artifact in which a pooled model's training run keeps each ticker's test metrics."""


def registry_models(settings: Settings) -> list[ModelInfo]:
    """The registry's versions, in the layout of the API's ``GET /models``.

    A local store that does not exist yet is reported rather than created, and a tracking
    server is asked once, without MLflow's minutes of retries.
    """
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    from volforecast.registry.serving import list_versions  # noqa: PLC0415
    from volforecast.registry.tracking import check_server, connect, is_server  # noqa: PLC0415

    uri = settings.mlflow_tracking_uri
    if is_server(uri):
        try:
            check_server(uri, retries=0, timeout_s=3.0)
        except VolforecastError as exc:
            raise DashboardError(str(exc)) from exc
    elif uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        msg = f"There is no model registry at {uri} yet: run `volforecast train`."
        raise DashboardError(msg)
    try:
        versions = list_versions(connect(settings, check=False))
    except (MlflowException, OSError, VolforecastError) as exc:
        msg = f"The model registry at {uri} is not answering: {first_line(exc)}"
        raise DashboardError(msg) from exc
    return [ModelInfo.from_version(v) for v in versions]


def pooled_ticker_metrics(
    settings: Settings, name: str, version: str, ticker: str
) -> dict[str, float] | None:
    """Test-window metrics of ``ticker`` alone, as version ``version`` of pooled ``name`` logged.

    None when the run kept no per-ticker figures or does not list ``ticker``. Reads the
    registry directly (MLflow is imported here, on demand: it takes seconds).
    """
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    from volforecast.registry.tracking import connect  # noqa: PLC0415

    client = connect(settings, check=False)
    try:
        run_id = client.get_model_version(name, version).run_id
        with tempfile.TemporaryDirectory() as folder:
            path = client.download_artifacts(str(run_id), METRICS_BY_TICKER, folder)
            table = pd.read_csv(path, index_col=0)
    except (MlflowException, OSError) as exc:
        msg = f"The per-ticker metrics of {name} v{version} could not be read: {exc}"
        raise DashboardError(msg) from exc
    if ticker not in table.index:
        return None
    row = table.loc[ticker].astype("float64")
    return {str(k): float(v) for k, v in row.dropna().to_dict().items()}


def live_records(
    settings: Settings, engine: Engine, ticker: str
) -> list[tuple[dict[str, object], pd.DataFrame]]:
    """The live A/B of each challenger waiting for live evidence that forecasts ``ticker``.

    Each is its summary (:meth:`~volforecast.monitoring.live_ab.LiveRecord.summary`) and its
    judged days for ``ticker`` alone. Empty when none waits, or when the registry has not
    been created yet (nothing could wait in it).
    """
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    from volforecast.jobs.live_ab import record_for, waiting_challengers  # noqa: PLC0415
    from volforecast.registry.tracking import connect, is_server  # noqa: PLC0415

    uri = settings.mlflow_tracking_uri
    local = not is_server(uri) and uri.startswith("sqlite:///")
    if local and not Path(uri.removeprefix("sqlite:///")).is_file():
        return []
    try:
        waiting = [w for w in waiting_challengers(connect(settings, check=False))
                   if ticker in w.tickers]  # fmt: skip
        records = [record_for(engine, settings, w, tickers=[ticker]) for w in waiting]
    except (MlflowException, OSError, VolforecastError, ValueError) as exc:
        msg = f"The live A/B of {ticker} could not be read: {first_line(exc)}"
        raise DashboardError(msg) from exc
    return [(r.summary(), r.days) for r in records]
