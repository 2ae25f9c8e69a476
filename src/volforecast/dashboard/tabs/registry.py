"""The registry tab: champions, versions with their aliases, a model's card, the log."""

from __future__ import annotations

import streamlit as st

from volforecast.dashboard import card, page, record, tables
from volforecast.dashboard.sources import api, store


def registry_tab(ctx: page.Context) -> None:
    """Registered versions with their aliases, and the promotion log."""
    models, source = page.models_listing(ctx)
    st.subheader("Registered versions")
    if not ctx.api.up:
        st.warning(
            f"{api.api_down_message(ctx.config.api_url)} The versions below are read from the "
            "registry directly."
        )
    if models:
        versions = tables.versions_frame(models)
        ui = record.mlflow_ui_url(ctx.settings)
        pairs = zip(versions["model_name"], versions["version"], strict=True)
        versions.insert(0, "mlflow", [record.registry_link(ui, n, v) for n, v in pairs])
        columns = page.number_columns(versions, "%.4f") | {
            "mlflow": st.column_config.LinkColumn("MLflow", display_text="open ↗",
                                                  help=f"The version in the MLflow UI at {ui}")
        }  # fmt: skip
        st.dataframe(versions, hide_index=True, column_config=columns, key="versions_table")
        st.caption(f"From {source}. `alias`: production serves; challenger waits to beat it.")
    else:
        st.info("No registered model yet: run `volforecast train`.")
    card.card_section(ctx, models or [])
    if not ctx.database_ok:
        st.subheader("Promotion log")
        st.warning(str(ctx.database_problem))
        return
    _champions_section(ctx)
    st.subheader("Promotion log")
    log = ctx.read(store.promotion_log)
    if log is None:
        return
    if log.empty:
        st.info("No alias has moved yet: `volforecast train` promotes what beats production.")
        return
    names = ["all", *sorted(log["registered_model"].unique())]
    name = st.selectbox("Registered model", names, key="log_model")
    shown = log if name == "all" else log[log["registered_model"] == name]
    st.dataframe(shown, hide_index=True)


def _champions_section(ctx: page.Context) -> None:
    """Each ticker's champion family, the one a request naming no model is served."""
    st.subheader("Champions")
    champions = ctx.read(store.champions)
    if champions is None:
        return
    if champions.empty:
        st.info("No champion decided yet: `volforecast train` decides them after training "
                "(`volforecast models champion` on its own).")  # fmt: skip
        return
    wins = champions["champion"].value_counts()
    st.dataframe(champions, hide_index=True, key="champions_table")
    st.caption(
        "The family that answers a request naming no model; it changes only when another "
        "family is significantly better on the ticker's test window. Wins: "
        + ", ".join(f"{family} {count}" for family, count in wins.items())
        + "."
    )
