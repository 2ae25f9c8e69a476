"""Monitoring: reads and idempotent writes of accuracy, drift checks and the retraining queue.

``ml.forecast_accuracy`` and ``ml.drift_checks`` are upserted on their natural keys, so the
monitor can run again for a day and leave one row per key. The retraining queue keeps at
most one pending request per ticker: a second alert adds its reason to the pending one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import pandas as pd
from sqlalchemy import Table, and_, func, select, update

from volforecast.data import tables
from volforecast.data.db import Repository
from volforecast.data.upsert import upsert

ACCURACY = cast("Table", tables.ForecastAccuracy.__table__)
CHECKS = cast("Table", tables.DriftCheck.__table__)
RETRAIN = cast("Table", tables.RetrainRequest.__table__)

PENDING = "pending"
DONE = "done"


@dataclass(frozen=True)
class AccuracyRow:
    """Rolling accuracy of one model's forecasts of one ticker at one horizon."""

    ticker: str
    model_type: str
    horizon: int
    proxy: str
    as_of_date: dt.date
    n_forecasts: int
    rmse_vol_pct: float
    mae_vol_pct: float
    qlike: float | None
    """None when every proxy value of the window is zero (QLIKE is undefined there)."""


@dataclass(frozen=True)
class CheckRow:
    """One detector's verdict for one ticker and model on one day."""

    ticker: str
    model_type: str
    detector: str
    observed_on: dt.date
    statistic: float
    threshold: float
    fired: bool
    alert: bool
    detail: dict[str, float] = field(default_factory=dict)


def _finite(value: float) -> float:
    # JSON has no infinities or NaN; a statistic that overflowed is stored as a huge number.
    if value != value:  # noqa: PLR0124  (NaN)
        return 0.0
    return max(min(value, 1e300), -1e300)


