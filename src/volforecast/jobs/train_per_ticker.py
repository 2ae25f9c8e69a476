"""Per-ticker models (GARCH, HAR, ...): fitted and logged in worker processes, judged by this one.

A worker fits a ticker's model, evaluates it, logs its run and registers its version, as many
at once as there are workers; this process then has each version judged against production,
one after another, so that promotions never race. A worker ignores Ctrl-C: the job stops at
its next step boundary here, and a version a worker registered meanwhile is settled by the
next run (:mod:`volforecast.registry.recovery`), as after a kill.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import tempfile
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from volforecast.core.features import DailyData
from volforecast.core.interrupt import raise_if_interrupted
from volforecast.core.parallel import one_blas_thread
from volforecast.errors import InvalidSeriesError, WorkerLostError
from volforecast.evaluation.plots import forecast_plot
from volforecast.evaluation.test_window import FIT_FRACTION, evaluate
from volforecast.jobs.combination_members import Member, remember, wanted
from volforecast.models.base import VolatilityModel
from volforecast.models.catalog import catalog_options, spec_of
from volforecast.models.panel import fit_panel
from volforecast.registry import names
from volforecast.registry.deadline import process_deadline
from volforecast.registry.fingerprint import data_hash, fingerprint
from volforecast.registry.publish import Publisher, run_record
from volforecast.registry.tracking import RunRecord, connect, quiet_mlflow_logs, retry_policy
from volforecast.settings import Settings

if TYPE_CHECKING:
    from volforecast.jobs.train import Outcome, Trainer

FIT_ERRORS = (InvalidSeriesError, ValueError, ArithmeticError, np.linalg.LinAlgError)
"""What a fit on bad or unlucky data raises: the ticker fails, the batch goes on."""


@dataclass(frozen=True)
class Prepared:
    """A per-ticker model fitted, evaluated and saved, ready to be logged (picklable)."""

    model_name: str
    model_type: str
    record: RunRecord
    model_dir: Path
    plot: bytes | None
    metrics: dict[str, float]
    decision_losses: pd.DataFrame
    converged: bool
    paths: np.ndarray | None = None
    """Its test-window variance paths, for a combination trained after it."""


def prepare(
    model_name: str, data: DailyData, settings: Settings, *, input_hash: str, folder: Path,
    plots: bool,
) -> Prepared:  # fmt: skip
    """Fit before the test window, evaluate on it, move to the last day, save under ``folder``.

    The CPU-bound half of a ticker's run, free of MLflow so that worker processes can do it.
    """
    n_fit = int(len(data) * FIT_FRACTION)
    panel = fit_panel(spec_of(model_name), [data.head(n_fit)])
    if data.ticker in panel.failures:
        raise panel.failures[data.ticker]
    model = panel.for_ticker(data.ticker)
    evaluated = evaluate(model, data, settings)
    # The registered model forecasts from the last stored day, its parameters frozen.
    model.update(data)
    record = run_record(
        model, data, n_fit, evaluated.metrics, settings, input_hash=input_hash,
        fingerprint=fingerprint(model_name, catalog_options(model_name), input_hash),
    )  # fmt: skip
    model_dir = panel.save(folder / f"{model_name}-{names.ticker_slug(data.ticker)}")
    plot = forecast_plot(data, evaluated, model) if plots else None
    return Prepared(model_name, model.model_type, record, model_dir, plot, evaluated.metrics,
                    evaluated.decision_losses, model.fit_report.converged,
                    evaluated.paths)  # fmt: skip


def per_ticker(
    trainer: Trainer, model_name: str, datasets: dict[str, DailyData], workers: int
) -> list[Outcome]:
    """Fit, log and register every ticker (in ``workers`` processes); judge each as it comes."""
    outcomes = []
    hashes = {t: data_hash(trainer.rows_by_ticker[t]) for t in datasets}
    todo = {}
    options = catalog_options(model_name)
    for ticker, data in datasets.items():
        raise_if_interrupted()  # each ticker's look-up asks MLflow: hundreds of requests
        name = names.registered_model_name(model_name, ticker)
        same = trainer.unchanged(name, fingerprint(model_name, options, hashes[ticker]))
        if same is None:
            todo[ticker] = data
        else:
            trainer.progress(f"{model_name} {ticker}")
            outcomes.append(trainer.skipped(model_name, ticker, name, same))
    with tempfile.TemporaryDirectory() as tmp:
        fit = partial(prepare, model_name, settings=trainer.settings, folder=Path(tmp),
                      plots=trainer.config.plots)  # fmt: skip
        fits = ((d, partial(fit, d, input_hash=hashes[t])) for t, d in todo.items())
        outcomes += publish_all(trainer, model_name, fits, workers if len(todo) > 1 else 1)
    return sorted(outcomes, key=lambda o: o.ticker)


def publish_all(
    trainer: Trainer, model_name: str, fits: Iterable[tuple[DailyData, Callable[[], Prepared]]],
    workers: int,
) -> list[Outcome]:  # fmt: skip
    """Run each fit, log and register its model (in ``workers`` processes); judge each here.

    ``fits`` is read as the work goes on: what it does between two fits (a combination's
    members gathered here) overlaps with the workers' logging.
    """
    trainer.publisher.experiment(model_name)  # created here, not raced for by the workers
    job = PublishJob(trainer.settings, trainer.publisher.job)
    _PUBLISHER.clear()
    _PUBLISHER[job.token] = trainer.publisher  # for the fits done here, with one worker
    given: dict[str, DailyData] = {}

    def tasks() -> Iterator[tuple[str, Callable[[], Published]]]:
        for data, fit in fits:
            given[data.ticker] = data
            yield data.ticker, partial(_fit_and_publish, job, fit,
                                       trainer.rows_by_ticker[data.ticker])  # fmt: skip

    outcomes = []
    with closing(_as_ready(tasks(), workers)) as ready:
        for ticker, result in ready:
            raise_if_interrupted()
            try:
                published = result()
            except FIT_ERRORS as exc:
                outcomes.append(trainer.failed(model_name, given[ticker], exc))
                continue
            except BrokenProcessPool as exc:
                msg = (
                    f"a worker process fitting and logging {model_name} models ended "
                    "abruptly (killed, or out of memory?): the versions decided so far are "
                    "kept, and the next training settles what it left half done"
                )
                raise WorkerLostError(msg) from exc
            outcomes.append(judge(trainer, published, given[ticker]))
    return outcomes


@dataclass(frozen=True)
class PublishJob:
    """What a worker needs to log and register for this job: the settings and its token."""

    settings: Settings
    token: str


@dataclass(frozen=True)
class Published:
    """A prepared model, logged and registered (picklable: a worker hands it back)."""

    prepared: Prepared
    run_id: str
    version: str


_PUBLISHER: dict[str, Publisher] = {}
"""This process's publisher of its current job, by the job's token: one client per worker."""


def _fit_and_publish(
    job: PublishJob, fit: Callable[[], Prepared], prices: pd.DataFrame
) -> Published:
    """Fit (through ``fit``), then log and register: a worker's whole share of a ticker.

    A tracking server that stops answering is given up on here as in the job's own process,
    within the settings' deadline, and told in the job's sentence: the error that says so does
    not survive the way back from a worker process.
    """
    from volforecast.jobs.train import given_up_on  # noqa: PLC0415  (a cycle)

    prepared = fit()
    settings = job.settings
    deadline = process_deadline(settings.mlflow_deadline_s, retry_policy(settings))
    with given_up_on(settings, "training"), deadline:
        publisher = _PUBLISHER.get(job.token)
        if publisher is None:  # this worker's first ticker of the job
            _PUBLISHER.clear()
            publisher = Publisher(connect(settings, check=False), settings, job.token)
            _PUBLISHER[job.token] = publisher
        return Published(prepared, *publish(publisher, prepared, prices))


def _as_ready(
    tasks: Iterable[tuple[str, Callable[[], Published]]], workers: int
) -> Generator[tuple[str, Callable[[], Published]]]:
    """Each ticker's task as it is done: run here one by one, or in ``workers`` processes.

    Here, the caller runs it by calling what is yielded; from workers, that returns the result
    (or raises what the task raised). Tasks are submitted as ``tasks`` yields them, and the
    ones done meanwhile are handed back at once.
    """
    if workers <= 1:
        yield from tasks
        return
    # Spawned, not forked: the parent holds MLflow's and torch's threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_worker_start,
        initargs=(logging.getLogger("mlflow").getEffectiveLevel(),),
    ) as pool:  # fmt: skip
        pending: dict[Future[Published], str] = {}
        try:
            for ticker, task in tasks:
                pending[pool.submit(task)] = ticker
                for future in [f for f in pending if f.done()]:
                    yield pending.pop(future), future.result
            for future in as_completed(list(pending)):
                yield pending.pop(future), future.result
        except BaseException:
            # A registry that stopped answering (or Ctrl-C) must not wait for every task
            # still queued: the pool's own exit would.
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _worker_start(mlflow_level: int) -> None:
    """A worker: one BLAS thread, deaf to Ctrl-C, MLflow's messages as this process has them.

    Ctrl-C stops the job at this process's next step boundary instead; a worker cut short by
    it could leave a run half logged.
    """
    one_blas_thread()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if mlflow_level >= logging.WARNING:
        quiet_mlflow_logs()


def publish(publisher: Publisher, prepared: Prepared, prices: pd.DataFrame) -> tuple[str, str]:
    """Log and register a model :func:`prepare` fitted: its run id and version."""
    ticker = prepared.record.tags[names.TAG_TICKER]
    name = names.registered_model_name(prepared.model_name, ticker)
    return publisher.log_and_register(
        prepared.model_name, ticker=ticker, name=name, record=prepared.record,
        example_ticker=ticker, model_dir=prepared.model_dir, plot=prepared.plot, prices=prices,
    )  # fmt: skip


def judge(trainer: Trainer, published: Published, data: DailyData) -> Outcome:
    """Have a registered version judged against production; keep it as a combination member."""
    prepared = published.prepared
    try:
        name = names.registered_model_name(prepared.model_name, data.ticker)
        (outcome,) = trainer.decide(
            prepared.model_name, name, published.run_id, published.version, prepared.model_type,
            evaluated={data.ticker: (prepared.metrics, prepared.converged)},
            challenger=prepared.decision_losses, datasets={data.ticker: data},
        )  # fmt: skip
        trainer.kept.append(outcome)
        if prepared.converged and wanted(trainer.config.models, prepared.model_name):
            remember(trainer, data.ticker, Member(
                prepared.model_name, name, published.version,
                prepared.record.tags[names.TAG_FINGERPRINT],
                VolatilityModel.load(prepared.model_dir), prepared.paths,
            ))  # fmt: skip
        return outcome
    finally:
        trainer.progress(f"{prepared.model_name} {data.ticker}")
