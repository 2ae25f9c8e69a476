"""The prediction API's Prometheus text, read: requests answered and latency quantiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

LATENCY_QUANTILES = (0.5, 0.9, 0.99)
LATENCY_METRIC = "volforecast_http_request_duration_seconds"
REQUESTS_METRIC = "volforecast_http_requests"


def _samples(metrics_text: str, metric: str) -> list[Sample]:
    return [s for f in text_string_to_metric_families(metrics_text) if f.name == metric
            for s in f.samples]  # fmt: skip


def request_counts(metrics_text: str) -> pd.DataFrame:
    """Requests answered, by method, route template and status."""
    rows = [
        {"method": s.labels.get("method", ""), "route": s.labels.get("route", ""),
         "status": s.labels.get("status", ""), "requests": int(s.value)}
        for s in _samples(metrics_text, REQUESTS_METRIC) if s.name == f"{REQUESTS_METRIC}_total"
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["method", "route", "status", "requests"])
    return frame.sort_values(["route", "method", "status"]).reset_index(drop=True)


def histogram_quantile(q: float, upper_bounds: Sequence[float],
                       cumulative: Sequence[float]) -> float:  # fmt: skip
    r"""The ``q`` quantile estimated from cumulative histogram buckets, as Prometheus does.

    Parameters
    ----------
    q : float
        Quantile in [0, 1].
    upper_bounds : sequence of float
        Bucket upper bounds ``le``, increasing, the last one ``inf``.
    cumulative : sequence of float
        Observations at or below each bound.

    Returns
    -------
    float
        The estimate, in the unit of the bounds; NaN with no observations. A quantile that
        falls in the ``+Inf`` bucket is the largest finite bound (nothing better is known).

    Notes
    -----
    With rank :math:`r = q N` and the first bucket :math:`i` whose count :math:`c_i \ge r`,
    the estimate interpolates linearly inside it,

    .. math:: \hat x_q = b_{i-1} + (b_i - b_{i-1}) \frac{r - c_{i-1}}{c_i - c_{i-1}},

    with :math:`b_{-1} = 0` and :math:`c_{-1} = 0`: Prometheus' ``histogram_quantile``, which
    assumes observations spread evenly within a bucket.
    """
    total = cumulative[-1] if len(cumulative) else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(upper_bounds, cumulative, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            share = (rank - lower_count) / (count - lower_count)
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def latency_quantiles(
    metrics_text: str, quantiles: Sequence[float] = LATENCY_QUANTILES
) -> pd.DataFrame:
    """Requests, mean and quantile latencies in milliseconds per method and route."""
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    sums: dict[tuple[str, str], float] = {}
    for s in _samples(metrics_text, LATENCY_METRIC):
        key = (s.labels.get("method", ""), s.labels.get("route", ""))
        if s.name == f"{LATENCY_METRIC}_bucket":
            buckets.setdefault(key, []).append((float(s.labels["le"]), float(s.value)))
        elif s.name == f"{LATENCY_METRIC}_sum":
            sums[key] = float(s.value)
    names = [f"p{round(q * 100)}_ms" for q in quantiles]
    rows = []
    for (method, route), pairs in sorted(buckets.items(), key=lambda kv: kv[0][::-1]):
        bounds, counts = zip(*sorted(pairs), strict=True)
        total = counts[-1]
        row: dict[str, Any] = {
            "method": method, "route": route, "requests": int(total),
            "mean_ms": 1000 * sums.get((method, route), math.nan) / total if total else math.nan,
        }  # fmt: skip
        for name, q in zip(names, quantiles, strict=True):
            row[name] = 1000 * histogram_quantile(q, bounds, counts)
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", "route", "requests", "mean_ms", *names])