class MonitoringRepository(Repository):
    """Accuracy, drift checks and the retraining queue."""

    def upsert_accuracy(self, rows: Sequence[AccuracyRow], *, computed_at: dt.datetime) -> int:
        """Insert or replace accuracy rows by ticker, model, horizon, proxy and date."""
        values = [{**vars(r), "computed_at": computed_at} for r in rows]
        return upsert(self.engine, ACCURACY, values, tables.ACCURACY_KEY)

    def upsert_checks(self, rows: Sequence[CheckRow], *, created_at: dt.datetime) -> int:
        """Insert or replace detector verdicts by ticker, model, detector and day."""
        # One statement per key: the last verdict for a key wins, as a re-run would.
        unique = {(r.ticker, r.model_type, r.detector, r.observed_on): r for r in rows}
        values = [
            {**vars(r), "statistic": _finite(r.statistic), "threshold": _finite(r.threshold),
             "detail": json.dumps({k: _finite(v) for k, v in r.detail.items()}),
             "created_at": created_at}
            for r in unique.values()
        ]  # fmt: skip
        return upsert(self.engine, CHECKS, values, tables.CHECK_KEY)

    def queue_retrain(self, ticker: str, alert_on: dt.date, reason: str,
                      *, now: dt.datetime) -> bool:  # fmt: skip
        """Queue ``ticker`` for an alert observed on ``alert_on``; returns whether one was added.

        Nothing is added when a request for that day or a later one exists, pending or done:
        a model that was retrained and kept its production version is not asked again for
        the same alert. A pending request takes the new reason too.
        """
        with self.engine.begin() as connection:
            latest = connection.execute(
                select(RETRAIN.c.id, RETRAIN.c.requested_on, RETRAIN.c.status, RETRAIN.c.reason)
                .where(RETRAIN.c.ticker == ticker)
                .order_by(RETRAIN.c.requested_on.desc())
                .limit(1)
                .with_for_update()
            ).first()
            if latest is not None and latest.status == PENDING:
                # The request now answers this alert too: it takes its reason and, when the
                # alert is newer, its day, so closing it closes the alert.
                known = latest.reason.split("; ")
                added = [part for part in reason.split("; ") if part not in known]
                if added or alert_on > latest.requested_on:
                    connection.execute(
                        update(RETRAIN).where(RETRAIN.c.id == latest.id)
                        .values(reason="; ".join([*known, *added]),
                                requested_on=max(alert_on, latest.requested_on))
                    )  # fmt: skip
                return False
            if latest is not None and latest.requested_on >= alert_on:
                return False
            connection.execute(RETRAIN.insert().values(
                ticker=ticker, requested_on=alert_on, reason=reason, status=PENDING,
                created_at=now, done_at=None,
            ))  # fmt: skip
            return True

    def pending_retrains(self) -> list[str]:
        """Tickers waiting for retraining, oldest request first."""
        query = (
            select(RETRAIN.c.ticker)
            .where(RETRAIN.c.status == PENDING)
            .order_by(RETRAIN.c.requested_on, RETRAIN.c.ticker)
        )
        with self.engine.connect() as connection:
            return [str(t) for t in connection.execute(query).scalars()]

    def mark_retrained(self, tickers: Sequence[str], *, now: dt.datetime) -> int:
        """Close the pending requests of ``tickers``; returns how many."""
        if not tickers:
            return 0
        statement = (
            update(RETRAIN)
            .where(RETRAIN.c.ticker.in_(list(tickers)), RETRAIN.c.status == PENDING)
            .values(status=DONE, done_at=now)
        )
        with self.engine.begin() as connection:
            return int(connection.execute(statement).rowcount)

    # ------------------------------------------------------------------ reads, for the dashboard

    def accuracy(self, *, ticker: str | None = None, horizon: int | None = None,
                 proxy: str | None = None) -> pd.DataFrame:  # fmt: skip
        """Stored accuracy rows, oldest date first."""
        asked = {"ticker": ticker, "horizon": horizon, "proxy": proxy}
        equal = [ACCURACY.c[name] == value for name, value in asked.items() if value is not None]
        query = select(ACCURACY).where(*equal)
        return self._frame(query.order_by(ACCURACY.c.as_of_date, ACCURACY.c.ticker))

    def alerts(self, *, ticker: str | None = None, since: dt.date | None = None,
               limit: int = 1_000) -> pd.DataFrame:  # fmt: skip
        """Alert onsets, newest first."""
        query = select(CHECKS).where(CHECKS.c.alert.is_(True))
        if ticker is not None:
            query = query.where(CHECKS.c.ticker == ticker)
        if since is not None:
            query = query.where(CHECKS.c.observed_on >= since)
        query = query.order_by(CHECKS.c.observed_on.desc(), CHECKS.c.ticker).limit(limit)
        return self._frame(query)

    def latest_checks(self) -> pd.DataFrame:
        """Each ticker's, model's and detector's latest verdict."""
        key = (CHECKS.c.ticker, CHECKS.c.model_type, CHECKS.c.detector)
        last = select(*key, func.max(CHECKS.c.observed_on).label("last")).group_by(*key).subquery()
        same = and_(*(c == last.c[c.name] for c in key), CHECKS.c.observed_on == last.c.last)
        return self._frame(select(CHECKS).join(last, same).order_by(*key))

    def fired_days(self, tickers: Sequence[str]) -> dict[tuple[str, str, str], list[dt.date]]:
        """Every stored day each ticker's model's detector fired, by (ticker, model, detector)."""
        query = (select(CHECKS.c.ticker, CHECKS.c.model_type, CHECKS.c.detector,
                        CHECKS.c.observed_on)
                 .where(CHECKS.c.fired.is_(True), CHECKS.c.ticker.in_(list(tickers)))
                 .order_by(CHECKS.c.observed_on))  # fmt: skip
        days: dict[tuple[str, str, str], list[dt.date]] = {}
        with self.engine.connect() as connection:
            for ticker, model_type, detector, observed_on in connection.execute(query):
                days.setdefault((ticker, model_type, detector), []).append(observed_on)
        return days

    def retrain_queue(self) -> pd.DataFrame:
        """Every retraining request, newest first."""
        return self._frame(select(RETRAIN).order_by(RETRAIN.c.created_at.desc()))
