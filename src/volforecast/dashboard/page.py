"""What every tab of the page shares: the sidebar's choices, the cached reads, the forecasts.

Above the tabs, a banner warns while the stored prices are stale, as judged by
:func:`volforecast.jobs.freshness.check_freshness` against the latest closed NYSE session,
as ``/health`` and ``volforecast predict`` judge it, so all three say the same.

The page shows a source that is missing as a message saying what to run, never a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import FunctionType
from typing import Any, TypeVar

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from volforecast.api.schemas import ModelInfo
from volforecast.dashboard import record, sources, tables
from volforecast.dashboard.sources import DashboardError, ForecastSet, api, registry, store
from volforecast.dashboard.sources.api import ApiStatus, DashboardConfig
from volforecast.data import db
from volforecast.jobs.freshness import Freshness, check_freshness
from volforecast.settings import Settings

HISTORY_CHOICES = (60, 120, 250, 500, 1000, 2500, 0)
"""Trading days in the chart; 0: all."""
DEFAULT_HISTORY_DAYS = 120

# How stale each read may be: prices and forecasts change once a day, health by the second.
# Database reads are keyed by the database URL, API reads by the DashboardConfig (URL, key):
# arguments with a leading underscore (an engine, the settings) are not hashed.
STATUS_TTL_S = 15
LISTING_TTL_S = 60
PRICES_TTL_S = 300
METRICS_TTL_S = 10

T = TypeVar("T")


def _name(function: FunctionType) -> str:
    return f"{function.__module__}.{function.__qualname__}"


@st.cache_resource(show_spinner=False, on_release=Engine.dispose)
def _engine(database_url: str, _settings: Settings) -> Engine:
    return db.create_db_engine(_settings)


@st.cache_data(ttl=STATUS_TTL_S, show_spinner=False)
def _database_problem(database_url: str, _engine: Engine) -> str | None:
    try:
        store.check_database(_engine)
    except DashboardError as exc:
        return str(exc)
    return None


# A read is told apart by its name: Streamlit hashes no function by itself.
@st.cache_data(ttl=LISTING_TTL_S, show_spinner=False, hash_funcs={FunctionType: _name})
def stored(database_url: str, _engine: Engine, read: Callable[..., T], *args: Any, **kw: Any) -> T:
    """``read(engine, *args, **kw)``, one of :mod:`.sources.store`'s reads, kept a minute."""
    return read(_engine, *args, **kw)


@st.cache_data(ttl=STATUS_TTL_S, show_spinner=False)
def _api_status(config: DashboardConfig) -> ApiStatus:
    return api.api_status(config.client())


@st.cache_data(ttl=LISTING_TTL_S, show_spinner=False)
def _api_models(config: DashboardConfig) -> list[ModelInfo]:
    return api.api_models(config.client())


@st.cache_data(ttl=LISTING_TTL_S, show_spinner="Asking the API for forecasts…")
def _api_forecasts(config: DashboardConfig, ticker: str, types: tuple[str, ...]) -> ForecastSet:
    return api.api_forecasts(config.client(), ticker, types)


@st.cache_data(ttl=LISTING_TTL_S, show_spinner="Reading the model registry…")
def _registry_models(tracking_uri: str, _settings: Settings) -> list[ModelInfo]:
    return registry.registry_models(_settings)


@st.cache_data(ttl=PRICES_TTL_S, show_spinner="Reading prices…")
def history(database_url: str, _engine: Engine, ticker: str, smoothing_days: int) -> pd.DataFrame:
    """:func:`~volforecast.dashboard.tables.volatility_history` of the stored prices."""
    prices = store.load_prices(_engine, ticker)
    return tables.volatility_history(prices, smoothing_days=smoothing_days)


@st.cache_data(ttl=LISTING_TTL_S, show_spinner="Reading the stored forecasts…")
def read_record(database_url: str, _engine: Engine, ticker: str) -> pd.DataFrame:
    """The stored 1- and 5-day forecasts."""
    return record.forecast_record(_engine, ticker)


@dataclass(frozen=True)
class Context:
    """The sources of one run of the script and what the sidebar chose."""

    settings: Settings
    config: DashboardConfig
    engine: Engine
    database_problem: str | None
    api: ApiStatus
    tickers: list[str]
    ticker: str | None
    horizon: int
    history_days: int
    smoothing_days: int

    @property
    def url(self) -> str:
        """The database URL, the key of every cached database read."""
        return self.settings.database_url

    def read(self, read: Callable[..., T], *args: Any, **kw: Any) -> T | None:
        """:func:`stored` of ``read`` in this database, or None after a warning when it fails."""
        return attempt(lambda: stored(self.url, self.engine, read, *args, **kw))

    @property
    def database_ok(self) -> bool:
        """Whether the database is up and migrated."""
        return self.database_problem is None


@dataclass(frozen=True)
class Forecasts:
    """The paths the forecast tab shows, and what to tell the user about where they are from."""

    paths: pd.DataFrame
    source: str
    warnings: tuple[str, ...] = ()
    infos: tuple[str, ...] = ()


def attempt(read: Callable[[], T]) -> T | None:
    """``read()``, or None after showing its :class:`DashboardError` as a warning."""
    try:
        return read()
    except DashboardError as exc:
        st.warning(str(exc))
        return None


def number_columns(frame: pd.DataFrame, fmt: str = "%.3f") -> dict[str, Any]:
    """Streamlit's column settings that show every float column of ``frame`` with ``fmt``."""
    return {
        c: st.column_config.NumberColumn(format=fmt)
        for c in frame.columns
        if pd.api.types.is_float_dtype(frame[c])
    }


