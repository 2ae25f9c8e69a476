"""The forecast tab: realized volatility, each model's path and VaR band, its VaR, the record.

The ticker's champion (the family a request naming no model gets) is marked, and it is the
model shown at first; the others are a choice away.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from volforecast.dashboard import charts, page, record, risk, tables
from volforecast.dashboard.sources import api, store

RECORD_DEFAULT_DAYS = 365
"""Calendar days of the record shown at first."""


@st.cache_data(ttl=page.LISTING_TTL_S, show_spinner=False)
def _api_predictions(config: api.DashboardConfig, ticker: str) -> pd.DataFrame:
    return api.api_predictions(config.client(), ticker, limit=300)


def forecast_tab(ctx: page.Context, forecasts: page.Forecasts | None) -> None:
    """Realized volatility, each production model's path and VaR band, and the table."""
    chosen = page.chosen_ticker(ctx, forecasts)
    if chosen is None:
        return
    ticker, forecasts = chosen
    for message in forecasts.warnings:
        st.warning(message)
    history = page.attempt(lambda: page.history(ctx.url, ctx.engine, ticker, ctx.smoothing_days))
    if history is None:
        return
    shown = history if ctx.history_days == 0 else history.tail(ctx.history_days)
    every = forecasts.paths[forecasts.paths["step"] <= ctx.horizon]
    champion = champion_of(ctx, ticker)

    st.subheader(f"{ticker}: daily volatility, realized and forecast")
    cells = st.columns(2 + max(every["model_type"].nunique(), 1))
    if not history.empty:
        last = history.iloc[-1]
        cells[0].metric("Last close", f"{pd.Timestamp(last['date']):%Y-%m-%d}")
        cells[1].metric("Realized vol (smoothed)", f"{last['rv_vol_smooth_pct']:.2f} %")
    stored_risk = page.attempt(lambda: risk.stored_risk(ctx.url, ctx.engine, ticker))
    multiples = risk.tail_multiples(stored_risk, every) if stored_risk is not None else {}
    next_day = tables.with_var(every[every["step"] == 1], multiples=multiples)
    next_day = next_day.sort_values("model_type", key=lambda m: m != champion, kind="stable")
    for cell, (_, row) in zip(cells[2:], next_day.iterrows(), strict=False):
        cell.metric(
            f"{model_label(row['model_type'], champion)} next day", f"{row['vol_pct']:.2f} %",
            help=f"VaR 99 %: {row['var99_pct']:.2f} %, model v{row['model_version']}",
        )  # fmt: skip
    paths = _chosen_paths(every, ticker, champion)
    figure = charts.volatility_figure(shown, paths, smoothing_days=ctx.smoothing_days,
                                      multiples=multiples)  # fmt: skip
    st.plotly_chart(figure, key="forecast_chart")
    st.caption(
        "Bars: absolute daily log returns. Black: realized volatility, the square root of the "
        "range-based realized variance. Bands: one-day value at risk between 95 % and 99 %, "
        "each step's forecast volatility times the quantile of the model's own shocks (its "
        "stored VaR; the normal's 1.645 and 2.326 where none is stored yet). Forecasts from "
        f"{forecasts.source}."
    )
    for message in forecasts.infos:
        st.info(message)
    shown_model = _risk_model(paths, every, champion)
    if stored_risk is not None and shown_model is not None:
        risk.risk_section(ctx, ticker, history, shown_model, stored_risk)
    _record_section(ctx, ticker, history)
    if paths.empty:
        return
    st.subheader("Forecasts (daily %)")
    table = tables.forecast_table(paths, multiples=multiples)
    st.dataframe(
        table, hide_index=True, column_config=page.number_columns(table), key="forecast_table"
    )
    if ctx.api.up:
        with st.expander(f"Forecasts of {ticker} stored so far (GET /predictions)"):
            stored = page.attempt(lambda: _api_predictions(ctx.config, ticker))
            if stored is not None:
                st.dataframe(stored, hide_index=True)


def _risk_model(paths: pd.DataFrame, every: pd.DataFrame, champion: str | None) -> str | None:
    """The model whose VaR the risk section draws: the first shown, else the champion."""
    if not paths.empty:
        return str(paths["model_type"].iloc[0])
    return (
        champion
        if champion is not None
        else (str(every["model_type"].iloc[0]) if not every.empty else None)
    )


def champion_of(ctx: page.Context, ticker: str) -> str | None:
    """The ticker's champion as a model type (``HAR``); None before one is decided."""
    champions = ctx.read(store.champions)
    if champions is None:
        return None
    found = champions.loc[champions["ticker"] == ticker, "champion"]
    return None if found.empty else str(found.iloc[0])


def model_label(model_type: str, champion: str | None) -> str:
    """``HAR (champion)`` for the champion, the model type for the others."""
    return f"{model_type} (champion)" if model_type == champion else model_type


def _chosen_paths(paths: pd.DataFrame, ticker: str, champion: str | None) -> pd.DataFrame:
    """The paths of the models the user chose; the champion alone at first (all without one)."""
    available = list(dict.fromkeys(paths["model_type"]))
    if not available:
        return paths
    default = [champion] if champion in available else available
    chosen = st.multiselect(
        "Models shown", available, default=default, key=f"models_{ticker}",
        format_func=lambda model: model_label(model, champion),
        help="The champion is the model a request naming none is served.",
    )  # fmt: skip
    return paths[paths["model_type"].isin(chosen)]


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


def _record_section(ctx: page.Context, ticker: str, history: pd.DataFrame) -> None:
    """The stored 1- and 5-day forecasts against the realized volatility of their dates."""
    st.subheader(f"{ticker}: the record, stored forecasts against realized volatility")
    stored = page.attempt(lambda: page.read_record(ctx.url, ctx.engine, ticker))
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
