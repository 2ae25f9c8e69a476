"""What the dashboard shows, fetched and shaped: plain functions, testable without Streamlit.

Every read goes through the prediction API (:class:`~volforecast.api.client.ApiClient`) or a
read-only repository query. A source that is not there raises a :class:`DashboardError`
whose message tells the user what to run; the app shows it instead of a stack trace.

Units follow the project's names: ``vol_pct`` is a daily volatility in percent, ``sigma2`` a
daily variance in percent², ``var95_pct`` a one-day value at risk in percent (log return).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
import pandas as pd
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from volforecast.api.client import ApiClient
from volforecast.core.features import DailyData
from volforecast.data import db
from volforecast.data.quality import QualityReport
from volforecast.data.repositories.monitoring import MonitoringRepository
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.errors import DatabaseUnavailableError, VolforecastError
from volforecast.settings import Settings

API_URL_ENV = "VOLFORECAST_DASHBOARD__API_URL"
API_KEY_ENV = "VOLFORECAST_API__API_KEY"
DEFAULT_API_URL = "http://127.0.0.1:8000"

MAX_HORIZON_DAYS = 30
VAR_LEVELS = (0.95, 0.99)
"""One-day value-at-risk confidence levels drawn as bands."""
LATENCY_QUANTILES = (0.5, 0.9, 0.99)
QUALITY_DETECTOR = "data_quality"
LATENCY_METRIC = "volforecast_http_request_duration_seconds"
REQUESTS_METRIC = "volforecast_http_requests"

PATH_COLUMNS = ("model_type", "model_version", "origin_date", "step", "forecast_date", "vol_pct")
"""One row per forecast step: the layout every forecast function returns."""
HISTORY_COLUMNS = (
    "date", "returns_pct", "abs_return_pct", "rv_sigma2", "rv_vol_pct", "rv_vol_smooth_pct",
)  # fmt: skip
ALERT_COLUMNS = (
    "observed_on", "ticker", "model_type", "detector", "statistic", "threshold", "detail",
)  # fmt: skip

NO_PRICES = (
    "No prices stored yet: run `volforecast ingest --sample` (or `volforecast ingest` with "
    "your own tickers)."
)

ForecastSource = Literal["api", "database"]


# ---------------------------------------------------------------- configuration and errors


@dataclass(frozen=True)
class DashboardConfig:
    """Where the dashboard finds the prediction API (``settings.dashboard.api_url``)."""

    api_url: str = DEFAULT_API_URL
    api_key: str | None = None
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DashboardConfig:
        """The API URL of the dashboard's settings, with the API's own key when it has one."""
        key = settings.api.api_key
        return cls(api_url=settings.dashboard.api_url.rstrip("/"),
                   api_key=None if key is None else key.get_secret_value())  # fmt: skip

    def client(self) -> ApiClient:
        """A client of the configured API."""
        return ApiClient(self.api_url, self.api_key, timeout_s=self.timeout_s)


class DashboardError(Exception):
    """A source the dashboard reads is not there; the message says what to do about it."""


class DatabaseNotReadyError(DashboardError):
    """The database is away, unmigrated, or behind this version of volforecast."""


class ApiUnavailableError(DashboardError):
    """The prediction API does not answer."""


def api_down_message(url: str) -> str:
    """What to tell the user when the API at ``url`` does not answer."""
    return (
        f"The prediction API at {url} is not answering: start it with `volforecast serve` "
        f"(or point {API_URL_ENV} at it)."
    )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


@contextmanager
def _reading(engine: Engine) -> Iterator[None]:
    # Drivers raise OperationalError for a dead server and ProgrammingError for a missing table;
    # to the user both mean the same: the database is not ready to be read.
    try:
        yield
    except (SQLAlchemyError, DatabaseUnavailableError) as exc:
        msg = f"Reading the database {db.describe(engine)} failed: {_first_line(exc)}"
        raise DatabaseNotReadyError(msg) from exc


def check_database(engine: Engine) -> None:
    """Raise :class:`DatabaseNotReadyError` unless the database is at this version's schema.

    A SQLite file that does not exist is reported without being opened, so looking at the
    dashboard never creates an empty database.
    """
    url = engine.url
    where = db.describe(engine)
    local = url.get_backend_name() == "sqlite" and url.database not in {None, "", ":memory:"}
    if local and not Path(str(url.database)).is_file():
        msg = (
            f"There is no database at {url.database} yet: run `volforecast db upgrade`, "
            "then `volforecast ingest --sample`."
        )
        raise DatabaseNotReadyError(msg)
    try:
        current = db.current_revision(engine)
    except DatabaseUnavailableError as exc:
        msg = f"{exc}. Start it, or point VOLFORECAST_DATABASE_URL at one that is up."
        raise DatabaseNotReadyError(msg) from exc
    head = db.head_revision()
    if current is None:
        msg = f"The database {where} has no volforecast tables yet: run `volforecast db upgrade`."
        raise DatabaseNotReadyError(msg)
    if current != head:
        msg = (
            f"The database {where} is at schema revision {current}; this dashboard needs "
            f"{head}: run `volforecast db upgrade`."
        )
        raise DatabaseNotReadyError(msg)


# ---------------------------------------------------------------- prices and realized volatility


def stored_tickers(engine: Engine) -> list[str]:
    """Every ticker with stored prices, sorted."""
    with _reading(engine):
        return [summary.ticker for summary in PriceRepository(engine).summary()]


def load_prices(engine: Engine, ticker: str) -> pd.DataFrame:
    """One ticker's stored prices in the raw layout, oldest first."""
    with _reading(engine):
        return PriceRepository(engine).load([ticker])


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


