"""The dashboard's banner for stale prices: one call at the top of the page.

Judged by :func:`volforecast.jobs.freshness.check_freshness` against the latest closed NYSE
session, as ``/health`` and ``volforecast predict`` judge it, so all three say the same.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from volforecast.jobs.freshness import Freshness, check_freshness

FRESHNESS_TTL_S = 60  # prices arrive once a day; the judgement may be a minute old


@st.cache_data(ttl=FRESHNESS_TTL_S, show_spinner=False)
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


def show_freshness_banner(engine: Engine, database_url: str) -> None:
    """A warning across the top of the page while the stored prices are stale."""
    judged = _judged(database_url, engine)
    text = None if judged is None else banner_text(judged)
    if text is not None:
        st.warning(text, icon="⏰")
