"""What the dashboard reads: the prediction API, the database read-only, the model registry.

A source that is not there raises a :class:`DashboardError` whose message tells the user what
to run; the app shows it instead of a stack trace. Forecast paths come back in one layout,
:data:`PATH_COLUMNS`, whichever source gave them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

PATH_DTYPES = {
    "model_type": "object", "model_version": "object", "origin_date": "datetime64[ns]",
    "step": "int64", "forecast_date": "datetime64[ns]", "vol_pct": "float64",
}  # fmt: skip
PATH_COLUMNS = tuple(PATH_DTYPES)
"""One row per forecast step: the layout every forecast function returns."""


class DashboardError(Exception):
    """A source the dashboard reads is not there; the message says what to do about it."""


class DatabaseNotReadyError(DashboardError):
    """The database is away, unmigrated, or behind this version of volforecast."""


class ApiUnavailableError(DashboardError):
    """The prediction API does not answer."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (of the driver's, for SQLAlchemy's)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


@dataclass(frozen=True)
class ForecastSet:
    """Forecast paths of one ticker and where they came from."""

    paths: pd.DataFrame
    """Columns :data:`PATH_COLUMNS`; ``vol_pct`` is daily volatility in percent."""
    source: Literal["api", "database"]
    notes: tuple[str, ...] = ()
    """Model types that gave no path, and why."""


def empty_paths() -> pd.DataFrame:
    """A frame of no forecast steps, in the :data:`PATH_COLUMNS` layout."""
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in PATH_DTYPES.items()})


def model_order(model_type: str) -> tuple[int, str]:
    """Sort key: GARCH, then LSTM, then the others by name."""
    first = {"GARCH": 0, "LSTM": 1}
    return first.get(model_type.upper(), 2), model_type.upper()


def as_paths(rows: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """``PredictionsSchema`` rows as :data:`PATH_COLUMNS`, sorted by model, then ``order``."""
    paths = pd.DataFrame({
        "model_type": rows["model_type"].astype(str).str.upper(),
        "model_version": rows["model_version"].astype(str),
        "origin_date": pd.to_datetime(rows["origin_date"]),
        "step": rows["step"].astype("int64"),
        "forecast_date": pd.to_datetime(rows["forecast_date"]),
        "vol_pct": rows["predicted_volatility"].astype("float64"),
    })  # fmt: skip
    paths = paths.assign(_order=paths["model_type"].map(model_order))
    return paths.sort_values(["_order", *order]).drop(columns="_order").reset_index(drop=True)
