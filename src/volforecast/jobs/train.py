"""Training job: stored prices, quality gate, fit, test-window evaluation, MLflow, registry.

Every model is fitted before its ticker's test window and judged on it
(:mod:`volforecast.evaluation.test_window`). Its losses go to MLflow and to
``ml.model_metrics``; the model is logged as a pyfunc model, registered, made the
``challenger``, and promoted to ``production`` only when it beats the production version on
this window (:mod:`volforecast.registry.aliases`). Per-ticker families are fitted in
:mod:`~volforecast.jobs.train_per_ticker`, the pooled LSTM in
:mod:`~volforecast.jobs.train_pooled`.

A ticker that fails (too little data, a fit that raises) is reported and skipped; a fit that
does not converge is registered with its report but never promoted. The CLI, the Airflow DAG
and the benchmark all call :func:`train`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy import Engine

from volforecast.core.features import DailyData
from volforecast.core.interrupt import deferred_interrupts, raise_if_interrupted
from volforecast.core.parallel import default_workers, stage_workers
from volforecast.data.db import ensure_schema
from volforecast.data.leases import JobLease
from volforecast.data.quality.gate import stored_unreadable
from volforecast.data.quality.report import QualityReport
from volforecast.data.repositories.market import MarketRepository
from volforecast.data.repositories.metrics import MetricRepository, MetricRow
from volforecast.data.repositories.monitoring import MonitoringRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.errors import RegistryError, TrackingUnavailableError, UnknownTickerError
from volforecast.faults import checkpoint
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.jobs.champion import ChampionReport, Judged, champions_after_training
from volforecast.jobs.combination_members import Member, production_losses
from volforecast.jobs.live_ab import live_days
from volforecast.jobs.market import refresh_market, with_market
from volforecast.jobs.publishing import FIT_ERRORS
from volforecast.jobs.train_combination import combinations
from volforecast.jobs.train_per_ticker import per_ticker
from volforecast.jobs.train_pooled import pooled
from volforecast.jobs.train_summary import summarize
from volforecast.jobs.worker_pool import WorkerPool
from volforecast.models.catalog import CANDIDATES, build_model, is_pooled, registered_members
from volforecast.models.lstm.training import EpochCallback
from volforecast.registry import names
from volforecast.registry.aliases import LiveDaysOf, LossesOf, Registry
from volforecast.registry.deadline import tracking_deadline, unanswered
from volforecast.registry.decision import Decision
from volforecast.registry.fingerprint import latest_with_fingerprint
from volforecast.registry.live_exit import settle_live
from volforecast.registry.promotion_log import PromotionLog
from volforecast.registry.publish import Publisher
from volforecast.registry.recovery import Recovered, recover
from volforecast.registry.serving import download_models
from volforecast.registry.tracking import connect, retry_policy
from volforecast.settings import Settings

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

STORED_FAULTS = frozenset({"non_finite_value"})
"""Gate checks that stored prices can fail only when an older version wrote them."""


@dataclass(frozen=True)
class TrainConfig:
    """What to train and how."""

    models: tuple[str, ...] = CANDIDATES
    """Catalog names; by default every family in the running for a ticker's champion."""
    lstm_settings: dict[str, Any] = field(default_factory=dict)
    """Fields of :class:`~volforecast.models.lstm.config.LstmConfig` to override; its defaults are
    everyone's (CLI, DAG, benchmarks)."""
    plots: bool = True
    """Log a forecast plot (PNG) with each run."""
    actor: str | None = None
    """Who the promotion log names; ``user@host`` when None."""
    workers: int | None = None
    """Processes that fit, evaluate, plot and publish per-ticker models, and the pooled LSTM's
    CPU threads. None: one per usable core (up to 8), and a stage of fewer than 16 tickers
    runs in the job's own process (:data:`~volforecast.core.parallel.MIN_TASKS_FOR_WORKERS`)."""
    warm_start: bool = True
    """Start the pooled LSTM from production's weights when it serves the same tickers."""
    force: bool = False
    """Train even when the latest version was trained on the same prices with the same options
    (by default such a model is skipped, so re-running a day's job registers nothing new)."""
    champions: bool = True
    """Decide each trained ticker's champion afterwards (:mod:`volforecast.jobs.champion`)."""


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
    champions: ChampionReport | None = None
    """Each ticker's champion after the training; None when it was not decided."""

    @property
    def failed(self) -> list[Outcome]:
        """Outcomes that produced no registered version."""
        return [o for o in self.outcomes if not o.ok]

    @property
    def complete(self) -> bool:
        """Every asked-for model of every ticker was registered."""
        return bool(self.outcomes) and not self.failed

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``--report-json`` writes and the training DAG reads."""
        outcomes = [asdict(o) for o in self.outcomes]
        return {
            "complete": self.complete,
            "outcomes": outcomes,
            "stage_seconds": self.stage_seconds,
            "retrain_requests_closed": self.retrain_requests_closed,
            "recovered": [asdict(r) for r in self.recovered],
            "summary": summarize(outcomes),
            "champions": None if self.champions is None else self.champions.to_dict(),
        }


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

    ``tickers``: every stored ticker when None. ``progress`` hears a label after each unit of
    work (a ticker's model, the pooled model), ``on_start`` their number before the first,
    ``on_epoch`` each epoch of a pooled LSTM (whose losses also go to its MLflow run).

    Raises
    ------
    UnknownTickerError
        When none of the tickers has stored prices.
    TrainingInterrupted
        On Ctrl-C, at the next step boundary (:mod:`volforecast.core.interrupt`): it says
        which versions this run registered and what was cut short.
    TrackingUnavailableError
        When the tracking server stops answering: at most ``settings.mlflow_deadline_s`` after
        the first request it did not answer, at any stage.
    """
    deadline_s = settings.mlflow_deadline_s  # from the first unanswered request, at any stage
    with tracking_deadline(deadline_s, retry_policy(settings)), deferred_interrupts():
        for name in config.models:
            build_model(name)  # an unknown name fails before any work
        started = time.perf_counter()
        datasets, quality, corrupt, rows_by_ticker = load_datasets(engine, settings, tickers)
        stages = {"load and quality gate": time.perf_counter() - started}
        client = connect(settings)
        registry = Registry(client, PromotionLog(engine), settings.promotion, config.actor)
        with given_up_on(settings, "training"), JobLease(engine) as lease:
            # Before anything new is registered: what a killed run left undecided is settled.
            recovered = recover(client, registry.log, registry.actor)
            recovered += settle_live(client, registry.log, registry.actor)
            trainer = Trainer(
                Publisher(client, settings, lease.token), registry, MetricRepository(engine),
                config, rows_by_ticker, progress or (lambda _label: None), on_epoch,
            )  # fmt: skip
            try:
                outcomes = _train_all(trainer, datasets, corrupt, stages, on_start)
                raise_if_interrupted()  # a Ctrl-C pressed after the last step's check
            except KeyboardInterrupt as exc:
                raise TrainingInterrupted(trainer.kept, trainer.under_way) from exc
            finally:
                trainer.pool.close()
            champions = None
            if config.champions:
                checkpoint("train.before_champions")
                began = time.perf_counter()
                champions = champions_after_training(engine, settings, client, datasets,
                                                     registry.actor, trainer.judged)  # fmt: skip
                stages["champions"] = time.perf_counter() - began
        stages["total"] = time.perf_counter() - started
        # A ticker retrained for any reason (the weekly run, a triggered one, --queued)
        # answers the monitor's pending request for it; one with a failed model keeps it, and
        # so does one whose models were all skipped as unchanged (nothing new was trained).
        failed = {o.ticker for o in outcomes if not o.ok}
        trained = {o.ticker for o in outcomes if o.ok and o.run_id is not None}
        closed = MonitoringRepository(engine).mark_retrained(
            sorted(trained - failed), now=dt.datetime.now(dt.UTC)
        )
        report = TrainReport(outcomes, quality, stages, closed, recovered, champions)
        log.info(
            "Trained %d of %d models in %.0f s; %d failed",
            len(outcomes) - len(report.failed), len(outcomes), stages["total"], len(report.failed),
        )  # fmt: skip
        return report


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: what this run registered before, and what it cut short."""

    def __init__(self, kept: list[Outcome], cut_short: str | None) -> None:
        super().__init__()
        self.kept = kept
        """Outcomes of the versions registered and decided before the interrupt."""
        self.cut_short = cut_short
        """What was under way, e.g. ``the pooled LSTM, in epoch 3 of at most 20``."""


def load_datasets(
    engine: Engine, settings: Settings, tickers: Sequence[str] | None
) -> tuple[dict[str, DailyData], QualityReport, dict[str, str], dict[str, pd.DataFrame]]:
    """The tickers' days that pass the gate, its report, the refused tickers, their rows."""
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
    return datasets, quality, corrupt, rows_by_ticker


