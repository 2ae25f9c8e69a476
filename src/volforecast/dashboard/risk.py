"""The risk section of the forecast tab: each day's served VaR on the returns, breaches marked.

The figures are those the daily job stored (``ml.risk_forecasts``): each model's one-day VaR
from its own tails, made at the close before the day it is for. A day whose loss went past
its VaR is a breach; over a year a right 99 % VaR is breached about two or three times.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy import Engine

from volforecast.dashboard import charts, page
from volforecast.dashboard.sources import store
from volforecast.dashboard.tables import VAR_LEVELS, var_column

BREACH_COLORS = {0.95: "#ff7f0e", 0.99: "#d62728"}


@st.cache_data(ttl=page.LISTING_TTL_S, show_spinner="Reading the stored risk figures…")
def stored_risk(database_url: str, _engine: Engine, ticker: str) -> pd.DataFrame:
    """:func:`~volforecast.dashboard.sources.store.stored_risk`, kept for a while."""
    return store.stored_risk(_engine, ticker)


def served_var(
    history: pd.DataFrame, risk: pd.DataFrame, model_type: str, levels: Sequence[float] = VAR_LEVELS
) -> pd.DataFrame:
    """Each day of ``history`` with the one-day VaR ``model_type`` served for it, and breaches.

    A VaR stored at one close is for the next day of ``history``; ``breach95`` and the like
    are true where the day's return fell below minus that VaR. Days with no VaR are left out.
    """
    one_day = risk[(risk["model_type"] == model_type) & (risk["days"] == 1)]
    wide = one_day.pivot_table(index="origin_date", columns="level", values="var_pct",
                               aggfunc="last")  # fmt: skip
    dates = pd.to_datetime(history["date"]).reset_index(drop=True)
    origins = pd.to_datetime(pd.Series(wide.index))
    position = dates.searchsorted(origins, side="right")
    # The origin must be a day of the history, and the day after it one too.
    known = (position > 0) & (dates.iloc[np.maximum(position - 1, 0)].to_numpy()
                              == origins.to_numpy())  # fmt: skip
    inside = known & (position < len(dates))
    out = pd.DataFrame({"date": dates.iloc[position[inside]].to_numpy()})
    returns = history["returns_pct"].reset_index(drop=True).iloc[position[inside]].to_numpy()
    out["returns_pct"] = returns
    for level in levels:
        column = var_column(level)
        out[column] = wide[level].to_numpy()[inside] if level in wide else float("nan")
        out[f"breach{round(level * 100)}"] = returns < -out[column]
    return out.dropna(subset=[var_column(q) for q in levels]).reset_index(drop=True)


def breach_summary(shown: pd.DataFrame, levels: Sequence[float] = VAR_LEVELS) -> pd.DataFrame:
    """Breaches of each level over the days shown, against what a right VaR expects."""
    days = len(shown)
    rows = []
    for level in levels:
        count = int(shown[f"breach{round(level * 100)}"].sum())
        rows.append({"VaR": f"{level:.0%}", "days": days, "breaches": count,
                     "rate %": 100 * count / days if days else float("nan"),
                     "expected %": 100 * (1 - level)})  # fmt: skip
    return pd.DataFrame(rows)


def risk_figure(
    shown: pd.DataFrame, model_type: str, levels: Sequence[float] = VAR_LEVELS
) -> go.Figure:
    """Daily returns as bars, minus each day's served VaR as steps, breaches as markers."""
    figure = go.Figure()
    figure.add_trace(go.Bar(x=shown["date"], y=shown["returns_pct"], name="return %",
                            marker={"color": charts.RETURN_COLOR, "line": {"width": 0}},
                            hovertemplate="%{y:.2f} %<extra>return</extra>"))  # fmt: skip
    for level in levels:
        name, column = f"{round(level * 100)}", var_column(level)
        color = BREACH_COLORS.get(level, charts.model_color(model_type))
        figure.add_trace(go.Scatter(
            x=shown["date"], y=-shown[column], mode="lines", name=f"-VaR {name} % ({model_type})",
            line={"color": color, "width": 1.2, "shape": "hv"},
            hovertemplate=f"%{{y:.2f}} %<extra>-VaR {name} %</extra>",
        ))  # fmt: skip
        breached = shown[shown[f"breach{name}"]]
        figure.add_trace(go.Scatter(
            x=breached["date"], y=breached["returns_pct"], mode="markers",
            marker={"color": color, "size": 8, "symbol": "x"}, name=f"breach of VaR {name} %",
            hovertemplate=f"%{{y:.2f}} %<extra>breach {name} %</extra>",
        ))  # fmt: skip
    figure.update_layout(
        template=charts.TEMPLATE, height=420, bargap=0, hovermode="x unified",
        yaxis={"title": "daily log return, %"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        margin={"t": 60, "b": 40, "l": 60, "r": 20},
    )  # fmt: skip
    return figure


def latest_table(risk: pd.DataFrame, model_type: str) -> pd.DataFrame:
    """The VaR and ES of ``model_type`` from its latest stored close, one row per horizon."""
    own = risk[risk["model_type"] == model_type]
    latest = own[own["origin_date"] == own["origin_date"].max()]
    wide = latest.pivot_table(index="days", columns="level", values=["var_pct", "es_pct"],
                              aggfunc="last")  # fmt: skip
    levels = sorted(latest["level"].unique())
    wide = wide.reindex(columns=[(f, q) for f in ("var_pct", "es_pct") for q in levels])
    wide.columns = [f"{'VaR' if f == 'var_pct' else 'ES'} {q:.1%}" for f, q in wide.columns]
    return pd.DataFrame(wide.reset_index().rename(columns={"days": "trading days"}))


def tail_multiples(risk: pd.DataFrame, paths: pd.DataFrame) -> dict[tuple[str, float], float]:
    """Each model's one-day VaR as a multiple of its 1-day volatility, from the paths' close.

    The forward bands of the volatility chart are each step's volatility times this: the
    quantile of the model's own shocks, where the normal's would be 1.645 and 2.326.
    """
    if risk.empty or paths.empty:
        return {}
    first = paths[paths["step"] == 1][["model_type", "origin_date", "model_version", "vol_pct"]]
    first = first.assign(origin_date=pd.to_datetime(first["origin_date"]).dt.date)
    both = risk[risk["days"] == 1].merge(first, on=["model_type", "origin_date", "model_version"])
    ratio = both["var_pct"] / both["vol_pct"]
    keys = zip(both["model_type"].astype(str), both["level"].astype(float), strict=True)
    return {key: float(value) for key, value in zip(keys, ratio.to_numpy(), strict=True)}


def risk_section(
    ctx: page.Context, ticker: str, history: pd.DataFrame, model_type: str, risk: pd.DataFrame
) -> None:
    """The served VaR of ``model_type`` against the returns, its breaches and latest figures."""
    st.subheader(f"{ticker}: value at risk served by {model_type}, and its breaches")
    shown = served_var(history, risk, model_type) if not risk.empty else pd.DataFrame()
    if shown.empty:
        st.info(f"No VaR of {model_type} for {ticker} stored yet: `volforecast predict --all` "
                "stores one each day (`--from DATE --to DATE` fills past days).")  # fmt: skip
        return
    if ctx.history_days:
        shown = shown.tail(ctx.history_days)
    st.plotly_chart(risk_figure(shown, model_type), key="risk_chart")
    left, right = st.columns(2)
    left.dataframe(breach_summary(shown), hide_index=True, key="breach_table")
    right.dataframe(latest_table(risk, model_type), hide_index=True, key="latest_risk")
    own = risk[(risk["model_type"] == model_type) & (risk["days"] == 1)]
    method = own["method"].iloc[-1]
    st.caption(
        "Bars: daily log returns. Steps: minus the one-day VaR the model served the evening "
        "before, from its own tails; crosses: days whose loss went past it. Right: the VaR "
        f"and expected shortfall from the latest close, losses in % ({method})."
    )
