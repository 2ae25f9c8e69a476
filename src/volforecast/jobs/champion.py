"""Choosing each ticker's champion: every candidate family's production version, one window.

Each candidate family (:data:`~volforecast.models.catalog.CANDIDATES`) that has a production
version forecasting the ticker is evaluated on the ticker's test window
(:mod:`volforecast.evaluation.test_window`), and :func:`~volforecast.registry.champion.
choose_champion` decides. Training calls :func:`choose_champions` after it has decided its
promotions; the training DAG and ``volforecast models champion`` call it on their own.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from sqlalchemy import Engine

from volforecast.core.features import DailyData
from volforecast.evaluation.test_window import evaluate
from volforecast.faults import checkpoint
from volforecast.jobs.publishing import FIT_ERRORS
from volforecast.models.catalog import CANDIDATES, is_pooled
from volforecast.registry.aliases import MAX_ATTEMPTS, alias_version, default_actor
from volforecast.registry.champion import ChampionChoice, choose_champion
from volforecast.registry.champion_book import ChampionBook
from volforecast.registry.deadline import tracking_deadline, unanswered
from volforecast.registry.names import PRODUCTION, registered_model_name
from volforecast.registry.promotion_log import LogConflictError, finite
from volforecast.registry.serving import download_models
from volforecast.registry.tracking import connect, retry_policy
from volforecast.settings import Settings

log = logging.getLogger(__name__)

Losses = dict[str, dict[str, pd.DataFrame]]
"""Family -> ticker -> its production version's losses on the ticker's test window."""
Judged = dict[tuple[str, str], pd.DataFrame]
"""(registered model, version) -> the losses training just judged it on, every ticker's."""


@dataclass(frozen=True)
class ChampionReport:
    """Each decided ticker's choice, and the tickers left undecided with the reason."""

    choices: list[ChampionChoice]
    undecided: dict[str, str] = field(default_factory=dict)

    @property
    def wins(self) -> dict[str, int]:
        """How many of the decided tickers each family is champion of."""
        return dict(Counter(c.champion for c in self.choices if c.champion is not None))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``--report-json`` writes and the training DAG reads."""
        return {
            "wins": self.wins,
            "changed": sum(c.changed for c in self.choices),
            "choices": [
                asdict(c) | {"metrics": finite(c.metrics), "changed": c.changed}
                for c in self.choices
            ],
            "undecided": self.undecided,
        }


def choose_champions(
    engine: Engine,
    settings: Settings,
    client: MlflowClient,
    datasets: Mapping[str, DailyData],
    *,
    actor: str | None = None,
    judged: Judged | None = None,
) -> ChampionReport:
    """Decide and store the champion of every ticker in ``datasets``.

    ``judged`` holds the losses training already computed for the versions it decided on
    these same windows; a production version found there is not loaded and forecast again.

    A ticker where a candidate's production version cannot be evaluated (its files are
    missing, its forecast raises) stays undecided: its champion is kept as it was, so that a
    broken family never hands the ticker to another by default.
    """
    losses, undecided = _candidate_losses(client, datasets, settings, judged or {})
    book = ChampionBook(engine)
    now = dt.datetime.now(dt.UTC)
    choices = []
    champions = book.all()
    for ticker in sorted(set(datasets) - set(undecided)):
        for _ in range(MAX_ATTEMPTS):
            stored = champions.get(ticker)
            choice = choose_champion(
                ticker,
                {family: losses[family].get(ticker, _NO_LOSSES) for family in CANDIDATES},
                None if stored is None else stored.model,
                max_pvalue=settings.champion.max_pvalue,
                preferred=settings.champion.preferred,
            )
            try:
                book.record(choice, actor=actor or default_actor(), now=now)
            except LogConflictError:  # another decider changed it meanwhile: decide again
                champions = book.all()
                continue
            checkpoint("champion.after_record")
            choices.append(choice)
            if choice.changed:
                log.info("%s: champion %s (%s)", ticker, choice.champion, choice.reason)
            break
        else:
            undecided[ticker] = f"{MAX_ATTEMPTS} concurrent decisions in a row; decide again"
    return ChampionReport(choices, undecided)


def decide_champions(
    engine: Engine, settings: Settings, tickers: Sequence[str] | None = None
) -> ChampionReport:
    """Load the tickers' stored prices (all by default) and decide their champions."""
    from volforecast.jobs.train import given_up_on, load_datasets  # noqa: PLC0415  (a cycle)

    with tracking_deadline(settings.mlflow_deadline_s, retry_policy(settings)):
        datasets = load_datasets(engine, settings, tickers)[0]
        with given_up_on(settings, "the champions' decision", _DECIDE_AGAIN):
            return choose_champions(engine, settings, connect(settings), datasets)


_DECIDE_AGAIN = (
    "every champion stays as it was; start the server again (`volforecast mlflow`) and run "
    "`volforecast models champion` again"
)
_NO_LOSSES = pd.DataFrame({"ticker": [], "origin_date": pd.DatetimeIndex([]), "loss": []})


def champions_after_training(
    engine: Engine,
    settings: Settings,
    client: MlflowClient,
    datasets: dict[str, DailyData],
    actor: str,
    judged: Judged,
) -> ChampionReport:
    """The champions after training; a failure leaves them as they were, not the training."""
    try:
        return choose_champions(engine, settings, client, datasets, actor=actor, judged=judged)
    except Exception as exc:  # the versions stand; the report says why
        if unanswered(exc) is not None:
            raise  # a dead tracking server: one sentence, as at any stage
        why = f"champions not decided, kept as they were: {exc}"
        log.warning(why)
        return ChampionReport([], dict.fromkeys(sorted(datasets), why))


def _candidate_losses(
    client: MlflowClient, datasets: Mapping[str, DailyData], settings: Settings, judged: Judged
) -> tuple[Losses, dict[str, str]]:
    """Every candidate's production losses per ticker, and the tickers that cannot be judged."""
    losses: Losses = {family: {} for family in CANDIDATES}
    undecided: dict[str, str] = {}
    for family in CANDIDATES:
        owners = [None] if is_pooled(family) else list(datasets)
        for owner in owners:
            name = registered_model_name(family, owner)
            version = alias_version(client, name, PRODUCTION)
            if version is None:
                continue  # the family serves no production version here: no candidate
            tickers = [owner] if owner is not None else list(datasets)
            known = judged.get((name, str(version)))
            if known is not None and set(tickers) <= set(known["ticker"]):
                for ticker, frame in known.groupby("ticker"):
                    if ticker in tickers:
                        losses[family][str(ticker)] = frame.reset_index(drop=True)
                continue
            with _unless_broken(undecided, tickers, f"{name} v{version} could not be loaded"):
                served = download_models(name, version)
                for ticker in sorted(set(tickers) & set(served)):
                    with _unless_broken(undecided, [ticker], f"{name} v{version} on {ticker}"):
                        evaluated = evaluate(served[ticker], datasets[ticker], settings)
                        losses[family][ticker] = evaluated.decision_losses
    return losses, undecided


@contextmanager
def _unless_broken(undecided: dict[str, str], tickers: list[str], what: str) -> Iterator[None]:
    """A version that cannot be read or forecast leaves ``tickers`` undecided, with why."""
    try:
        yield
    except (*FIT_ERRORS, TypeError, OSError) as exc:
        if unanswered(exc) is not None:
            raise  # a dead tracking server ends the job; it is no verdict on a family
        why = f"{what}: {exc}"
        log.warning("champions: %s", why)
        undecided |= {t: why for t in tickers if t not in undecided}