_RETRAIN = (
    "the models registered before are kept; start the server again (`volforecast mlflow`) "
    "and re-run the training, which settles what this run left undecided"
)


@contextmanager
def given_up_on(settings: Settings, during: str, then: str = _RETRAIN) -> Iterator[None]:
    """A tracking server given up on within the deadline: one sentence and exit code 4.

    ``during`` names the job, ``then`` what to do once the server is back.
    """
    try:
        yield
    except (MlflowException, RegistryError, OSError) as exc:
        # MLflow's client has given up within the deadline; what is registered stays.
        request = unanswered(exc)
        if request is None:
            raise
        msg = (
            f"the MLflow tracking server at {settings.mlflow_tracking_uri_safe} stopped answering "
            f"during {during} ({request}) and was given up on within "
            f"VOLFORECAST_MLFLOW_DEADLINE_S={settings.mlflow_deadline_s:g} s: {then}"
        )
        raise TrackingUnavailableError(msg) from exc


def _train_all(
    trainer: Trainer,
    datasets: dict[str, DailyData],
    corrupt: dict[str, str],
    stages: dict[str, float],
    on_start: Callable[[int], None] | None,
) -> list[Outcome]:
    """Every asked-for model of every ticker: per-ticker, pooled, then combinations of them."""
    config = trainer.config
    combined = [m for m in config.models if registered_members(m)]
    separate = [m for m in config.models if not is_pooled(m) and m not in combined]
    shared = [m for m in config.models if is_pooled(m)]
    if on_start is not None:
        on_start((len(separate) + len(combined)) * len(datasets) + len(shared))
    outcomes = [
        Outcome(ticker, model_name, ok=False, message=why)
        for ticker, why in sorted(corrupt.items())
        for model_name in config.models
    ]
    for model_name in separate + shared + combined:
        began = time.perf_counter()
        if model_name in combined:
            outcomes += combinations(trainer, model_name, datasets)
            stage = f"{model_name}: combine members, evaluate, log, register"
        elif model_name in shared:
            outcomes += pooled(trainer, model_name, list(datasets.values()))
            stage = f"{model_name} (pooled): train, evaluate, log, register"
        else:
            outcomes += per_ticker(trainer, model_name, datasets)
            stage = f"{model_name}: fit, evaluate, log, register"
        stages[stage] = time.perf_counter() - began
    trainer.member_paths.clear()  # the combinations are done; the champions need none
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


