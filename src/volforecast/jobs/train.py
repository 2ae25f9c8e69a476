"""Training job: stored prices, quality gate, fit, test-window evaluation, MLflow, registry.

Each ticker's days are split chronologically: the first 90 % fit the model (the LSTM uses
80 % to train and the next 10 % to stop early, as its specification asks), the last 10 % are
the test window. Every model is evaluated on the same test window by forecasting from each of
its days with the parameters frozen, so nothing of the window enters a fit. Losses (QLIKE,
MSE, MAE, RMSE at 1, 5 and 22 days, on the range-based and the squared-return proxies) go to
MLflow and to ``ml.model_metrics``; the model is logged as a pyfunc model, registered, made
the ``challenger``, and promoted to ``production`` only when it beats the production version
on this window (:mod:`volforecast.registry.aliases`).

A ticker that fails (too little data, a fit that raises) is reported and skipped; a fit that
does not converge is registered with its report but never promoted. The CLI, the Airflow DAG
and the benchmark all call :func:`train`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import multiprocessing
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy import Engine

from volforecast import __version__
from volforecast.core.features import DailyData
from volforecast.core.losses import qlike_losses
from volforecast.core.parallel import one_blas_thread
from volforecast.data.db import ensure_schema
from volforecast.data.leases import JobLease
from volforecast.data.quality.gate import stored_unreadable
from volforecast.data.quality.report import QualityReport
from volforecast.data.repositories.market import MarketRepository
from volforecast.data.repositories.metrics import MetricRepository, MetricRow
from volforecast.data.repositories.monitoring import MonitoringRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.errors import (
    InvalidSeriesError,
    RegistryError,
    TrackingUnavailableError,
    UnknownTickerError,
)
from volforecast.evaluation.metrics import DEFAULT_HORIZONS, horizon_targets, loss_table
from volforecast.faults import checkpoint
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.jobs.market import refresh_market, with_market
from volforecast.jobs.train_summary import summarize
from volforecast.models.base import VolatilityModel
from volforecast.models.catalog import build_model, catalog_options
from volforecast.models.lstm import EpochCallback, EpochReport, LstmModel, LstmNetwork, save_pooled
from volforecast.models.lstm_config import WEEKLY_RETRAIN, LstmConfig
from volforecast.registry import names
from volforecast.registry.aliases import LossesOf, Registry
from volforecast.registry.datasets import TRAINING, price_dataset
from volforecast.registry.deadline import unanswered
from volforecast.registry.decision import Decision, losses_frame
from volforecast.registry.descriptions import model_description, version_description
from volforecast.registry.names import HEADLINE_METRIC
from volforecast.registry.promotion_log import PromotionLog
from volforecast.registry.pyfunc import (
    ARTIFACT_KEY,
    MODEL_CODE,
    SIGNATURE,
    input_example,
    pip_requirements,
)
from volforecast.registry.recovery import Recovered, recover
from volforecast.registry.serving import download_models
from volforecast.registry.tracking import (
    RunRecord,
    connect,
    ensure_experiment,
    job_deadline,
    log_record,
    mlflow_key,
)
from volforecast.settings import Settings

log = logging.getLogger(__name__)

STORED_FAULTS = frozenset({"non_finite_value"})
"""Gate checks that stored prices can fail only when an older version wrote them."""
FIT_FRACTION = 0.9
"""Share of each ticker's days before the test window (train and validation)."""
PLOT_DAYS = 250


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how."""

    models: tuple[str, ...] = ("garch", "lstm")
    lstm_settings: dict[str, Any] = field(default_factory=dict)
    """Fields of :class:`~volforecast.models.lstm.LstmConfig` to override; its defaults are
    everyone's (CLI, DAG, benchmarks)."""
    plots: bool = True
    """Log a forecast plot (PNG) with each run."""
    actor: str | None = None
    """Who the promotion log names; ``user@host`` when None."""
    workers: int = 1
    """Processes that fit, evaluate and plot per-ticker models while this one logs to MLflow."""
    warm_start: bool = True
    """Start the pooled LSTM from production's weights when it serves the same tickers."""
    force: bool = False
    """Train even when the latest version was trained on the same prices with the same options
    (by default such a model is skipped, so re-running a day's job registers nothing new)."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one model of one ticker (or to the pooled model)."""

    ticker: str
    model: str
    ok: bool
    message: str
    run_id: str | None = None
    registered_model: str | None = None
    version: str | None = None
    promoted: bool = False
    converged: bool = False
    qlike: float | None = None


