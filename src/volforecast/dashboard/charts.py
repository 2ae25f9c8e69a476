"""Plotly figures of the dashboard: pure functions of the frames :mod:`.tables` shapes.

Every y axis is a daily figure in percent unless it says otherwise. A model keeps its colour
across every figure, so GARCH is the same blue in the forecast, the A/B view and the accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from volforecast.dashboard.record import ANNUALISE
from volforecast.dashboard.sources import model_order
from volforecast.dashboard.tables import VAR_LEVELS, var_column, with_var

MODEL_COLORS = {
    "GARCH": "#1f77b4",
    "LSTM": "#d62728",
    "HAR": "#2ca02c",
    "EWMA": "#9467bd",
    "GJR-GARCH-T": "#ff7f0e",
    "ENSEMBLE": "#8c564b",
    "HAR+LSTM": "#bcbd22",
}
_SPARE_COLORS = ("#17becf", "#bcbd22", "#e377c2", "#7f7f7f")
RETURN_COLOR = "rgba(120, 120, 120, 0.35)"
REALIZED_COLOR = "#222222"
TEMPLATE = "plotly_white"


def model_color(model_type: str) -> str:
    """The colour of ``model_type`` in every figure."""
    name = model_type.upper()
    return MODEL_COLORS.get(name, _SPARE_COLORS[sum(map(ord, name)) % len(_SPARE_COLORS)])


def _rgba(hex_color: str, alpha: float) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def _empty(title: str, message: str) -> go.Figure:
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper",
                          yref="paper", font={"size": 14})  # fmt: skip
    figure.update_layout(title=title, template=TEMPLATE, height=300,
                         xaxis={"visible": False}, yaxis={"visible": False})  # fmt: skip
    return figure


def volatility_figure(
    history: pd.DataFrame | None,
    paths: pd.DataFrame,
    *,
    levels: Sequence[float] = VAR_LEVELS,
    title: str = "",
    smoothing_days: int = 1,
    height: int = 520,
    multiples: Mapping[tuple[str, float], float] | None = None,
) -> go.Figure:
    r"""Realized volatility and absolute returns, then each model's forecast path and VaR band.

    Parameters
    ----------
    history : pandas.DataFrame or None
        :func:`~volforecast.dashboard.tables.volatility_history` of the days to show, or None
        for forecasts alone.
    paths : pandas.DataFrame
        Forecast steps in the :data:`~volforecast.dashboard.sources.PATH_COLUMNS` layout.
    levels : sequence of float
        VaR levels; the band of a model spans the lowest to the highest level's VaR.
    title : str
        Figure title.
    smoothing_days : int
        The window the history's smoothed volatility used, for its legend.
    height : int
        Pixels.
    multiples : mapping, optional
        By model type and level, the model's one-day VaR as a multiple of its volatility
        (:func:`volforecast.dashboard.risk.tail_multiples`).

    Notes
    -----
    The band of model :math:`m` at step :math:`h` runs from :math:`v_{\min}\,\sigma_{m,h}` to
    :math:`v_{\max}\,\sigma_{m,h}`, with :math:`v` the quantile of the model's own shocks
    its stored VaR shows (the normal's 1.645 and 2.326 for 95 % and 99 % where none is
    stored): a day's loss beyond its bottom is a 1-in-20 event under the forecast, beyond its
    top a 1-in-100 one.
    The absolute returns of the history are drawn on the same scale, so past days can be
    read against the same thresholds.
    """
    figure = go.Figure()
    if history is not None and not history.empty:
        _add_history(figure, history, smoothing_days)
    if not paths.empty:
        shaped = with_var(paths, levels, multiples)
        for model_type in sorted(shaped["model_type"].unique(), key=model_order):
            path = shaped[shaped["model_type"] == model_type].sort_values("step")
            _add_path(figure, path, model_type, levels)
        origin = pd.Timestamp(shaped["origin_date"].max())
        # Plotly wants a date axis position in epoch milliseconds here, not a Timestamp.
        figure.add_vline(
            x=origin.timestamp() * 1000, line={"color": "#999999", "dash": "dot"},
            annotation_text="forecast origin", annotation_position="top left",
        )  # fmt: skip
    figure.update_layout(
        title=title, template=TEMPLATE, height=height, hovermode="x unified", bargap=0,
        yaxis={"title": "daily %", "rangemode": "tozero"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        margin={"t": 80, "b": 40, "l": 60, "r": 20},
    )  # fmt: skip
    return figure


def _add_history(figure: go.Figure, history: pd.DataFrame, smoothing_days: int) -> None:
    """The absolute returns as bars and the realized volatility as a line."""
    figure.add_trace(go.Bar(
        x=history["date"], y=history["abs_return_pct"], name="|return| %",
        marker={"color": RETURN_COLOR, "line": {"width": 0}},
        hovertemplate="%{y:.2f} %<extra>|return|</extra>",
    ))  # fmt: skip
    smoothed = f", {smoothing_days}-day mean" if smoothing_days > 1 else ""
    figure.add_trace(go.Scatter(
        x=history["date"], y=history["rv_vol_smooth_pct"], mode="lines",
        name=f"realized vol %{smoothed}", line={"color": REALIZED_COLOR, "width": 1.5},
        hovertemplate="%{y:.2f} %<extra>realized vol</extra>",
    ))  # fmt: skip


def _add_path(figure: go.Figure, path: pd.DataFrame, model_type: str,
              levels: Sequence[float]) -> None:  # fmt: skip
    """One model's forecast path, over its VaR band from the lowest to the highest level."""
    low, high = var_column(min(levels)), var_column(max(levels))
    low_name, high_name = f"{round(min(levels) * 100)}", f"{round(max(levels) * 100)}"
    color, version = model_color(model_type), str(path["model_version"].iloc[0])
    group = f"model-{model_type}"
    figure.add_trace(go.Scatter(
        x=path["forecast_date"], y=path[low], mode="lines", line={"width": 0},
        name=f"{model_type} VaR {low_name} %", legendgroup=group, showlegend=False,
        hovertemplate=f"%{{y:.2f}} %<extra>{model_type} VaR {low_name} %</extra>",
    ))  # fmt: skip
    figure.add_trace(go.Scatter(
        x=path["forecast_date"], y=path[high], mode="lines", line={"width": 0},
        fill="tonexty", fillcolor=_rgba(color, 0.18), legendgroup=group,
        name=f"{model_type} VaR {low_name}–{high_name} %",
        hovertemplate=f"%{{y:.2f}} %<extra>{model_type} VaR {high_name} %</extra>",
    ))  # fmt: skip
    figure.add_trace(go.Scatter(
        x=path["forecast_date"], y=path["vol_pct"], mode="lines+markers",
        line={"color": color, "width": 2.5}, marker={"size": 5}, legendgroup=group,
        name=f"{model_type} v{version} forecast vol %",
        hovertemplate=f"%{{y:.3f}} %<extra>{model_type} v{version} vol</extra>",
    ))  # fmt: skip


