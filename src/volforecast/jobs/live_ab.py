"""The live A/B of waiting challengers: their record, and their promotion after N live days.

A challenger that beat production at training waits, with ``min_live_days`` above 0, as
``challenger`` tagged ``volforecast.decision = live`` (:meth:`Registry.consider
<volforecast.registry.aliases.Registry.consider>`). The daily job forecasts with it beside
production (:func:`volforecast.jobs.predict_daily.predict_all`), then :func:`promote_live` judges
both versions' stored forecasts on the same days (:mod:`volforecast.monitoring.live_ab`) and
decides once the challenger has ``min_live_days`` live days: it is promoted if it beat
production on them by the training rule, through the same logged alias move, and rejected
otherwise (logged, no longer challenger). An A/B is therefore N live days long, then decided,
and the next training may start another. Re-running a day is safe: a decided version is no
longer challenger, so it is neither decided nor logged again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy import Engine

from volforecast.data.db import reachable
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.errors import ModelNotFoundError, RegistryError
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.monitoring.live_ab import LiveRecord, live_losses, live_record
from volforecast.registry import names
from volforecast.registry.aliases import Registry, alias_version
from volforecast.registry.deadline import unanswered
from volforecast.registry.decision import DM_MIN_DATES, Decision, live_overdue
from volforecast.registry.live_exit import settle_live, tagged_live
from volforecast.registry.promotion_log import PromotionLog
from volforecast.registry.recovery import Recovered
from volforecast.settings import PromotionSettings, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Waiting:
    """A challenger waiting for live evidence, and the production version it must beat."""

    registered_model: str
    version: str
    production: str | None
    model_type: str
    tickers: tuple[str, ...]
    since: dt.date


def _waiting(client: MlflowClient, name: str, version: str, production: str | None) -> Waiting:
    tags = client.get_model_version(name, version).tags or {}
    tickers = (tags.get(names.TAG_TICKERS) or tags.get(names.TAG_TICKER) or "").split(",")
    since = tags.get(names.TAG_LIVE_SINCE) or tags.get(names.TAG_DATA_END)
    return Waiting(
        name, version, production,
        str(tags.get(names.TAG_MODEL_TYPE) or name.split("_volatility_", maxsplit=1)[0].upper()),
        tuple(t for t in tickers if t),
        dt.date.fromisoformat(since) if since else dt.datetime.now(dt.UTC).date(),
    )  # fmt: skip


def is_waiting(client: MlflowClient, name: str, version: str) -> bool:
    """Whether ``version`` of ``name`` is a challenger waiting for live evidence."""
    tags = client.get_model_version(name, version).tags or {}
    return tags.get(names.TAG_DECISION) == names.LIVE


def waiting_challengers(client: MlflowClient) -> list[Waiting]:
    """Every registered model's challenger that waits for live evidence, by name.

    A version still tagged ``live`` that is no longer challenger is left out (the daily job
    retags it, :func:`~volforecast.registry.live_exit.settle_live`).
    """
    return [
        _waiting(client, live.name, live.version, live.production)
        for live in tagged_live(client)
        if live.waiting
    ]


def live_days(
    engine: Engine, settings: Settings, client: MlflowClient, name: str, version: str
) -> int:
    """Live days waiting challenger ``version`` of ``name`` has been judged on so far."""
    production = alias_version(client, name, names.PRODUCTION)
    return record_for(engine, settings, _waiting(client, name, version, production)).live_days


def record_for(
    engine: Engine,
    settings: Settings,
    waiting: Waiting,
    *,
    tickers: Sequence[str] | None = None,
    as_of: dt.date | None = None,
    promoted: bool = False,
) -> LiveRecord:
    """The live record of ``waiting`` from the stored forecasts and prices up to ``as_of``.

    ``tickers`` narrows a pooled model's record (and its decision) to those tickers.
    """
    chosen = [t for t in waiting.tickers if tickers is None or t in set(tickers)]
    promotion = settings.promotion
    frames: tuple[list[pd.DataFrame], list[pd.DataFrame]] = ([], [])
    if chosen and waiting.production is not None:
        with reachable(engine):
            stored = PredictionRepository(engine).frame(  # both sides: served_as=None
                chosen, start=waiting.since, steps=range(1, promotion.horizon + 1), served_as=None
            )
            prices = PriceRepository(engine).load(chosen, end=as_of)
        if len(stored) and not prices.empty:
            stored = stored[stored["model_type"] == waiting.model_type]
            datasets, _ = daily_data_by_ticker(prices, settings.quality)
            for ticker, data in sorted(datasets.items()):
                mine = stored[stored["ticker"] == ticker]
                for side, version in enumerate((waiting.version, waiting.production)):
                    frames[side].append(
                        live_losses(mine, data, version, since=waiting.since, settings=promotion)
                    )
    challenger, production = (pd.concat(f) if f else _no_losses() for f in frames)
    return live_record(
        waiting.registered_model, waiting.production, waiting.version, waiting.since,
        (challenger, production), promotion, promoted=promoted,
    )  # fmt: skip


def _no_losses() -> pd.DataFrame:
    return pd.DataFrame(
        {"ticker": pd.Series(dtype=str), "origin_date": pd.Series(dtype="datetime64[ns]"),
         "loss": pd.Series(dtype=float)}
    )  # fmt: skip


def live_record_of(
    engine: Engine,
    settings: Settings,
    client: MlflowClient,
    name: str,
    *,
    tickers: Sequence[str] | None = None,
    as_of: dt.date | None = None,
) -> LiveRecord:
    """The live record of registered model ``name``: its waiting challenger's, else its own.

    Without a waiting challenger, the record on which the current production version was
    promoted from live evidence, if it was.

    Raises
    ------
    ModelNotFoundError
        When ``name`` is not a registered model.
    RegistryError
        When ``name`` has neither a waiting challenger nor a production version promoted
        after a live A/B.
    """
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        msg = f"{name} is not a registered model (`volforecast models list` shows them)"
        raise ModelNotFoundError(msg) from exc
    challenger = alias_version(client, name, names.CHALLENGER)
    production = alias_version(client, name, names.PRODUCTION)
    if challenger is not None and is_waiting(client, name, challenger):
        waiting = _waiting(client, name, challenger, production)
        return record_for(engine, settings, waiting, tickers=tickers, as_of=as_of)
    promoted = _promoted_live(engine, client, name, production)
    if promoted is None:
        msg = (
            f"{name} has no challenger waiting for live evidence "
            f"(VOLFORECAST_PROMOTION__MIN_LIVE_DAYS={settings.promotion.min_live_days}; a "
            "challenger waits only when it wins at training with a value above 0)"
        )
        raise RegistryError(msg)
    return record_for(engine, settings, promoted, tickers=tickers, as_of=as_of, promoted=True)


def _promoted_live(
    engine: Engine, client: MlflowClient, name: str, production: str | None
) -> Waiting | None:
    """Production, when the daily job promoted it from the live A/B: against what it beat."""
    if production is None:
        return None
    tags = client.get_model_version(name, production).tags or {}
    if names.TAG_LIVE_SINCE not in tags:
        return None
    for event in reversed(PromotionLog(engine).events(name)):
        if event.alias == names.PRODUCTION and event.action == "promote":
            if event.version != production:
                return None
            return _waiting(client, name, production, event.previous_version)
    return None


@dataclass(frozen=True)
class LiveOutcome:
    """What the daily job did with one waiting challenger."""

    registered_model: str
    version: str
    production: str | None
    promoted: bool
    record: dict[str, Any]
    rejected: bool = False
    """Its live days were up and it did not beat production: no longer challenger."""


@dataclass
class LiveReport:
    """Every waiting challenger the daily job judged, and the stale states it repaired."""

    outcomes: list[LiveOutcome] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    settled: list[Recovered] = field(default_factory=list)
    """Versions tagged ``live`` that no longer waited (:mod:`volforecast.registry.live_exit`)."""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``volforecast models live --report-json`` writes and the DAG reads."""
        return {
            "waiting": len(self.outcomes),
            "promoted": [f"{o.registered_model} v{o.version}" for o in self.outcomes if o.promoted],
            "rejected": [f"{o.registered_model} v{o.version}" for o in self.outcomes if o.rejected],
            "outcomes": [vars(o) for o in self.outcomes],
            "failures": self.failures,
            "settled": [asdict(s) for s in self.settled],
            "warnings": self.warnings,
        }