class _CoverageError(Exception):
    """A pooled production version serves tickers the challenger does not."""


@dataclass
class Trainer:
    """One training job's clients and what it registered: the steps both model paths share."""

    publisher: Publisher
    registry: Registry
    metrics_store: MetricRepository
    config: TrainConfig
    rows_by_ticker: dict[str, pd.DataFrame]
    progress: Progress
    on_epoch: EpochCallback | None
    kept: list[Outcome] = field(default_factory=list)
    """Versions this run registered and decided, for the report of an interrupted run."""
    under_way: str | None = None
    """What is being trained now, for the same report."""
    judged: Judged = field(default_factory=dict)
    """Each decided version's losses on this run's test windows, and those of the production
    version it was compared with: the champions' decision reads a production version from here
    instead of loading and forecasting it again."""
    fresh: dict[tuple[str, str], Member] = field(default_factory=dict)
    """Members this run trained, by (model, ticker), for the combinations trained after them."""
    member_paths: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict)
    """Test-window paths of the production members judged, by (registered model, version,
    ticker): a production combination that pins them averages them."""

    def __post_init__(self) -> None:
        self.client: MlflowClient = self.publisher.client
        self.settings: Settings = self.publisher.settings
        self.pool = WorkerPool(self.config.workers or default_workers(), self.settings)
        """The job's worker processes, kept from stage to stage; :func:`train` ends them."""

    def workers_for(self, tickers: int) -> int:
        """Processes for a stage of ``tickers`` (1: this one)."""
        return stage_workers(tickers, self.config.workers)

    def unchanged(self, name: str, print_: str) -> Any:
        """The latest version of ``name`` when it has this fingerprint (None otherwise)."""
        return None if self.config.force else latest_with_fingerprint(self.client, name, print_)

    @staticmethod
    def refused(ticker: str, model_name: str, message: str) -> Outcome:
        """The outcome of a model that was not trained."""
        return Outcome(ticker, model_name, ok=False, message=message)

    @staticmethod
    def skipped(model_name: str, ticker: str, name: str, version: Any) -> Outcome:
        """The outcome of a model whose latest version already saw these prices."""
        tags = version.tags or {}
        qlike = tags.get(f"metric.{names.HEADLINE_METRIC}")
        why = f"unchanged since v{version.version}: same prices and options (--force trains again)"
        return Outcome(
            ticker, model_name, ok=True, message=why, registered_model=name,
            version=str(version.version), converged=tags.get(names.TAG_CONVERGED) == "true",
            qlike=None if qlike is None else float(qlike),
        )  # fmt: skip

    def failed(self, model_name: str, data: DailyData, exc: BaseException) -> Outcome:
        """The outcome of a model whose fit raised."""
        log.warning("%s %s: %s", data.ticker, model_name, exc)
        self.progress(f"{model_name} {data.ticker}")
        return self.refused(data.ticker, model_name, str(exc))

    def decide(  # noqa: PLR0913  (the decision's inputs, as both paths hand them)
        self, model_name: str, name: str, run_id: str, version: str, model_type: str, *,
        evaluated: Mapping[str, tuple[dict[str, float], bool]], challenger: pd.DataFrame,
        datasets: Mapping[str, DailyData], one_network: bool = False,
    ) -> list[Outcome]:  # fmt: skip
        """Store a registered version's metrics, have it judged, say what happened per ticker.

        ``evaluated`` holds each ticker's test metrics and whether its fit converged.
        """
        # Metrics first: a version that is decided always has its rows.
        rows = [
            MetricRow(ticker, model_type, metric, value, run_id, version)
            for ticker, (figures, _) in evaluated.items()
            for metric, value in figures.items()
            if math.isfinite(value)
        ]
        self.metrics_store.upsert(rows, created_at=dt.datetime.now(dt.UTC))
        losses_of = self._losses_of(model_name, name, datasets, one_network)
        decision = self._consider(name, version, challenger, losses_of)
        self.judged[(name, version)] = challenger
        decided = Outcome(
            "", model_name, ok=True, message=decision.reason, run_id=run_id, registered_model=name,
            version=version, promoted=decision.promote,
        )  # fmt: skip
        return [
            replace(decided, ticker=t, converged=ok, qlike=metrics.get(names.HEADLINE_METRIC))
            for t, (metrics, ok) in evaluated.items()
        ]

    def _losses_of(
        self, model_name: str, name: str, datasets: Mapping[str, DailyData], one_network: bool
    ) -> LossesOf:
        """Production's losses on this run's test windows, for the decision to compare."""

        def losses_of(production: str) -> pd.DataFrame:
            served = download_models(name, production)
            missing = sorted(set(served) - set(datasets))
            if one_network and missing:
                # Promoting a network that knows fewer tickers would stop serving the others.
                msg = (
                    f"v{production} serves {len(missing)} tickers this run did not train "
                    f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})"
                )
                raise _CoverageError(msg)
            if not set(served) & set(datasets):
                msg = f"{name} v{production} does not serve {', '.join(datasets)}"
                raise ValueError(msg)
            losses = production_losses(self, model_name, name, production, served, datasets)
            # Kept: production stays when the challenger loses, and the champions compare it
            # on these same windows.
            self.judged[(name, production)] = losses
            return losses

        return losses_of

    def _consider(
        self, name: str, version: str, challenger: pd.DataFrame, losses_of: LossesOf
    ) -> Decision:
        # A production version that cannot forecast this window (it serves other tickers, or
        # its files are unreadable) is a reason not to promote, not to stop the batch.
        try:
            engine = self.metrics_store.engine
            days_of: LiveDaysOf = lambda v: live_days(engine, self.settings, self.client, name, v)  # noqa: E731
            decision = self.registry.consider(name, version, challenger, losses_of, days_of)
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
        outcome = (names.PROMOTED if decision.promote
                   else names.LIVE if decision.live else names.NOT_PROMOTED)  # fmt: skip
        self.client.set_model_version_tag(name, version, names.TAG_DECISION, outcome)
        return decision