@dataclass(frozen=True)
class TrainReport:
    """Every outcome, the gate's report and the time each stage took."""

    outcomes: list[Outcome]
    quality: QualityReport = field(default_factory=QualityReport)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    retrain_requests_closed: int = 0
    """Pending requests of ``volforecast monitor`` that this training answered."""
    recovered: list[Recovered] = field(default_factory=list)
    """Versions an earlier, killed run left undecided, settled before this one trained."""

    @property
    def failed(self) -> list[Outcome]:
        """Outcomes that produced no registered version."""
        return [o for o in self.outcomes if not o.ok]

    @property
    def complete(self) -> bool:
        """Every asked-for model of every ticker was registered."""
        return bool(self.outcomes) and not self.failed

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``--report-json`` writes and the training DAG reads.

        ``complete`` is true when nothing failed, so also for a queue with nothing to train.
        """
        outcomes = [asdict(o) for o in self.outcomes]
        return {
            "complete": not self.failed,
            "outcomes": outcomes,
            "stage_seconds": self.stage_seconds,
            "retrain_requests_closed": self.retrain_requests_closed,
            "recovered": [asdict(r) for r in self.recovered],
            "summary": summarize(outcomes),
        }


@dataclass
class _Evaluated:
    """A fitted model's figures on its test window."""

    metrics: dict[str, float]
    decision_losses: pd.DataFrame
    origins: np.ndarray
    paths: np.ndarray


Progress = Callable[[str], None]


def window_origins(data: DailyData) -> np.ndarray:
    """Positions of the test window's forecast origins: the last fitting day onwards."""
    n_fit = int(len(data) * FIT_FRACTION)
    return np.arange(max(n_fit - 1, 1), len(data) - 1)


def evaluate(model: VolatilityModel, data: DailyData, settings: Settings) -> _Evaluated:
    """Losses of ``model`` forecasting from every origin of ``data``'s test window."""
    origins = window_origins(data)
    steps = max(*DEFAULT_HORIZONS, settings.promotion.horizon)
    paths = model.forecast_paths(data, origins, steps)
    table = loss_table(data, origins, {model.kind: paths})
    metrics = {
        f"{metric}_h{row.horizon}_{row.proxy}": float(getattr(row, metric))
        for row in table.itertuples()
        for metric in ("qlike", "mse", "mae", "rmse")
    }
    targets = horizon_targets(
        data, origins, paths, settings.promotion.horizon, settings.promotion.proxy
    )
    losses = losses_frame(
        data.ticker,
        data.dates[origins[targets.rows]],
        qlike_losses(targets.realized, targets.forecast),
    )
    return _Evaluated(metrics, losses, origins, paths)


