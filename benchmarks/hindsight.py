"""How far can 1-day QLIKE fall below GARCH's? Estimates of a day's variance made in hindsight.

A forecast made at the close of day ``t`` knows the days up to ``t``. The estimates here of
day ``t + 1``'s variance know more: the range-based variances of the two days before it and
of the two days after it, and the means of the five days beyond those, on either side. Only
the day itself is hidden. They are fitted, per ticker, on the very test period they are
judged on (least squares on logs, then the scale that minimises QLIKE against each proxy), so
they are a generous yardstick, not a forecast. The same fit with the days after ``t + 1``
left out is printed beside it, to show how much the hindsight adds, and the same fit with the
market's log variance of the day itself and of the two days on either side (the mean over
every ticker of the file, as in the backtest), to show what the market adds to it.

Two more estimates read everything the catalog's HAR reads (its session, overnight,
leverage, market and earnings-season terms, with the season-dependent log-normal
correction), fitted the same way on the test period: alone, and with the hindsight above.
The first is HAR with coefficients chosen in hindsight; the second also knows the days
after. They are evidence of how far these inputs, combined in HAR's way, can go, not a
bound on every forecast: the LSTM reads the last twenty days one by one, and a forecast
need not be linear in logs.

Printed: the median across tickers of QLIKE relative to GARCH(1,1) with normal errors at one
day, on the range-based proxy and on the squared return, for the tickers and test period of
``benchmarks/accuracy.py``. When an estimate that sees the following days cannot reach a
ratio, no forecast made the evening before is likely to.

    python benchmarks/hindsight.py [--cache var/benchmarks/accuracy-cache]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from _cache import backtest_with_cache
from _common import main_with_page
from _periods import PERIODS
from accuracy import add_draw_arguments, draw
from volforecast.core.features import DailyData, season_peaks, seasonal_regressors
from volforecast.core.losses import qlike_losses
from volforecast.evaluation.backtest import BacktestConfig
from volforecast.evaluation.metrics import PROXIES, daily_proxy
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.jobs.market import market_from_prices, with_market
from volforecast.models.baselines import VARIANCE_FLOOR_SHARE
from volforecast.models.catalog import build_model
from volforecast.settings import QualitySettings

# Beyond the two neighbours on each side, a five-day mean further out.
_NEAR, _FAR = 2, 5
# The catalog's HAR, whose regressors one estimate adds (regressors() needs no fit).
_HAR = build_model("har")


def _mean_of(values: np.ndarray, targets: np.ndarray, first: int, last: int) -> np.ndarray:
    """Mean of ``values`` over offsets ``first..last`` (inclusive) around each target day."""
    return np.mean([values[targets + k] for k in range(first, last + 1)], axis=0)


def _regressors(
    data: DailyData,
    targets: np.ndarray,
    *,
    after: bool,
    market: bool = False,
    season: np.ndarray | None = None,
) -> np.ndarray:
    """The estimate's regressors; with ``season`` (the targets' season terms), HAR's too."""
    log_rv, rv = np.log(data.rv_sigma2), data.rv_sigma2
    columns = [np.ones(len(targets))]
    if season is not None:
        if data.market_log_rv is None or data.overnight_sigma2 is None:
            msg = f"{data.ticker}: HAR's terms need the market series and the opening prices"
            raise SystemExit(msg)
        # Everything the catalog's HAR reads at the origin, the day before the target, and
        # the season terms of the target day (HAR's own constant left out: one is above).
        columns += list(_HAR.regressors(data)[targets - 1, 1:].T)
        columns += list(season.T)
    columns += [log_rv[targets - k] for k in range(1, _NEAR + 1)]
    columns.append(np.log(_mean_of(rv, targets, -_NEAR - _FAR, -_NEAR - 1)))
    if after:
        columns += [log_rv[targets + k] for k in range(1, _NEAR + 1)]
        columns.append(np.log(_mean_of(rv, targets, _NEAR + 1, _NEAR + _FAR)))
    if market:
        # The market's log variance on the day itself and the days around it.
        if data.market_log_rv is None:  # main attaches it where it covers the ticker's days
            msg = f"{data.ticker}: the market series does not cover its days (see the log)"
            raise SystemExit(msg)
        columns += [data.market_log_rv[targets + k] for k in range(-_NEAR, _NEAR + 1)]
    return np.column_stack(columns)


