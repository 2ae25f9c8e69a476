"""The champion rule's first window: forecasts of the test window before the backtest starts.

At the backtest's first refit the test window training would judge on (the last 10 % of each
ticker's days through ``train_end``) lies before the backtest's first origin, so the backtest
has no forecast of it. :func:`first_window_paths` makes them as training does
(:mod:`volforecast.jobs.train_per_ticker`, :mod:`volforecast.jobs.train_pooled`): a
per-ticker model is fitted on the days before the window, the pooled one on every ticker's
days through ``train_end`` (it holds out its own last 10 %), and each forecasts every origin
of the window with its parameters frozen. A combination ``a+b`` is the equal-weight average
of its members' paths, as the backtest makes it. Nothing after ``train_end`` is read.

Prepended to the backtest's paths, they let the rule decide the first champion on a full
window, as the first training does, rather than on the first block alone.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from volforecast.core.features import DailyData
from volforecast.errors import VolforecastError
from volforecast.evaluation.test_window import FIT_FRACTION, window_origins
from volforecast.models.base import VolatilityModel
from volforecast.models.catalog import combination_members, member_weights, spec_of
from volforecast.models.ensemble import equal_weight
from volforecast.models.panel import fit_panel

log = logging.getLogger(__name__)


@dataclass
class WindowPaths:
    """One ticker's forecasts of its test window through ``train_end``."""

    origin_positions: np.ndarray
    sigma2: dict[str, np.ndarray] = field(default_factory=dict)
    """Per family, one row per origin; NaN where its fit failed."""


def _fitted(
    name: str, histories: Mapping[str, DailyData], lstm_settings: Mapping[str, Any]
) -> dict[str, VolatilityModel]:
    """``name`` fitted as training fits it, per ticker; a ticker whose fit failed is left out."""
    spec = spec_of(name)
    if spec.pooled:
        usable = [h for h in histories.values() if len(h) >= spec.model_kind.min_obs]
        try:
            pooled = fit_panel(spec, usable, **lstm_settings).models if usable else {}
        except VolforecastError as exc:
            log.warning("first window: %s not fitted: %s", name, exc)
            return {}
        found = {key: pooled.get(history.ticker) for key, history in histories.items()}
        return {key: model for key, model in found.items() if model is not None}
    models = {}
    for ticker, history in histories.items():
        n_fit = int(len(history) * FIT_FRACTION)
        try:
            panel = fit_panel(spec, [history.head(n_fit)])
        except VolforecastError as exc:
            log.warning("first window: %s/%s not fitted: %s", ticker, name, exc)
            continue
        if history.ticker in panel.failures:
            why = panel.failures[history.ticker]
            log.warning("first window: %s/%s not fitted: %s", ticker, name, why)
            continue
        models[ticker] = panel.for_ticker(history.ticker)
    return models


def first_window_paths(
    datasets: Mapping[str, DailyData],
    names: Sequence[str],
    train_end: dt.date,
    *,
    steps: int,
    lstm_settings: Mapping[str, Any] | None = None,
) -> dict[str, WindowPaths]:
    """Every family's paths over each ticker's test window through ``train_end``.

    Parameters
    ----------
    datasets : Mapping[str, DailyData]
        Each ticker's data, the market series attached where a model needs it.
    names : Sequence[str]
        Catalog names; ``a+b`` for an equal-weight combination.
    train_end : datetime.date
        The last day read.
    steps : int
        Steps of each path (the backtest's horizon).
    lstm_settings : Mapping[str, Any], optional
        Overrides of a pooled model's options, as the backtest's.

    Returns
    -------
    dict[str, WindowPaths]
        By ticker; positions are those of ``datasets[ticker]`` (the window's origins).
    """
    histories = {t: d.until(pd.Timestamp(train_end)) for t, d in datasets.items()}
    windows = {t: WindowPaths(window_origins(h)) for t, h in histories.items()}
    fitted = dict.fromkeys(m for name in names for m in combination_members(name) or (name,))
    for name in fitted:
        models = _fitted(name, histories, lstm_settings or {})
        for ticker, window in windows.items():
            paths = np.full((len(window.origin_positions), steps), np.nan)
            model = models.get(ticker)
            if model is not None and len(window.origin_positions):
                paths = model.forecast_paths(histories[ticker], window.origin_positions, steps)
            window.sigma2[name] = paths
    for name in names:
        members = combination_members(name)
        for window in windows.values():
            if members:
                member_paths = [window.sigma2[m] for m in members]
                window.sigma2[name] = equal_weight(member_paths, member_weights(name))
    for window in windows.values():
        window.sigma2 = {name: window.sigma2[name] for name in names}
    return windows
