"""The pooled LSTM: one network trained on every ticker (its epochs logged live), one model."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.exceptions import MlflowException

from volforecast.core.features import DailyData
from volforecast.core.interrupt import raise_if_interrupted
from volforecast.errors import InvalidSeriesError
from volforecast.evaluation.plots import forecast_plot
from volforecast.evaluation.test_window import FIT_FRACTION, evaluate
from volforecast.jobs.combination_members import Member, remember
from volforecast.models.catalog import spec_of
from volforecast.models.lstm.config import WEEKLY_RETRAIN, LstmConfig
from volforecast.models.lstm.model import LstmModel
from volforecast.models.lstm.training import EpochCallback, EpochReport
from volforecast.models.panel import FittedPanel, fit_panel
from volforecast.registry import names
from volforecast.registry.fingerprint import data_hash, fingerprint
from volforecast.registry.publish import run_record
from volforecast.registry.serving import download_models
from volforecast.registry.tracking import RunRecord

if TYPE_CHECKING:
    from volforecast.jobs.train import Outcome, Trainer

log = logging.getLogger(__name__)


def pooled(trainer: Trainer, model_name: str, datasets: list[DailyData]) -> list[Outcome]:
    """Train, register and judge the pooled model on every ticker with enough days."""
    minimum = spec_of(model_name).model_kind.min_obs
    usable = [d for d in datasets if len(d) >= minimum]
    outcomes = [
        trainer.refused(d.ticker, model_name,
                        f"LSTM needs at least {minimum} observations, got {len(d)}")
        for d in datasets
        if len(d) < minimum
    ]  # fmt: skip
    try:
        if not usable:
            return outcomes  # progress is still told, below
        trained = _pooled(trainer, model_name, usable)
        trainer.kept += [o for o in trained if o.run_id is not None]
        outcomes += trained
    except (InvalidSeriesError, ValueError, ArithmeticError) as exc:
        log.warning("pooled %s: %s", model_name, exc)
        outcomes += [trainer.refused(d.ticker, model_name, str(exc)) for d in usable]
    else:
        trainer.under_way = None
    finally:
        trainer.progress(f"{model_name} (pooled)")
    return outcomes


def _pooled(trainer: Trainer, model_name: str, datasets: list[DailyData]) -> list[Outcome]:
    name = names.registered_model_name(model_name, None)
    rows = pd.concat([trainer.rows_by_ticker[d.ticker] for d in datasets])
    input_hash = data_hash(rows)
    # The settings in full, defaults included: a new default is a new model.
    options = spec_of(model_name).build(**trainer.config.lstm_settings).options
    print_ = fingerprint(model_name, options, input_hash)
    same = trainer.unchanged(name, print_)
    if same is not None:
        return [trainer.skipped(model_name, d.ticker, name, same) for d in datasets]
    datasets, warm, lstm_settings = _warm_start(trainer, name, datasets)
    run_id = trainer.publisher.open_run(model_name)
    trainer.under_way = f"the pooled {model_name.upper()}, in its first epoch"
    record = partial(run_record, settings=trainer.settings, input_hash=input_hash,
                     fingerprint=print_, tickers=[d.ticker for d in datasets])  # fmt: skip
    try:
        panel = fit_panel(
            spec_of(model_name), datasets, warm_start=warm,
            on_epoch=_epoch_logger(trainer, run_id), **lstm_settings,
        )  # fmt: skip
        trainer.under_way = f"the pooled {model_name.upper()}, trained, before it was registered"
        return _publish(trainer, model_name, panel, datasets, rows, record, run_id)
    except BaseException as exc:
        # Until the model is registered nothing else ends the run opened for the epochs.
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        with contextlib.suppress(MlflowException, OSError):  # the first error is the one to tell
            if trainer.client.get_run(run_id).info.status == "RUNNING":
                trainer.client.set_terminated(run_id, status)
        raise


def _warm_start(
    trainer: Trainer, name: str, datasets: list[DailyData]
) -> tuple[list[DailyData], FittedPanel | None, dict[str, Any]]:
    """Production's network as the starting point, when it serves exactly these tickers.

    A weekly retrain then fine-tunes last week's weights on a week more data instead of
    learning from scratch; it is still judged against production like any challenger.
    """
    # The job's workers wait idle meanwhile: the network trains on their cores (on idle cores
    # more threads train faster), unless the caller set its threads.
    settings = {"cpu_threads": trainer.pool.size, **trainer.config.lstm_settings}
    production = trainer.registry.alias_version(name, names.PRODUCTION)
    if not trainer.config.warm_start or production is None:
        return datasets, None, settings
    served = download_models(name, production)
    if set(served) != {d.ticker for d in datasets}:
        log.info("%s: production serves other tickers; training from scratch", name)
        return datasets, None, settings
    if not isinstance(next(iter(served.values())), LstmModel):
        return datasets, None, settings
    order = {t: m.params["ticker_index"] for t, m in served.items()}
    asked = LstmConfig(**settings)
    settings["max_epochs"] = min(asked.max_epochs, WEEKLY_RETRAIN.max_epochs)
    settings["patience"] = min(asked.patience, WEEKLY_RETRAIN.patience)
    log.info("%s: fine-tuning production v%s (at most %d epochs)", name, production,
             settings["max_epochs"])  # fmt: skip
    ordered = sorted(datasets, key=lambda d: order[d.ticker])
    return ordered, FittedPanel(served), settings


def _publish(
    trainer: Trainer, model_name: str, panel: FittedPanel, datasets: list[DailyData],
    rows: pd.DataFrame, record_of: Callable[..., RunRecord], run_id: str,
) -> list[Outcome]:  # fmt: skip
    """Evaluate the trained network, register it into its open run and have it judged."""
    name, first, models = names.registered_model_name(model_name, None), datasets[0], panel.models
    evaluated = {d.ticker: evaluate(models[d.ticker], d, trainer.settings) for d in datasets}
    for data in datasets:
        models[data.ticker].update(data)
    per_ticker = pd.DataFrame({t: e.metrics for t, e in evaluated.items()}).T
    means = {str(k): float(v) for k, v in per_ticker.mean().items()}
    record = record_of(models[first.ticker], first, int(len(first) * FIT_FRACTION), means)
    record.documents["metrics_by_ticker.csv"] = per_ticker.to_csv().encode()
    record.documents["training_history.json"] = [
        {"epoch": i + 1, "train_qlike": a, "validation_qlike": b}
        for i, (a, b) in enumerate(panel.history)
    ]
    plot = None
    if trainer.config.plots:
        plot = forecast_plot(first, evaluated[first.ticker], models[first.ticker])
    raise_if_interrupted()  # before it is registered, inside the run's try: it ends KILLED
    with tempfile.TemporaryDirectory() as folder:
        panel.save(Path(folder) / "model")
        run_id, version = trainer.publisher.log_and_register(
            model_name, ticker=None, name=name, record=record, example_ticker=first.ticker,
            model_dir=Path(folder) / "model", plot=plot, prices=rows, run_id=run_id,
        )  # fmt: skip
    decided = trainer.decide(
        model_name, name, run_id, version, models[first.ticker].model_type,
        evaluated={t: (e.metrics, models[t].fit_report.converged) for t, e in evaluated.items()},
        challenger=pd.concat([e.decision_losses for e in evaluated.values()]),
        datasets={d.ticker: d for d in datasets}, one_network=True,
    )  # fmt: skip
    print_ = record.tags[names.TAG_FINGERPRINT]
    for ticker, e in evaluated.items():
        if models[ticker].fit_report.converged:  # the combinations after it need no download
            remember(trainer, ticker, Member(model_name, name, version, print_, models[ticker],
                                             e.paths))  # fmt: skip
    return decided


def _epoch_logger(trainer: Trainer, run_id: str) -> EpochCallback:
    """Each epoch's QLIKE on the training and validation windows, to the run (step=epoch)."""

    def log_epoch(report: EpochReport) -> None:
        for key, value in (("train_qlike", report.train_loss),
                           ("validation_qlike", report.validation_loss)):  # fmt: skip
            trainer.client.log_metric(run_id, key, value, step=report.epoch)
        trainer.under_way = (
            f"the pooled LSTM, trained for {report.epoch} epochs, before it was registered"
            if report.last
            else f"the pooled LSTM, in epoch {report.epoch + 1} of at most {report.max_epochs}"
        )
        raise_if_interrupted()  # after the epoch is logged: the run shows what it got to
        if trainer.on_epoch is not None:
            trainer.on_epoch(report)

    return log_epoch
