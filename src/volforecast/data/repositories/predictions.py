"""Forecast paths: ``ml.volatility_predictions``, one row per step of each stored forecast."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal, cast

import pandas as pd
from sqlalchemy import Table, func, select
from sqlalchemy.sql.elements import ColumnElement

from volforecast.data.db import Repository, as_date
from volforecast.data.tables import PREDICTION_KEY, VolatilityPrediction
from volforecast.data.upsert import upsert

PREDICTIONS = cast("Table", VolatilityPrediction.__table__)

ServedAs = Literal["production", "challenger"]
"""What a stored forecast was served as (``data.tables.SERVED_AS``)."""
PRODUCTION_ROWS: ServedAs = "production"


@dataclass(frozen=True)
class PredictionRow:
    """One step of one forecast path (a row of ``ml.volatility_predictions``)."""

    ticker: str
    model_type: str
    origin_date: dt.date
    step: int
    forecast_date: dt.date
    predicted_volatility: float
    """Daily volatility in percent."""
    model_version: str
    run_id: str | None
    prediction_timestamp: dt.datetime
    served_as: ServedAs = PRODUCTION_ROWS
    """``challenger``: a waiting challenger's forecast for its live A/B, not the model's."""


_COLUMNS = [PREDICTIONS.c[f.name] for f in fields(PredictionRow)]


@dataclass(frozen=True)
class PredictionPage:
    """Stored predictions matching a query, one page of them, and how many match in all."""

    rows: list[PredictionRow]
    total: int


class PredictionRepository(Repository):
    """Forecast paths in ``ml.volatility_predictions``.

    A row is keyed by ticker, model type, origin, step and model version: storing the same
    forecast again replaces it, so a retried write or a re-run job never duplicates a row.
    """

    def upsert(self, rows: Sequence[PredictionRow]) -> int:
        """Insert or replace rows by their key; returns how many were written.

        A stored row keeps what it was first served as: a challenger's forecast of a day stays
        the challenger's when the same version, promoted since, forecasts that day again.
        """
        # The last of several rows with one key wins, as it would in one statement per row.
        unique = {tuple(getattr(r, c) for c in PREDICTION_KEY): r for r in rows}
        return upsert(self.engine, PREDICTIONS, [vars(r) for r in unique.values()],
                      PREDICTION_KEY, keep=("served_as",))  # fmt: skip

    def find(
        self,
        ticker: str,
        *,
        model_type: str | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
        limit: int = 100,
        offset: int = 0,
        served_as: ServedAs | None = PRODUCTION_ROWS,
    ) -> PredictionPage:
        """Stored predictions of ``ticker`` whose forecast date is in ``[start, end]``.

        Newest origin first, then by model type and step. Only the rows served as
        ``served_as``: production's unless asked (None: every row).
        """
        where = [PREDICTIONS.c.ticker == ticker, *_served(served_as)]
        if model_type is not None:
            where.append(PREDICTIONS.c.model_type == model_type)
        if start is not None:
            where.append(PREDICTIONS.c.forecast_date >= start)
        if end is not None:
            where.append(PREDICTIONS.c.forecast_date <= end)
        query = (
            select(*_COLUMNS)
            .where(*where)
            .order_by(
                PREDICTIONS.c.origin_date.desc(),
                PREDICTIONS.c.model_type,
                PREDICTIONS.c.model_version.desc(),
                PREDICTIONS.c.step,
            )
            .limit(limit)
            .offset(offset)
        )
        count = select(func.count()).select_from(PREDICTIONS).where(*where)
        with self.engine.connect() as connection:
            total = int(connection.execute(count).scalar_one())
            rows = [PredictionRow(**row._asdict()) for row in connection.execute(query)]
        return PredictionPage(rows, total)

    def frame(
        self,
        tickers: Sequence[str],
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        steps: Sequence[int] | None = None,
        served_as: ServedAs | None = PRODUCTION_ROWS,
    ) -> pd.DataFrame:
        """``PredictionsSchema`` rows of ``tickers`` with a forecast date in ``[start, end]``.

        Only the rows served as ``served_as``: production's, the model's forecasts, unless
        asked (None: every row, as the live A/B reads both sides).
        """
        from volforecast.core.schemas import PredictionsSchema  # noqa: PLC0415  (imports pandera)

        where = [PREDICTIONS.c.ticker.in_(list(tickers)), *_served(served_as)]
        if start is not None:
            where.append(PREDICTIONS.c.forecast_date >= start)
        if end is not None:
            where.append(PREDICTIONS.c.forecast_date <= end)
        if steps is not None:
            where.append(PREDICTIONS.c.step.in_(list(steps)))
        frame = self._frame(select(*_COLUMNS).where(*where))
        if frame.empty:
            return frame
        frame["forecast_date"] = frame["forecast_date"].map(as_date)
        return PredictionsSchema.validate(frame)


def _served(served_as: ServedAs | None) -> list[ColumnElement[bool]]:
    return [] if served_as is None else [PREDICTIONS.c.served_as == served_as]
