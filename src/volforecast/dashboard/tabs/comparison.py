"""The comparison tab: accuracy over time, registry test metrics, and an A/B view of two models."""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from volforecast.api.schemas import ModelInfo
from volforecast.dashboard import charts, page, record, tables
from volforecast.dashboard.sources import model_order, registry, store
from volforecast.settings import Settings

AB_ACCURACY_COLUMNS = ["horizon", "proxy", "as_of_date", "n_forecasts", "rmse_vol_pct",
                       "mae_vol_pct", "qlike"]  # fmt: skip
METRICS = {"rmse_vol_pct": "RMSE (daily vol %)", "mae_vol_pct": "MAE (daily vol %)",
           "qlike": "QLIKE"}  # fmt: skip


@st.cache_data(
    ttl=page.LISTING_TTL_S, show_spinner="Reading the pooled model's per-ticker metrics…"
)
def _pooled_metrics(tracking_uri: str, _settings: Settings, name: str, version: str,
                   ticker: str) -> dict[str, float] | None:  # fmt: skip
    return registry.pooled_ticker_metrics(_settings, name, version, ticker)


def comparison_tab(ctx: page.Context, forecasts: page.Forecasts | None) -> None:
    """Accuracy over time, registry test metrics, and an A/B view of two model types."""
    chosen = page.chosen_ticker(ctx, forecasts)
    if chosen is None:
        return
    ticker, forecasts = chosen
    accuracy = ctx.read(store.accuracy, ticker)
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

    models, source = page.models_listing(ctx)
    metrics = _own_metrics(ctx, models, ticker)
    st.subheader("Test-window metrics of the production versions")
    if metrics.empty:
        st.info(f"No production model serves {ticker} in {source}.")
    else:
        st.dataframe(metrics, hide_index=True, column_config=page.number_columns(metrics, "%.4f"))
        st.caption(f"From {source}, as logged at training; a pooled model's figures for "
                   f"{ticker} alone from its run's `{registry.METRICS_BY_TICKER}`.")  # fmt: skip

    _live_ab(ctx, ticker)
    st.subheader("A/B: two model types side by side")
    available = sorted(
        set(forecasts.paths["model_type"])
        | set(accuracy.get("model_type", pd.Series(dtype=str)))
        | set(metrics.get("model_type", pd.Series(dtype=str))),
        key=model_order,
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
    latest = tables.latest_accuracy(accuracy)
    if not latest.empty:
        mine = latest.loc[latest["model_type"].isin([a, b]), ["model_type", *AB_ACCURACY_COLUMNS]]
        mine = mine.assign(as_of_date=mine["as_of_date"].dt.date)
        st.dataframe(mine, hide_index=True, column_config=page.number_columns(mine, "%.4f"))
    if a != b and not accuracy.empty:
        rows = [tables.ab_summary(accuracy, a, b, m).assign(metric=m) for m in METRICS]
        summary = pd.concat(rows, ignore_index=True)
        st.dataframe(summary, hide_index=True, column_config=page.number_columns(summary, "%.4f"))
        st.caption("`b vs a %`: B's latest error relative to A's; negative means B is better.")


@st.cache_data(ttl=page.LISTING_TTL_S, show_spinner="Reading the live A/B…")
def _live_records(
    tracking_uri: str, database_url: str, _settings: Settings, _engine: Engine, ticker: str
) -> list[tuple[dict[str, object], pd.DataFrame]]:
    return registry.live_records(_settings, _engine, ticker)


def _live_ab(ctx: page.Context, ticker: str) -> None:
    """Each waiting challenger's live record for ``ticker``, with the Diebold–Mariano p-value."""
    settings = ctx.settings
    records = page.attempt(partial(_live_records, settings.mlflow_tracking_uri, ctx.url,
                                   settings, ctx.engine, ticker))  # fmt: skip
    if not records:
        return
    st.subheader("Live A/B: a challenger waiting for live evidence")
    for summary, days in records:
        name = summary["registered_model"]
        pvalue, mean_a, mean_b = (summary["dm_pvalue"], summary["qlike_production"],
                                  summary["qlike_challenger"])  # fmt: skip
        cells = st.columns(4)
        cells[0].metric("Live days", f"{summary['live_days']} of {summary['min_live_days']}")
        cells[1].metric(f"Mean QLIKE, production v{summary['production']}",
                        "-" if mean_a is None else f"{mean_a:.4f}")  # fmt: skip
        cells[2].metric(f"Mean QLIKE, challenger v{summary['challenger']}",
                        "-" if mean_b is None else f"{mean_b:.4f}")  # fmt: skip
        shown_p = "-" if pvalue is None else f"{pvalue:.3g}"
        cells[3].metric("Diebold–Mariano p-value", shown_p,
                        help="One-sided: small when the challenger's loss is smaller.")  # fmt: skip
        shown = days.assign(origin_date=days["origin_date"].dt.date)
        st.dataframe(shown, hide_index=True, column_config=page.number_columns(shown, "%.4f"))
        st.caption(f"{name}: {summary['status']}. {summary['reason']} "
                   f"(`volforecast models compare {name}`).")  # fmt: skip


def _ab_record(ctx: page.Context, ticker: str, a: str, b: str, step: int) -> None:
    """A and B against realized volatility on one y axis, and the Diebold–Mariano test."""
    stored = page.attempt(lambda: page.read_record(ctx.url, ctx.engine, ticker))
    history = page.attempt(lambda: page.history(ctx.url, ctx.engine, ticker, ctx.smoothing_days))
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


def _own_metrics(ctx: page.Context, models: list[ModelInfo], ticker: str) -> pd.DataFrame:
    """Test metrics of the production versions for ``ticker``: a pooled model's own figures."""
    metrics = tables.registry_metrics(models, ticker)
    for model in [m for m in models if m.stage == "production" and m.ticker is None]:
        own = page.attempt(partial(_pooled_metrics, ctx.settings.mlflow_tracking_uri,
                              ctx.settings, model.model_name, model.version, ticker))  # fmt: skip
        if not own:
            continue
        at = metrics.index[(metrics["model_type"] == model.model_type.upper())
                           & (metrics["version"] == model.version)]  # fmt: skip
        for key, value in own.items():
            metrics.loc[at, key] = value
        metrics.loc[at, "scope"] = "this ticker (pooled model's own)"
    return metrics