def sidebar(settings: Settings, config: DashboardConfig) -> Context:
    """Draw the sidebar: the ticker, horizon and history chosen, and the sources' state."""
    st.sidebar.title("volforecast")
    if st.sidebar.button("Refresh", help="Read every source again now"):
        st.cache_data.clear()
    engine = _engine(settings.database_url, settings)
    problem = _database_problem(settings.database_url, engine)
    tickers: list[str] = []
    if problem is None:
        try:
            tickers = stored(settings.database_url, engine, store.stored_tickers)
        except DashboardError as exc:
            problem = str(exc)
    # Bound to ?ticker=<symbol>: a link opens the dashboard on that ticker.
    asked = st.query_params.get("ticker")
    ticker = (st.sidebar.selectbox("Ticker", tickers, key="ticker", bind="query-params")
              if tickers else None)  # fmt: skip
    if asked and tickers and asked not in tickers:
        st.sidebar.warning(f"No prices stored for {asked}; showing {ticker}.")
    horizon = st.sidebar.slider("Forecast horizon (trading days)", 1, api.MAX_HORIZON_DAYS,
                                api.MAX_HORIZON_DAYS, key="horizon")  # fmt: skip
    history_days = st.sidebar.select_slider(
        "History shown (trading days)", HISTORY_CHOICES, value=DEFAULT_HISTORY_DAYS,
        key="history_days", format_func=lambda n: "all" if n == 0 else str(n),
    )  # fmt: skip
    smoothing_days = st.sidebar.slider(
        "Realized-vol smoothing (days)", 1, 22, 5, key="smoothing_days",
        help="Trailing mean of the realized variance before its square root.",
    )  # fmt: skip
    status = _api_status(config)
    st.sidebar.divider()
    st.sidebar.caption(f"Database: `{db.describe(engine)}`" + (" (not ready)" if problem else ""))
    state = "not answering" if not status.up else "degraded" if status.degraded else "up"
    st.sidebar.caption(f"API: `{config.api_url}`: {state}")
    return Context(settings, config, engine, problem, status, tickers, ticker, int(horizon),
                   int(history_days), int(smoothing_days))  # fmt: skip


def load_forecasts(ctx: Context, ticker: str) -> Forecasts:
    """The API's forecasts of ``ticker``; the stored ones when it is down or has none."""
    warnings: list[str] = []
    infos: list[str] = []
    try:
        if not ctx.api.up:
            raise sources.ApiUnavailableError(api.api_down_message(ctx.config.api_url))
        types = tuple(api.production_model_types(_api_models(ctx.config), ticker))
        if types:
            result = _api_forecasts(ctx.config, ticker, types)
            infos.extend(f"No forecast from {note}" for note in result.notes)
            if not result.paths.empty:
                return Forecasts(result.paths, "the prediction API", (), tuple(infos))
        else:
            infos.append(
                f"No production model serves {ticker}: train one with "
                f"`volforecast train --tickers {ticker}`."
            )
    except DashboardError as exc:
        warnings.append(f"{exc} Showing the forecasts stored in the database instead.")
    # Not attempt(): this runs before the tabs exist, so its messages travel with the result.
    try:
        paths = stored(ctx.url, ctx.engine, store.stored_forecasts, ticker).paths
    except DashboardError as exc:
        warnings.append(str(exc))
        paths = sources.empty_paths()
    if paths.empty:
        infos.append(
            f"No forecasts stored for {ticker} yet: run `volforecast train` and then "
            "`volforecast predict --all`."
        )
    return Forecasts(paths, "the database (stored paths)", tuple(warnings), tuple(infos))


def models_listing(ctx: Context) -> tuple[list[ModelInfo], str]:
    """The registry's versions through the API (cached), else read directly; and where from."""
    if ctx.api.up:
        listing = attempt(lambda: _api_models(ctx.config))
        if listing is not None:
            return listing, "the prediction API (GET /models)"
    listing = attempt(lambda: _registry_models(ctx.settings.mlflow_tracking_uri, ctx.settings))
    return listing or [], f"the MLflow registry at {ctx.settings.mlflow_tracking_uri_safe}"


def chosen_ticker(ctx: Context, forecasts: Forecasts | None) -> tuple[str, Forecasts] | None:
    """The chosen ticker and its forecasts, or None once the page says why there are none."""
    if not ctx.database_ok:
        st.warning(str(ctx.database_problem))
        return None
    if ctx.ticker is None or forecasts is None:
        st.info(store.NO_PRICES)
        return None
    return ctx.ticker, forecasts


@st.cache_data(ttl=LISTING_TTL_S, show_spinner=False)  # prices arrive once a day
def _judged(database_url: str, _engine: Engine) -> Freshness | None:
    try:
        return check_freshness(_engine)
    except Exception:  # noqa: BLE001  (the sidebar reports a database that does not answer)
        return None


def banner_text(judged: Freshness) -> str | None:
    """The banner's sentence for stale prices; None when fresh, or when none is stored."""
    if judged.fresh or judged.last_close is None:
        return None
    return (
        f"Prices are stale since {judged.stale_since}: the last stored close is "
        f"{judged.last_close}, the latest NYSE session is "
        f"{judged.session}. Forecasts here start from that close. Load newer prices with "
        "`volforecast ingest --configured` (the `ml_ingest_prices` DAG does it daily)."
    )


def freshness_banner(ctx: Context) -> None:
    """A warning across the top of the page while the stored prices are stale."""
    judged = _judged(ctx.url, ctx.engine)
    text = None if judged is None else banner_text(judged)
    if text is not None:
        st.warning(text, icon="⏰")
