"""The volforecast dashboard: ``streamlit run src/volforecast/dashboard/app.py`` (port 8501).

Four tabs: the volatility forecast of a ticker, the comparison of its models, the model
registry, and monitoring. Reads go through the prediction API
(``VOLFORECAST_DASHBOARD__API_URL``, default ``http://127.0.0.1:8000``; key in
``VOLFORECAST_API__API_KEY``) and read-only queries of the database the settings name. A source
that is missing gives a message saying what to run, never a stack trace; when the API is down,
the forecast tab shows the paths stored in the database instead.

Settings are read when the script runs, never when it is imported.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import pandas as pd
import streamlit as st
from pydantic import ValidationError
from sqlalchemy import Engine

from volforecast.dashboard import charts, data, record
from volforecast.dashboard.data import ApiStatus, DashboardConfig, DashboardError, ForecastSet
from volforecast.dashboard.freshness import show_freshness_banner
from volforecast.data import db
from volforecast.settings import Settings, get_settings

TABS = ("Volatility Forecast", "Model comparison", "Model registry", "Monitoring")
# Streamlit's "magic" draws every bare string literal of this script, so the constants and
# fields here are documented with comments rather than docstrings.
HISTORY_CHOICES = (60, 120, 250, 500, 1000, 2500, 0)  # trading days in the chart; 0: all
DEFAULT_HISTORY_DAYS = 120
RECORD_DEFAULT_DAYS = 365  # calendar days of the record shown at first
AB_ACCURACY_COLUMNS = ["horizon", "proxy", "as_of_date", "n_forecasts", "rmse_vol_pct",
                       "mae_vol_pct", "qlike"]  # fmt: skip
METRICS = {"rmse_vol_pct": "RMSE (daily vol %)", "mae_vol_pct": "MAE (daily vol %)",
           "qlike": "QLIKE"}  # fmt: skip

# How stale each read may be: prices and forecasts change once a day, health by the second.
STATUS_TTL_S = 15
LISTING_TTL_S = 60
PRICES_TTL_S = 300
METRICS_TTL_S = 10

T = TypeVar("T")

log = logging.getLogger("volforecast.dashboard")


# ---------------------------------------------------------------- cached reads


def _dispose(engine: Engine) -> None:
    engine.dispose()


@st.cache_resource(show_spinner=False, on_release=_dispose)
def _engine(database_url: str, _settings: Settings) -> Engine:
    # Keyed by the URL alone: the settings object carries it and is not hashable.
    return db.create_db_engine(_settings)


@st.cache_data(ttl=STATUS_TTL_S, show_spinner=False)
def _database_problem(database_url: str, _engine: Engine) -> str | None:
    try:
        data.check_database(_engine)
    except DashboardError as exc:
        return str(exc)
    return None


@st.cache_data(ttl=LISTING_TTL_S, show_spinner=False)
def _tickers(database_url: str, _engine: Engine) -> list[str]:
    return data.stored_tickers(_engine)


@st.cache_data(ttl=PRICES_TTL_S, show_spinner="Reading prices…")
def _history(database_url: str, _engine: Engine, ticker: str, smoothing_days: int) -> pd.DataFrame:
    return data.volatility_history(data.load_prices(_engine, ticker), smoothing_days=smoothing_days)


@st.cache_data(ttl=STATUS_TTL_S, show_spinner=False)
def _api_status(api_url: str, api_key: str | None) -> ApiStatus:
    return data.api_status(DashboardConfig(api_url, api_key).client())


@st.cache_data(ttl=LISTING_TTL_S, show_spinner=False)
def _api_models(api_url: str, api_key: str | None) -> list[dict[str, Any]]:
    return data.api_models(DashboardConfig(api_url, api_key).client())


@st.cache_data(ttl=LISTING_TTL_S, show_spinner="Asking the API for forecasts…")
def _api_forecasts(api_url: str, api_key: str | None, ticker: str,
                   model_types: tuple[str, ...]) -> ForecastSet:  # fmt: skip
    client = DashboardConfig(api_url, api_key).client()
    return data.api_forecasts(client, ticker, model_types)


@st.cache_data(ttl=LISTING_TTL_S, show_spinner=False)
def _api_predictions(api_url: str, api_key: str | None, ticker: str) -> pd.DataFrame:
    return data.api_predictions(DashboardConfig(api_url, api_key).client(), ticker, limit=300)


@st.cache_data(ttl=METRICS_TTL_S, show_spinner=False)
def _metrics_text(api_url: str, api_key: str | None) -> str:
    return data.fetch_metrics(DashboardConfig(api_url, api_key).client())


@st.cache_data(ttl=LISTING_TTL_S, show_spinner="Reading the model registry…")
def _registry_models(tracking_uri: str, _settings: Settings) -> list[dict[str, Any]]:
    return data.registry_models(_settings)


@st.cache_data(ttl=LISTING_TTL_S, show_spinner=False)
def _stored_forecasts(database_url: str, _engine: Engine, ticker: str) -> ForecastSet:
    return data.stored_forecasts(_engine, ticker)


@st.cache_data(ttl=LISTING_TTL_S, show_spinner="Reading the stored forecasts…")
def _record(database_url: str, _engine: Engine, ticker: str) -> pd.DataFrame:
    return record.forecast_record(_engine, ticker)


@st.cache_data(ttl=LISTING_TTL_S, show_spinner="Reading the pooled model's per-ticker metrics…")
def _pooled_metrics(tracking_uri: str, _settings: Settings, name: str, version: str,
                    ticker: str) -> dict[str, float] | None:  # fmt: skip
    return record.pooled_ticker_metrics(_settings, name, version, ticker)


@st.cache_data(ttl=LISTING_TTL_S, show_spinner=False)
def _promotion_log(database_url: str, _engine: Engine) -> pd.DataFrame:
    return data.promotion_log(_engine)


@st.cache_data(ttl=LISTING_TTL_S, show_spinner=False)
def _accuracy(database_url: str, _engine: Engine, ticker: str) -> pd.DataFrame:
    return data.accuracy(_engine, ticker)


@st.cache_data(ttl=LISTING_TTL_S, show_spinner=False)
def _alerts(database_url: str, _engine: Engine, ticker: str | None) -> pd.DataFrame:
    return data.alerts(_engine, ticker=ticker)


@st.cache_data(ttl=LISTING_TTL_S, show_spinner=False)
def _latest_checks(database_url: str, _engine: Engine) -> pd.DataFrame:
    return data.latest_checks(_engine)


@st.cache_data(ttl=LISTING_TTL_S, show_spinner=False)
def _retrain_queue(database_url: str, _engine: Engine) -> pd.DataFrame:
    return data.retrain_queue(_engine)


# ---------------------------------------------------------------- what every tab shares


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
    models: tuple[dict[str, Any], ...] = ()  # the API's model listing, when it answered


@contextmanager
def _guarded(tab: str) -> Iterator[None]:
    """Show an unexpected failure as an error in its own tab; the other tabs still draw."""
    try:
        yield
    except Exception as exc:  # any failure: its traceback goes to the log, not to the page
        log.exception("The %s tab failed", tab)
        st.error(f"The {tab} tab failed: {type(exc).__name__}: {exc}. The server log has "
                 "the details.")  # fmt: skip


def _attempt(read: Callable[[], T]) -> T | None:
    """``read()``, or None after showing its :class:`DashboardError` as a warning."""
    try:
        return read()
    except DashboardError as exc:
        st.warning(str(exc))
        return None


def _sidebar(settings: Settings, config: DashboardConfig) -> Context:
    st.sidebar.title("volforecast")
    if st.sidebar.button("Refresh", help="Read every source again now"):
        st.cache_data.clear()
    engine = _engine(settings.database_url, settings)
    problem = _database_problem(settings.database_url, engine)
    tickers: list[str] = []
    if problem is None:
        try:
            tickers = _tickers(settings.database_url, engine)
        except DashboardError as exc:
            problem = str(exc)
    # Bound to ?ticker=<symbol>: a link opens the dashboard on that ticker.
    asked = st.query_params.get("ticker")
    ticker = (st.sidebar.selectbox("Ticker", tickers, key="ticker", bind="query-params")
              if tickers else None)  # fmt: skip
    if asked and tickers and asked not in tickers:
        st.sidebar.warning(f"No prices stored for {asked}; showing {ticker}.")
    horizon = st.sidebar.slider("Forecast horizon (trading days)", 1, data.MAX_HORIZON_DAYS,
                                data.MAX_HORIZON_DAYS, key="horizon")  # fmt: skip
    history_days = st.sidebar.select_slider(
        "History shown (trading days)", HISTORY_CHOICES, value=DEFAULT_HISTORY_DAYS,
        key="history_days", format_func=lambda n: "all" if n == 0 else str(n),
    )  # fmt: skip
    smoothing_days = st.sidebar.slider(
        "Realized-vol smoothing (days)", 1, 22, 5, key="smoothing_days",
        help="Trailing mean of the realized variance before its square root.",
    )  # fmt: skip
    api = _api_status(config.api_url, config.api_key)
    st.sidebar.divider()
    st.sidebar.caption(f"Database: `{db.describe(engine)}`" + (" (not ready)" if problem else ""))
    state = "up" if api.up and not api.degraded else "degraded" if api.up else "not answering"
    st.sidebar.caption(f"API: `{config.api_url}`: {state}")
    return Context(settings, config, engine, problem, api, tickers, ticker, int(horizon),
                   int(history_days), int(smoothing_days))  # fmt: skip


def _forecasts(ctx: Context, ticker: str) -> Forecasts:
    """The API's forecasts of ``ticker``; the stored ones when it is down or has none."""
    warnings: list[str] = []
    infos: list[str] = []
    models: list[dict[str, Any]] = []
    if ctx.api.up:
        try:
            models = _api_models(ctx.config.api_url, ctx.config.api_key)
            types = tuple(data.production_model_types(models, ticker))
            if types:
                result = _api_forecasts(ctx.config.api_url, ctx.config.api_key, ticker, types)
                infos.extend(f"No forecast from {note}" for note in result.notes)
                if not result.paths.empty:
                    return Forecasts(result.paths, "the prediction API", (), tuple(infos),
                                     tuple(models))  # fmt: skip
            else:
                infos.append(
                    f"No production model serves {ticker}: train one with "
                    f"`volforecast train --tickers {ticker}`."
                )
        except DashboardError as exc:
            warnings.append(f"{exc} Showing the forecasts stored in the database instead.")
    else:
        warnings.append(
            f"{data.api_down_message(ctx.config.api_url)} Showing the forecasts stored in the "
            "database instead."
        )
    # Not _attempt: this runs before the tabs exist, so its messages travel with the result.
    try:
        paths = _stored_forecasts(ctx.url, ctx.engine, ticker).paths
    except DashboardError as exc:
        warnings.append(str(exc))
        paths = data.empty_paths()
    if paths.empty:
        infos.append(
            f"No forecasts stored for {ticker} yet: run `volforecast train` and then "
            "`volforecast predict --all`."
        )
    return Forecasts(paths, "the database (stored paths)", tuple(warnings), tuple(infos),
                     tuple(models))  # fmt: skip


