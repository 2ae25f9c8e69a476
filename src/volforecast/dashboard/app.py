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
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from pydantic import ValidationError

from volforecast.dashboard.page import freshness_banner, load_forecasts, sidebar
from volforecast.dashboard.sources.api import DashboardConfig
from volforecast.dashboard.tabs import comparison, forecast, monitoring, registry
from volforecast.settings import get_settings

# Streamlit's "magic" draws every bare string literal of this script, so the constants here
# are documented with comments rather than docstrings.
TABS = ("Volatility Forecast", "Model comparison", "Model registry", "Monitoring")

log = logging.getLogger("volforecast.dashboard")


@contextmanager
def _guarded(tab: str) -> Iterator[None]:
    """Show an unexpected failure as an error in its own tab; the other tabs still draw."""
    try:
        yield
    except Exception as exc:  # any failure: its traceback goes to the log, not to the page
        log.exception("The %s tab failed", tab)
        st.error(f"The {tab} tab failed: {type(exc).__name__}: {exc}. The server log has "
                 "the details.")  # fmt: skip


def main() -> None:
    """Draw the dashboard once (Streamlit runs the script again on every interaction)."""
    st.set_page_config(page_title="volforecast", page_icon="📈", layout="wide")
    try:
        settings = get_settings()
    except ValidationError as exc:
        st.error(f"The volforecast settings are invalid: {exc}")
        return
    ctx = sidebar(settings, DashboardConfig.from_settings(settings))
    if ctx.database_ok:
        freshness_banner(ctx)
    forecasts = load_forecasts(ctx, ctx.ticker) if ctx.database_ok and ctx.ticker else None
    # Bound to ?tab=<label>, so a link can open the monitoring tab, say, directly.
    tabs = st.tabs(list(TABS), key="tab", bind="query-params")
    with tabs[0], _guarded(TABS[0]):
        forecast.forecast_tab(ctx, forecasts)
    with tabs[1], _guarded(TABS[1]):
        comparison.comparison_tab(ctx, forecasts)
    with tabs[2], _guarded(TABS[2]):
        registry.registry_tab(ctx)
    with tabs[3], _guarded(TABS[3]):
        monitoring.monitoring_tab(ctx)
    st.caption(f"Updated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC.")


if __name__ == "__main__":
    main()