def data_hash(prices: pd.DataFrame) -> str:
    """SHA-256 of the price rows a model saw: the same hash means the same input."""
    hashed = pd.util.hash_pandas_object(prices.reset_index(drop=True), index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()


def fingerprint(model_name: str, options: dict[str, Any], input_hash: str) -> str:
    """What makes two trainings the same: model, options, volforecast version, input prices."""
    key = json.dumps([model_name, options, __version__, input_hash], sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()


def forecast_plot(data: DailyData, evaluated: _Evaluated, model: VolatilityModel) -> bytes:
    """PNG: realized volatility, the 1-day forecasts over the test window, the path ahead.

    ``model`` has been updated to the end of ``data``, so its path starts after the last day.
    """
    figure = Figure(figsize=(8, 3.5), dpi=72)
    axes = figure.subplots()
    start = max(len(data) - PLOT_DAYS, 0)
    axes.plot(
        data.dates[start:], np.sqrt(data.rv_sigma2[start:]), lw=0.7, color="0.6",
        label="realized (range-based)",
    )  # fmt: skip
    shown = evaluated.origins >= start
    axes.plot(
        data.dates[evaluated.origins[shown] + 1], np.sqrt(evaluated.paths[shown, 0]), lw=1.2,
        label="1-day forecast (test window)",
    )  # fmt: skip
    ahead = model.forecast(30)
    axes.plot(
        pd.DatetimeIndex(ahead.forecast_dates), ahead.vol_pct, lw=1.5, ls="--", label="next 30 days"
    )
    axes.set_ylabel("daily volatility, %")
    axes.set_title(f"{data.ticker}: {model.model_type}")
    axes.legend(loc="upper left", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def train(
    engine: Engine,
    settings: Settings,
    config: TrainConfig,
    tickers: Sequence[str] | None = None,
    *,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainReport:
    """Train, evaluate, log, register and consider for promotion every asked-for model.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The price and metrics store.
    settings : Settings
        MLflow location, quality gate, promotion rule.
    config : TrainConfig
        Models and options.
    tickers : sequence of str, optional
        Tickers to train; every stored ticker when None.
    progress : callable, optional
        Called with a label after each unit of work (a ticker's model, the pooled model).
    on_start : callable, optional
        Called once with the number of units of work, before the first.
    on_epoch : callable, optional
        Called after each epoch of a pooled LSTM's training (whose losses also go to its
        MLflow run as they come).

    Raises
    ------
    UnknownTickerError
        When none of the tickers has stored prices.
    TrainingInterrupted
        On Ctrl-C (a ``KeyboardInterrupt``): it says which versions this run registered and
        what was cut short.
    TrackingUnavailableError
        When the tracking server stops answering: at most ``settings.mlflow_deadline_s`` after
        the first request it did not answer, at any stage.
    """
    with job_deadline(settings):
        return _train(
            engine, settings, config, tickers, progress=progress, on_start=on_start,
            on_epoch=on_epoch,
        )  # fmt: skip


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: what this run registered before, and what it cut short."""

    def __init__(self, kept: list[Outcome], cut_short: str | None) -> None:
        super().__init__()
        self.kept = kept
        """Outcomes of the versions registered and decided before the interrupt."""
        self.cut_short = cut_short
        """What was under way, e.g. ``the pooled LSTM, in epoch 3 of at most 20``."""


def _train(
    engine: Engine,
    settings: Settings,
    config: TrainConfig,
    tickers: Sequence[str] | None,
    *,
    progress: Progress | None,
    on_start: Callable[[int], None] | None,
    on_epoch: EpochCallback | None = None,
) -> TrainReport:
    for name in config.models:
        build_model(name)  # an unknown name fails before any work
    stages: dict[str, float] = {}
    started = time.perf_counter()
    ensure_schema(engine)
    prices = PriceRepository(engine).load(tickers)
    if prices.empty:
        msg = (
            f"no stored prices for {', '.join(tickers)}"
            if tickers
            else "no prices are stored: run `volforecast ingest` first"
        )
        raise UnknownTickerError(msg)
    refresh_market(engine, settings.quality)  # a load killed before its refresh left it stale
    datasets, quality = daily_data_by_ticker(
        prices, settings.quality, tickers, stored_unreadable(prices)
    )
    corrupt = stored_faults(quality)
    datasets = with_market(
        {t: d for t, d in datasets.items() if t not in corrupt}, MarketRepository(engine).load()
    )
    rows_by_ticker = {str(t): rows for t, rows in prices.groupby("ticker", sort=False)}
    stages["load and quality gate"] = time.perf_counter() - started

    client = connect(settings)
    registry = Registry(client, PromotionLog(engine), settings.promotion, config.actor)
    with _given_up_on(settings), JobLease(engine) as lease:
        # Before anything new is registered: what a killed run left undecided is settled.
        recovered = recover(client, registry.log, registry.actor)
        run = _Runner(
            client=client, registry=registry, metrics_store=MetricRepository(engine),
            settings=settings, config=config, rows_by_ticker=rows_by_ticker,
            progress=progress, job=lease.token, on_epoch=on_epoch,
        )  # fmt: skip
        try:
            outcomes = _train_all(run, datasets, corrupt, stages, on_start)
        except KeyboardInterrupt as exc:
            raise TrainingInterrupted(run.kept, run.under_way) from exc
    stages["total"] = time.perf_counter() - started

    # A ticker retrained for any reason (the weekly run, a triggered one, --queued) answers
    # the monitor's pending request for it; one with a failed model keeps it, and so does
    # one whose models were all skipped as unchanged (nothing new was trained).
    failed = {o.ticker for o in outcomes if not o.ok}
    trained = {o.ticker for o in outcomes if o.ok and o.run_id is not None}
    closed = MonitoringRepository(engine).mark_retrained(
        sorted(trained - failed), now=dt.datetime.now(dt.UTC)
    )
    report = TrainReport(outcomes, quality, stages, closed, recovered)
    log.info(
        "Trained %d of %d models in %.0f s; %d failed",
        len(outcomes) - len(report.failed), len(outcomes), stages["total"], len(report.failed),
    )  # fmt: skip
    return report


@contextmanager
def _given_up_on(settings: Settings) -> Iterator[None]:
    """A tracking server given up on within the deadline: one sentence and exit code 4."""
    try:
        yield
    except (MlflowException, RegistryError, OSError) as exc:
        # MLflow's client has given up within the deadline; what is registered stays.
        request = unanswered(exc)
        if request is None:
            raise
        msg = (
            f"the MLflow tracking server at {settings.mlflow_tracking_uri_safe} stopped answering "
            f"during training ({request}) and was given up on within "
            f"VOLFORECAST_MLFLOW_DEADLINE_S={settings.mlflow_deadline_s:g} s: the models "
            "registered before are kept; start the server again (`volforecast mlflow`) and "
            "re-run the training, which settles what this run left undecided"
        )
        raise TrackingUnavailableError(msg) from exc


def _train_all(
    run: _Runner,
    datasets: dict[str, DailyData],
    corrupt: dict[str, str],
    stages: dict[str, float],
    on_start: Callable[[int], None] | None,
) -> list[Outcome]:
    """Every asked-for model of every ticker: the per-ticker families, then the pooled ones."""
    config = run.config
    per_ticker = [m for m in config.models if m not in names.POOLED_MODEL_TYPES]
    pooled = [m for m in config.models if m in names.POOLED_MODEL_TYPES]
    if on_start is not None:
        on_start(len(per_ticker) * len(datasets) + len(pooled))
    outcomes = [
        Outcome(ticker, model_name, ok=False, message=why)
        for ticker, why in sorted(corrupt.items())
        for model_name in config.models
    ]
    for model_name in per_ticker:
        began = time.perf_counter()
        outcomes += _per_ticker(run, model_name, datasets, run.rows_by_ticker, config.workers)
        stages[f"{model_name}: fit, evaluate, log, register"] = time.perf_counter() - began
    for model_name in pooled:
        began = time.perf_counter()
        outcomes += run.pooled(model_name, list(datasets.values()))
        stages[f"{model_name} (pooled): train, evaluate, log, register"] = (
            time.perf_counter() - began
        )
    return outcomes


def stored_faults(quality: QualityReport) -> dict[str, str]:
    """Tickers whose stored prices hold a value no check lets in today, and why.

    Such a row was written by an older version (the gate and the database refuse it now). The
    gate would drop the row and train on the rest; a store that holds it is not to be trusted
    for that ticker, so its training stops with the reason instead.
    """
    faults = {}
    for ticker, entry in quality.tickers.items():
        found = [f for f in entry.findings if f.check in STORED_FAULTS]
        if found:
            example = found[0].examples[0] if found[0].examples else found[0].detail
            faults[ticker] = (
                f"its stored prices hold a value that is not a finite number ({example}), "
                "written by an older volforecast: ingest this ticker's prices again with the "
                "right value to replace the row"
            )
    return faults


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
    params = {
        **{f"model.{k}": v for k, v in model.options.items()},
        **{f"param.{k}": round(v, 8) for k, v in model.params.items() if tickers is None},
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
        documents={"fit_report.json": report.to_dict(), "data_window.json": window},
    )


@dataclass(frozen=True)
class _Prepared:
    """A per-ticker model fitted, evaluated and saved, ready to be logged (picklable)."""

    model_name: str
    model_type: str
    record: RunRecord
    model_dir: Path
    plot: bytes | None
    metrics: dict[str, float]
    decision_losses: pd.DataFrame
    converged: bool


def prepare(
    model_name: str,
    data: DailyData,
    settings: Settings,
    *,
    input_hash: str,
    folder: Path,
    plots: bool,
) -> _Prepared:
    """Fit before the test window, evaluate on it, move to the last day, save under ``folder``.

    The CPU-bound half of a per-ticker run, kept free of MLflow so that worker processes can
    do it while the main process logs and registers.
    """
    model = build_model(model_name)
    n_fit = int(len(data) * FIT_FRACTION)
    model.fit(data.head(n_fit))
    evaluated = evaluate(model, data, settings)
    # The registered model forecasts from the last stored day, its parameters frozen.
    model.update(data)
    record = run_record(
        model, data, n_fit, evaluated.metrics, settings, input_hash=input_hash,
        fingerprint=fingerprint(model_name, catalog_options(model_name), input_hash),
    )  # fmt: skip
    model_dir = model.save(folder / f"{model_name}-{names.ticker_slug(data.ticker)}")
    return _Prepared(
        model_name=model_name,
        model_type=model.model_type,
        record=record,
        model_dir=model_dir,
        plot=forecast_plot(data, evaluated, model) if plots else None,
        metrics=evaluated.metrics,
        decision_losses=evaluated.decision_losses,
        converged=model.fit_report.converged,
    )


FIT_ERRORS = (InvalidSeriesError, ValueError, ArithmeticError, np.linalg.LinAlgError)
"""What a fit on bad or unlucky data raises: the ticker fails, the batch goes on."""


def _per_ticker(
    run: _Runner,
    model_name: str,
    datasets: dict[str, DailyData],
    rows_by_ticker: dict[str, pd.DataFrame],
    workers: int,
) -> list[Outcome]:
    """Fit every ticker (in ``workers`` processes) and log each as soon as it is ready."""
    outcomes = []
    plots = run.config.plots
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        hashes = {t: data_hash(rows_by_ticker[t]) for t in datasets}
        todo = {}
        options = catalog_options(model_name)
        for ticker, data in datasets.items():
            name = names.registered_model_name(model_name, ticker)
            same = run.unchanged(name, fingerprint(model_name, options, hashes[ticker]))
            if same is None:
                todo[ticker] = data
            else:
                outcomes.append(run.skipped(model_name, ticker, name, same))
        datasets = todo
        if workers <= 1 or len(datasets) <= 1:
            for ticker, data in datasets.items():
                try:
                    prepared = prepare(model_name, data, run.settings, input_hash=hashes[ticker],
                                       folder=folder, plots=plots)  # fmt: skip
                except FIT_ERRORS as exc:
                    outcomes.append(run.failed(model_name, data, exc))
                    continue
                outcomes.append(run.register(prepared, data))
            return sorted(outcomes, key=lambda o: o.ticker)
        # Spawned, not forked: the parent holds MLflow's and torch's threads.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=one_blas_thread
        ) as pool:
            futures = {
                pool.submit(prepare, model_name, data, run.settings, input_hash=hashes[ticker],
                            folder=folder, plots=plots): data
                for ticker, data in datasets.items()
            }  # fmt: skip
            try:
                for future in as_completed(futures):
                    data = futures[future]
                    try:
                        prepared = future.result()
                    except FIT_ERRORS as exc:
                        outcomes.append(run.failed(model_name, data, exc))
                        continue
                    outcomes.append(run.register(prepared, data))
            except BaseException:
                # A registry that stopped answering (or Ctrl-C) must not wait for every fit
                # still queued: the pool's own exit would.
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    return sorted(outcomes, key=lambda o: o.ticker)


class _Runner:
    """The per-model steps of :func:`train`, sharing its clients and settings."""

    def __init__(
        self,
        *,
        client: MlflowClient,
        registry: Registry,
        metrics_store: MetricRepository,
        settings: Settings,
        config: TrainConfig,
        rows_by_ticker: dict[str, pd.DataFrame],
        progress: Progress | None,
        job: str,
        on_epoch: EpochCallback | None = None,
    ) -> None:
        self.job = job
        """The token of this run's lease: its runs and versions carry it."""
        self.client = client
        self.registry = registry
        self.metrics_store = metrics_store
        self.settings = settings
        self.config = config
        self.rows_by_ticker = rows_by_ticker
        self.progress = progress or (lambda _label: None)
        self.on_epoch = on_epoch
        self._experiments: dict[str, str] = {}
        self.kept: list[Outcome] = []
        """Versions this run registered and decided, for the report of an interrupted run."""
        self.under_way: str | None = None
        """What is being trained now, for the same report."""

    def experiment(self, model_name: str) -> str:
        if model_name not in self._experiments:
            self._experiments[model_name] = ensure_experiment(
                self.client, self.settings, model_name
            )
        return self._experiments[model_name]

    # ------------------------------------------------------------ one ticker

    def register(self, prepared: _Prepared, data: DailyData) -> Outcome:
        """Log, register and consider for promotion a model :func:`prepare` fitted."""
        try:
            outcome = self._register(prepared, data)
            self.kept.append(outcome)
            return outcome
        finally:
            self.progress(f"{prepared.model_name} {data.ticker}")

    def unchanged(self, name: str, fingerprint_: str) -> Any:
        """The latest version of ``name`` when it has this fingerprint (None otherwise)."""
        if self.config.force:
            return None
        latest = self.client.search_model_versions(
            f"name = '{name}'", max_results=1, order_by=["version_number DESC"]
        )
        tags = (latest[0].tags or {}) if latest else {}
        # A version never decided (its run died) is no reason to skip: training again judges it.
        if tags.get(names.TAG_DECISION) in {names.PENDING, names.ABANDONED}:
            return None
        if tags.get(names.TAG_FINGERPRINT) == fingerprint_:
            return latest[0]
        return None

    def skipped(
        self, model_name: str, ticker: str, name: str, version: Any, *, advance: bool = True
    ) -> Outcome:
        """The outcome of a model whose latest version already saw these prices."""
        if advance:
            self.progress(f"{model_name} {ticker}")
        tags = version.tags or {}
        return Outcome(
            ticker,
            model_name,
            ok=True,
            message=f"unchanged since v{version.version}: same prices and options "
            "(--force trains again)",
            registered_model=name,
            version=str(version.version),
            converged=tags.get(names.TAG_CONVERGED) == "true",
            qlike=float(tags[f"metric.{HEADLINE_METRIC}"])
            if f"metric.{HEADLINE_METRIC}" in tags
            else None,
        )

    def failed(self, model_name: str, data: DailyData, exc: BaseException) -> Outcome:
        """The outcome of a model whose fit raised."""
        log.warning("%s %s: %s", data.ticker, model_name, exc)
        self.progress(f"{model_name} {data.ticker}")
        return Outcome(data.ticker, model_name, ok=False, message=str(exc))

    def _register(self, prepared: _Prepared, data: DailyData) -> Outcome:
        name = names.registered_model_name(prepared.model_name, data.ticker)
        run_id, version = self._log_and_register(
            prepared.model_name,
            ticker=data.ticker,
            name=name,
            record=prepared.record,
            example_ticker=data.ticker,
            model_dir=prepared.model_dir,
            plot=prepared.plot,
            prices=self.rows_by_ticker[data.ticker],
        )

        def losses_of(production: str) -> pd.DataFrame:
            served = download_models(name, production)
            if data.ticker not in served:
                msg = f"{name} v{production} does not serve {data.ticker}"
                raise ValueError(msg)
            return evaluate(served[data.ticker], data, self.settings).decision_losses

        # Metrics first: a version that is decided always has its rows.
        self._store_metrics(prepared.model_type, {data.ticker: prepared.metrics}, run_id, version)
        decision = self._consider(name, version, prepared.decision_losses, losses_of)
        return self._outcome(
            data.ticker, prepared.model_name, run_id=run_id, name=name, version=version,
            decision=decision, converged=prepared.converged, metrics=prepared.metrics,
        )  # fmt: skip

    # ------------------------------------------------------------ the pooled LSTM

    def pooled(self, model_name: str, datasets: list[DailyData]) -> list[Outcome]:
        minimum = LstmModel.min_obs
        usable = [d for d in datasets if len(d) >= minimum]
        outcomes = [
            Outcome(d.ticker, model_name, ok=False,
                    message=f"LSTM needs at least {minimum} observations, got {len(d)}")
            for d in datasets
            if len(d) < minimum
        ]  # fmt: skip
        if not usable:
            self.progress(f"{model_name} (pooled)")
            return outcomes
        try:
            pooled = self._pooled(model_name, usable)
            self.kept += [o for o in pooled if o.run_id is not None]
            outcomes += pooled
        except (InvalidSeriesError, ValueError, ArithmeticError) as exc:
            log.warning("pooled %s: %s", model_name, exc)
            outcomes += [Outcome(d.ticker, model_name, ok=False, message=str(exc)) for d in usable]
        else:
            self.under_way = None
        finally:
            self.progress(f"{model_name} (pooled)")
        return outcomes

    def _warm_start(
        self, name: str, datasets: list[DailyData]
    ) -> tuple[list[DailyData], LstmNetwork | None, dict[str, Any]]:
        """Production's network as the starting point, when it serves exactly these tickers.

        A weekly retrain then fine-tunes last week's weights on a week more data instead of
        learning from scratch; it is still judged against production like any challenger.
        """
        settings = dict(self.config.lstm_settings)
        production = self.registry.alias_version(name, names.PRODUCTION)
        if not self.config.warm_start or production is None:
            return datasets, None, settings
        served = download_models(name, production)
        if set(served) != {d.ticker for d in datasets}:
            log.info("%s: production serves other tickers; training from scratch", name)
            return datasets, None, settings
        order = {t: m.params["ticker_index"] for t, m in served.items()}
        first = next(iter(served.values()))
        if not isinstance(first, LstmModel):
            return datasets, None, settings
        asked = LstmConfig(**settings)
        settings["max_epochs"] = min(asked.max_epochs, WEEKLY_RETRAIN.max_epochs)
        settings["patience"] = min(asked.patience, WEEKLY_RETRAIN.patience)
        log.info("%s: fine-tuning production v%s (at most %d epochs)", name, production,
                 settings["max_epochs"])  # fmt: skip
        ordered = sorted(datasets, key=lambda d: order[d.ticker])
        return ordered, first.network, settings

    def _pooled(self, model_name: str, datasets: list[DailyData]) -> list[Outcome]:
        name = names.registered_model_name(model_name, None)
        all_rows = pd.concat([self.rows_by_ticker[d.ticker] for d in datasets])
        input_hash = data_hash(all_rows)
        # The settings in full, defaults included: a new default is a new model.
        options = LstmModel(**self.config.lstm_settings).options
        print_ = fingerprint(model_name, options, input_hash)
        same = self.unchanged(name, print_)
        if same is not None:
            return [self.skipped(model_name, d.ticker, name, same, advance=False) for d in datasets]
        datasets, warm, lstm_settings = self._warm_start(name, datasets)
        run_id = self._train_run(model_name)
        try:
            return self._publish_pooled(model_name, name, datasets, warm, lstm_settings, run_id,
                                        input_hash, print_, all_rows)  # fmt: skip
        except BaseException as exc:
            # Until the model is registered nothing else ends the run opened for the epochs.
            status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
            if self.client.get_run(run_id).info.status == "RUNNING":
                self.client.set_terminated(run_id, status)
            raise

    def _publish_pooled(  # noqa: PLR0917  (the pooled run's state, handed on whole)
        self, model_name: str, name: str, datasets: list[DailyData], warm: LstmNetwork | None,
        lstm_settings: dict[str, Any], run_id: str, input_hash: str, print_: str,
        all_rows: pd.DataFrame,
    ) -> list[Outcome]:  # fmt: skip
        """Train the pooled network into the open run, then evaluate, register and judge it."""
        models, result = LstmModel.fit_many(
            datasets, warm_start=warm, on_epoch=self._epoch_logger(run_id), **lstm_settings
        )
        self.under_way = f"the pooled {model_name.upper()}, trained, before it was registered"
        evaluated = {d.ticker: evaluate(models[d.ticker], d, self.settings) for d in datasets}
        for data in datasets:
            models[data.ticker].update(data)
        per_ticker = pd.DataFrame({t: e.metrics for t, e in evaluated.items()}).T
        first = datasets[0]
        n_fit = int(len(first) * FIT_FRACTION)
        means = {str(k): float(v) for k, v in per_ticker.mean().items()}
        record = run_record(
            models[first.ticker], first, n_fit, means, self.settings,
            input_hash=input_hash, fingerprint=print_, tickers=[d.ticker for d in datasets],
        )  # fmt: skip
        record.documents["metrics_by_ticker.csv"] = per_ticker.to_csv().encode()
        record.documents["training_history.json"] = [
            {"epoch": i + 1, "train_qlike": a, "validation_qlike": b}
            for i, (a, b) in enumerate(result.history)
        ]
        plot = None
        if self.config.plots:
            plot = forecast_plot(first, evaluated[first.ticker], models[first.ticker])
        with tempfile.TemporaryDirectory() as folder:
            save_pooled(models, Path(folder) / "model")
            run_id, version = self._log_and_register(
                model_name,
                ticker=None,
                name=name,
                record=record,
                example_ticker=first.ticker,
                model_dir=Path(folder) / "model",
                plot=plot,
                prices=all_rows,
                run_id=run_id,
            )
        challenger = pd.concat([e.decision_losses for e in evaluated.values()])
        by_ticker = {d.ticker: d for d in datasets}

        def losses_of(production: str) -> pd.DataFrame:
            served = download_models(name, production)
            missing = sorted(set(served) - set(by_ticker))
            if missing:
                # Promoting a network that knows fewer tickers would stop serving the others.
                msg = (
                    f"v{production} serves {len(missing)} tickers this run did not train "
                    f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})"
                )
                raise _CoverageError(msg)
            return pd.concat(
                [evaluate(served[t], d, self.settings).decision_losses for t, d in
                 by_ticker.items() if t in served]
            )  # fmt: skip

        metrics = {t: e.metrics for t, e in evaluated.items()}
        self._store_metrics(models[first.ticker].model_type, metrics, run_id, version)
        decision = self._consider(name, version, challenger, losses_of)
        return [
            self._outcome(
                t,
                model_name,
                run_id=run_id,
                name=name,
                version=version,
                decision=decision,
                converged=models[t].fit_report.converged,
                metrics=evaluated[t].metrics,
            )
            for t in by_ticker
        ]

    def _train_run(self, model_name: str) -> str:
        """An MLflow run opened before training, so that each epoch's losses reach it live."""
        run = self.client.create_run(
            self.experiment(model_name),
            run_name=f"{model_name}-{names.POOLED}",
            tags={names.TAG_JOB: self.job},
        )
        self.under_way = f"the pooled {model_name.upper()}, in its first epoch"
        return str(run.info.run_id)

    def _epoch_logger(self, run_id: str) -> EpochCallback:
        """Each epoch's QLIKE on the training and validation windows, to the run (step=epoch)."""

        def log_epoch(report: EpochReport) -> None:
            for key, value in (("train_qlike", report.train_loss),
                               ("validation_qlike", report.validation_loss)):  # fmt: skip
                self.client.log_metric(run_id, key, value, step=report.epoch)
            self.under_way = (
                f"the pooled LSTM, trained for {report.epoch} epochs, before it was registered"
                if report.last
                else f"the pooled LSTM, in epoch {report.epoch + 1} of at most {report.max_epochs}"
            )
            if self.on_epoch is not None:
                self.on_epoch(report)

        return log_epoch

    # ------------------------------------------------------------ shared steps

    def _log_and_register(
        self,
        model_name: str,
        *,
        ticker: str | None,
        name: str,
        record: RunRecord,
        example_ticker: str,
        model_dir: Path,
        plot: bytes | None,
        prices: pd.DataFrame,
        run_id: str | None = None,
    ) -> tuple[str, str]:
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
                python_model=str(MODEL_CODE),
                artifacts={ARTIFACT_KEY: str(model_dir)},
                signature=SIGNATURE,
                input_example=input_example(example_ticker),
                pip_requirements=pip_requirements(),
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
            registered = mlflow.register_model(info.model_uri, name, tags=version_tags)
            self._describe(name, str(registered.version), record, ticker)
            checkpoint("train.after_register")
        return run_id, str(registered.version)

    def _describe(self, name: str, version: str, record: RunRecord, ticker: str | None) -> None:
        """What the registered model is, and what this version was trained and tested on."""
        tickers = [ticker] if ticker else record.tags[names.TAG_TICKERS].split(",")
        model_type = record.tags[names.TAG_MODEL_TYPE]
        self.client.update_registered_model(
            name, description=model_description(model_type, tickers, pooled=ticker is None)
        )
        self.client.update_model_version(
            name,
            version,
            description=version_description(
                record.params, record.metrics, tickers=tickers,
                data_end=record.tags[names.TAG_DATA_END],
                converged=record.tags[names.TAG_CONVERGED] == "true", headline=HEADLINE_METRIC,
            ),
        )  # fmt: skip

    def _consider(
        self, name: str, version: str, challenger: pd.DataFrame, losses_of: LossesOf
    ) -> Decision:
        # A production version that cannot forecast this window (it serves other tickers, or
        # its files are unreadable) is a reason not to promote, not to stop the batch.
        try:
            decision = self.registry.consider(name, version, challenger, losses_of)
        except (*FIT_ERRORS, _CoverageError, OSError) as exc:
            if unanswered(exc) is not None:
                raise  # a dead tracking server ends the training, it is no verdict on production
            if self.registry.alias_version(name, names.PRODUCTION) == version:
                decision = Decision(True, "in production")  # the error came after the move
            else:
                decision = Decision(False, f"not promoted: production could not be compared: {exc}")
                self.registry.record_not_promoted(name, version, decision)
                log.warning("%s v%s %s", name, version, decision.reason)
        checkpoint("train.after_decision")
        outcome = names.PROMOTED if decision.promote else names.NOT_PROMOTED
        self.client.set_model_version_tag(name, version, names.TAG_DECISION, outcome)
        return decision

    def _store_metrics(
        self, model_type: str, metrics: dict[str, dict[str, float]], run_id: str, version: str
    ) -> None:
        rows = [
            MetricRow(ticker, model_type, metric, value, run_id, version)
            for ticker, figures in metrics.items()
            for metric, value in figures.items()
            if np.isfinite(value)
        ]
        self.metrics_store.upsert(rows, created_at=dt.datetime.now(dt.UTC))

    @staticmethod
    def _outcome(
        ticker: str,
        model_name: str,
        *,
        run_id: str,
        name: str,
        version: str,
        decision: Decision,
        converged: bool,
        metrics: dict[str, float],
    ) -> Outcome:
        return Outcome(
            ticker,
            model_name,
            ok=True,
            message=decision.reason,
            run_id=run_id,
            registered_model=name,
            version=version,
            promoted=decision.promote,
            converged=converged,
            qlike=metrics.get(HEADLINE_METRIC),
        )


class _CoverageError(Exception):
    """A pooled production version serves tickers the challenger does not."""
