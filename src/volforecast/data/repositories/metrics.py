"""Evaluation metrics: ``ml.model_metrics``, one row per run, ticker, model type and metric."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import pandas as pd
from sqlalchemy import Table, select

from volforecast.data.db import Repository
from volforecast.data.tables import METRIC_KEY, ModelMetric
from volforecast.data.upsert import upsert

METRICS = cast("Table", ModelMetric.__table__)


@dataclass(frozen=True)
class MetricRow:
    """One evaluation figure of one model for one ticker (a row of ``ml.model_metrics``)."""

    ticker: str
    model_type: str
    metric_name: str
    metric_value: float
    run_id: str
    model_version: str | None


class MetricRepository(Repository):
    """Evaluation metrics in ``ml.model_metrics``; writing a run's metrics again replaces them."""

    def upsert(self, rows: Sequence[MetricRow], *, created_at: dt.datetime) -> int:
        """Insert or replace rows by run, ticker, model type and metric; returns the count."""
        values = [
            {**vars(r), "metric_value": float(r.metric_value), "created_at": created_at}
            for r in rows
        ]
        return upsert(self.engine, METRICS, values, METRIC_KEY)

    def load(
        self, *, tickers: Sequence[str] | None = None, run_id: str | None = None
    ) -> pd.DataFrame:
        """Stored metrics, newest first."""
        query = select(METRICS).order_by(METRICS.c.created_at.desc(), METRICS.c.id)
        if tickers is not None:
            query = query.where(METRICS.c.ticker.in_(list(tickers)))
        if run_id is not None:
            query = query.where(METRICS.c.run_id == run_id)
        return self._frame(query)