def hindsight_ratios(
    data: DailyData, origins: np.ndarray, garch_sigma2: np.ndarray
) -> dict[tuple[str, str], float]:
    """QLIKE of each hindsight estimate over GARCH's 1-day forecast, per proxy."""
    targets = origins + 1
    keep = (targets + _NEAR + _FAR < len(data)) & np.isfinite(garch_sigma2)
    targets, garch = targets[keep], garch_sigma2[keep]
    log_rv = np.log(data.rv_sigma2[targets])
    season = seasonal_regressors(season_peaks(data), targets)
    ratios = {}
    estimates = (  # name, after, market's day, HAR's terms
        ("hindsight", True, False, False),
        ("same fit, past only", False, False, False),
        ("hindsight and the market's day", True, True, False),
        ("HAR's terms, fitted on the test period", False, False, True),
        ("HAR's terms and the hindsight", True, False, True),
    )
    for name, after, market, har in estimates:
        x = _regressors(data, targets, after=after, market=market, season=season if har else None)
        coef, *_ = np.linalg.lstsq(x, log_rv, rcond=None)
        fitted = np.exp(x @ coef)
        if har:
            # As HAR's seasonal_variance: the spread of the log, hence the correction that
            # undoes it, grows where a report is due; floored, as there, at a quarter of the
            # constant one.
            residuals2 = (log_rv - np.log(fitted)) ** 2
            z = np.column_stack([np.ones(len(x)), np.maximum(season, 0.0)])
            g, *_ = np.linalg.lstsq(z, residuals2, rcond=None)
            floor = VARIANCE_FLOOR_SHARE * residuals2.sum() / (len(x) - x.shape[1])
            fitted *= np.exp(0.5 * np.maximum(z @ g, floor))
        for proxy in PROXIES:
            realized = daily_proxy(data, proxy)[targets]
            nonzero = realized > 0
            scale = np.mean(realized[nonzero] / fitted[nonzero])
            mine = qlike_losses(realized[nonzero], scale * fitted[nonzero]).mean()
            base = qlike_losses(realized[nonzero], garch[nonzero]).mean()
            ratios[(proxy, name)] = float(mine / base)
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_draw_arguments(parser)  # --cache: accuracy.py's, for GARCH's paths
    args = parser.parse_args()

    prices, tickers = draw(args)
    train_end, test_end = PERIODS[args.period].train_end, PERIODS[args.period].test_end
    config = BacktestConfig(train_end, test_end, ("garch",), refit_every=21)
    datasets, _ = daily_data_by_ticker(prices, QualitySettings(), tickers)
    # The market of every ticker in the file, as the backtest computes it.
    datasets = with_market(datasets, market_from_prices(prices, QualitySettings())["log_rv"])
    forecasts, _, _ = backtest_with_cache(
        prices, datasets, tickers, config, args.cache, workers=args.workers
    )
    rows = [
        {"ticker": ticker, "proxy": proxy, "estimate": name, "ratio": ratio}
        for ticker, item in forecasts.items()
        for (proxy, name), ratio in hindsight_ratios(
            datasets[ticker], item.origin_positions, item.sigma2["garch"][:, 0]
        ).items()
    ]
    table = pd.DataFrame(rows).pivot_table(
        index="estimate", columns="proxy", values="ratio", aggfunc="median"
    )
    print(f"{len(forecasts)} tickers (seed {args.seed}), days after {train_end} to {test_end}")
    print("Median across tickers of 1-day QLIKE / QLIKE of GARCH(1,1)-normal")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main_with_page(main, "How low 1-day QLIKE can go")