# ---------------------------------------------------------------- forecasts


@dataclass(frozen=True)
class ForecastSet:
    """Forecast paths of one ticker and where they came from."""

    paths: pd.DataFrame
    """Columns :data:`PATH_COLUMNS`; ``vol_pct`` is daily volatility in percent."""
    source: ForecastSource
    notes: tuple[str, ...] = field(default=())
    """Model types that gave no path, and why."""


def empty_paths() -> pd.DataFrame:
    """A frame of no forecast steps, in the :data:`PATH_COLUMNS` layout."""
    return pd.DataFrame({
        "model_type": pd.Series(dtype="object"),
        "model_version": pd.Series(dtype="object"),
        "origin_date": pd.Series(dtype="datetime64[ns]"),
        "step": pd.Series(dtype="int64"),
        "forecast_date": pd.Series(dtype="datetime64[ns]"),
        "vol_pct": pd.Series(dtype="float64"),
    })  # fmt: skip


def model_order(model_type: str) -> tuple[int, str]:
    """Sort key: GARCH, then LSTM, then the others by name."""
    first = {"GARCH": 0, "LSTM": 1}
    return first.get(model_type.upper(), 2), model_type.upper()


def production_model_types(models: Sequence[Mapping[str, Any]], ticker: str) -> list[str]:
    """Model types whose production version may serve ``ticker``.

    A per-ticker model serves its own ticker only; a pooled model (``ticker`` is None in the
    API's listing) is asked, and says 404 for a ticker it was not trained on.
    """
    types = {
        str(m["model_type"]).upper()
        for m in models
        if m.get("stage") == "production" and m.get("ticker") in {None, ticker}
    }
    return sorted(types, key=model_order)


def _path_from_answer(answer: Mapping[str, Any]) -> pd.DataFrame:
    steps = len(answer["forecasts"])
    return pd.DataFrame({
        "model_type": str(answer["model_type"]).upper(),
        "model_version": str(answer["model_version"]),
        "origin_date": pd.Timestamp(answer["origin_date"]),
        "step": np.arange(1, steps + 1, dtype="int64"),
        "forecast_date": pd.to_datetime(answer["forecast_dates"]),
        "vol_pct": np.asarray(answer["forecasts"], dtype="float64"),
    })  # fmt: skip


def api_forecasts(
    client: ApiClient, ticker: str, model_types: Sequence[str],
    horizon: int = MAX_HORIZON_DAYS,
) -> ForecastSet:  # fmt: skip
    """Each model type's forecast path of ``ticker`` from the API (``POST /predict``).

    A model type the API cannot forecast with (no production version serves the ticker, too
    little data) is left out and named in ``notes``.

    Raises
    ------
    ApiUnavailableError
        When the API does not answer.
    """
    frames, notes = [], []
    for model_type in model_types:
        try:
            answer = client.predict(ticker, model_type, horizon)
        except requests.HTTPError as exc:
            notes.append(f"{model_type}: {exc}")
            continue
        except requests.RequestException as exc:
            raise ApiUnavailableError(api_down_message(client.url)) from exc
        frames.append(_path_from_answer(answer))
    paths = pd.concat(frames, ignore_index=True) if frames else empty_paths()
    return ForecastSet(paths, "api", tuple(notes))


