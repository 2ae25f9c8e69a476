"""What the API reads and answers, apart from the database tables."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Annotated, Literal

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
from volforecast.models.catalog import MODEL_NAMES, is_pooled

if TYPE_CHECKING:  # the registry imports MLflow, which a client of these schemas never needs
    from volforecast.registry.serving import VersionInfo

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


class Schema(BaseModel):
    """A schema whose field docstrings are its fields' descriptions in the OpenAPI document.

    Every field says what it is and its unit: volatility is daily, in percent (the standard
    deviation of one day's log return in percent); dates are NYSE sessions unless named
    otherwise; times are UTC.
    """

    model_config = ConfigDict(use_attribute_docstrings=True)


class PredictRequest(Schema):
    """A forecast request, as the specification shows it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"ticker": "AAPL", "model_type": "GARCH", "horizon": 5},
                # The bundled sample's index, which `make run` trains: answered out of the box.
                {"ticker": "^GSPC", "horizon": 30},
            ]
        },
    )

    ticker: Ticker
    """Symbol of the stock or index, e.g. ``AAPL`` or ``^GSPC``; read in upper case."""
    model_type: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
            Field(json_schema_extra={"enum": list(MODEL_TYPES)}),
        ]
        | None
    ) = None
    """``GARCH``, ``LSTM`` or any model volforecast ships (``HAR``, ``GJR-GARCH-T``, ...).
    Left out, the ticker's champion answers (``volforecast models champion``; ``GARCH`` for a
    ticker that has none yet)."""
    horizon: Annotated[int, Field(ge=1, le=MAX_HORIZON, strict=True), BeforeValidator(_whole)] = 5
    """Trading days (NYSE sessions) ahead to forecast, 1 to 30."""
    alias: Literal["production", "challenger"] = "production"
    """``challenger``: the forecast of the challenger waiting for live evidence (404 when
    none waits); production answers otherwise."""


class PredictResponse(Schema):
    """Daily volatility in percent for each of the next ``horizon`` trading days."""

    ticker: str
    """Symbol forecast, upper case."""
    model_type: str
    """Type of the model that answered: ``GARCH``, ``LSTM``, ..."""
    horizon: int
    """Trading days (NYSE sessions) forecast: the length of ``forecasts``."""
    forecasts: list[float]
    """Daily volatility in percent (percent per day, not annualised), one per trading day."""
    forecast_dates: list[dt.date]
    """The NYSE session each value of ``forecasts`` is for, ``YYYY-MM-DD``."""
    timestamp: UtcDatetime
    """When the forecast was made, UTC, ISO 8601 with its offset."""
    model_name: str
    """Registered model in MLflow, e.g. ``garch_volatility_aapl`` or ``lstm_volatility_pooled``."""
    model_version: str
    """Version of that registered model."""
    origin_date: dt.date
    """NYSE session of the latest close the forecast uses, ``YYYY-MM-DD``."""
    champion: bool = False
    """Whether the model answered as the ticker's champion, the request naming none (never
    for ``alias: challenger``: a challenger is not the champion)."""
    alias: Literal["production", "challenger"] = "production"
    """The registry alias of the version that answered."""


MAX_BATCH = 500
"""Most items one ``POST /predict/batch`` answers: every S&P 500 ticker in one request."""


class PredictBatchRequest(Schema):
    """Many forecast requests in one body, each as ``POST /predict`` reads it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"items": [{"ticker": "^GSPC", "horizon": 30},
                           {"ticker": "^IXIC", "model_type": "GARCH", "horizon": 5}]}
            ]
        },
    )  # fmt: skip

    items: Annotated[list[PredictRequest], Field(min_length=1, max_length=MAX_BATCH)]
    """1 to 500 requests, answered in this order."""


class ItemProblem(Schema):
    """One item of a batch that could not be answered; the other items are."""

    ticker: str
    """Symbol asked for, upper case."""
    model_type: str | None
    """Model type asked for, as sent; null when the item named none (its champion)."""
    status: int
    """The HTTP status ``POST /predict`` would answer this item with alone: 404 (unknown
    ticker, no production model), 422 (prices that cannot be forecast from), 503 (a store
    is down), 400 or 500 (see the service log under the request id)."""
    title: str
    """That status's phrase."""
    detail: str
    """One sentence: what went wrong and, where there is one, what to do."""


class PredictBatchResponse(Schema):
    """One answer per item, in the order asked: a forecast, or why there is none."""

    items: list[PredictResponse | ItemProblem]
    """A ``PredictResponse`` (it has ``forecasts``) or an ``ItemProblem`` (it has ``status``)."""
    answered: int
    """Items answered with a forecast."""
    failed: int
    """Items answered with a problem."""


