"""Talking to MLflow: a checked connection, one experiment per model family, batched run logging.

The embedded default is a SQLite store under ``./var`` that the client writes directly; with
``VOLFORECAST_MLFLOW_TRACKING_URI=http://host:5000`` everything goes through a real
``mlflow server``. A server that does not answer is retried a few times with a growing pause
and then reported in one sentence (:class:`~volforecast.errors.TrackingUnavailableError`),
never waited on forever: MLflow's own client would retry for minutes by default. The retries
and timeouts fit inside ``VOLFORECAST_MLFLOW_DEADLINE_S``, which bounds a whole job, not each
request, within :func:`~volforecast.registry.deadline.tracking_deadline`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from volforecast.errors import TrackingUnavailableError
from volforecast.registry.deadline import RetryPolicy
from volforecast.registry.local_store import use_wal
from volforecast.registry.names import experiment_name
from volforecast.registry.relocate import relocate_store
from volforecast.settings import Settings, masked_uri

log = logging.getLogger(__name__)

MAX_BATCH = 1000  # MLflow's limit on metrics per log_batch call


def mlflow_key(name: str) -> str:
    """A name MLflow accepts as a key: ``alpha[1]`` becomes ``alpha_1``."""
    return re.sub(r"[^\w\-. :/]", "_", name).rstrip("_")


def is_server(uri: str) -> bool:
    """Whether the tracking URI names a server rather than a local store."""
    return uri.startswith(("http://", "https://"))


def retry_policy(settings: Settings) -> RetryPolicy:
    """The retries and timeout of one request that fit the settings' deadline."""
    return RetryPolicy.within(
        settings.mlflow_deadline_s,
        retries=settings.mlflow_retries,
        timeout_s=settings.mlflow_timeout_s,
    )


def check_server(uri: str, *, retries: int, timeout_s: float) -> None:
    """Ask the server's ``/health`` until it answers, ``retries`` more times at most.

    It pauses between attempts as MLflow's client does, so the check takes no longer than one
    of its requests (:attr:`RetryPolicy.worst_case_s`).

    Raises
    ------
    TrackingUnavailableError
        When it never answered ``OK``.
    """
    policy = RetryPolicy(retries, timeout_s)
    problem = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(policy.backoff_s(attempt))
        try:
            response = requests.get(f"{uri.rstrip('/')}/health", timeout=timeout_s)
            if response.ok:
                return
            problem = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            problem = type(exc).__name__
        log.warning("MLflow at %s did not answer (%s); attempt %d", masked_uri(uri), problem,
                    attempt + 1)  # fmt: skip
    msg = (
        f"the MLflow tracking server at {masked_uri(uri)} is not answering ({problem}, "
        f"{retries + 1} attempts): start it with `volforecast mlflow`, or unset "
        "VOLFORECAST_MLFLOW_TRACKING_URI to use the local store"
    )
    raise TrackingUnavailableError(msg)


_ENV_SET_HERE: dict[str, str] = {}


def _client_env(key: str, value: str) -> None:
    # MLflow's client takes these only from the environment. A value the user set is theirs
    # and stays; one set here follows the settings of the latest connect().
    if key in os.environ and os.environ[key] != _ENV_SET_HERE.get(key):
        return
    os.environ[key] = value
    _ENV_SET_HERE[key] = value


def connect(settings: Settings, *, check: bool = True) -> MlflowClient:
    """A client for the configured tracking store and registry, checked to answer.

    The fluent ``mlflow`` API (used to log pyfunc models) is pointed at the same URI. With
    ``check=False`` a server that is down is not waited for (a service that must start
    anyway, and keep asking, wants that).
    """
    uri = settings.mlflow_tracking_uri
    if is_server(uri):
        # MLflow reads these per request; its defaults retry for minutes.
        policy = retry_policy(settings)
        _client_env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(policy.retries))
        _client_env("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", str(policy.backoff_factor))
        _client_env("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", str(policy.jitter_s))
        _client_env("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(policy.timeout_s)))
        if check:
            check_server(uri, retries=policy.retries, timeout_s=policy.timeout_s)
    else:
        Path(settings.home).mkdir(parents=True, exist_ok=True)
        relocate_store(uri, Path(settings.mlflow_artifact_location))
        use_wal(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def quiet_mlflow_logs() -> None:
    """MLflow's and Alembic's messages at warning level, through the root logger's handlers."""
    from mlflow.utils.logging_utils import disable_logging  # noqa: PLC0415

    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    disable_logging()  # type: ignore[no-untyped-call]  # its prints and its own handler
    for name in ("mlflow", "alembic"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.handlers = []  # its warnings go through the root logger's handlers instead
        logger.propagate = True


def paged(search: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
    """Every result of an MLflow ``search_…`` call, page after page (MLflow pages by 100)."""
    token = None
    while True:
        page = search(*args, max_results=1000, page_token=token, **kwargs)
        yield from page
        token = page.token
        if not token:
            return


def ensure_experiment(client: MlflowClient, settings: Settings, model_type: str) -> str:
    """The id of the model family's experiment, created on first use."""
    name = experiment_name(model_type)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    # A server stores artifacts where it was told to; a local store under the settings' path.
    location = (
        None
        if is_server(settings.mlflow_tracking_uri)
        else (Path(settings.mlflow_artifact_location) / name).as_uri()
    )
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException as exc:  # another run created it a moment ago
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        log.debug("experiment %s appeared meanwhile: %s", name, exc.message)
        return str(found.experiment_id)


@dataclass(frozen=True)
class RunRecord:
    """What one training run logs besides the model: all of it in a few batched calls."""

    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    documents: dict[str, Any]
    """JSON artifacts by file name (the fit report, the data window)."""

    def mlflow_params(self) -> dict[str, str]:
        """The parameters as MLflow stores them: valid keys, values cut to its limit."""
        return {mlflow_key(k): str(v)[:6000] for k, v in self.params.items()}

    def mlflow_tags(self) -> dict[str, str]:
        """The tags under keys MLflow accepts."""
        return {mlflow_key(k): v for k, v in self.tags.items()}


def log_record(
    client: MlflowClient, run_id: str, record: RunRecord, *, model_id: str | None = None
) -> None:
    """Parameters, metrics and tags in batches; JSON documents as artifacts.

    With ``model_id`` the metrics belong to that logged model as well as to the run (MLflow 3
    shows them on the model's page and compares models by them); the model's parameters and
    tags are given when it is logged (:meth:`RunRecord.mlflow_params`).
    """
    stamp = int(time.time() * 1000)
    params = [Param(k, v) for k, v in record.mlflow_params().items()]
    metrics = [Metric(mlflow_key(k), float(v), stamp, 0, model_id=model_id)
               for k, v in record.metrics.items()]  # fmt: skip
    tags = [RunTag(k, v) for k, v in record.mlflow_tags().items()]
    for start in range(0, max(len(metrics), 1), MAX_BATCH):
        client.log_batch(
            run_id,
            metrics=metrics[start : start + MAX_BATCH],
            params=params if start == 0 else [],
            tags=tags if start == 0 else [],
        )
    if record.documents:
        with tempfile.TemporaryDirectory() as folder:
            for file_name, content in record.documents.items():
                path = Path(folder) / file_name
                if isinstance(content, bytes):
                    path.write_bytes(content)
                else:
                    path.write_text(json.dumps(content, indent=2, default=str))
            client.log_artifacts(run_id, folder)
