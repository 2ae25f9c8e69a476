"""How the model families of a training compare: the summary a training report carries.

``python -m volforecast.jobs.train_summary`` reads outcomes as JSON on stdin (those of
several training reports together) and prints their summary: the training DAG compares the
families of its many training tasks this way, holding no logic of its own.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def summarize(outcomes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per family: trained, promoted, failed and median test QLIKE; LSTM vs GARCH wins.

    ``outcomes`` are in a training report's JSON form. Each family's entry holds
    ``trained`` and ``promoted`` (counts), ``failed`` (tickers without a version, sorted)
    and ``median_qlike_h1_range`` (over tickers, None without one);
    ``lstm_better_than_garch`` says on how many of the tickers with both a GARCH and an
    LSTM test QLIKE the LSTM's is lower.
    """
    summary: dict[str, Any] = {}
    for family in sorted({o["model"] for o in outcomes}):
        mine = [o for o in outcomes if o["model"] == family]
        qlikes = [o["qlike"] for o in mine if o["ok"] and o["qlike"] is not None]
        summary[family] = {
            "trained": sum(o["ok"] for o in mine),
            "promoted": sum(o["promoted"] for o in mine),
            "failed": sorted(o["ticker"] for o in mine if not o["ok"]),
            "median_qlike_h1_range": statistics.median(qlikes) if qlikes else None,
        }
    by_ticker: dict[str, dict[str, float]] = {}
    for o in outcomes:
        if o["ok"] and o["qlike"] is not None:
            by_ticker.setdefault(o["ticker"], {})[o["model"]] = o["qlike"]
    both = [q for q in by_ticker.values() if {"garch", "lstm"} <= set(q)]
    wins = sum(q["lstm"] < q["garch"] for q in both)
    summary["lstm_better_than_garch"] = f"{wins} of {len(both)} tickers"
    return summary


if __name__ == "__main__":
    json.dump(summarize(json.load(sys.stdin)), sys.stdout)