def _models_listing(ctx: Context, known: tuple[dict[str, Any], ...] = ()) -> tuple[
    list[dict[str, Any]], str
]:  # fmt: skip
    """The registry's versions through the API, else read directly; and where from."""
    if known:
        return list(known), "the prediction API (GET /models)"
    if ctx.api.up:
        listing = _attempt(lambda: _api_models(ctx.config.api_url, ctx.config.api_key))
        if listing is not None:
            return listing, "the prediction API (GET /models)"
    listing = _attempt(lambda: _registry_models(ctx.settings.mlflow_tracking_uri, ctx.settings))
    return listing or [], f"the MLflow registry at {ctx.settings.mlflow_tracking_uri_safe}"


def _number_columns(frame: pd.DataFrame, fmt: str = "%.3f") -> dict[str, Any]:
    return {
        c: st.column_config.NumberColumn(format=fmt)
        for c in frame.columns
        if pd.api.types.is_float_dtype(frame[c])
    }


# ---------------------------------------------------------------- the tabs


def _chosen(ctx: Context, forecasts: Forecasts | None) -> tuple[str, Forecasts] | None:
    """The chosen ticker and its forecasts, or None once the page says why there are none."""
    if not ctx.database_ok:
        st.warning(str(ctx.database_problem))
        return None
    if ctx.ticker is None or forecasts is None:
        st.info(data.NO_PRICES)
        return None
    return ctx.ticker, forecasts


