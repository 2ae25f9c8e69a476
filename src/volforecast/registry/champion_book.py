"""Where each ticker's champion is kept: ``ml.model_champions``, its changes in the log.

A change of champion and its entry in ``ml.model_promotions`` (registered model
``champion/<TICKER>``, alias ``champion``) are written in one transaction. As with alias moves
(:mod:`~volforecast.registry.promotion_log`), two deciders that read the same incumbent cannot
both replace it: the second finds another champion stored, or the log's sequence number
taken, and decides again.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from volforecast.data.db import Repository, reachable, writing
from volforecast.data.tables import ModelChampion
from volforecast.registry.champion import ChampionChoice
from volforecast.registry.names import CHAMPION
from volforecast.registry.promotion_log import PROMOTIONS, LogConflictError, finite

CHAMPIONS = cast("Table", ModelChampion.__table__)


def log_name(ticker: str) -> str:
    """``champion/AAPL``: the name a ticker's champion changes are logged under."""
    return f"{CHAMPION}/{ticker}"


@dataclass(frozen=True)
class Champion:
    """A ticker's champion as stored."""

    ticker: str
    model: str
    """Catalog name, e.g. ``har``."""
    since: dt.datetime
    decided_at: dt.datetime
    reason: str


class ChampionBook(Repository):
    """Each ticker's champion in ``ml.model_champions``."""

    def all(self) -> dict[str, Champion]:
        """Every stored champion, by ticker."""
        with reachable(self.engine), self.engine.connect() as connection:
            rows = connection.execute(select(CHAMPIONS)).mappings().all()
        return {row["ticker"]: _champion(row) for row in rows}

    def record(self, choice: ChampionChoice, *, actor: str, now: dt.datetime) -> None:
        """Store ``choice``; a change of champion is also appended to the promotion log.

        Raises :class:`LogConflictError` when the stored champion is no longer
        ``choice.incumbent``: another decider changed it, so decide again.
        """
        if choice.champion is None:
            return
        figures = json.dumps(finite(choice.metrics))
        this = CHAMPIONS.c.ticker == choice.ticker
        # The write lock from the first statement (SQLite) or the row's lock (PostgreSQL): a
        # second decider waits here, then finds the champion changed and decides again.
        with reachable(self.engine), writing(self.engine) as connection:
            stored = connection.execute(
                select(CHAMPIONS.c.model_type).where(this).with_for_update()
            ).scalar()
            if (stored.lower() if stored else None) != choice.incumbent:
                raise LogConflictError
            if not choice.changed:
                connection.execute(
                    update(CHAMPIONS).where(this)
                    .values(decided_at=now, reason=choice.reason, metrics=figures)
                )  # fmt: skip
                return
            row = {"model_type": choice.champion.upper(), "since": now, "decided_at": now,
                   "reason": choice.reason, "metrics": figures}  # fmt: skip
            try:  # a first champion inserted meanwhile by another decider: decide again
                if stored is None:
                    connection.execute(insert(CHAMPIONS).values(ticker=choice.ticker, **row))
                else:
                    connection.execute(update(CHAMPIONS).where(this).values(**row))
                _append_change(connection, choice, figures, actor, now)
            except IntegrityError as exc:
                raise LogConflictError from exc


def _append_change(
    connection: Connection, choice: ChampionChoice, figures: str, actor: str, now: dt.datetime
) -> None:
    name = log_name(choice.ticker)
    seq = connection.execute(
        select(func.max(PROMOTIONS.c.seq)).where(PROMOTIONS.c.registered_model == name)
    ).scalar()
    new, old = cast("str", choice.champion).upper(), choice.incumbent
    entry = {
        "registered_model": name, "seq": int(seq or 0) + 1, "alias": CHAMPION,
        "action": "promote", "version": new, "previous_version": old.upper() if old else None,
        "candidate": new, "reason": choice.reason[:2000], "metrics": figures,
        "actor": actor[:100], "created_at": now,
    }  # fmt: skip
    connection.execute(insert(PROMOTIONS).values(**entry))


def _champion(row: Any) -> Champion:
    since, decided = _utc(row["since"]), _utc(row["decided_at"])
    return Champion(row["ticker"], row["model_type"].lower(), since, decided, row["reason"])


def _utc(moment: dt.datetime) -> dt.datetime:
    # SQLite gives naive datetimes back; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
