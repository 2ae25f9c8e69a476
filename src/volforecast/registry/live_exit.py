"""Versions tagged ``live`` that no longer wait: found, and their tags and log made true.

A challenger waiting for live evidence is tagged ``volforecast.decision = live`` and holds the
``challenger`` alias. It stops waiting when the daily job promotes or rejects it, or when
someone moves the alias by hand. Two of those exits can leave the tag behind:

* a daily job killed while promoting it (between the alias move and the log's commit,
  :meth:`Registry._move <volforecast.registry.aliases.Registry._move>`): production points at
  it, the log has no entry, ``challenger`` still points at it. :func:`settle_live` records the
  promotion (marked recovered), removes the ``challenger`` alias and tags it ``promoted``;
* the ``challenger`` alias moved away by hand (or a killed job removed it): it is tagged
  ``not_promoted``.

The daily job (``volforecast models live``) and training's recovery both call it, so a
stale ``live`` tag lasts at most until one of them runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from volforecast.registry.deadline import unanswered
from volforecast.registry.names import (
    CHALLENGER,
    NOT_PROMOTED,
    PRODUCTION,
    PROMOTED,
    TAG_DECISION,
)
from volforecast.registry.promotion_log import (
    STAYS,
    LogConflictError,
    PromotionEvent,
    PromotionLog,
)
from volforecast.registry.recovery import MAX_ATTEMPTS, Recovered
from volforecast.registry.serving import live_versions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveVersion:
    """A version tagged ``live`` and where its model's aliases point."""

    name: str
    version: str
    production: str | None
    challenger: str | None

    @property
    def waiting(self) -> bool:
        """Still the challenger, and not (yet) production: it waits for live evidence."""
        return self.challenger == self.version and self.production != self.version


def tagged_live(client: MlflowClient) -> Iterator[LiveVersion]:
    """Every version tagged ``live``, by name: one search, then one request per such name.

    After the daily job has run, the tagged versions are the waiting ones, whose production
    version must be read anyway.
    """
    by_name: dict[str, list[str]] = {}
    for name, version in sorted(live_versions(client)):
        by_name.setdefault(name, []).append(version)
    for name, versions in by_name.items():
        try:
            model = client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                continue  # deleted since the search
            raise
        aliases = {a: str(v) for a, v in (model.aliases or {}).items()}
        for version in versions:
            yield LiveVersion(name, version, aliases.get(PRODUCTION), aliases.get(CHALLENGER))


def settle_live(client: MlflowClient, promotions: PromotionLog, actor: str) -> list[Recovered]:
    """Settle every version tagged ``live`` that no longer waits; returns what was done."""
    settled = []
    for live in list(tagged_live(client)):
        if live.waiting:
            continue
        try:
            done = _settle(client, promotions, live, actor)
        except (MlflowException, OSError) as exc:
            if unanswered(exc) is not None:
                raise  # a dead tracking server ends the job
            done = Recovered(live.name, live.version, "undecided",
                             f"not settled ({exc}); the next run retries")  # fmt: skip
        log.warning("%s v%s: %s", done.registered_model, done.version, done.reason)
        settled.append(done)
    return settled


def _settle(
    client: MlflowClient, promotions: PromotionLog, live: LiveVersion, actor: str
) -> Recovered:
    if live.production == live.version:
        return _settle_promotion(client, promotions, live, actor)
    client.set_model_version_tag(live.name, live.version, TAG_DECISION, NOT_PROMOTED)
    now = f"v{live.challenger}" if live.challenger else "no version"
    return Recovered(
        live.name, live.version, "decided",
        f"no longer waits for live evidence: the challenger alias points at {now}; "
        f"tagged {NOT_PROMOTED}",
    )  # fmt: skip


def _settle_promotion(
    client: MlflowClient, promotions: PromotionLog, live: LiveVersion, actor: str
) -> Recovered:
    """Production points at a ``live`` version: log the promotion if the log lacks it."""
    name, number = live.name, live.version
    reason = "its promotion was logged before"
    for _ in range(MAX_ATTEMPTS):
        events = promotions.events(name)
        moves = [e for e in events if e.alias == PRODUCTION and e.action not in STAYS]
        if moves and moves[-1].version == number:
            if live.challenger == number:
                client.delete_registered_model_alias(name, CHALLENGER)
            break
        reason = (
            f"recovered: the daily job moved production to v{number} after its live A/B and "
            "was stopped before logging it"
        )
        event = PromotionEvent(
            name, max((e.seq for e in events), default=0) + 1, PRODUCTION, "promote", number,
            moves[-1].version if moves else None, reason, {}, actor, candidate=number,
        )  # fmt: skip
        try:
            with promotions.appending(event):
                if live.challenger == number:
                    client.delete_registered_model_alias(name, CHALLENGER)
        except LogConflictError:
            continue
        break
    else:
        msg = f"still unlogged after {MAX_ATTEMPTS} concurrent log entries; the next run retries"
        return Recovered(name, number, "undecided", msg)
    client.set_model_version_tag(name, number, TAG_DECISION, PROMOTED)
    return Recovered(name, number, "promoted", reason)
