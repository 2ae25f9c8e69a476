"""The accuracy benchmark's periods, their sub-periods and the targets the served row is held to.

A period is a walk-forward backtest: training through ``train_end``, forecasts from every
trading day after it through ``test_end``. Its sub-periods split the origins at fixed dates,
so that a model that wins on average but breaks for a few months shows it: the ``crisis``
period splits 2007-2009 into before the crash (to 2008-08-31), the crash (to 2009-01-31) and
the months after; the others into calendar years.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from _served import SERVED
from volforecast.core.features import DailyData
from volforecast.evaluation.backtest import TickerForecasts
from volforecast.evaluation.metrics import PROXIES, loss_table, relative_qlike

HORIZONS = (1, 5, 22)


@dataclass(frozen=True)
class Period:
    """A backtest period: where training ends, where forecasts end, and its sub-periods."""

    train_end: dt.date
    test_end: dt.date
    history_before: str
    """Tickers are drawn among those with prices before this date (three years or more)."""
    splits: tuple[dt.date, ...]
    """The last origin date of each sub-period but the last, which ends at ``test_end``."""
    about: str

    def sub_periods(self) -> list[tuple[str, dt.date, dt.date]]:
        """Each sub-period's label, first and last origin date (inclusive)."""
        bounds = [self.train_end, *self.splits, self.test_end]
        found = []
        for before, last in itertools.pairwise(bounds):
            first = (pd.Timestamp(before) + pd.offsets.BDay(1)).date()  # the first weekday
            found.append((f"{first:%Y-%m}..{last:%Y-%m}", first, last))
        return found


def _years(first: int, last: int) -> tuple[dt.date, ...]:
    return tuple(dt.date(year, 12, 31) for year in range(first, last))


PERIODS = {
    "test": Period(dt.date(2014, 12, 31), dt.date(2018, 12, 31), "2012-01-01",
                   _years(2015, 2018), "forecasts from 2015-2018"),
    "validation": Period(dt.date(2010, 12, 31), dt.date(2014, 12, 31), "2008-01-01",
                         _years(2011, 2014), "from 2011-2014, to try a method out"),
    "crisis": Period(dt.date(2007, 6, 29), dt.date(2009, 6, 30), "2004-01-01",
                     (dt.date(2008, 8, 31), dt.date(2009, 1, 31)),
                     "from 2007-07 to 2009-06, through the 2008 crash"),
}  # fmt: skip


def sub_period_ratios(
    forecasts: Mapping[str, TickerForecasts],
    datasets: Mapping[str, DailyData],
    period: Period,
    models: list[str],
) -> pd.DataFrame:
    """Median across tickers of QLIKE over GARCH(1,1)'s, in each sub-period of ``period``.

    Each sub-period holds the origins dated in it; a 22-day forecast made at its end is
    judged there, on days after it.

    Returns
    -------
    pandas.DataFrame
        Index ``(sub-period, proxy, model)``, one column per horizon.
    """
    tables = {}
    for label, first, last in period.sub_periods():
        losses = []
        for ticker, item in forecasts.items():
            dates = datasets[ticker].dates[item.origin_positions]
            keep = np.asarray((dates >= pd.Timestamp(first)) & (dates <= pd.Timestamp(last)))
            if not keep.any():
                continue
            paths = {m: item.sigma2[m][keep] for m in models if m in item.sigma2}
            losses.append(loss_table(datasets[ticker], item.origin_positions[keep], paths))
        if losses:  # a sub-period no ticker forecast (a short run) has no row
            tables[label] = relative_qlike(pd.concat(losses, ignore_index=True), "garch")
    return pd.concat(tables, names=["sub-period"])


@dataclass(frozen=True)
class Target:
    """One target of the served forecast: the worst of its figures against a limit."""

    what: str
    worst: float
    limit: float

    @property
    def met(self) -> bool:
        return bool(self.worst <= self.limit)


def robustness_targets(
    whole: pd.DataFrame, subs: pd.DataFrame, anchor: pd.DataFrame, model: str
) -> list[Target]:
    """The targets of one served model across regimes, each with its worst figure.

    ``whole`` and ``subs`` are ratios to GARCH(1,1) over the period and per sub-period
    (:func:`sub_period_ratios`), ``anchor`` ratios to GJR-GARCH-t over the period. Range
    proxy: at most 0.90 in every sub-period, 0.85 over the period and 0.90 of GJR-GARCH-t's;
    squared returns: at most 0.97 at 1 day and 0.92 at 5 and 22 days in every sub-period.
    """

    def worst(frame: pd.DataFrame, proxy: str, horizons: tuple[int, ...]) -> float:
        rows = frame.xs((proxy, model), level=("proxy", "model"), drop_level=False)
        return float(rows[list(horizons)].to_numpy().max())

    return [
        Target("range, every sub-period, 1/5/22 d", worst(subs, "range", HORIZONS), 0.90),
        Target("range, whole period, 1/5/22 d", worst(whole, "range", HORIZONS), 0.85),
        Target("squared, every sub-period, 1 d", worst(subs, "squared", (1,)), 0.97),
        Target("squared, every sub-period, 5/22 d", worst(subs, "squared", (5, 22)), 0.92),
        Target("range vs GJR-GARCH-t, whole period", worst(anchor, "range", HORIZONS), 0.90),
    ]


def print_robustness(targets: list[Target], model: str) -> None:
    """One line per target and one saying which hold."""
    print(f"\nTargets across regimes, for the {model} row (issue 24)")
    for target in targets:
        verdict = "met" if target.met else "NOT met"
        print(f"  {target.what}: worst {target.worst:.3f} (<= {target.limit:.2f}: {verdict})")
    held = sum(t.met for t in targets)
    missed = [t.what for t in targets if not t.met]
    print(
        f"  {model}: {held} of {len(targets)} hold"
        + (f"; not: {'; '.join(missed)}" if missed else "")
    )


def print_single_model_targets(ratios: pd.DataFrame, models: list[str]) -> None:
    """The first targets (issue 3): the best model and the LSTM over the period."""
    others = ["garch", SERVED]  # the served row is a choice among the models
    range_best = ratios.loc["range"].drop(index=others, errors="ignore").min()
    squared_best = ratios.loc["squared"].drop(index=others, errors="ignore").min()
    print("\nTargets of the best single model")
    for h in HORIZONS:
        rb, sb = range_best[h], squared_best[h]
        verdict_r = "met" if rb <= 0.85 else "NOT met"
        verdict_s = "met" if sb <= 0.90 else "NOT met"
        print(f"  best model at {h:>2} d: range {rb:.3f} (<= 0.85: {verdict_r}), ", end="")
        print(f"squared {sb:.3f} (<= 0.90: {verdict_s})")
    if "lstm" in models:
        for h in (5, 22):
            values = [ratios.loc[(p, "lstm"), h] for p in PROXIES]
            print(
                f"  LSTM at {h} d: range {values[0]:.3f}, squared {values[1]:.3f} "
                f"(<= 0.95: {'met' if max(values) <= 0.95 else 'NOT met'})"
            )
