"""What the API reads and answers, apart from the database tables."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from volforecast.models.base import MAX_HORIZON
from volforecast.models.catalog import MODEL_NAMES

TICKER_PATTERN = r"^[A-Za-z0-9.^\-]*[A-Za-z0-9][A-Za-z0-9.^\-]*$"
"""Letters, digits, ``.``, ``^``, ``-``; at least one letter or digit (a model is named by them)."""

Ticker = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, min_length=1, max_length=16,
                      pattern=TICKER_PATTERN),
]  # fmt: skip

MODEL_TYPES = tuple(name.upper() for name in MODEL_NAMES)
"""The model types the schema lists; any case is accepted, an unknown one is a 422."""


def _as_utc(moment: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; every one the service stores is UTC.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


UtcDatetime = Annotated[dt.datetime, AfterValidator(_as_utc)]
"""A datetime answered in UTC, with its offset, whatever the database handed back."""


def _whole(value: object) -> object:
    # JSON Schema's integer includes 5.0; a string or 5.5 is still refused (strict int).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: object) -> object:
    # Pydantic also reads "0" or "1700000000" as a Unix time; the schema says YYYY-MM-DD.
    if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        raise PydanticCustomError("date_format", "Input should be a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
"""A date given as ``YYYY-MM-DD`` and nothing else."""


class PredictRequest(BaseModel):
    """A forecast request, as the specification shows it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"ticker": "AAPL", "model_type": "GARCH", "horizon": 5}]},
    )

    ticker: Ticker
    model_type: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
        Field(json_schema_extra={"enum": list(MODEL_TYPES)}),
    ] = "GARCH"
    """``GARCH``, ``LSTM`` or any model volforecast ships (``HAR``, ``GJR-GARCH-T``, ...)."""
    horizon: Annotated[int, Field(ge=1, le=MAX_HORIZON, strict=True), BeforeValidator(_whole)] = 5
    """Trading days ahead, 1 to 30."""


class PredictResponse(BaseModel):
    """Daily volatility in percent for each of the next ``horizon`` trading days."""

    ticker: str
    model_type: str
    horizon: int
    forecasts: list[float]
    """Daily volatility, percent, one per trading day."""
    forecast_dates: list[dt.date]
    timestamp: UtcDatetime
    model_name: str
    model_version: str
    origin_date: dt.date
    """Date of the latest close the forecast uses."""


class ModelInfo(BaseModel):
    """One registered model version that holds an alias (or the latest, when none does)."""

    model_name: str
    ticker: str | None
    """The ticker served; None for a pooled model, which serves ``tickers``."""
    tickers: int
    """How many tickers the version serves."""
    model_type: str
    version: str
    stage: Literal["production", "challenger", "none"]
    """The alias the version holds, in place of MLflow's retired stages."""
    metrics: dict[str, float]
    """Test-window metrics (mean over tickers for a pooled model): qlike_h1_range, ..."""
    converged: bool | None
    created_at: UtcDatetime | None


class PredictionRecord(BaseModel):
    """One stored step of a forecast path."""

    ticker: str
    model_type: str
    origin_date: dt.date
    step: int
    forecast_date: dt.date
    predicted_volatility: float
    """Daily volatility, percent."""
    model_version: str
    prediction_timestamp: UtcDatetime


class PredictionPage(BaseModel):
    """A page of stored predictions and how many match in all."""

    ticker: str
    total: int
    limit: int
    offset: int
    items: list[PredictionRecord]


class Check(BaseModel):
    """One dependency's state."""

    ok: bool
    detail: str


class PricesFreshness(BaseModel):
    """The stored prices against the latest closed NYSE session; it never sets the status."""

    fresh: bool | None
    """None when the database could not be read."""
    last_close: dt.date | None
    session: dt.date
    """The NYSE session whose close the data needs: today's once it closed (New York)."""
    detail: str
    """``fresh: ...`` or ``stale since YYYY-MM-DD: ...`` (the first session not stored)."""


class Health(BaseModel):
    """The service's state; ``status`` is ``ok`` only when every check is."""

    status: Literal["ok", "degraded"]
    version: str
    checks: dict[str, Check]
    models_served: int
    predictions_pending: int
    """Answered predictions not in the database yet, in memory or in the journal."""
    predictions_journaled: int
    """Of those, the rows kept in the journal under the service's home."""
    prices: PricesFreshness
    """Whether the stored prices are fresh; stale data does not make the service unhealthy."""


class ApiInfo(BaseModel):
    """What the service is and where to go next."""

    name: str
    version: str
    description: str
    links: dict[str, str]


class FieldError(BaseModel):
    """One part of a request that failed validation; the value sent is never echoed."""

    loc: list[str | int]
    """Where: ``["body", "horizon"]``, ``["query", "limit"]``, ``["path", "ticker"]``."""
    msg: str
    type: str
    """Pydantic's error type: ``missing``, ``int_type``, ``less_than_equal``, ..."""


class Problem(BaseModel):
    """Every error answer, as RFC 9457 problem details (``application/problem+json``)."""

    type: str
    """``about:blank``: the status and ``title`` say what kind of problem it is."""
    title: str
    """The HTTP status phrase."""
    status: int
    detail: str
    """One sentence: what went wrong and, where there is one, what to do."""
    instance: str
    """The request's path."""
    request_id: str
    """Also the ``X-Request-ID`` header; the service log holds a server error's detail under it."""
    errors: list[FieldError] | None = None
    """Validation errors only: each part of the request that failed."""
