"""The monitoring tab: alerts, drift statistics, stored data-quality findings, API latency."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from volforecast.dashboard import charts, page, prometheus, tables
from volforecast.dashboard.sources import api, store


@st.cache_data(ttl=page.METRICS_TTL_S, show_spinner=False)
def _metrics_text(config: api.DashboardConfig) -> str:
    return api.fetch_metrics(config.client())


def monitoring_tab(ctx: page.Context) -> None:
    """Alerts, drift statistics, data quality, API latency and the retraining queue."""
    if not ctx.database_ok:
        st.warning(str(ctx.database_problem))
    else:
        _alerts_section(ctx)
    _latency_section(ctx)


def _alerts_section(ctx: page.Context) -> None:
    st.subheader("Alerts")
    only = ctx.ticker is not None and st.checkbox(f"Only {ctx.ticker}", key="alerts_only")
    alerts = ctx.read(store.alerts, ticker=ctx.ticker if only else None)
    quality_alerts = pd.DataFrame()
    if alerts is not None:
        drift_alerts, quality_alerts = tables.split_quality(alerts)
        if alerts.empty:
            st.info("No alerts: the monitor (`volforecast monitor run --all`) raised none yet.")
        else:
            st.dataframe(drift_alerts, hide_index=True, key="alerts_table",
                         column_config=page.number_columns(drift_alerts, "%.4g"))  # fmt: skip

    st.subheader("Drift statistics (latest checks)")
    checks = ctx.read(store.latest_checks)
    quality_checks = pd.DataFrame()
    if checks is not None:
        drift, quality_checks = tables.split_quality(checks)
        if drift.empty:
            st.info("No drift checks stored yet: run `volforecast monitor run --all`.")
        else:
            st.plotly_chart(charts.drift_figure(drift), key="drift_chart")
            st.dataframe(drift, hide_index=True, column_config=page.number_columns(drift, "%.4g"))

    st.subheader("Data quality")
    # The latest day's verdicts first, then the alerts of earlier days.
    found = [
        frame.assign(kind=kind).loc[:, ["kind", *store.ALERT_COLUMNS]]
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
    st.caption(
        "As the daily monitor (`volforecast monitor run --all`) stored them: it runs "
        "the quality gate over the stored prices; this page only reads its findings."
    )

    st.subheader("Retraining queue")
    queue = ctx.read(store.retrain_queue)
    if queue is not None:
        if queue.empty:
            st.info("Nothing queued for retraining.")
        else:
            st.dataframe(queue, hide_index=True)


def _latency_section(ctx: page.Context) -> None:
    st.subheader("API requests and latency")
    if not ctx.api.up:
        st.warning(api.api_down_message(ctx.config.api_url))
        return
    if ctx.api.degraded:
        st.warning(f"The API at {ctx.config.api_url} answers but is degraded: {ctx.api.detail}")
    text = page.attempt(lambda: _metrics_text(ctx.config))
    if text is None:
        return
    quantiles = prometheus.latency_quantiles(text)
    st.plotly_chart(charts.latency_figure(quantiles), key="latency_chart")
    left, right = st.columns(2)
    left.dataframe(quantiles, hide_index=True, column_config=page.number_columns(quantiles, "%.1f"))
    left.caption("Quantiles interpolated within the histogram buckets, since the API started.")
    right.dataframe(prometheus.request_counts(text), hide_index=True)
