"""The model card of a production model, V-Lab style, from the API.

Persistence, half-life, long-run volatility, the term structure to a year and, for the GARCH
family, the news-impact curve.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
import streamlit as st

from volforecast.api.schemas import ModelCardResponse, ModelInfo
from volforecast.dashboard import charts, page
from volforecast.dashboard.sources import api


@st.cache_data(ttl=page.LISTING_TTL_S, show_spinner="Asking the API for the model card…")
def _card(config: api.DashboardConfig, name: str, ticker: str | None) -> ModelCardResponse:
    return api.api_card(config.client(), name, ticker)


def term_structure_figure(card: ModelCardResponse) -> go.Figure:
    """Annualised volatility against the horizon, with the long-run level dashed."""
    days = [t.days for t in card.term_structure]
    color = charts.model_color(card.model_type)
    figure = go.Figure(
        go.Scatter(x=days, y=[t.vol_ann_pct for t in card.term_structure], name="forecast",
                   mode="lines+markers", line={"color": color})
    )  # fmt: skip
    figure.add_hline(y=card.long_run_vol_ann_pct, line_dash="dash", line_color="grey",
                     annotation_text="long run")  # fmt: skip
    figure.update_layout(
        title="Term structure", height=320, margin={"t": 40, "b": 40},
        xaxis={"title": "trading days ahead", "type": "log", "tickvals": days},
        yaxis={"title": "annualised volatility, %", "rangemode": "tozero"},
    )  # fmt: skip
    return figure


def news_impact_figure(card: ModelCardResponse) -> go.Figure:
    """Next day's annualised volatility against today's return, today at the long run."""
    points = card.news_impact or []
    figure = go.Figure(
        go.Scatter(x=[p.shock_pct for p in points],
                   y=[math.sqrt(252 * p.sigma2) for p in points],
                   mode="lines", line={"color": charts.model_color(card.model_type)})
    )  # fmt: skip
    figure.update_layout(
        title="News impact", height=320, margin={"t": 40, "b": 40},
        xaxis={"title": "today's return, %"},
        yaxis={"title": "next day's volatility, % a year", "rangemode": "tozero"},
    )  # fmt: skip
    return figure


def card_section(ctx: page.Context, models: Sequence[ModelInfo]) -> None:
    """A chosen production model's card, drawn."""
    st.subheader("Model card")
    production = [m for m in models if m.stage == "production"]
    if not production:
        return
    if not ctx.api.up:
        st.info("Model cards come from the prediction API: start it with `volforecast serve`.")
        return
    names = [m.model_name for m in production]
    # Bound to ?card=<name>, so a link opens a model's card.
    name = st.selectbox("Production model", names, key="card", bind="query-params")
    info = production[names.index(name)]
    ticker = info.ticker or ctx.ticker  # a pooled model: the sidebar's ticker
    card = page.attempt(lambda: _card(ctx.config, name, None if info.ticker else ticker))
    if card is None:
        return
    half_life = "never" if card.half_life_days is None else f"{card.half_life_days:.0f} days"
    cells = st.columns(3)
    cells[0].metric("Persistence", f"{card.persistence:.4f}",
                    help="Daily decay of the distance to the long-run variance")  # fmt: skip
    cells[1].metric("Half-life", half_life)
    cells[2].metric("Long-run volatility", f"{card.long_run_vol_ann_pct:.1f} % a year")
    left, right = st.columns(2)
    left.plotly_chart(term_structure_figure(card), key="card_term")
    if card.news_impact:
        right.plotly_chart(news_impact_figure(card), key="card_news")
    else:
        right.caption(f"{card.model_type} has no variance recursion in the day's return, so "
                      "no news-impact curve.")  # fmt: skip
    st.caption(
        f"{card.model_name} v{card.model_version} for {card.ticker}, from the close of "
        f"{card.origin_date}. Annualised as V-Lab does: the square root of 252 times the mean "
        "daily variance over the horizon; past 30 days the path decays to the long run at "
        "the persistence shown."
    )