def stored_forecasts(engine: Engine, ticker: str, *, limit: int = 1_000) -> ForecastSet:
    """The newest stored path of each model type for ``ticker`` (``ml.volatility_predictions``).

    Newest means the latest origin and, for that origin, the highest model version.
    """
    with _reading(engine):
        page = PredictionRepository(engine).find(ticker, limit=limit)
    if not page.rows:
        return ForecastSet(empty_paths(), "database")
    rows = pd.DataFrame([vars(r) for r in page.rows])
    rows["version_number"] = pd.to_numeric(rows["model_version"], errors="coerce").fillna(-1)
    newest = (
        rows.sort_values(["origin_date", "version_number"])
        .groupby("model_type", sort=False)[["origin_date", "model_version"]]
        .last()
    )
    kept = rows.merge(newest.reset_index(), on=["model_type", "origin_date", "model_version"])
    paths = pd.DataFrame({
        "model_type": kept["model_type"].astype(str).str.upper(),
        "model_version": kept["model_version"].astype(str),
        "origin_date": pd.to_datetime(kept["origin_date"]),
        "step": kept["step"].astype("int64"),
        "forecast_date": pd.to_datetime(kept["forecast_date"]),
        "vol_pct": kept["predicted_volatility"].astype("float64"),
    })  # fmt: skip
    order = paths["model_type"].map(model_order)
    paths = paths.assign(_order=order).sort_values(["_order", "step"]).drop(columns="_order")
    return ForecastSet(paths.reset_index(drop=True), "database")


def normal_quantile(level: float) -> float:
    r"""The standard normal quantile :math:`z_\alpha` of ``level`` (1.645 at 0.95)."""
    return NormalDist().inv_cdf(level)


def var_column(level: float) -> str:
    """Name of the value-at-risk column of ``level``: ``var95_pct`` for 0.95."""
    return f"var{round(level * 100)}_pct"


def with_var(paths: pd.DataFrame, levels: Sequence[float] = VAR_LEVELS) -> pd.DataFrame:
    r"""``paths`` with the one-day normal value at risk of each step, in percent.

    Notes
    -----
    For a forecast daily volatility :math:`\sigma_{t+h}` (``vol_pct``) and confidence level
    :math:`\alpha`,

    .. math:: \mathrm{VaR}_\alpha(t+h) = z_\alpha \, \sigma_{t+h},

    the loss, as a percent log return, that day :math:`t+h` exceeds with probability
    :math:`1-\alpha` when returns are normal with mean zero. The mean is left out because a
    daily mean return is a few hundredths of a percent, far inside the forecast error of
    :math:`\sigma`, and no volforecast model forecasts it.
    """
    out = paths.copy()
    for level in levels:
        out[var_column(level)] = normal_quantile(level) * out["vol_pct"].astype("float64")
    return out


def forecast_table(paths: pd.DataFrame, levels: Sequence[float] = VAR_LEVELS) -> pd.DataFrame:
    """One row per step and forecast date, one column per model and figure (vol, VaR), in %."""
    if paths.empty:
        return pd.DataFrame(columns=["step", "date"])
    shaped = with_var(paths, levels)
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


# ---------------------------------------------------------------- the API: health, models, metrics


@dataclass(frozen=True)
class ApiStatus:
    """Whether the API answers, and what its ``/health`` says."""

    url: str
    up: bool
    detail: str
    degraded: bool = False


