r"""The record: stored forecasts against what happened, read-only, shaped for the charts.

A forecast made at origin ``t`` for step ``h`` is judged on the realized volatility of its
forecast date alone, with the proxy the monitor judges against
(:mod:`volforecast.monitoring.accuracy`, proxy ``range``): the square root of the day's
range-based realized variance (:attr:`~volforecast.core.features.DailyData.rv_sigma2`).

Units: ``vol_pct`` and ``realized_vol_pct`` are daily volatility in percent;
``vol_ann_pct`` is :math:`\sqrt{252}` times a daily figure.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from volforecast.core.losses import qlike_losses
from volforecast.dashboard.sources import PATH_COLUMNS, as_paths, empty_paths
from volforecast.dashboard.sources.store import reading
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.evaluation.stats import diebold_mariano
from volforecast.monitoring.accuracy import latest_stored
from volforecast.settings import Settings

RECORD_STEPS = (1, 5)
"""Forecast steps the record shows: the next day and a week ahead."""
TRADING_DAYS_PER_YEAR = 252
ANNUALISE = math.sqrt(TRADING_DAYS_PER_YEAR)
RECORD_COLUMNS = PATH_COLUMNS  # one row per model type, step and forecast date
DM_MIN_DAYS = 10
"""Diebold–Mariano needs this many common forecast days (:func:`~.stats.diebold_mariano`)."""


def forecast_record(
    engine: Engine,
    ticker: str,
    *,
    steps: Sequence[int] = RECORD_STEPS,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pd.DataFrame:
    """Stored forecasts of ``ticker`` at ``steps`` whose forecast date is in ``[start, end]``.

    One row per model type, step and forecast date, oldest first: when a day's forecast was
    stored more than once (a new version, a re-run), the latest stored counts, as it does for
    the monitor (:func:`~volforecast.monitoring.accuracy.latest_stored`). Only production's
    forecasts: a waiting challenger's, stored beside them for its live A/B, are not the
    model's (``served_as``). ``vol_pct`` is daily volatility in percent.
    """
    with reading(engine):
        rows = PredictionRepository(engine).frame([ticker], start=start, end=end, steps=steps)
    if rows.empty:
        return empty_paths()
    return as_paths(latest_stored(rows), ["step", "forecast_date"])


def realized_record(history: pd.DataFrame) -> pd.DataFrame:
    """``date`` and ``realized_vol_pct`` (the monitor's ``range`` proxy) of a volatility history.

    ``history`` is :func:`~volforecast.dashboard.tables.volatility_history`; its ``rv_vol_pct``
    is the square root of the range-based realized variance, the proxy the monitor uses.
    """
    return pd.DataFrame({
        "date": pd.to_datetime(history["date"]),
        "realized_vol_pct": history["rv_vol_pct"].astype("float64"),
    }).reset_index(drop=True)  # fmt: skip


def annualised(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    r"""``frame`` with each daily ``*_pct`` column of ``columns`` times :math:`\sqrt{252}`.

    A column ``vol_pct`` becomes ``vol_ann_pct``, ``realized_vol_pct`` ``realized_vol_ann_pct``:
    the variance of 252 independent days is 252 times a day's, so volatility scales by its root.
    """
    renamed = {c: c.removesuffix("_pct") + "_ann_pct" for c in columns}
    scaled = {c: frame[c].astype("float64") * ANNUALISE for c in columns}
    return frame.assign(**scaled).rename(columns=renamed)


def date_bounds(record: pd.DataFrame) -> tuple[dt.date, dt.date] | None:
    """First and last forecast date of the record, or None when it is empty."""
    if record.empty:
        return None
    dates = pd.to_datetime(record["forecast_date"])
    return dates.min().date(), dates.max().date()


def judged(record: pd.DataFrame, realized: pd.DataFrame) -> pd.DataFrame:
    """The record's rows whose forecast date has a realized volatility, with it joined."""
    truth = realized.rename(columns={"date": "forecast_date"})
    out = record.merge(truth, on="forecast_date", how="inner")
    return out[out["realized_vol_pct"] > 0].reset_index(drop=True)


@dataclass(frozen=True)
class DmComparison:
    """A Diebold–Mariano test of two models' forecasts of the same days at one step."""

    step: int
    loss: str
    n_days: int
    mean_loss_a: float
    mean_loss_b: float
    statistic: float
    pvalue: float


def dm_comparison(
    record: pd.DataFrame, realized: pd.DataFrame, a: str, b: str, step: int
) -> DmComparison | None:
    r"""Diebold–Mariano test of models ``a`` and ``b`` on their common forecast days at ``step``.

    Returns None when fewer than :data:`DM_MIN_DAYS` days were forecast by both and have
    happened.

    Notes
    -----
    The loss is QLIKE on variances, :math:`L_t = \hat\sigma^2_t / s_t - \ln(\hat\sigma^2_t /
    s_t) - 1` with :math:`\hat\sigma^2_t` the realized (range) variance and :math:`s_t` the
    forecast variance: it ranks forecasts consistently under a noisy proxy (Patton 2011).
    The statistic is negative when ``a`` has the smaller loss; the p-value is two-sided, with
    :math:`h - 1` autocovariances for overlapping :math:`h`-step forecasts.
    """
    rows = judged(record[record["step"] == step], realized)
    wide = rows.pivot_table(index="forecast_date", columns="model_type", values="vol_pct",
                            aggfunc="last").dropna()  # fmt: skip
    if a not in wide or b not in wide or len(wide) < DM_MIN_DAYS:
        return None
    truth = realized.set_index("date")["realized_vol_pct"].reindex(wide.index).to_numpy() ** 2
    loss_a = qlike_losses(truth, wide[a].to_numpy() ** 2)
    loss_b = qlike_losses(truth, wide[b].to_numpy() ** 2)
    result = diebold_mariano(loss_a, loss_b, horizon=step)
    return DmComparison(step, "QLIKE", len(wide), float(np.mean(loss_a)), float(np.mean(loss_b)),
                        result.statistic, result.pvalue)  # fmt: skip


def registry_link(ui_url: str, name: str, version: str) -> str:
    """The MLflow UI page of version ``version`` of registered model ``name``."""
    return f"{ui_url.rstrip('/')}/#/models/{quote(name, safe='')}/versions/{quote(version)}"


def mlflow_ui_url(settings: Settings) -> str:
    """The MLflow UI: the tracking server, or ``volforecast mlflow``'s port for a local store.

    Credentials in the tracking URI are left out of the link.
    """
    uri = settings.mlflow_tracking_uri
    if not uri.startswith(("http://", "https://")):
        return f"http://127.0.0.1:{settings.mlflow_port}"
    parts = urlsplit(uri)
    netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
