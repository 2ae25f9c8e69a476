"""Risk figures: ``ml.risk_forecasts`` (VaR and ES) and ``ml.term_structures``.

The daily job writes both beside each production forecast path; the dashboard draws them.
Rows are keyed by ticker, model type, origin, horizon (and level) and model version, so a
re-run for the same day replaces them and adds none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import cast

import pandas as pd
from sqlalchemy import Table, select
from sqlalchemy.sql.elements import ColumnElement

from volforecast.data.db import Repository, as_date
from volforecast.data.tables import RISK_KEY, TERM_KEY, RiskForecast, TermStructurePoint
from volforecast.data.upsert import upsert

RISK = cast("Table", RiskForecast.__table__)
TERMS = cast("Table", TermStructurePoint.__table__)


@dataclass(frozen=True)
class RiskRow:
    """One VaR and ES of one model from one close (a row of ``ml.risk_forecasts``)."""

    ticker: str
    model_type: str
    origin_date: dt.date
    days: int
    level: float
    var_pct: float
    """Loss over ``days`` as a positive percent log return."""
    es_pct: float
    method: str
    model_version: str
    run_id: str | None
    computed_at: dt.datetime


@dataclass(frozen=True)
class TermRow:
    """One point of one model's annualised term structure (a row of ``ml.term_structures``)."""

    ticker: str
    model_type: str
    origin_date: dt.date
    days: int
    vol_ann_pct: float
    model_version: str
    computed_at: dt.datetime


class RiskRepository(Repository):
    """VaR, ES and term structures of the production models, one set per close."""

    def upsert(self, risks: Sequence[RiskRow], terms: Sequence[TermRow] = ()) -> int:
        """Insert or replace rows by their keys; returns how many were written."""
        unique_risks = {tuple(getattr(r, c) for c in RISK_KEY): r for r in risks}
        unique_terms = {tuple(getattr(r, c) for c in TERM_KEY): r for r in terms}
        return upsert(
            self.engine, RISK, [vars(r) for r in unique_risks.values()], RISK_KEY
        ) + upsert(self.engine, TERMS, [vars(r) for r in unique_terms.values()], TERM_KEY)

    def risk_frame(
        self,
        tickers: Sequence[str],
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        days: int | None = None,
    ) -> pd.DataFrame:
        """Stored VaR and ES of ``tickers`` with an origin in ``[start, end]``, oldest first."""
        where: list[ColumnElement[bool]] = [RISK.c.ticker.in_(list(tickers))]
        if start is not None:
            where.append(RISK.c.origin_date >= start)
        if end is not None:
            where.append(RISK.c.origin_date <= end)
        if days is not None:
            where.append(RISK.c.days == days)
        columns = [RISK.c[f.name] for f in fields(RiskRow)]
        return _dated(self._frame(select(*columns).where(*where).order_by(RISK.c.origin_date)))

    def term_frame(
        self, tickers: Sequence[str], origin_date: dt.date | None = None
    ) -> pd.DataFrame:
        """Stored term structures of ``tickers`` from ``origin_date`` (each one's latest: None)."""
        where: list[ColumnElement[bool]] = [TERMS.c.ticker.in_(list(tickers))]
        if origin_date is not None:
            where.append(TERMS.c.origin_date == origin_date)
        columns = [TERMS.c[f.name] for f in fields(TermRow)]
        frame = _dated(self._frame(select(*columns).where(*where)))
        if frame.empty or origin_date is not None:
            return frame
        latest = frame.groupby("ticker")["origin_date"].transform("max")
        return frame[frame["origin_date"] == latest].reset_index(drop=True)


def _dated(frame: pd.DataFrame) -> pd.DataFrame:
    if not frame.empty:
        frame["origin_date"] = frame["origin_date"].map(as_date)
    return frame