def forecast_tab(ctx: Context, forecasts: Forecasts | None) -> None:
    """Realized volatility, each production model's path and VaR band, and the table."""
    chosen = _chosen(ctx, forecasts)
    if chosen is None:
        return
    ticker, forecasts = chosen
    for message in forecasts.warnings:
        st.warning(message)
    history = _attempt(lambda: _history(ctx.url, ctx.engine, ticker, ctx.smoothing_days))
    if history is None:
        return
    shown = history if ctx.history_days == 0 else history.tail(ctx.history_days)
    paths = forecasts.paths[forecasts.paths["step"] <= ctx.horizon]

    st.subheader(f"{ticker}: daily volatility, realized and forecast")
    cells = st.columns(2 + max(paths["model_type"].nunique(), 1))
    if not history.empty:
        last = history.iloc[-1]
        cells[0].metric("Last close", f"{pd.Timestamp(last['date']):%Y-%m-%d}")
        cells[1].metric("Realized vol (smoothed)", f"{last['rv_vol_smooth_pct']:.2f} %")
    next_day = data.with_var(paths[paths["step"] == 1])
    for cell, (_, row) in zip(cells[2:], next_day.iterrows(), strict=False):
        cell.metric(
            f"{row['model_type']} next day", f"{row['vol_pct']:.2f} %",
            help=f"VaR 99 %: {row['var99_pct']:.2f} %, model v{row['model_version']}",
        )  # fmt: skip
    figure = charts.volatility_figure(shown, paths, smoothing_days=ctx.smoothing_days)
    st.plotly_chart(figure, key="forecast_chart")
    st.caption(
        "Bars: absolute daily log returns. Black: realized volatility, the square root of the "
        "range-based realized variance. Bands: one-day normal value at risk between 95 % and "
        f"99 % (z × forecast vol). Forecasts from {forecasts.source}."
    )
    for message in forecasts.infos:
        st.info(message)
    _record_section(ctx, ticker, history)
    if paths.empty:
        return
    st.subheader("Forecasts (daily %)")
    table = data.forecast_table(paths)
    st.dataframe(table, hide_index=True, column_config=_number_columns(table), key="forecast_table")
    if ctx.api.up:
        with st.expander(f"Forecasts of {ticker} stored so far (GET /predictions)"):
            stored = _attempt(lambda: _api_predictions(ctx.config.api_url, ctx.config.api_key,
                                                       ticker))  # fmt: skip
            if stored is not None:
                st.dataframe(stored, hide_index=True)