def api_status(client: ApiClient, timeout_s: float = 3.0) -> ApiStatus:
    """Ask ``GET /health`` once; a 503 still means the API answers (degraded)."""
    try:
        answer = client.session.get(f"{client.url}/health", timeout=timeout_s)
    except requests.RequestException as exc:
        return ApiStatus(client.url, up=False, detail=type(exc).__name__)
    try:
        health = answer.json()
    except ValueError:
        return ApiStatus(client.url, up=False, detail=f"HTTP {answer.status_code}, not the API")
    if not isinstance(health, dict) or "checks" not in health:
        return ApiStatus(client.url, up=False, detail=f"HTTP {answer.status_code}, not the API")
    failing = [f"{name}: {check.get('detail', '')}"
               for name, check in health["checks"].items() if not check.get("ok")]  # fmt: skip
    if failing:
        return ApiStatus(client.url, up=True, detail="; ".join(failing), degraded=True)
    return ApiStatus(client.url, up=True, detail=f"ok, {health.get('models_served', 0)} served")


def _get(client: ApiClient, path: str, **params: Any) -> requests.Response:
    try:
        answer = client.session.get(f"{client.url}{path}", params=params, timeout=client.timeout_s)
    except requests.RequestException as exc:
        raise ApiUnavailableError(api_down_message(client.url)) from exc
    if answer.status_code == 401:
        msg = f"The API at {client.url} wants a key: set {API_KEY_ENV} to the API's key."
        raise DashboardError(msg)
    if answer.status_code >= 400:
        try:
            detail = answer.json().get("detail", answer.text)
        except ValueError:
            detail = answer.text
        msg = f"The API at {client.url} answered {path} with {answer.status_code}: {detail}"
        raise DashboardError(msg)
    return answer


def api_models(client: ApiClient) -> list[dict[str, Any]]:
    """The registry as the API lists it (``GET /models``)."""
    listing: list[dict[str, Any]] = _get(client, "/models").json()
    return listing


def api_predictions(client: ApiClient, ticker: str, *, limit: int = 1_000) -> pd.DataFrame:
    """Stored forecast steps of ``ticker`` through ``GET /predictions/{ticker}``, newest first."""
    page = _get(client, f"/predictions/{quote(ticker, safe='')}", limit=limit).json()
    return pd.DataFrame(page["items"])


def registry_models(settings: Settings) -> list[dict[str, Any]]:
    """The registry read directly, in the layout of the API's ``GET /models``.

    For when the API is down. A local store that does not exist yet is reported rather than
    created, and a tracking server is asked once, without MLflow's minutes of retries.
    """
    # MLflow takes seconds to import: only a dashboard whose API is down pays for it.
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    from volforecast.registry.serving import list_versions  # noqa: PLC0415
    from volforecast.registry.tracking import check_server, connect, is_server  # noqa: PLC0415

    uri = settings.mlflow_tracking_uri
    if is_server(uri):
        try:
            check_server(uri, retries=0, timeout_s=3.0)
        except VolforecastError as exc:
            raise DashboardError(str(exc)) from exc
    elif uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        msg = f"There is no model registry at {uri} yet: run `volforecast train`."
        raise DashboardError(msg)
    try:
        versions = list_versions(connect(settings, check=False))
    except (MlflowException, OSError, VolforecastError) as exc:
        msg = f"The model registry at {uri} is not answering: {_first_line(exc)}"
        raise DashboardError(msg) from exc
    return [
        {
            "model_name": v.name,
            "ticker": v.tickers[0] if len(v.tickers) == 1 and not v.name.endswith("_pooled")
            else None,
            "tickers": len(v.tickers),
            "model_type": v.model_type,
            "version": v.version,
            "stage": v.alias if v.alias in {"production", "challenger"} else "none",
            "metrics": v.metrics,
            "converged": v.converged,
            "created_at": v.created_at,
        }
        for v in versions
    ]  # fmt: skip


