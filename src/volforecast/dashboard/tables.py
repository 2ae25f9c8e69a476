"""The dashboard's frames shaped for display: realized volatility, forecast and registry tables.

Units follow the project's names: ``vol_pct`` is a daily volatility in percent, ``sigma2`` a
daily variance in percent², ``var95_pct`` a one-day value at risk in percent (log return).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from volforecast.api.schemas import ModelInfo
from volforecast.core.features import DailyData
from volforecast.core.risk import normal_var_pct
from volforecast.dashboard.sources import model_order

VAR_LEVELS = (0.95, 0.99)
"""One-day value-at-risk confidence levels drawn as bands."""
QUALITY_DETECTOR = "data_quality"
HISTORY_COLUMNS = (
    "date", "returns_pct", "abs_return_pct", "rv_sigma2", "rv_vol_pct", "rv_vol_smooth_pct",
)  # fmt: skip


def volatility_history(prices: pd.DataFrame, *, smoothing_days: int = 1) -> pd.DataFrame:
    r"""Daily realized volatility and absolute returns of one ticker, in percent.

    Parameters
    ----------
    prices : pandas.DataFrame
        One ticker's prices in the raw layout (``date``, OHLC, ``adj_close``).
    smoothing_days : int
        Trading days in the trailing mean of the realized variance; 1 leaves it raw.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`HISTORY_COLUMNS`, one row per trading day, oldest first.

    Notes
    -----
    With :math:`\hat\sigma^2_t` the range-based realized variance of day :math:`t`
    (:attr:`~volforecast.core.features.DailyData.rv_sigma2`, percent²),

    .. math:: v_t = \sqrt{\hat\sigma^2_t}, \qquad
              \bar v_t = \sqrt{\tfrac{1}{w} \sum_{i=0}^{w-1} \hat\sigma^2_{t-i}}.

    The smoothing averages variances, not volatilities: variances add over days, and the
    forecasts it is compared with are square roots of variance forecasts too.
    """
    if len(prices) < 2:  # the first day only anchors the first return
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in HISTORY_COLUMNS})
    data = DailyData.from_prices(prices)
    sigma2 = pd.Series(data.rv_sigma2, index=data.dates)
    smooth = sigma2.rolling(max(smoothing_days, 1), min_periods=1).mean()
    return pd.DataFrame({
        "date": data.dates,
        "returns_pct": data.returns_pct,
        "abs_return_pct": np.abs(data.returns_pct),
        "rv_sigma2": data.rv_sigma2,
        "rv_vol_pct": np.sqrt(data.rv_sigma2),
        "rv_vol_smooth_pct": np.sqrt(smooth.to_numpy()),
    }).reset_index(drop=True)  # fmt: skip


def var_column(level: float) -> str:
    """Name of the value-at-risk column of ``level``: ``var95_pct`` for 0.95."""
    return f"var{round(level * 100)}_pct"


def with_var(
    paths: pd.DataFrame,
    levels: Sequence[float] = VAR_LEVELS,
    multiples: Mapping[tuple[str, float], float] | None = None,
) -> pd.DataFrame:
    """``paths`` with the one-day value at risk of each step, in percent.

    ``multiples``: by model type and level, the model's own VaR as a multiple of its
    volatility (:func:`volforecast.dashboard.risk.tail_multiples`); a model without one
    gets the normal quantile (:func:`~volforecast.core.risk.normal_var_pct`).
    """
    known = multiples or {}
    columns = {}
    for q in levels:
        normal = normal_var_pct(paths["vol_pct"], q)
        own = paths["model_type"].map(lambda m, q=q: known.get((m, q), np.nan)) * paths["vol_pct"]
        columns[var_column(q)] = own.fillna(pd.Series(normal, index=paths.index))
    return paths.assign(**columns)


def forecast_table(
    paths: pd.DataFrame,
    levels: Sequence[float] = VAR_LEVELS,
    multiples: Mapping[tuple[str, float], float] | None = None,
) -> pd.DataFrame:
    """One row per step and forecast date, one column per model and figure (vol, VaR), in %."""
    if paths.empty:
        return pd.DataFrame(columns=["step", "date"])
    shaped = with_var(paths, levels, multiples)
    figures = {"vol_pct": "vol %"} | {
        var_column(level): f"VaR {round(level * 100)} %" for level in levels
    }
    wide = shaped.pivot_table(
        index=["step", "forecast_date"], columns="model_type", values=list(figures),
        aggfunc="first", sort=False,
    )  # fmt: skip
    models = sorted(shaped["model_type"].unique(), key=model_order)
    ordered = [(figure, model) for model in models for figure in figures]
    wide = wide.reindex(columns=pd.MultiIndex.from_tuples(ordered))
    wide.columns = [f"{model} {figures[figure]}" for figure, model in ordered]
    wide = wide.reset_index().rename(columns={"forecast_date": "date"})
    wide["date"] = pd.to_datetime(wide["date"]).dt.date
    return wide.sort_values(["step", "date"]).reset_index(drop=True)


def versions_frame(models: Sequence[ModelInfo]) -> pd.DataFrame:
    """One row per listed version: name, type, version, alias, what it serves, key metrics."""
    rows = [
        {"model_name": m.model_name, "model_type": m.model_type, "version": m.version,
         "alias": m.stage, "serves": m.ticker or f"{m.tickers} tickers", "converged": m.converged,
         "created_at": pd.NaT if m.created_at is None else pd.Timestamp(m.created_at),
         **{f"test {k}": v for k, v in sorted(m.metrics.items()) if k.startswith("qlike_")}}
        for m in models
    ]  # fmt: skip
    return pd.DataFrame(rows)


def registry_metrics(models: Sequence[ModelInfo], ticker: str) -> pd.DataFrame:
    """Test-window metrics of the production versions that may serve ``ticker``, by model type.

    A pooled model's figures are its means over the tickers it serves.
    """
    rows = [
        {"model_type": m.model_type.upper(), "version": m.version,
         "scope": "this ticker" if m.ticker == ticker else "mean over its tickers", **m.metrics}
        for m in models
        if m.stage == "production" and m.ticker in {None, ticker}
    ]  # fmt: skip
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    return frame.sort_values("model_type", key=lambda s: s.map(model_order)).reset_index(drop=True)


def latest_accuracy(frame: pd.DataFrame) -> pd.DataFrame:
    """The newest row of each model type, horizon and proxy."""
    if frame.empty:
        return frame
    keys = ["model_type", "horizon", "proxy"]
    return (
        frame.sort_values("as_of_date").groupby(keys, as_index=False).last()
        .sort_values(["horizon", "model_type"]).reset_index(drop=True)
    )  # fmt: skip


def ab_summary(frame: pd.DataFrame, a: str, b: str, metric: str) -> pd.DataFrame:
    """``metric`` of models ``a`` and ``b`` at each horizon, newest rows, and B's change.

    ``b vs a %`` is :math:`100 (m_B - m_A) / m_A`: negative when B's error is lower.
    """
    latest = latest_accuracy(frame)
    if latest.empty:
        return pd.DataFrame(columns=["horizon", "proxy", a, b, "b vs a %"])
    wide = latest[latest["model_type"].isin([a, b])].pivot_table(
        index=["horizon", "proxy"], columns="model_type", values=metric, aggfunc="first"
    )
    wide = wide.reindex(columns=[a, b])
    wide["b vs a %"] = 100 * (wide[b] - wide[a]) / wide[a]
    wide.columns.name = None
    return wide.reset_index()


def split_quality(checks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drift detectors' rows and data-quality rows of a checks or alerts frame."""
    quality = checks["detector"] == QUALITY_DETECTOR
    return checks[~quality].reset_index(drop=True), checks[quality].reset_index(drop=True)