def dm_warning(settings: PromotionSettings) -> str | None:
    """Why N live days below 10 cannot pass a Diebold–Mariano test asked for; None if fine."""
    days = settings.min_live_days
    if 0 < days < DM_MIN_DATES and settings.max_pvalue < 1:
        return (
            f"VOLFORECAST_PROMOTION__MIN_LIVE_DAYS={days} with MAX_PVALUE={settings.max_pvalue}: "
            f"the Diebold-Mariano test needs at least {DM_MIN_DATES} live days, so a challenger "
            f"judged on fewer is rejected; ask for {DM_MIN_DATES} or more"
        )
    return None


def promote_live(
    engine: Engine,
    settings: Settings,
    client: MlflowClient,
    *,
    as_of: dt.date | None = None,
    actor: str | None = None,
) -> LiveReport:
    """Decide every waiting challenger that has N live days: promote it, or reject it.

    ``as_of``: the judged day (prices after it are not read). Once a challenger has at least
    ``min_live_days`` live days it is promoted if it beat production on them by the training
    rule, and rejected otherwise (logged, no longer challenger), so the next training can
    start a new A/B; with fewer days it keeps waiting, and the report says why. Versions
    left tagged ``live`` by a killed run or a hand-moved alias are settled first.

    Raises
    ------
    mlflow.exceptions.MlflowException
        When the tracking server does not answer (one model's other errors are reported).
    """
    registry = Registry(client, PromotionLog(engine), settings.promotion, actor)
    report = LiveReport(settled=settle_live(client, registry.log, registry.actor))
    warning = dm_warning(settings.promotion)
    if warning is not None:
        report.warnings.append(warning)
        log.warning("%s", warning)
    for waiting in waiting_challengers(client):
        name, version = waiting.registered_model, waiting.version
        try:
            outcome = _judge(engine, settings, registry, waiting, as_of)
        except (RegistryError, ValueError, OSError, MlflowException) as exc:
            if unanswered(exc) is not None:
                raise  # a dead tracking server ends the job; it is no verdict on one model
            report.failures[name] = str(exc)
            log.warning("%s v%s: live A/B not judged: %s", name, version, exc)
            continue
        log.info("%s v%s: %s", name, version, outcome.record["reason"])
        report.outcomes.append(outcome)
    return report