class RiskFigure(Schema):
    """Value at risk and expected shortfall at one level over one horizon."""

    level: float
    """Confidence level: 0.95, 0.975 or 0.99."""
    days: int
    """Trading days the loss is summed over: 1 or 10."""
    var_pct: float
    """Value at risk: the loss over ``days``, as a positive percent log return, exceeded with
    probability ``1 - level``."""
    es_pct: float
    """Expected shortfall: the mean loss beyond the VaR, percent, positive, at least
    ``var_pct``."""
    method: str
    """How the tails were made: the model's own standardized returns (filtered historical
    simulation) or its fitted distribution, and for 10 days the simulation."""


class RiskResponse(Schema):
    """A served model's VaR and ES from the latest stored close."""

    ticker: str
    """Symbol, upper case."""
    model_type: str
    """Type of the model that answered: ``GARCH``, ``HAR``, ..."""
    model_name: str
    """Registered model in MLflow."""
    model_version: str
    """Version of that registered model."""
    origin_date: dt.date
    """NYSE session of the latest close the figures start from, ``YYYY-MM-DD``."""
    champion: bool = False
    """Whether the model answered as the ticker's champion, the request naming none."""
    items: list[RiskFigure]
    """One per level and horizon asked for, horizons first."""


class TermPoint(Schema):
    """Annualised volatility over one horizon of the term structure."""

    days: int
    """Trading days from the latest close: 1, 5, 22, 126 or 252."""
    vol_ann_pct: float
    """``sqrt(252 * mean daily variance over those days)``, percent a year (V-Lab's)."""


class NewsImpactPoint(Schema):
    """One point of the news-impact curve."""

    shock_pct: float
    """Today's return less its mean, percent."""
    sigma2: float
    """Next day's variance after it, percent², today's variance at its long-run level."""


class ModelCardResponse(Schema):
    """A served model's card for one ticker, V-Lab style, from the latest stored close."""

    model_name: str
    """Registered model in MLflow."""
    model_version: str
    """Its production version."""
    model_type: str
    """``GARCH``, ``GJR-GARCH-T``, ``HAR``, ..."""
    ticker: str
    """The ticker the card is for."""
    origin_date: dt.date
    """NYSE session of the latest close, ``YYYY-MM-DD``."""
    params: dict[str, float]
    """Fitted parameters by name (``omega``, ``alpha[1]``, ... for GARCH)."""
    persistence: float
    """Daily decay of the distance to the long-run variance: the fitted one for GARCH and
    GJR, the one the model's own 30-day path shows otherwise."""
    half_life_days: float | None
    """Trading days for that distance to halve; null when it never does."""
    long_run_vol_ann_pct: float
    """The long-run variance as annualised volatility, percent: GARCH's unconditional
    variance, the mean realized variance of the fitted data otherwise."""
    term_structure: list[TermPoint]
    """Annualised volatility at 1, 5, 22, 126 and 252 trading days."""
    news_impact: list[NewsImpactPoint] | None
    """Next day's variance against today's return, for the GARCH family; null for models
    without a variance recursion (HAR, the LSTM, combinations)."""


class ModelInfo(Schema):
    """One registered model version that holds an alias (or the latest, when none does)."""

    model_name: str
    """Registered model in MLflow, e.g. ``garch_volatility_aapl``."""
    ticker: str | None
    """The ticker served; null for a pooled model, which serves ``tickers``."""
    tickers: int
    """How many tickers the version serves."""
    model_type: str
    """``GARCH``, ``LSTM``, ``HAR``, ..."""
    version: str
    """Version of the registered model."""
    stage: Literal["production", "challenger", "none"]
    """The alias the version holds, in place of MLflow's retired stages."""
    metrics: dict[str, float]
    """Test-window losses, ``<loss>_h<days>_<proxy>``; a pooled model's are means over its
    tickers. ``qlike_h1_range``: QLIKE (unitless) of 1-day variance against the range proxy;
    ``rmse_*``, ``mae_*``: of daily volatility, in percent; ``mse_*``: in percent².
    """
    converged: bool | None
    """Whether the fit converged; null when the version does not record it."""
    created_at: UtcDatetime | None
    """When the version was registered, UTC."""
    champion_of: list[str] = []
    """Tickers this production version answers when a request names no model."""

    @classmethod
    def from_version(cls, v: VersionInfo) -> ModelInfo:
        """The listing of a registered version; a pooled model serves no single ticker."""
        pooled = is_pooled(v.model_type)
        return cls(model_name=v.name, ticker=v.tickers[0] if len(v.tickers) == 1 and not pooled
                   else None, tickers=len(v.tickers), model_type=v.model_type, version=v.version,
                   stage=v.alias if v.alias in {"production", "challenger"} else "none",
                   metrics=v.metrics, converged=v.converged, created_at=v.created_at)  # fmt: skip