def _date_axis(*dates: pd.Series) -> dict[str, object]:
    """A date x axis over ``dates``; a lone day gets a week either side, not Plotly's ms."""
    axis: dict[str, object] = {"type": "date"}
    days = pd.to_datetime(pd.concat(dates)).dropna()
    if not days.empty and (days == days.iloc[0]).all():
        day = days.iloc[0]
        axis |= {"range": [day - pd.Timedelta(days=7), day + pd.Timedelta(days=7)],
                 "tickformat": "%Y-%m-%d"}  # fmt: skip
    return axis


def accuracy_figure(frame: pd.DataFrame, metric: str, *, title: str = "") -> go.Figure:
    """``metric`` of each model type over its rolling windows' end dates.

    ``frame`` is :func:`~volforecast.dashboard.sources.store.accuracy` restricted to one horizon and
    proxy; ``rmse_vol_pct`` and ``mae_vol_pct`` are daily volatility in percent. One day or
    many, the x axis is a date axis.
    """
    if frame.empty:
        return _empty(title, "No accuracy stored for this choice")
    figure = go.Figure()
    for model_type in sorted(frame["model_type"].unique(), key=model_order):
        rows = frame[frame["model_type"] == model_type].sort_values("as_of_date")
        figure.add_trace(go.Scatter(
            x=pd.to_datetime(rows["as_of_date"]), y=rows[metric], mode="lines+markers",
            name=model_type, line={"color": model_color(model_type)}, marker={"size": 7},
            customdata=rows[["n_forecasts"]], hovertemplate=(
                f"%{{y:.4g}} (%{{customdata[0]}} forecasts)<extra>{model_type}</extra>"
            ),
        ))  # fmt: skip
    unit = " (daily %)" if metric.endswith("_vol_pct") else ""
    figure.update_layout(
        title=title, template=TEMPLATE, height=380, hovermode="x unified",
        xaxis=_date_axis(frame["as_of_date"]),
        yaxis={"title": f"{metric}{unit}", "rangemode": "tozero"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
    )  # fmt: skip
    return figure


def _realized(realized: pd.DataFrame, factor: float, name: str, *, first: bool) -> go.Scatter:
    """Realized volatility times ``factor``, in the legend of the ``first`` panel only."""
    return go.Scatter(
        x=realized["date"], y=realized["realized_vol_pct"] * factor, mode="lines", name=name,
        legendgroup="realized", showlegend=first, line={"color": REALIZED_COLOR, "width": 1.2},
        hovertemplate="%{y:.2f} %<extra>realized</extra>",
    )  # fmt: skip


def record_figure(
    record: pd.DataFrame, realized: pd.DataFrame, *, annualised: bool = False,
    steps: Sequence[int] = (1, 5), height: int = 620,
) -> go.Figure:  # fmt: skip
    """Stored forecasts at each of ``steps`` against realized volatility, one panel per step.

    ``record`` is :func:`~volforecast.dashboard.record.forecast_record` and ``realized``
    :func:`~volforecast.dashboard.record.realized_record`, both daily percent; with
    ``annualised`` every value is drawn times sqrt(252). A forecast sits on its
    forecast date, so the line and the realized one meet where it was right.
    """
    if record.empty:
        return _empty("Forecasts against realized volatility",
                      "No stored forecasts in this date range")  # fmt: skip
    factor, unit = (ANNUALISE, "annualised %") if annualised else (1.0, "daily %")
    figure = make_subplots(
        rows=len(steps), cols=1, shared_xaxes=True, vertical_spacing=0.08,
        subplot_titles=[f"{s} trading day{'s' if s > 1 else ''} ahead" for s in steps],
    )  # fmt: skip
    models = sorted(record["model_type"].unique(), key=model_order)
    for row, step in enumerate(steps, start=1):
        figure.add_trace(_realized(realized, factor, f"realized vol ({unit})", first=row == 1),
                         row=row, col=1)  # fmt: skip
        for model_type in models:
            own = record[(record["model_type"] == model_type) & (record["step"] == step)]
            figure.add_trace(go.Scatter(
                x=own["forecast_date"], y=own["vol_pct"] * factor, mode="lines+markers",
                name=f"{model_type} forecast", legendgroup=model_type, showlegend=row == 1,
                line={"color": model_color(model_type), "width": 2}, marker={"size": 4},
                customdata=own[["origin_date", "model_version"]],
                hovertemplate=(f"%{{y:.2f}} % (made %{{customdata[0]|%Y-%m-%d}}, "
                               f"v%{{customdata[1]}})<extra>{model_type} h={step}</extra>"),
            ), row=row, col=1)  # fmt: skip
        figure.update_yaxes(title_text=unit, rangemode="tozero", row=row, col=1)
    # One scale for both steps: a week-ahead forecast reads against the next-day one.
    figure.update_yaxes(matches="y")
    figure.update_xaxes(**_date_axis(record["forecast_date"], realized["date"]))
    figure.update_layout(
        template=TEMPLATE, height=height, hovermode="x unified",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.04, "x": 0},
        margin={"t": 70, "b": 40, "l": 60, "r": 20},
    )  # fmt: skip
    return figure


