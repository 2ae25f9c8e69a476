"""Publishing a trained model to MLflow: its run logged, its version registered, undecided.

The run holds the parameters, metrics, tags, documents, the prices as a dataset and the
pyfunc model; the version awaits the promotion decision (:mod:`volforecast.registry.aliases`).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo
from mlflow.protos.databricks_pb2 import ALREADY_EXISTS, RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS as MODEL_VERSIONS_TAG

from volforecast import __version__
from volforecast.core.features import DailyData
from volforecast.evaluation.test_window import window_origins
from volforecast.faults import checkpoint
from volforecast.models.base import VolatilityModel
from volforecast.registry import names, pyfunc
from volforecast.registry.datasets import TRAINING, price_dataset
from volforecast.registry.descriptions import model_description, version_description
from volforecast.registry.tracking import RunRecord, ensure_experiment, log_record, mlflow_key
from volforecast.settings import Settings

_EXISTS = {ErrorCode.Name(RESOURCE_ALREADY_EXISTS), ErrorCode.Name(ALREADY_EXISTS)}
"""What a server or a store answers when a registered model's name is taken."""

MAX_PARAM_COLUMNS = 24
"""Fitted coefficients logged as MLflow parameters when a model has at most this many."""


def run_record(
    model: VolatilityModel,
    data: DailyData,
    n_fit: int,
    metrics: dict[str, float],
    settings: Settings,
    *,
    input_hash: str,
    fingerprint: str,
    tickers: list[str] | None = None,
) -> RunRecord:
    """Parameters, metrics, tags and JSON documents of one training run."""
    report = model.fit_report
    origins = window_origins(data)
    window = {
        "fit_start": data.dates[0].date().isoformat(),
        "fit_end": data.dates[n_fit - 1].date().isoformat(),
        "test_start": data.dates[origins[0] + 1].date().isoformat(),
        "test_end": data.dates[-1].date().isoformat(),
        "fit_days": n_fit,
        "test_origins": len(origins),
    }
    if tickers is not None:
        window = {"tickers": len(tickers), "split": "80/10/10 per ticker"}
    fit_metrics = {
        "fit_converged": float(report.converged),
        "fit_attempts": float(report.attempts),
        "fit_nobs": float(report.nobs),
    }
    if report.persistence is not None:
        fit_metrics["fit_persistence"] = float(report.persistence)
    promotion = settings.promotion
    # A few coefficients (GARCH's four) are worth a column in MLflow's run table; HAR's
    # hundreds, one set per day ahead, made every later call on the run load them all. Every
    # coefficient is in fitted_params.json either way.
    fitted = {k: float(v) for k, v in model.params.items()} if tickers is None else {}
    columns = fitted if len(fitted) <= MAX_PARAM_COLUMNS else {}
    params = {
        **{f"model.{k}": v for k, v in model.options.items()},
        **{f"param.{k}": round(v, 8) for k, v in columns.items()},
        **{f"data.{k}": v for k, v in window.items()},
        "promotion.rule": (
            f"QLIKE h={promotion.horizon} {promotion.proxy}, margin {promotion.margin}, "
            f"max DM p {promotion.max_pvalue}"
        ),
    }
    tags = {
        names.TAG_MODEL_TYPE: model.model_type,
        names.TAG_CONVERGED: str(report.converged).lower(),
        names.TAG_DATA_HASH: input_hash,
        names.TAG_FINGERPRINT: fingerprint,
        names.TAG_DATA_END: data.dates[-1].date().isoformat(),
        "volforecast.version": __version__,
    }
    if tickers is None:
        tags[names.TAG_TICKER] = data.ticker
    else:
        tags[names.TAG_TICKERS] = ",".join(tickers)
    return RunRecord(
        params=params,
        metrics=metrics | fit_metrics,
        tags=tags,
        documents={
            "fit_report.json": report.to_dict(),
            "data_window.json": window,
            **({"fitted_params.json": fitted} if fitted else {}),
        },
    )


