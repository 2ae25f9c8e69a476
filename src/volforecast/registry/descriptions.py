"""The descriptions MLflow shows on registered models and their versions.

A registered model says what it is and which ticker(s) it serves; a version says what it was
trained on, its test window and its QLIKE there, so the registry UI answers "which model is
this and how good was it" without opening the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_LISTED = 10
"""Tickers named in a description; the tag ``volforecast.tickers`` lists them all."""


def listed(items: Sequence[str], most: int = MAX_LISTED) -> str:
    """The first ``most`` items, comma-separated, and how many more there are."""
    more = len(items) - most
    return ", ".join(items[:most]) + (f" and {more} more" if more > 0 else "")


def model_description(model_type: str, tickers: Sequence[str], *, pooled: bool) -> str:
    """What a registered model is: its family and the ticker(s) it serves."""
    what = (
        f"{model_type} volatility model pooled over {len(tickers)} tickers, one network for "
        f"all ({listed(tickers)}; each version's tag volforecast.tickers lists its own)"
        if pooled
        else f"{model_type} volatility model of {tickers[0]}"
    )
    return (
        f"{what}. Forecasts the daily variance of returns (sigma2, percent²) 1-30 trading days "
        "ahead. The alias `production` is the version served; `challenger` the latest trained. "
        "Trained and registered by volforecast."
    )


def version_description(
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    *,
    tickers: Sequence[str],
    data_end: str,
    converged: bool,
    headline: str,
) -> str:
    """What one version was trained on, its test window and its QLIKE there.

    Parameters
    ----------
    params : Mapping
        The run's parameters: ``data.fit_start`` .. ``data.test_end`` for one ticker.
    metrics : Mapping
        The run's metrics (a pooled model's are means over its tickers).
    headline : str
        The metric to quote, e.g. ``qlike_h1_range``.
    """
    qlike = metrics.get(headline)
    figure = "n/a" if qlike is None else f"{qlike:.4f}"
    horizon = headline.split("_")[1].removeprefix("h") if headline.count("_") >= 2 else "1"
    proxy = headline.rsplit("_", 1)[-1]
    if "data.test_start" in params:
        trained = (
            f"Fit on {tickers[0]} {params['data.fit_start']} to {params['data.fit_end']}; "
            f"test window {params['data.test_start']} to {params['data.test_end']} "
            f"({params.get('data.test_origins', '?')} forecast origins)"
        )
        score = f"QLIKE {horizon}-day ({proxy} proxy) {figure}"
    else:
        trained = (
            f"Fit on {len(tickers)} tickers ({listed(tickers)}) up to {data_end}; test window "
            "the last 10 % of each ticker's days"
        )
        score = f"mean QLIKE {horizon}-day ({proxy} proxy) over the tickers {figure}"
    fit = "" if converged else " The fit did not converge: this version is never promoted."
    return f"{trained}. {score}; lower is better.{fit}"