def _record_range(stored: pd.DataFrame) -> tuple[dt.date, dt.date] | None:
    """The forecast dates the user chose, between the first and the last stored one."""
    bounds = record.date_bounds(stored)
    if bounds is None:
        return None
    first, last = bounds
    default = (max(first, last - dt.timedelta(days=RECORD_DEFAULT_DAYS)), last)
    chosen = st.date_input("Forecast dates", value=default, min_value=first, max_value=last,
                           key="record_range")  # fmt: skip
    # While the user picks, the widget holds the first day alone.
    picked = tuple(chosen) if isinstance(chosen, tuple | list) else (chosen,)
    start = picked[0] if picked and picked[0] else default[0]
    end = picked[1] if len(picked) > 1 and picked[1] else last
    return start, end


def _record_section(ctx: Context, ticker: str, history: pd.DataFrame) -> None:
    """The stored 1- and 5-day forecasts against the realized volatility of their dates."""
    st.subheader(f"{ticker}: the record, stored forecasts against realized volatility")
    stored = _attempt(lambda: _record(ctx.url, ctx.engine, ticker))
    if stored is None:
        return
    if stored.empty:
        st.info(f"No forecasts of {ticker} stored yet: `volforecast predict --all` stores one "
                "each day (`--as-of DATE` fills past days).")  # fmt: skip
        return
    left, right = st.columns([3, 1])
    with left:
        chosen = _record_range(stored)
    annualised = right.toggle("Annualised (× √252)", key="annualised")
    if chosen is None:
        return
    start, end = (pd.Timestamp(d) for d in chosen)
    shown = stored[stored["forecast_date"].between(start, end)]
    realized = record.realized_record(history)
    realized = realized[realized["date"].between(start, end)]
    st.plotly_chart(charts.record_figure(shown, realized, annualised=annualised),
                    key="record_chart")  # fmt: skip
    st.caption(
        "Each point is a forecast drawn on the day it was for, made 1 or 5 trading days "
        "before; black: realized volatility of that day, the root of its range-based "
        "realized variance (the proxy the monitor scores against)."
    )


