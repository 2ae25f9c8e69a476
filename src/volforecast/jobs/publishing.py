"""Fitted models logged, registered and judged: by worker processes, or one by one here.

A worker fits a ticker's model (or draws a combination's plot), logs its run and registers
its version, as many at once as there are workers; the job's process has each version judged
against production, one after another, so that promotions never race. A worker ignores
Ctrl-C: the job stops at its next step boundary, the workers after the step they are in, and
a version a worker registered meanwhile is settled by the next run
(:mod:`volforecast.registry.recovery`), as after a kill.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, as_completed
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
from volforecast.errors import InvalidSeriesError, WorkerLostError
from volforecast.jobs.combination_members import Member, remember, wanted
from volforecast.jobs.worker_pool import WorkerPool, one_thread_here, stop_if_asked
from volforecast.models.base import VolatilityModel
from volforecast.registry import names
from volforecast.registry.deadline import unanswered
from volforecast.registry.publish import Publisher
from volforecast.registry.tracking import RunRecord, connect
from volforecast.settings import Settings

if TYPE_CHECKING:
    from volforecast.jobs.train import Outcome, Trainer

log = logging.getLogger(__name__)

FIT_ERRORS = (InvalidSeriesError, ValueError, ArithmeticError, np.linalg.LinAlgError)
"""What a fit on bad or unlucky data raises: the ticker fails, the batch goes on."""


@dataclass(frozen=True)
class Prepared:
    """A model fitted (or combined), evaluated and saved, ready to be logged (picklable)."""

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


def publish_all(
    trainer: Trainer, model_name: str, fits: Iterable[tuple[DailyData, Callable[[], Prepared]]],
    workers: int, errors: tuple[type[Exception], ...] = FIT_ERRORS,
) -> list[Outcome]:  # fmt: skip
    """Run each fit, log and register its model (by the job's workers); judge each here.

    ``workers`` above 1 hands the fits to the job's worker processes (all of them); 1 runs
    them here, one by one.

    ``fits`` is read as the work goes on: what it does between two fits (a combination's
    members gathered here) overlaps with the workers' logging. A ticker whose fit, logging or
    judgement raises one of ``errors`` fails alone, unless the tracking server stopped
    answering: that ends the job.
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
    try:
        with closing(_as_ready(tasks(), workers, trainer.pool)) as ready:
            for ticker, result in ready:
                raise_if_interrupted()
                try:
                    published = result()
                except errors as exc:
                    outcomes.append(_failed(trainer, model_name, given[ticker], exc))
                    continue
                try:
                    outcomes.append(judge(trainer, published, given[ticker]))
                except errors as exc:  # judge has told the progress bar already
                    outcomes.append(_failed(trainer, model_name, given[ticker], exc, told=True))
    except BrokenProcessPool as exc:
        msg = (
            f"a worker process fitting and logging {model_name} models ended abruptly "
            "(killed, or out of memory?): the versions decided so far are kept, and the next "
            "training settles what it left half done"
        )
        raise WorkerLostError(msg) from exc
    return outcomes


def _failed(
    trainer: Trainer, model_name: str, data: DailyData, exc: Exception, *, told: bool = False
) -> Outcome:
    """The outcome of a ticker that failed alone; a dead tracking server ends the job instead."""
    if unanswered(exc) is not None:
        raise exc
    if told:
        log.warning("%s %s: %s", data.ticker, model_name, exc)
        return trainer.refused(data.ticker, model_name, str(exc))
    return trainer.failed(model_name, data, exc)


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

    A tracking server that stops answering is told here in the job's sentence: the error
    that says so does not survive the way back from a worker process.
    """
    from volforecast.jobs.train import given_up_on  # noqa: PLC0415  (a cycle)

    stop_if_asked()
    prepared = fit()
    stop_if_asked()
    with given_up_on(job.settings, "training"):
        publisher = _PUBLISHER.get(job.token)
        if publisher is None:  # this worker's first ticker of the job
            _PUBLISHER.clear()
            publisher = Publisher(connect(job.settings, check=False), job.settings, job.token)
            _PUBLISHER[job.token] = publisher
        return Published(prepared, *publish(publisher, prepared, prices))


def _as_ready(
    tasks: Iterable[tuple[str, Callable[[], Published]]], workers: int, pool: WorkerPool
) -> Generator[tuple[str, Callable[[], Published]]]:
    """Each ticker's task as it is done: run here one by one, or by ``pool``'s processes.

    Here, the caller runs it by calling what is yielded; from workers, that returns the result
    (or raises what the task raised). Tasks are submitted as ``tasks`` yields them, and the
    ones done meanwhile are handed back at once.
    """
    if workers <= 1:
        yield from tasks
        return
    executor = pool.executor()
    pending: dict[Future[Published], str] = {}
    try:
        with one_thread_here():
            for ticker, task in tasks:
                pending[executor.submit(task)] = ticker
                for future in [f for f in pending if f.done()]:
                    yield pending.pop(future), future.result
            for future in as_completed(list(pending)):
                yield pending.pop(future), future.result
    except BaseException:
        # A registry that stopped answering, Ctrl-C, a dead worker: the tasks not begun are
        # dropped and the workers stop after the step they are in. The job waits for them,
        # so that its temporary folder and its lease outlive their work.
        pool.stop()
        raise


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
