"""Per-ticker models (GARCH, HAR, ...): fitted, logged and registered by the job's workers.

How the work is shared between the workers and the job's process, and how a version is judged,
is :mod:`volforecast.jobs.publishing`'s.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from volforecast.core.features import DailyData
from volforecast.core.interrupt import raise_if_interrupted
from volforecast.evaluation.plots import forecast_plot
from volforecast.evaluation.test_window import FIT_FRACTION, evaluate
from volforecast.jobs.publishing import Prepared, publish_all
from volforecast.models.catalog import catalog_options, spec_of
from volforecast.models.panel import fit_panel
from volforecast.registry import names
from volforecast.registry.fingerprint import data_hash, fingerprint
from volforecast.registry.publish import run_record
from volforecast.settings import Settings

if TYPE_CHECKING:
    from volforecast.jobs.train import Outcome, Trainer


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


def per_ticker(trainer: Trainer, model_name: str, datasets: dict[str, DailyData]) -> list[Outcome]:
    """Fit, log and register every ticker (in the job's workers); judge each as it comes."""
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
        outcomes += publish_all(trainer, model_name, fits, trainer.workers_for(len(todo)))
    return sorted(outcomes, key=lambda o: o.ticker)