def comparison_tab(ctx: Context, forecasts: Forecasts | None) -> None:
    """Accuracy over time, registry test metrics, and an A/B view of two model types."""
    chosen = _chosen(ctx, forecasts)
    if chosen is None:
        return
    ticker, forecasts = chosen
    accuracy = _attempt(lambda: _accuracy(ctx.url, ctx.engine, ticker))
    accuracy = pd.DataFrame() if accuracy is None else accuracy

    st.subheader(f"Accuracy of the stored forecasts of {ticker}, over time")
    if accuracy.empty:
        st.info(
            f"No forecast accuracy stored for {ticker} yet: the monitoring job scores stored "
            "forecasts against realized volatility once their dates have passed "
            "(`volforecast monitor run --all`)."
        )
    else:
        left, middle, right = st.columns(3)
        horizon = left.selectbox("Horizon (days)", sorted(accuracy["horizon"].unique()),
                                 key="acc_horizon")  # fmt: skip
        proxy = middle.selectbox("Realized proxy", sorted(accuracy["proxy"].unique()),
                                 key="acc_proxy")  # fmt: skip
        metric = right.selectbox("Metric", list(METRICS), format_func=METRICS.__getitem__,
                                 key="acc_metric")  # fmt: skip
        chosen = accuracy[(accuracy["horizon"] == horizon) & (accuracy["proxy"] == proxy)]
        st.plotly_chart(charts.accuracy_figure(chosen, metric, title=METRICS[metric]),
                        key="accuracy_chart")  # fmt: skip

    models, source = _models_listing(ctx, forecasts.models)
    metrics = _own_metrics(ctx, models, ticker)
    st.subheader("Test-window metrics of the production versions")
    if metrics.empty:
        st.info(f"No production model serves {ticker} in {source}.")
    else:
        st.dataframe(metrics, hide_index=True, column_config=_number_columns(metrics, "%.4f"))
        st.caption(f"From {source}, as logged at training; a pooled model's figures for "
                   f"{ticker} alone from its run's `{record.METRICS_BY_TICKER}`.")  # fmt: skip

    st.subheader("A/B: two model types side by side")
    available = sorted(
        set(forecasts.paths["model_type"])
        | set(accuracy.get("model_type", pd.Series(dtype=str)))
        | set(metrics.get("model_type", pd.Series(dtype=str))),
        key=data.model_order,
    )
    if len(available) < 2:
        st.info(
            f"An A/B view needs two model types for {ticker}; there is "
            f"{available[0] if available else 'none'}. Train another, e.g. "
            "`volforecast train --models garch,lstm`."
        )
        return
    pick_a, pick_b, pick_step = st.columns(3)
    a = pick_a.selectbox("Model A", available, index=0, key="ab_a")
    b = pick_b.selectbox("Model B", available, index=1, key="ab_b")
    step = pick_step.radio("Forecast step (days)", record.RECORD_STEPS, horizontal=True,
                           key="ab_step")  # fmt: skip
    _ab_record(ctx, ticker, a, b, int(step))
    latest = data.latest_accuracy(accuracy)
    if not latest.empty:
        mine = latest.loc[latest["model_type"].isin([a, b]), ["model_type", *AB_ACCURACY_COLUMNS]]
        mine = mine.assign(as_of_date=mine["as_of_date"].dt.date)
        st.dataframe(mine, hide_index=True, column_config=_number_columns(mine, "%.4f"))
    if a != b and not accuracy.empty:
        rows = [data.ab_summary(accuracy, a, b, m).assign(metric=m) for m in METRICS]
        summary = pd.concat(rows, ignore_index=True)
        st.dataframe(summary, hide_index=True, column_config=_number_columns(summary, "%.4f"))
        st.caption("`b vs a %`: B's latest error relative to A's; negative means B is better.")