def versions_frame(models: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per listed version: name, type, version, alias, what it serves, key metrics."""
    rows = []
    for m in models:
        metrics = m.get("metrics") or {}
        rows.append({
            "model_name": m["model_name"],
            "model_type": m["model_type"],
            "version": str(m["version"]),
            "alias": m["stage"],
            "serves": m["ticker"] or f"{m['tickers']} tickers",
            "converged": m.get("converged"),
            "created_at": pd.to_datetime(str(m["created_at"]), utc=True)
            if m.get("created_at") else pd.NaT,
            **{f"test {k}": v for k, v in sorted(metrics.items()) if k.startswith("qlike_")},
        })  # fmt: skip
    return pd.DataFrame(rows)


def registry_metrics(models: Sequence[Mapping[str, Any]], ticker: str) -> pd.DataFrame:
    """Test-window metrics of the production versions that may serve ``ticker``, by model type.

    A pooled model's figures are its means over the tickers it serves.
    """
    rows = [
        {"model_type": str(m["model_type"]).upper(), "version": str(m["version"]),
         "scope": "this ticker" if m.get("ticker") == ticker else "mean over its tickers",
         **(m.get("metrics") or {})}
        for m in models
        if m.get("stage") == "production" and m.get("ticker") in {None, ticker}
    ]  # fmt: skip
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    return frame.sort_values("model_type", key=lambda s: s.map(model_order)).reset_index(drop=True)


def promotion_log(engine: Engine) -> pd.DataFrame:
    """Every move of a registry alias, newest first."""
    # Imported here: the registry package imports MLflow, which takes seconds.
    from volforecast.registry.promotion_log import PromotionLog  # noqa: PLC0415

    with _reading(engine):
        events = PromotionLog(engine).events()
    columns = ["created_at", "registered_model", "seq", "alias", "action", "version",
               "previous_version", "reason", "actor", "metrics"]  # fmt: skip
    rows = [
        {**{c: getattr(e, c) for c in columns if c != "metrics"},
         "metrics": ", ".join(f"{k}={v:.4g}" for k, v in sorted(e.metrics.items()))}
        for e in events
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["created_at", "seq"], ascending=False).reset_index(drop=True)


def fetch_metrics(client: ApiClient) -> str:
    """The API's Prometheus text (``GET /metrics``)."""
    return _get(client, "/metrics").text


def request_counts(metrics_text: str) -> pd.DataFrame:
    """Requests answered, by method, route template and status."""
    rows = [
        {"method": s.labels.get("method", ""), "route": s.labels.get("route", ""),
         "status": s.labels.get("status", ""), "requests": int(s.value)}
        for family in text_string_to_metric_families(metrics_text)
        if family.name == REQUESTS_METRIC
        for s in family.samples
        if s.name == f"{REQUESTS_METRIC}_total"
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["method", "route", "status", "requests"])
    return frame.sort_values(["route", "method", "status"]).reset_index(drop=True)


def histogram_quantile(q: float, upper_bounds: Sequence[float],
                       cumulative: Sequence[float]) -> float:  # fmt: skip
    r"""The ``q`` quantile estimated from cumulative histogram buckets, as Prometheus does.

    Parameters
    ----------
    q : float
        Quantile in [0, 1].
    upper_bounds : sequence of float
        Bucket upper bounds ``le``, increasing, the last one ``inf``.
    cumulative : sequence of float
        Observations at or below each bound.

    Returns
    -------
    float
        The estimate, in the unit of the bounds; NaN with no observations. A quantile that
        falls in the ``+Inf`` bucket is the largest finite bound (nothing better is known).

    Notes
    -----
    With rank :math:`r = q N` and the first bucket :math:`i` whose count :math:`c_i \ge r`,
    the estimate interpolates linearly inside it,

    .. math:: \hat x_q = b_{i-1} + (b_i - b_{i-1}) \frac{r - c_{i-1}}{c_i - c_{i-1}},

    with :math:`b_{-1} = 0` and :math:`c_{-1} = 0`: Prometheus' ``histogram_quantile``, which
    assumes observations spread evenly within a bucket.
    """
    total = cumulative[-1] if len(cumulative) else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(upper_bounds, cumulative, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            share = (rank - lower_count) / (count - lower_count)
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def latency_quantiles(
    metrics_text: str, quantiles: Sequence[float] = LATENCY_QUANTILES
) -> pd.DataFrame:
    """Requests, mean and quantile latencies in milliseconds per method and route."""
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    sums: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != LATENCY_METRIC:
            continue
        for s in family.samples:
            key = (s.labels.get("method", ""), s.labels.get("route", ""))
            if s.name == f"{LATENCY_METRIC}_bucket":
                buckets.setdefault(key, []).append((float(s.labels["le"]), float(s.value)))
            elif s.name == f"{LATENCY_METRIC}_sum":
                sums[key] = float(s.value)
    names = [f"p{round(q * 100)}_ms" for q in quantiles]
    rows = []
    for (method, route), pairs in sorted(buckets.items(), key=lambda kv: kv[0][::-1]):
        pairs.sort()
        bounds, counts = [b for b, _ in pairs], [c for _, c in pairs]
        total = counts[-1]
        row: dict[str, Any] = {
            "method": method, "route": route, "requests": int(total),
            "mean_ms": 1000 * sums.get((method, route), math.nan) / total if total else math.nan,
        }  # fmt: skip
        for name, q in zip(names, quantiles, strict=True):
            row[name] = 1000 * histogram_quantile(q, bounds, counts)
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", "route", "requests", "mean_ms", *names])


# ---------------------------------------------------------------- accuracy and monitoring


def accuracy(engine: Engine, ticker: str, *, proxy: str | None = None) -> pd.DataFrame:
    """Rolling accuracy rows of ``ticker`` (``ml.forecast_accuracy``), oldest first.

    ``rmse_vol_pct`` and ``mae_vol_pct`` are daily volatility in percent; ``qlike`` is on
    variances.
    """
    with _reading(engine):
        frame = MonitoringRepository(engine).accuracy(ticker=ticker, proxy=proxy)
    if not frame.empty:
        frame["as_of_date"] = pd.to_datetime(frame["as_of_date"])
        frame["model_type"] = frame["model_type"].astype(str).str.upper()
    return frame


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


def _detail_text(detail: object) -> str:
    try:
        values = json.loads(str(detail)) if detail else {}
    except ValueError:
        return str(detail)
    if not isinstance(values, dict):
        return str(values)
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in sorted(values.items()))  # fmt: skip


def _checks_frame(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    out = frame.copy()
    out["detail"] = out["detail"].map(_detail_text)
    out["observed_on"] = pd.to_datetime(out["observed_on"]).dt.date
    return out


def alerts(engine: Engine, *, ticker: str | None = None, since: dt.date | None = None,
           limit: int = 500) -> pd.DataFrame:  # fmt: skip
    """Alert onsets (detector, ticker, statistic, threshold, date), newest first."""
    with _reading(engine):
        frame = MonitoringRepository(engine).alerts(ticker=ticker, since=since, limit=limit)
    if frame.empty:
        return pd.DataFrame(columns=list(ALERT_COLUMNS))
    return _checks_frame(frame).loc[:, list(ALERT_COLUMNS)]


def latest_checks(engine: Engine) -> pd.DataFrame:
    """Every detector's verdict on the last day the monitor ran for."""
    columns = ["observed_on", "ticker", "model_type", "detector", "statistic", "threshold",
               "fired", "ratio", "detail"]  # fmt: skip
    with _reading(engine):
        frame = MonitoringRepository(engine).latest_checks()
    if frame.empty:
        return pd.DataFrame(columns=columns)
    out = _checks_frame(frame)
    out["fired"] = out["fired"].astype(bool)
    threshold = out["threshold"].astype("float64")
    out["ratio"] = out["statistic"].astype("float64") / threshold.where(threshold != 0)
    return out.loc[:, columns]


def split_quality(checks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drift detectors' rows and data-quality rows of a checks or alerts frame."""
    quality = checks["detector"] == QUALITY_DETECTOR
    return checks[~quality].reset_index(drop=True), checks[quality].reset_index(drop=True)


def retrain_queue(engine: Engine) -> pd.DataFrame:
    """Every retraining request, newest first."""
    with _reading(engine):
        frame = MonitoringRepository(engine).retrain_queue()
    columns = ["ticker", "requested_on", "status", "reason", "created_at", "done_at"]
    return pd.DataFrame(columns=columns) if frame.empty else frame.loc[:, columns]


def quality_findings(report: QualityReport) -> pd.DataFrame:
    """One row per ticker and failed check of a quality-gate report (``ok`` rows when clean)."""
    rows = []
    for ticker, q in sorted(report.tickers.items()):
        base = {"ticker": ticker, "status": q.status, "received": q.received,
                "accepted": q.accepted}  # fmt: skip
        if not q.findings:
            rows.append({**base, "check": "", "rows": 0, "detail": ""})
        rows.extend(
            {**base, "check": f.check, "rows": f.rows,
             "detail": f"{f.detail} (e.g. {'; '.join(f.examples)})" if f.examples else f.detail}
            for f in q.findings
        )  # fmt: skip
    return pd.DataFrame(
        rows, columns=["ticker", "status", "received", "accepted", "check", "rows", "detail"]
    )
