"""Per-ticker models (GARCH, HAR, ...): fitted in worker processes, registered by this one."""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Callable, Generator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
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
from volforecast.errors import InvalidSeriesError
from volforecast.evaluation.plots import forecast_plot
from volforecast.evaluation.test_window import FIT_FRACTION, evaluate
from volforecast.jobs.combination_members import Member, remember, wanted
from volforecast.models.base import VolatilityModel
from volforecast.models.catalog import catalog_options, spec_of
from volforecast.models.panel import fit_panel
from volforecast.registry import names
from volforecast.registry.fingerprint import data_hash, fingerprint
from volforecast.registry.publish import run_record
from volforecast.registry.tracking import RunRecord
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
    """Fit every ticker (in ``workers`` processes) and log each as soon as it is ready."""
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
        fits = {t: partial(fit, d, input_hash=hashes[t]) for t, d in todo.items()}
        with closing(_as_ready(fits, workers)) as ready:
            for ticker, result in ready:
                raise_if_interrupted()
                try:
                    prepared = result()
                except FIT_ERRORS as exc:
                    outcomes.append(trainer.failed(model_name, todo[ticker], exc))
                    continue
                outcomes.append(register(trainer, prepared, todo[ticker]))
    return sorted(outcomes, key=lambda o: o.ticker)


def _as_ready(
    fits: Mapping[str, Callable[[], Prepared]], workers: int
) -> Generator[tuple[str, Callable[[], Prepared]]]:
    """Each ticker's fit as it is ready: here one by one, or run in ``workers`` processes."""
    if workers <= 1 or len(fits) <= 1:
        yield from fits.items()
        return
    # Spawned, not forked: the parent holds MLflow's and torch's threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=one_blas_thread
    ) as pool:
        futures = {pool.submit(fit): ticker for ticker, fit in fits.items()}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result
        except BaseException:
            # A registry that stopped answering (or Ctrl-C) must not wait for every fit
            # still queued: the pool's own exit would.
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def register(trainer: Trainer, prepared: Prepared, data: DailyData) -> Outcome:
    """Log, register and have judged against production a model :func:`prepare` fitted."""
    try:
        name = names.registered_model_name(prepared.model_name, data.ticker)
        run_id, version = trainer.publisher.log_and_register(
            prepared.model_name, ticker=data.ticker, name=name, record=prepared.record,
            example_ticker=data.ticker, model_dir=prepared.model_dir, plot=prepared.plot,
            prices=trainer.rows_by_ticker[data.ticker],
        )  # fmt: skip
        (outcome,) = trainer.decide(
            prepared.model_name, name, run_id, version, prepared.model_type,
            evaluated={data.ticker: (prepared.metrics, prepared.converged)},
            challenger=prepared.decision_losses, datasets={data.ticker: data},
        )  # fmt: skip
        trainer.kept.append(outcome)
        if prepared.converged and wanted(trainer.config.models, prepared.model_name):
            remember(trainer, data.ticker, Member(
                prepared.model_name, name, version, prepared.record.tags[names.TAG_FINGERPRINT],
                VolatilityModel.load(prepared.model_dir), prepared.paths,
            ))  # fmt: skip
        return outcome
    finally:
        trainer.progress(f"{prepared.model_name} {data.ticker}")
