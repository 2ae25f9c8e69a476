"""Combinations (``har+lstm``): built per ticker from member versions, registered like the rest.

Nothing is fitted here. For each ticker the combination pins its members' versions trained
on the run's prices (:mod:`~volforecast.jobs.combination_members`), averages their test-window
paths (those this run evaluated are not forecast again), and is then logged, registered and
judged against its production version by the per-ticker path's own code
(:func:`~volforecast.jobs.publishing.publish_all`). Its fingerprint is its members'
versions and fingerprints, so a second run on the same prices registers nothing new.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from volforecast.core.features import DailyData
from volforecast.core.interrupt import raise_if_interrupted
from volforecast.evaluation.plots import path_plot
from volforecast.evaluation.test_window import (
    FIT_FRACTION,
    Evaluated,
    evaluate_paths,
    window_origins,
    window_steps,
)
from volforecast.jobs.combination_members import Member, MemberFinder
from volforecast.jobs.publishing import FIT_ERRORS, Prepared, publish_all
from volforecast.models.base import VolatilityForecast
from volforecast.models.catalog import member_weights, registered_members
from volforecast.models.combination import CombinationModel
from volforecast.models.ensemble import equal_weight
from volforecast.registry import names
from volforecast.registry.deadline import unanswered
from volforecast.registry.fingerprint import data_hash, fingerprint
from volforecast.registry.publish import run_record

if TYPE_CHECKING:
    from volforecast.jobs.train import Outcome, Trainer

log = logging.getLogger(__name__)

_ERRORS = (*FIT_ERRORS, KeyError, OSError)
"""What fails one ticker's combination (a member's files unreadable, say), not the batch."""

MEMBER_TAG = "volforecast.member."
"""``volforecast.member.<member>`` = the member's registered version the combination pins."""


def combinations(
    trainer: Trainer, model_name: str, datasets: dict[str, DailyData]
) -> list[Outcome]:
    """Build, register and judge ``model_name``'s combination of every ticker.

    Each ticker's combination is built and evaluated here, from members held in memory; its
    plot, run and version are made by the job's workers meanwhile.
    """
    finder = MemberFinder(trainer)
    outcomes: list[Outcome] = []

    def fits(folder: Path) -> Iterator[tuple[DailyData, Callable[[], Prepared]]]:
        for data in datasets.values():
            raise_if_interrupted()
            try:
                built = _one(trainer, finder, model_name, data, folder)
            except _ERRORS as exc:
                if unanswered(exc) is not None:
                    raise  # a dead tracking server ends the training, as at any stage
                outcomes.append(trainer.failed(model_name, data, exc))
                continue
            if isinstance(built, _ToPublish):
                yield data, built
            else:
                outcomes.append(built)

    workers = trainer.workers_for(len(datasets))
    with tempfile.TemporaryDirectory() as folder:
        published = publish_all(trainer, model_name, fits(Path(folder)), workers, _ERRORS)
    return sorted(outcomes + published, key=lambda o: o.ticker)


@dataclass(frozen=True)
class _ToPublish:
    """A combination built and saved, to be plotted and published (by a worker)."""

    prepared: Prepared
    data: DailyData
    evaluated: Evaluated
    ahead: VolatilityForecast | None
    """Its 30-day path; None when no plot is asked for."""

    def __call__(self) -> Prepared:
        if self.ahead is None:
            return self.prepared
        plot = path_plot(self.data, self.evaluated, self.ahead, self.prepared.model_type)
        return replace(self.prepared, plot=plot)


def _one(
    trainer: Trainer, finder: MemberFinder, model_name: str, data: DailyData, folder: Path
) -> _ToPublish | Outcome:
    """The ticker's combination ready to publish, or why it is not trained."""
    ticker = data.ticker
    members: dict[str, Member] = {}
    for member_name in registered_members(model_name):
        found = finder.find(member_name, ticker)
        if found is None:
            why = (
                f"{member_name} has no converged version trained on these prices; "
                f"train {member_name} first"
            )
            log.warning("%s %s: %s", model_name, ticker, why)
            trainer.progress(f"{model_name} {ticker}")
            return trainer.refused(ticker, model_name, why)
        members[member_name] = found
    input_hash = data_hash(trainer.rows_by_ticker[ticker])
    pinned = {m: [found.version, found.fingerprint] for m, found in members.items()}
    print_ = fingerprint(model_name, {"members": pinned}, input_hash)
    name = names.registered_model_name(model_name, ticker)
    same = trainer.unchanged(name, print_)
    if same is not None:
        trainer.progress(f"{model_name} {ticker}")
        return trainer.skipped(model_name, ticker, name, same)
    return _prepare(trainer, finder, model_name, members, data, input_hash=input_hash,
                    fingerprint_=print_, folder=folder)  # fmt: skip


def _prepare(
    trainer: Trainer, finder: MemberFinder, model_name: str, members: dict[str, Member],
    data: DailyData, *, input_hash: str, fingerprint_: str, folder: Path,
) -> _ToPublish:  # fmt: skip
    """The combination at the end of ``data``, evaluated on its test window and saved."""
    models = {m: finder.model(found, data.ticker) for m, found in members.items()}
    weights = member_weights(model_name)
    combination = CombinationModel.of_members(
        models, {m: found.version for m, found in members.items()}, data, weights
    )
    origins, steps = window_origins(data), window_steps(trainer.settings)
    paths = [
        found.paths
        if found.paths is not None and found.paths.shape == (len(origins), steps)
        else models[m].forecast_paths(data, origins, steps)
        for m, found in members.items()
    ]
    evaluated = evaluate_paths(combination.kind, data, origins, equal_weight(paths, weights),
                               trainer.settings)  # fmt: skip
    record = run_record(
        combination, data, int(len(data) * FIT_FRACTION), evaluated.metrics, trainer.settings,
        input_hash=input_hash, fingerprint=fingerprint_,
    )  # fmt: skip
    record.tags.update({MEMBER_TAG + m: found.version for m, found in members.items()})
    model_dir = combination.save(folder / f"{model_name}-{names.ticker_slug(data.ticker)}")
    prepared = Prepared(model_name, combination.model_type, record, model_dir, None,
                        evaluated.metrics, evaluated.decision_losses,
                        combination.fit_report.converged)  # fmt: skip
    ahead = combination.forecast(30) if trainer.config.plots else None
    return _ToPublish(prepared, data, evaluated, ahead)