class Publisher:
    """Logs and registers the runs of one training job, each tagged with the job's token."""

    def __init__(self, client: MlflowClient, settings: Settings, job: str) -> None:
        self.client = client
        self.settings = settings
        self.job = job
        """The token of the job's lease: its runs and versions carry it."""
        self._experiments: dict[str, str] = {}

    def experiment(self, model_name: str) -> str:
        """The id of the model family's experiment, created on first use."""
        if model_name not in self._experiments:
            self._experiments[model_name] = ensure_experiment(
                self.client, self.settings, model_name
            )
        return self._experiments[model_name]

    def open_run(self, model_name: str) -> str:
        """An MLflow run opened before training, so that each epoch's losses reach it live."""
        run = self.client.create_run(
            self.experiment(model_name),
            run_name=f"{model_name}-{names.POOLED}",
            tags={names.TAG_JOB: self.job},
        )
        return str(run.info.run_id)

    def log_and_register(  # noqa: PLR0913  (what MLflow's run, logged model and version each need)
        self, model_name: str, *, ticker: str | None, name: str, record: RunRecord,
        example_ticker: str, model_dir: Path, plot: bytes | None, prices: pd.DataFrame,
        run_id: str | None = None,
    ) -> tuple[str, str]:  # fmt: skip
        """Log the run (its prices as a dataset, the model as ``garch_aapl``), register it."""
        experiment_id = self.experiment(model_name)
        run_name = f"{model_name}-{ticker or names.POOLED}"
        if plot is not None:
            record.documents["forecast.png"] = plot
        job_tag = {names.TAG_JOB: self.job}
        with mlflow.start_run(  # run_id: resume the run that heard the training
            run_id, experiment_id=experiment_id, run_name=run_name, tags=job_tag
        ) as active:
            run_id = active.info.run_id
            logged_name = names.logged_model_name(model_name, ticker)
            dataset = price_dataset(
                prices, name=f"prices_{logged_name.split('_', 1)[1]}",
                input_hash=record.tags[names.TAG_DATA_HASH],
                database_url=self.settings.database_url,
            )  # fmt: skip
            mlflow.log_input(dataset, context=TRAINING)
            info = mlflow.pyfunc.log_model(
                name=logged_name,
                python_model=str(pyfunc.MODEL_CODE),
                artifacts={pyfunc.ARTIFACT_KEY: str(model_dir)},
                signature=pyfunc.SIGNATURE,
                input_example=pyfunc.input_example(example_ticker),
                pip_requirements=pyfunc.pip_requirements(),
                params=record.mlflow_params(),
                tags=record.mlflow_tags(),
            )
            checkpoint("train.after_log_model")
            # After the model: log_model copies a run's existing metrics to the model one by
            # one, which costs more than logging them to both in one batch.
            log_record(self.client, run_id, record, model_id=info.model_id)
            version_tags = {
                **record.tags,
                **{f"metric.{mlflow_key(k)}": f"{v:.6g}" for k, v in record.metrics.items()},
                **job_tag,
                names.TAG_DECISION: names.PENDING,
            }
            registered = self._register(name, info, run_id, version_tags, record, ticker)
            checkpoint("train.after_register")
        return run_id, str(registered.version)

    def _register(
        self, name: str, info: ModelInfo, run_id: str, tags: dict[str, str], record: RunRecord,
        ticker: str | None,
    ) -> ModelVersion:  # fmt: skip
        """A new version of ``name`` (created on first use), described as it is created."""
        tickers = [ticker] if ticker else record.tags[names.TAG_TICKERS].split(",")
        model_type = record.tags[names.TAG_MODEL_TYPE]
        described = model_description(model_type, tickers, pooled=ticker is None)
        try:
            self.client.create_registered_model(name, description=described)
        except MlflowException as exc:
            if exc.error_code not in _EXISTS:
                raise
            if ticker is None:  # a pooled model's tickers may change from one version to the next
                self.client.update_registered_model(name, description=described)
        version = self.client.create_model_version(
            name, info.model_uri, run_id=run_id, tags=tags, model_id=info.model_id,
            description=version_description(
                record.params, record.metrics, tickers=tickers, headline=names.HEADLINE_METRIC,
                data_end=record.tags[names.TAG_DATA_END],
                converged=record.tags[names.TAG_CONVERGED] == "true",
            ),
        )  # fmt: skip
        # As mlflow.register_model does: the logged model's page links its version.
        linked = [{"name": name, "version": str(version.version)}]
        self.client.set_logged_model_tags(info.model_id, {MODEL_VERSIONS_TAG: json.dumps(linked)})
        return version