def _ab_record(ctx: Context, ticker: str, a: str, b: str, step: int) -> None:
    """A and B against realized volatility on one y axis, and the Diebold–Mariano test."""
    stored = _attempt(lambda: _record(ctx.url, ctx.engine, ticker))
    history = _attempt(lambda: _history(ctx.url, ctx.engine, ticker, ctx.smoothing_days))
    if stored is None or history is None:
        return
    if stored.empty:
        st.info(f"No forecasts of {ticker} stored yet to set A against B.")
        return
    first = stored["forecast_date"].min()
    realized = record.realized_record(history)
    realized = realized[realized["date"] >= first]
    annualised = bool(st.session_state.get("annualised", False))
    st.plotly_chart(charts.ab_figure(stored, realized, a, b, step=step, annualised=annualised),
                    key="ab_chart")  # fmt: skip
    test = record.dm_comparison(stored, realized, a, b, step) if a != b else None
    if test is None:
        st.info(f"The Diebold–Mariano test needs {record.DM_MIN_DAYS} days that both {a} and "
                f"{b} forecast {step} day(s) ahead and that have happened.")  # fmt: skip
        return
    cells = st.columns(4)
    cells[0].metric("Diebold–Mariano p-value", f"{test.pvalue:.3g}")
    cells[1].metric("DM statistic", f"{test.statistic:.2f}",
                    help="Negative: A's loss is the smaller.")  # fmt: skip
    cells[2].metric(f"Mean QLIKE, A ({a})", f"{test.mean_loss_a:.4f}")
    cells[3].metric(f"Mean QLIKE, B ({b})", f"{test.mean_loss_b:.4f}")
    st.caption(f"On the {test.n_days} days both forecast {step} day(s) ahead; QLIKE against "
               "the range-based realized variance. A p-value below 0.05: the difference is "
               "unlikely to be chance.")  # fmt: skip