def ab_figure(
    record: pd.DataFrame, realized: pd.DataFrame, a: str, b: str, *, step: int = 1,
    annualised: bool = False,
) -> go.Figure:  # fmt: skip
    """Models ``a`` and ``b`` side by side on one shared y axis, each against realized vol.

    ``record`` and ``realized`` as in :func:`record_figure`; only ``step`` is drawn.
    """
    factor, unit = (ANNUALISE, "annualised %") if annualised else (1.0, "daily %")
    figure = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                           subplot_titles=[f"A: {a}", f"B: {b}"])  # fmt: skip
    for col, model_type in enumerate((a, b), start=1):
        figure.add_trace(
            _realized(realized, factor, "realized vol", first=col == 1), row=1, col=col
        )
        own = record[(record["model_type"] == model_type) & (record["step"] == step)]
        figure.add_trace(go.Scatter(
            x=own["forecast_date"], y=own["vol_pct"] * factor, mode="lines+markers",
            name=f"{model_type} forecast, h={step}", line={"color": model_color(model_type)},
            marker={"size": 4}, hovertemplate=f"%{{y:.2f}} %<extra>{model_type}</extra>",
        ), row=1, col=col)  # fmt: skip
    figure.update_yaxes(title_text=unit, rangemode="tozero", col=1)
    figure.update_xaxes(**_date_axis(record["forecast_date"], realized["date"]))
    figure.update_layout(template=TEMPLATE, height=380, hovermode="x unified",
                         legend={"orientation": "h", "y": -0.15, "x": 0})  # fmt: skip
    return figure


