"""The test window: the last 10 % of a ticker's days, forecast from each with frozen parameters.

The first 90 % fit the model (the LSTM trains on 80 % and stops early on the next 10 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from volforecast.core.features import DailyData
from volforecast.core.losses import qlike_losses
from volforecast.evaluation.metrics import DEFAULT_HORIZONS, horizon_targets, loss_table
from volforecast.models.base import VolatilityModel
from volforecast.registry.decision import losses_frame
from volforecast.settings import Settings

FIT_FRACTION = 0.9
"""Share of each ticker's days before the test window (train and validation)."""


@dataclass
class Evaluated:
    """A fitted model's figures on its test window."""

    metrics: dict[str, float]
    decision_losses: pd.DataFrame
    origins: np.ndarray
    paths: np.ndarray


def window_origins(data: DailyData) -> np.ndarray:
    """Positions of the test window's forecast origins: the last fitting day onwards."""
    n_fit = int(len(data) * FIT_FRACTION)
    return np.arange(max(n_fit - 1, 1), len(data) - 1)


def evaluate(model: VolatilityModel, data: DailyData, settings: Settings) -> Evaluated:
    """Losses of ``model`` forecasting from every origin of ``data``'s test window."""
    origins = window_origins(data)
    paths = model.forecast_paths(data, origins, window_steps(settings))
    return evaluate_paths(model.kind, data, origins, paths, settings)


def window_steps(settings: Settings) -> int:
    """Steps forecast from each origin: the longest horizon reported or decided on."""
    return max(*DEFAULT_HORIZONS, settings.promotion.horizon)


def evaluate_paths(
    kind: str, data: DailyData, origins: np.ndarray, paths: np.ndarray, settings: Settings
) -> Evaluated:
    """The figures of variance ``paths`` forecast from ``origins`` (:func:`window_origins`).

    What :func:`evaluate` computes once it holds the paths: a combination averages its
    members' paths instead of forecasting the window again.
    """
    table = loss_table(data, origins, {kind: paths})
    metrics = {
        f"{metric}_h{row.horizon}_{row.proxy}": float(getattr(row, metric))
        for row in table.itertuples()
        for metric in ("qlike", "mse", "mae", "rmse")
    }
    targets = horizon_targets(
        data, origins, paths, settings.promotion.horizon, settings.promotion.proxy
    )
    losses = losses_frame(
        data.ticker,
        data.dates[origins[targets.rows]],
        qlike_losses(targets.realized, targets.forecast),
    )
    return Evaluated(metrics, losses, origins, paths)