def _own_metrics(ctx: Context, models: list[dict[str, Any]], ticker: str) -> pd.DataFrame:
    """Test metrics of the production versions for ``ticker``: a pooled model's own figures."""
    metrics = data.registry_metrics(models, ticker)
    pooled = [m for m in models if m.get("stage") == "production" and m.get("ticker") is None]
    for model in pooled:
        name, version = str(model["model_name"]), str(model["version"])
        own = _attempt(partial(_pooled_metrics, ctx.settings.mlflow_tracking_uri, ctx.settings,
                               name, version, ticker))  # fmt: skip
        if not own:
            continue
        at = metrics.index[(metrics["model_type"] == str(model["model_type"]).upper())
                           & (metrics["version"] == str(model["version"]))]  # fmt: skip
        for key, value in own.items():
            metrics.loc[at, key] = value
        metrics.loc[at, "scope"] = "this ticker (pooled model's own)"
    return metrics


def registry_tab(ctx: Context, forecasts: Forecasts | None) -> None:
    """Registered versions with their aliases, and the promotion log."""
    models, source = _models_listing(ctx, forecasts.models if forecasts else ())
    st.subheader("Registered versions")
    if not ctx.api.up:
        st.warning(
            f"{data.api_down_message(ctx.config.api_url)} The versions below are read from the "
            "registry directly."
        )
    if models:
        versions = data.versions_frame(models)
        ui = record.mlflow_ui_url(ctx.settings)
        pairs = zip(versions["model_name"], versions["version"], strict=True)
        versions.insert(0, "mlflow", [record.registry_link(ui, n, v) for n, v in pairs])
        columns = _number_columns(versions, "%.4f") | {
            "mlflow": st.column_config.LinkColumn("MLflow", display_text="open ↗",
                                                  help=f"The version in the MLflow UI at {ui}")
        }  # fmt: skip
        st.dataframe(versions, hide_index=True, column_config=columns, key="versions_table")
        st.caption(f"From {source}. `alias`: production serves; challenger waits to beat it.")
    else:
        st.info("No registered model yet: run `volforecast train`.")
    st.subheader("Promotion log")
    if not ctx.database_ok:
        st.warning(str(ctx.database_problem))
        return
    log = _attempt(lambda: _promotion_log(ctx.url, ctx.engine))
    if log is None:
        return
    if log.empty:
        st.info("No alias has moved yet: `volforecast train` promotes what beats production.")
        return
    names = ["all", *sorted(log["registered_model"].unique())]
    name = st.selectbox("Registered model", names, key="log_model")
    shown = log if name == "all" else log[log["registered_model"] == name]
    st.dataframe(shown, hide_index=True)


def monitoring_tab(ctx: Context) -> None:
    """Alerts, drift statistics, data quality, API latency and the retraining queue."""
    if not ctx.database_ok:
        st.warning(str(ctx.database_problem))
    else:
        _alerts_section(ctx)
    _latency_section(ctx)


def _alerts_section(ctx: Context) -> None:
    st.subheader("Alerts")
    only = ctx.ticker is not None and st.checkbox(f"Only {ctx.ticker}", key="alerts_only")
    alerts = _attempt(lambda: _alerts(ctx.url, ctx.engine, ctx.ticker if only else None))
    quality_alerts = pd.DataFrame()
    if alerts is not None:
        drift_alerts, quality_alerts = data.split_quality(alerts)
        if alerts.empty:
            st.info("No alerts: the monitor (`volforecast monitor run --all`) raised none yet.")
        else:
            st.dataframe(drift_alerts, hide_index=True, key="alerts_table",
                         column_config=_number_columns(drift_alerts, "%.4g"))  # fmt: skip

    st.subheader("Drift statistics (latest checks)")
    checks = _attempt(lambda: _latest_checks(ctx.url, ctx.engine))
    quality_checks = pd.DataFrame()
    if checks is not None:
        drift, quality_checks = data.split_quality(checks)
        if drift.empty:
            st.info("No drift checks stored yet: run `volforecast monitor run --all`.")
        else:
            st.plotly_chart(charts.drift_figure(drift), key="drift_chart")
            st.dataframe(drift, hide_index=True, column_config=_number_columns(drift, "%.4g"))

    st.subheader("Data quality")
    # The latest day's verdicts first, then the alerts of earlier days.
    found = [
        frame.assign(kind=kind).loc[:, ["kind", *data.ALERT_COLUMNS]]
        for frame, kind in ((quality_checks, "latest check"), (quality_alerts, "alert"))
        if not frame.empty
    ]
    if found:
        quality = pd.concat(found, ignore_index=True).drop_duplicates(
            subset=["observed_on", "ticker", "model_type"]
        )
        st.dataframe(quality, hide_index=True, key="quality_table")
    else:
        st.info("No data-quality findings stored by the monitor.")
    if ctx.ticker is not None and st.button(f"Run the quality gate on {ctx.ticker}'s prices now",
                                            key="quality_run"):  # fmt: skip
        # Imported on demand: the gate pulls in pandera, which the other tabs never need.
        from volforecast.jobs.quality import check_stored  # noqa: PLC0415

        ticker = ctx.ticker
        report = _attempt(lambda: _run_gate(ctx, ticker, check_stored))
        if report is not None:
            st.dataframe(report, hide_index=True)

    st.subheader("Retraining queue")
    queue = _attempt(lambda: _retrain_queue(ctx.url, ctx.engine))
    if queue is not None:
        if queue.empty:
            st.info("Nothing queued for retraining.")
        else:
            st.dataframe(queue, hide_index=True)


