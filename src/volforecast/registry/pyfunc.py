"""volforecast models as MLflow pyfunc models, loadable with ``mlflow.pyfunc.load_model``.

A logged model (named after what it is, ``garch_aapl``) carries one artifact, ``model``: the
directory a fitted panel saves (:mod:`volforecast.models.panel`: one ticker's model, or the
pooled LSTM for every ticker). Its input is a table with a ``horizon`` (1-30 trading days)
and, for a pooled model, the ``ticker``; its output has one row per ticker and step:
``ticker, origin_date, step, forecast_date, sigma2`` (percent²) and ``vol_pct`` (daily
volatility in percent), forecast from the last day the model saw, exactly as
:meth:`VolatilityModel.forecast` gives it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.types import ColSpec, Schema

from volforecast import __version__
from volforecast.models.base import VolatilityModel
from volforecast.models.panel import load_panel
from volforecast.registry.descriptions import listed

ARTIFACT_KEY = "model"
MODEL_CODE = Path(__file__).with_name("pyfunc_code.py")
"""Passed to ``log_model`` as ``python_model``: the model is stored as code, not a pickle."""

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "ticker", required=False), ColSpec("long", "horizon")]),
    outputs=Schema(
        [
            ColSpec("string", "ticker"),
            ColSpec("string", "origin_date"),
            ColSpec("long", "step"),
            ColSpec("string", "forecast_date"),
            ColSpec("double", "sigma2"),
            ColSpec("double", "vol_pct"),
        ]
    ),
)


def load_models(path: Path) -> dict[str, VolatilityModel]:
    """The models in a saved directory, by ticker (one, or all of a pooled network)."""
    return load_panel(path).models


def forecast_table(models: dict[str, VolatilityModel], requests: pd.DataFrame) -> pd.DataFrame:
    """Forecasts for each requested ``(ticker, horizon)`` row, in the pyfunc output layout.

    Raises ``ValueError`` for a ticker the model does not serve or a horizon outside 1-30.
    """
    if "horizon" not in requests:
        msg = "the input needs a 'horizon' column (1-30 trading days)"
        raise ValueError(msg)
    only = next(iter(models)) if len(models) == 1 else None
    given = requests["ticker"] if "ticker" in requests else pd.Series([None] * len(requests))
    if given.isna().any() and only is None:
        msg = "this model serves several tickers: give a 'ticker' on every row"
        raise ValueError(msg)
    tickers = [str(t) if pd.notna(t) else str(only) for t in given]
    horizons = pd.to_numeric(requests["horizon"], errors="coerce")
    if horizons.isna().any() or (horizons != horizons.round()).any():
        msg = "'horizon' must be a whole number of trading days (1-30)"
        raise ValueError(msg)
    frames = []
    for ticker, horizon in zip(tickers, horizons.astype(int), strict=True):
        model = models.get(ticker)
        if model is None:
            msg = f"this model does not serve {ticker!r}; it serves {listed(sorted(models), 5)}"
            raise ValueError(msg)
        forecast = model.forecast(int(horizon))
        frame = forecast.to_frame()
        frame.insert(0, "origin_date", forecast.origin_date.isoformat())
        frame.insert(0, "ticker", ticker)
        frame["forecast_date"] = [d.isoformat() for d in forecast.forecast_dates]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


class VolatilityPyfunc(PythonModel):
    """The pyfunc face of a saved volforecast model (see the module docstring)."""

    def __init__(self) -> None:
        self._models: dict[str, VolatilityModel] = {}

    def load_context(self, context: Any) -> None:
        """Read the model directory MLflow unpacked."""
        self._models = load_models(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        """One row per requested ticker and forecast step."""
        return forecast_table(self._models, pd.DataFrame(model_input))


def pip_requirements() -> list[str]:
    """What a fresh environment needs to load the model: volforecast brings the rest."""
    return [f"volforecast=={__version__}"]


def input_example(ticker: str) -> pd.DataFrame:
    """A request for a 5-day path, stored with the model as its example."""
    return pd.DataFrame({"ticker": [ticker], "horizon": [5]})