def latency_figure(quantiles: pd.DataFrame) -> go.Figure:
    """Latency quantiles (ms) of each route, as grouped bars."""
    columns = [c for c in quantiles.columns if c.startswith("p") and c.endswith("_ms")]
    if quantiles.empty or not columns:
        return _empty("API latency", "No requests answered yet")
    labels = quantiles["method"] + " " + quantiles["route"]
    figure = go.Figure()
    for column in columns:
        figure.add_trace(go.Bar(
            x=labels, y=quantiles[column], name=column.removesuffix("_ms"),
            hovertemplate="%{y:.1f} ms<extra>" + column.removesuffix("_ms") + "</extra>",
        ))  # fmt: skip
    figure.update_layout(
        title="API latency by route (estimated from the histogram buckets)", template=TEMPLATE,
        barmode="group", height=360, yaxis={"title": "ms"},
    )  # fmt: skip
    return figure


def drift_figure(checks: pd.DataFrame, *, top: int = 30) -> go.Figure:
    """Each check's statistic over its threshold, the ``top`` largest; 1 is where it fires."""
    rows = checks.dropna(subset=["ratio"]) if not checks.empty else checks
    if rows.empty:
        return _empty("Drift statistics", "No drift checks stored yet")
    rows = rows.sort_values("ratio", ascending=False).head(top).iloc[::-1]
    labels = rows["ticker"] + " " + rows["model_type"] + " " + rows["detector"]
    figure = go.Figure(go.Bar(
        x=rows["ratio"], y=labels, orientation="h",
        marker={"color": ["#d62728" if fired else "#1f77b4" for fired in rows["fired"]]},
        customdata=rows[["statistic", "threshold"]],
        hovertemplate="statistic %{customdata[0]:.4g} / threshold %{customdata[1]:.4g}"
                      " = %{x:.2f}<extra></extra>",
    ))  # fmt: skip
    figure.add_vline(x=1.0, line={"color": "#d62728", "dash": "dash"})
    figure.update_layout(
        title="Latest drift checks: statistic / threshold (red: fired)", template=TEMPLATE,
        height=max(260, 24 * len(rows) + 120), xaxis={"title": "statistic / threshold"},
        margin={"l": 220},
    )  # fmt: skip
    return figure
