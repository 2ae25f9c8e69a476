"""The monitor replayed on real stocks: the crisis of 2008 and the calm of 2017.

For each period, ``volforecast monitor replay`` walks the days as if live (forecast at the
close, observe the next day, run the detectors, retrain a ticker on its alert) over tickers
drawn from the shared S&P 500 file, and this prints when the alerts fired: per week, the
date each ticker first alerted, and how many days passed without any alert.

    python benchmarks/monitor_replay.py [--tickers 100] [--seed 7] [--model garch]

Issue 7 asks the alerts to fire within days of the volatility spike of late September 2008
(Lehman failed on 15 September; the S&P 500 fell 8.8 % on 29 September) and not on every day
of 2017.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import pandas as pd

from _common import SHARED_FILE, draw_tickers, main_with_page
from volforecast.data.sources import load_file
from volforecast.jobs.monitor import ReplayReport, replay
from volforecast.settings import Settings

PERIODS = {
    "2008": (dt.date(2008, 6, 2), dt.date(2008, 12, 31)),
    "2017": (dt.date(2017, 1, 3), dt.date(2017, 12, 29)),
}
SPIKE = (dt.date(2008, 9, 15), dt.date(2008, 10, 10))


def weekly(report: ReplayReport) -> pd.Series:
    """Alerts per week (weeks start on Monday)."""
    days = pd.to_datetime(pd.Series([a.observed_on for a in report.alerts]))
    if days.empty:
        return pd.Series(dtype="int64")
    return days.dt.to_period("W-SUN").value_counts().sort_index()


def show(name: str, report: ReplayReport) -> None:
    """Print one period's alerts: per week, first per ticker, and the quiet days."""
    print(f"\n=== {name}: {report.start} to {report.end}, {report.tickers} tickers, "
          f"{report.days} days, {report.seconds:.0f} s ===")  # fmt: skip
    per_week = weekly(report)
    top = max(int(per_week.max()) if len(per_week) else 1, 1)
    for week, count in per_week.items():
        print(f"  week of {week.start_time.date()}  {count:4d}  {'#' * round(40 * count / top)}")
    by_detector = pd.Series([a.detector for a in report.alerts]).value_counts()
    print("  by detector:", ", ".join(f"{d} {n}" for d, n in by_detector.items()))
    alert_days = len(report.alert_days())
    per_ticker_days = len({(a.ticker, a.observed_on) for a in report.alerts})
    print(f"  {len(report.alerts)} alerts; days with an alert for some ticker: {alert_days} "
          f"of {report.days}; per ticker, {per_ticker_days / max(report.tickers, 1):.1f} "
          f"alert days of {report.days} ({100 * per_ticker_days / max(report.tickers * report.days, 1):.1f} %)")  # noqa: E501  # fmt: skip
    print(f"  retrains: {len(report.retrains)}; failures: {len(report.failures)}")
    if name == "2008":
        spike = {t for t, a in ((a.ticker, a) for a in report.alerts)
                 if SPIKE[0] <= a.observed_on <= SPIKE[1]}  # fmt: skip
        print(f"  tickers alerting between {SPIKE[0]} and {SPIKE[1]}: {len(spike)} of "
              f"{report.tickers} ({100 * len(spike) / max(report.tickers, 1):.0f} %)")  # fmt: skip
        after: dict[str, dt.date] = {}
        for alert in report.alerts:
            if alert.observed_on >= SPIKE[0]:
                after.setdefault(alert.ticker, alert.observed_on)
        if after:
            delays = pd.Series([len(pd.bdate_range(SPIKE[0], d)) - 1 for d in after.values()])
            print(f"  each ticker's first alert from {SPIKE[0]} on: median "
                  f"{delays.median():.0f} trading days later, 90 % within "
                  f"{delays.quantile(0.9):.0f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=100, help="tickers drawn (default 100)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default="garch")
    args = parser.parse_args()
    prices = load_file(SHARED_FILE).frame
    tickers = draw_tickers(prices, args.tickers, args.seed, history_before="2006-01-01")
    settings = Settings()
    for name, (start, end) in PERIODS.items():
        report = replay(prices, settings, start=start, end=end, model=args.model,
                        tickers=tickers)  # fmt: skip
        show(name, report)


if __name__ == "__main__":
    main_with_page(main, "Monitor replay")
