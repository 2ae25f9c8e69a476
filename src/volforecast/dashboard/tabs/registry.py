"""The registry tab: registered versions with their aliases, and the promotion log."""

from __future__ import annotations

import streamlit as st

from volforecast.dashboard import page, record, tables
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
    st.subheader("Promotion log")
    if not ctx.database_ok:
        st.warning(str(ctx.database_problem))
        return
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
