"""How the model families of a training compare: the summary a training report carries.

``python -m volforecast.jobs.train_summary`` prints the summary of the outcomes on stdin (of
several reports together): how the training DAG compares the families of all its tasks.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def summarize(outcomes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per family: trained, promoted, failed and median test QLIKE; LSTM vs GARCH wins.

    ``outcomes`` in a report's JSON form. ``lstm_better_than_garch`` counts the tickers with
    both test QLIKEs where the LSTM's is lower.
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