class PredictionRecord(Schema):
    """One stored step of a forecast path."""

    ticker: str
    """Symbol forecast, upper case."""
    model_type: str
    """Type of the model that made it: ``GARCH``, ``LSTM``, ..."""
    origin_date: dt.date
    """NYSE session of the latest close the forecast used, ``YYYY-MM-DD``."""
    step: int
    """Trading days (NYSE sessions) after ``origin_date``: 1 for the next session."""
    forecast_date: dt.date
    """The NYSE session forecast, ``YYYY-MM-DD``."""
    predicted_volatility: float
    """Daily volatility in percent (percent per day, not annualised)."""
    model_version: str
    """Version of the registered model that made it."""
    prediction_timestamp: UtcDatetime
    """When the forecast was made, UTC, ISO 8601 with its offset."""
    served_as: Literal["production", "challenger"] = "production"
    """``challenger``: a waiting challenger's forecast for its live A/B, not the model's."""


class PredictionPage(Schema):
    """A page of stored predictions and how many match in all."""

    ticker: str
    """Symbol asked for, upper case."""
    total: int
    """Stored predictions that match, over all pages."""
    limit: int
    """Most items on this page."""
    offset: int
    """Matches skipped before this page."""
    items: list[PredictionRecord]
    """This page, by forecast date."""


class Check(Schema):
    """One dependency's state."""

    ok: bool
    """Whether this part of the service works."""
    detail: str
    """One sentence on its state; what is wrong when ``ok`` is false."""


class PricesFreshness(Schema):
    """The stored prices against the latest closed NYSE session; it never sets the status."""

    fresh: bool | None
    """Whether the session's close is stored; None when the database could not be read."""
    last_close: dt.date | None
    """The latest stored close, an NYSE session; None when no close is stored."""
    session: dt.date
    """The NYSE session whose close the data needs: today's once it closed (New York)."""
    detail: str
    """``fresh: ...`` or ``stale since YYYY-MM-DD: ...`` (the first session not stored)."""


class Health(Schema):
    """The service's state; ``status`` is ``ok`` only when every check is."""

    status: Literal["ok", "degraded"]
    """``ok`` when every check is, ``degraded`` otherwise."""
    version: str
    """The volforecast version serving."""
    checks: dict[str, Check]
    """Each dependency by name: ``database``, ``registry``, ``models``."""
    models_served: int
    """Production models loaded and ready to answer."""
    predictions_pending: int
    """Answered predictions not in the database yet, in memory or in the journal."""
    predictions_journaled: int
    """Of those, the rows kept in the journal under the service's home."""
    prices: PricesFreshness
    """Whether the stored prices are fresh; stale data does not make the service unhealthy."""


class ApiInfo(Schema):
    """What the service is and where to go next."""

    name: str
    """``volforecast``."""
    version: str
    """The volforecast version serving."""
    description: str
    """One sentence on what the service does."""
    links: dict[str, str]
    """Paths of the service by name: ``docs``, ``openapi``, ``predict``, ..."""


class FieldError(Schema):
    """One part of a request that failed validation; the value sent is never echoed."""

    loc: list[str | int]
    """Where: ``["body", "horizon"]``, ``["query", "limit"]``, ``["path", "ticker"]``."""
    msg: str
    """What is wrong with it, in one sentence."""
    type: str
    """Pydantic's error type: ``missing``, ``int_type``, ``less_than_equal``, ..."""


class Problem(Schema):
    """Every error answer, as RFC 9457 problem details (``application/problem+json``)."""

    type: str
    """``about:blank``: the status and ``title`` say what kind of problem it is."""
    title: str
    """The HTTP status phrase."""
    status: int
    """The HTTP status code, as in the response's status line."""
    detail: str
    """One sentence: what went wrong and, where there is one, what to do."""
    instance: str
    """The request's path."""
    request_id: str
    """Also the ``X-Request-ID`` header; the service log holds a server error's detail under it."""
    errors: list[FieldError] | None = None
    """Validation errors only: each part of the request that failed."""
