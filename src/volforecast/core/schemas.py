"""The frames that cross packages, as pandera schemas: a frame that breaks one is refused.

Importing this module imports pandera (~0.7 s): callers import it where they validate.
"""

from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series


class LossesSchema(pa.DataFrameModel):
    """One version's QLIKE losses on its test window, the promotion decision's input."""

    ticker: Series[str]
    origin_date: Series[pa.DateTime] = pa.Field(description="the forecast's origin")
    loss: Series[float] = pa.Field(lt=np.inf, description="QLIKE at the decision's horizon")

    @pa.dataframe_check(name="one_row_per_ticker_and_origin")  # compare() merges on them
    def _unique(cls, frame: pd.DataFrame) -> bool:  # noqa: N805 (a pandera check)
        return not frame.duplicated(["ticker", "origin_date"]).any()


class PredictionsSchema(pa.DataFrameModel):
    """Stored forecast steps (``ml.volatility_predictions``) the monitor and the dashboard read."""

    ticker: Series[str]
    model_type: Series[str]
    origin_date: Series[pa.Date] = pa.Field(description="date of the last close used")
    step: Series[int] = pa.Field(ge=1, description="trading days after the origin")
    forecast_date: Series[pa.Date]
    # NaN only in a row an older version stored (before migration 0005): read, not refused.
    predicted_volatility: Series[float] = pa.Field(gt=0, nullable=True, description="daily vol, %")
    model_version: Series[str]
    run_id: Series[str] = pa.Field(nullable=True)
    prediction_timestamp: Series[Any] = pa.Field(description="when it was stored (UTC)")
    served_as: Series[str] = pa.Field(
        isin=["production", "challenger"], description="challenger: a live A/B's, not the model's"
    )


class BacktestSchema(pa.DataFrameModel):
    """The forecasts ``volforecast backtest`` writes, exactly these columns in this order."""

    ticker: Series[str]
    model: Series[str] = pa.Field(description="upper case: GARCH, HAR+LSTM, ...")
    origin_date: Series[pa.Date] = pa.Field(description="date of the last close used")
    step: Series[int] = pa.Field(ge=1, description="trading days after the origin")
    forecast_date: Series[pa.Date]
    # NaN where the model's fit failed
    predicted_volatility: Series[float] = pa.Field(gt=0, nullable=True, description="daily vol, %")

    class Config:  # noqa: D106
        strict = True
        ordered = True