def _overdue(waiting: Waiting, as_of: dt.date | None, min_live_days: int) -> bool:
    day = as_of or dt.datetime.now(dt.UTC).date()
    return live_overdue(waiting.since.isoformat(), day.isoformat(), min_live_days)


def _judge(
    engine: Engine,
    settings: Settings,
    registry: Registry,
    waiting: Waiting,
    as_of: dt.date | None,
) -> LiveOutcome:
    """Promote or reject one waiting challenger whose live days are up; or leave it waiting."""
    name, version = waiting.registered_model, waiting.version
    record = record_for(engine, settings, waiting, as_of=as_of)
    promoted = rejected = False
    if record.ready and record.decision is not None:
        reason = f"promoted after {record.live_days} live days: {record.decision.reason}"
        won = Decision(True, reason, record.decision.metrics)
        promoted = registry.promote_live(name, version, waiting.production, won) is not None
        if promoted:
            registry.client.set_model_version_tag(name, version, names.TAG_DECISION,
                                                  names.PROMOTED)  # fmt: skip
            record = replace(record, promoted=True)
    elif record.status == "not beating production" and record.decision is not None:
        lost = Decision(
            False, f"rejected after {record.live_days} live days: {record.decision.reason}",
            record.decision.metrics,
        )  # fmt: skip
        rejected = registry.reject_live(name, version, waiting.production, lost) is not None
        if rejected:
            record = replace(record, rejected=True)
    elif _overdue(waiting, as_of, settings.promotion.min_live_days):
        # It cannot reach N live days (its forecasts are not stored beside production's):
        # it ends, so that it blocks no later version.
        late = Decision(False, f"rejected: {record.live_days} of "
                        f"{settings.promotion.min_live_days} live days since {waiting.since}, "
                        "past the A/B's time")  # fmt: skip
        rejected = registry.reject_live(name, version, waiting.production, late) is not None
        if rejected:
            record = replace(record, rejected=True)
    return LiveOutcome(
        name, version, waiting.production, promoted, record.summary(), rejected=rejected
    )
