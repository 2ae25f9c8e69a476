"""The promotion log ``ml.model_promotions``: every alias move, who made it, when and why.

The MLflow registry knows where an alias points now; the log knows every move, so "which
version served on date X" has an answer and a rollback knows where to go back to. SQL, yet
kept out of ``data/``: its entries are alias moves, half of the protocol below.

Concurrency: each registered model's log entries carry a sequence number that is unique in the
database. A promoter reads the last entry, decides, appends entry ``n + 1`` in a transaction,
moves the alias, and only then commits. Two promoters that read the same entry cannot both
append the next one: the second fails on the unique key (PostgreSQL blocks it until the first
commits; SQLite serialises writers), re-reads the new production version, and decides again
against it. So two training runs never promote twice on the strength of one comparison. A
process killed before the commit leaves the log as it was; if it had already moved the alias,
the next entry still records the truth, since its previous version is read from the registry,
not from the log.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import IntegrityError

from volforecast.data.db import Repository, reachable
from volforecast.data.tables import ModelPromotion
from volforecast.registry.names import PRODUCTION, LoggedAlias

PROMOTIONS = cast("Table", ModelPromotion.__table__)
PromotionAction = Literal["register", "promote", "reject", "wait", "rollback", "abandon"]
"""What an entry did: ``abandon`` settles a version whose training run was killed; ``wait``,
like ``reject``, moves nothing: a winning challenger waits for live days beside production."""
STAYS: frozenset[str] = frozenset({"reject", "wait"})
"""Entries that move no alias: their ``version`` is where production stays."""


@dataclass(frozen=True)
class PromotionEvent:
    """One row of the promotion log."""

    registered_model: str
    seq: int
    alias: LoggedAlias
    action: PromotionAction
    version: str | None
    previous_version: str | None
    reason: str
    metrics: dict[str, float]
    actor: str
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    candidate: str | None = None
    """The version a training run judged (``None`` for a move by hand)."""


class LogConflictError(Exception):
    """Another promoter appended the entry this one meant to."""


class PromotionLog(Repository):
    """The append-only log in ``ml.model_promotions``."""

    def events(self, registered_model: str | None = None) -> list[PromotionEvent]:
        """Every entry, oldest first, for one registered model or all."""
        query = select(PROMOTIONS).order_by(PROMOTIONS.c.registered_model, PROMOTIONS.c.seq)
        if registered_model is not None:
            query = query.where(PROMOTIONS.c.registered_model == registered_model)
        with reachable(self.engine), self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [_event(row) for row in rows]

    def served_on(
        self, registered_model: str, when: dt.datetime, alias: LoggedAlias = PRODUCTION
    ) -> str | None:
        """The version ``alias`` pointed at, at ``when`` (None before the first)."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        served = None
        for event in self.events(registered_model):
            if event.alias == alias and event.created_at <= when:
                served = event.version if event.action not in STAYS else served
        return served

    def next_seq(self, registered_model: str) -> int:
        """The sequence number of the next entry (1 when there is none yet)."""
        query = select(func.max(PROMOTIONS.c.seq)).where(
            PROMOTIONS.c.registered_model == registered_model
        )
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar() or 0) + 1

    @contextmanager
    def appending(self, event: PromotionEvent) -> Iterator[None]:
        """Insert ``event`` in a transaction that commits after the ``with`` body.

        The body moves the alias; if it raises, nothing is logged. Raises :class:`LogConflictError`
        when another promoter took the sequence number first.
        """
        row = vars(event) | {
            "reason": event.reason[:2000],
            "metrics": json.dumps(finite(event.metrics)),
            "actor": event.actor[:100],
        }
        with reachable(self.engine), self.engine.begin() as connection:
            try:
                connection.execute(insert(PROMOTIONS).values(**row))
            except IntegrityError as exc:
                raise LogConflictError from exc
            yield


def finite(metrics: dict[str, float]) -> dict[str, float | None]:
    """The figures as JSON can hold them: NaN and infinities become None."""
    return {k: (float(v) if math.isfinite(v) else None) for k, v in metrics.items()}


def _event(row: Any) -> PromotionEvent:
    created = row["created_at"]
    if created.tzinfo is None:  # SQLite gives naive datetimes back; they were written in UTC
        created = created.replace(tzinfo=dt.UTC)
    metrics = {
        k: (math.nan if v is None else float(v)) for k, v in json.loads(row["metrics"]).items()
    }
    stored = {f.name: row[f.name] for f in fields(PromotionEvent)}
    return PromotionEvent(
        **stored | {"seq": int(row["seq"]), "metrics": metrics, "created_at": created}
    )