def _run_gate(ctx: Context, ticker: str, check_stored: Callable[..., Any]) -> pd.DataFrame:
    try:
        report = check_stored(ctx.engine, ctx.settings.quality, [ticker])
    except Exception as exc:  # any failure of an on-demand check is shown, not raised
        msg = f"The quality gate failed on {ticker}: {exc}"
        raise DashboardError(msg) from exc
    return data.quality_findings(report)


def _latency_section(ctx: Context) -> None:
    st.subheader("API requests and latency")
    if not ctx.api.up:
        st.warning(data.api_down_message(ctx.config.api_url))
        return
    if ctx.api.degraded:
        st.warning(f"The API at {ctx.config.api_url} answers but is degraded: {ctx.api.detail}")
    text = _attempt(lambda: _metrics_text(ctx.config.api_url, ctx.config.api_key))
    if text is None:
        return
    quantiles = data.latency_quantiles(text)
    st.plotly_chart(charts.latency_figure(quantiles), key="latency_chart")
    left, right = st.columns(2)
    left.dataframe(quantiles, hide_index=True, column_config=_number_columns(quantiles, "%.1f"))
    left.caption("Quantiles interpolated within the histogram buckets, since the API started.")
    right.dataframe(data.request_counts(text), hide_index=True)


# ---------------------------------------------------------------- the script


def main() -> None:
    """Draw the dashboard once (Streamlit runs the script again on every interaction)."""
    st.set_page_config(page_title="volforecast", page_icon="📈", layout="wide")
    try:
        settings = get_settings()
    except ValidationError as exc:
        st.error(f"The volforecast settings are invalid: {exc}")
        return
    ctx = _sidebar(settings, DashboardConfig.from_settings(settings))
    if ctx.database_ok:
        show_freshness_banner(ctx.engine, ctx.url)
    forecasts = _forecasts(ctx, ctx.ticker) if ctx.database_ok and ctx.ticker else None
    # Bound to ?tab=<label>, so a link can open the monitoring tab, say, directly.
    forecast, comparison, registry, monitoring = st.tabs(list(TABS), key="tab",
                                                         bind="query-params")  # fmt: skip
    with forecast, _guarded(TABS[0]):
        forecast_tab(ctx, forecasts)
    with comparison, _guarded(TABS[1]):
        comparison_tab(ctx, forecasts)
    with registry, _guarded(TABS[2]):
        registry_tab(ctx, forecasts)
    with monitoring, _guarded(TABS[3]):
        monitoring_tab(ctx)
    st.caption(f"Updated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC.")


if __name__ == "__main__":
    main()
