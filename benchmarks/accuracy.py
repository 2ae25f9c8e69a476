"""Forecast accuracy: a walk-forward backtest of every model on 100 shared tickers.

Tickers are drawn with a fixed seed among those with prices before 2012 (three years before
the first forecast). Training runs through 2014-12-31, forecasts are made from every trading
day of 2015-2018, each model is refitted every 21 trading days. Printed, per model and
horizon (1, 5, 22 trading days) and per proxy of realized variance (range-based and squared
returns): the median across tickers of QLIKE relative to GARCH(1,1) with normal errors; the
share of tickers where a Diebold-Mariano test finds the model better than GARCH at 5 %, and
the median p-value; Mincer-Zarnowitz R²; and VaR backtests at 95 % and 99 %, with the normal
quantile and by filtered historical simulation (the quantile of the model's own past
standardized returns, from the test period's second year on).

    python benchmarks/accuracy.py [--tickers 100] [--seed 0] [--workers 2] [--models ...]
                                  [--cache DIR] [--period test|validation] [--markdown PATH]
                                  [--readme README.md]

``--markdown docs/results/accuracy.md`` also writes what it prints as that page of the docs,
whole, with the command, the commit and the machine (the tables as markdown tables).
``--readme README.md`` (test period only, with ``--markdown``) also rewrites the README's
headline table, between its ``<!-- accuracy:start -->`` and ``<!-- accuracy:end -->``
markers: GARCH(1,1), the best single model, the LSTM and the best combination on the
range-based proxy, with the run and a link to the page (``make accuracy`` runs both).

The row ``served`` is what a request naming no model is served: at each refit, each
ticker's champion among the catalog's candidate families, chosen by the rule training uses
(``registry/champion.choose_champion``) on the losses the rule could see at that date
(``evaluation/served.py``); the window's days before the first forecast are forecast by the
candidates fitted as training fits them on the last training day
(``evaluation/served_window.py``; one more LSTM training). The candidates are backtested
even when ``--models`` leaves them out. The run prints a fingerprint of each candidate's
catalog options and how many tickers each family is champion of after the last refit. The
families are the backtest's, refitted at each refit on every day before it; the service's
versions are fitted weekly on the first 90 % of each ticker's days and pass their family's
promotion gate first, which the row does not model.

Every combination ``a+b`` is printed twice: with equal weights, and as ``a+b learned``, with
weights learned on the forecasts realized before each block. ``--period validation`` runs the
same on 2011-2014 (tickers with prices before 2008), to try a method out before it is run on
the test period; ``--period crisis`` on July 2007 - June 2009, trained through 2007-06-29
(tickers with prices before 2004). Each period's table is printed again per sub-period
(``_periods.py``: calendar years; the crisis split before, in and after the crash), and
against GJR-GARCH-t as well as GARCH(1,1).

The pooled LSTM trains on the drawn tickers; with ``--pool-all`` on every ticker of the file
that has enough days at the first refit, as the service's trains on every stored ticker, while
only the drawn ones are forecast (cached as ``lstm@all.npz``). The ``served`` row's
first-window LSTM is still trained on the drawn tickers.

On two cores the LSTM's backtest takes about 8 minutes; GJR, EGARCH and the ensemble took
34 minutes together with other work sharing the machine, most of a full run. With
``--cache DIR`` each fitted model's forecast paths are kept in ``DIR/<model>.npz`` and a later
run with the same tickers and periods reads them instead of backtesting that model again:
change one model, delete its file, and only that model is rerun (the ``served`` row's
first-window forecasts, in ``DIR/first-window.npz``, are made again when a candidate's
catalog options changed). A cache written for other tickers or periods is refused.

Targets (issue 3): the best model <= 0.85 at every horizon on the range-based proxy and
<= 0.90 on the squared-return proxy; the LSTM <= 0.95 at 5 and 22 days. Targets across
regimes (issue 24), for the ``served`` row: on the range proxy <= 0.90 in every sub-period
and <= 0.85 over the period at 1, 5 and 22 days, and <= 0.90 of GJR-GARCH-t's over the
period; on squared returns <= 0.97 at 1 day and <= 0.92 at 5 and 22 days in every
sub-period. The last line says which hold.

Risk figures (issue 25, ``_risk.py``), on every origin after the period's first
``FHS_WARMUP`` days (2016-2018 on the test period): the one- and ten-day VaR and the ES of
the served row and of GARCH(1,1), each from its own tails by the function the service calls,
with Kupiec's, Christoffersen's and the Acerbi-Szekely Z2 tests, the FZ0 loss against
GARCH(1,1)-normal's, the QLIKE of the mean variance over 126 and 252 days, and the model
confidence set over QLIKE per horizon. Targets: the one-day median exceedance rate within
0.8-1.25 times the nominal at 95, 97.5 and 99 %, Kupiec rejecting at most 8 % of tickers and
Christoffersen 12 %; the ten-day 99 % rate within 0.5-2 %; Z2 rejecting at most 10 %; FZ0
below GARCH-normal's for 80 % of tickers; the 126- and 252-day QLIKE no worse than GARCH's.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from _cache import LEARNED, Forecasts, backtest_with_cache, cache_key
from _common import (
    SHARED_FILE,
    ResultsPage,
    add_markdown_argument,
    command,
    draw_tickers,
    markdown_table,
    replace_section,
    results_page,
    revision,
    split_at_markers,
)
from _periods import (
    HORIZONS,
    PERIODS,
    print_robustness,
    print_single_model_targets,
    robustness_targets,
    sub_period_ratios,
)
from _risk import FHS_WARMUP, mcs_table, print_risk, risk_table
from _served import SERVED, add_served, first_windows, missing_candidates
from volforecast.core.features import DailyData
from volforecast.data.sources import load_file
from volforecast.evaluation.backtest import (
    BacktestConfig,
    blocks,
)
from volforecast.evaluation.metrics import (
    PROXIES,
    aligned_losses,
    horizon_targets,
    loss_table,
    relative_qlike,
)
from volforecast.evaluation.stats import (
    christoffersen,
    diebold_mariano,
    filtered_var_exceedances,
    kupiec,
    mincer_zarnowitz,
    var_exceedances,
)
from volforecast.jobs.backtest import daily_data_by_ticker
from volforecast.models.catalog import combination_members
from volforecast.models.lstm.config import LstmConfig
from volforecast.settings import QualitySettings

MODELS = (
    "garch",
    "gjr-garch-t",
    "egarch-t",
    "ewma",
    "historical",
    "har",
    "ensemble",
    "lstm",
    "har+lstm",
)


def add_draw_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the data, the tickers, the workers and the cache."""
    parser.add_argument("--file", type=Path, default=SHARED_FILE)
    parser.add_argument("--tickers", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, help="keep and reuse each model's paths here")
    parser.add_argument(
        "--pool-all",
        action="store_true",
        help="train the pooled LSTM on every ticker of the file, as the service trains it on "
        "every stored ticker, and forecast the drawn ones",
    )
    parser.add_argument(
        "--period",
        choices=sorted(PERIODS),
        default="test",
        help="; ".join(f"{name}: {period.about}" for name, period in PERIODS.items()),
    )


def draw(args: argparse.Namespace) -> tuple[pd.DataFrame, list[str]]:
    """The prices of the file and the tickers drawn from it."""
    prices = load_file(args.file).frame
    history_before = PERIODS[args.period].history_before
    return prices, draw_tickers(prices, args.tickers, args.seed, history_before)


def significance(
    forecasts: Forecasts, datasets: dict[str, DailyData], models: list[str]
) -> pd.DataFrame:
    rows = []
    for ticker, item in forecasts.items():
        if "garch" not in item.sigma2:
            continue
        data = datasets[ticker]
        for model in models:
            if model == "garch" or model not in item.sigma2:
                continue
            for proxy in PROXIES:
                for h in HORIZONS:
                    a, b = aligned_losses(
                        data,
                        item.origin_positions,
                        item.sigma2[model],
                        item.sigma2["garch"],
                        horizon=h,
                        proxy=proxy,
                    )
                    if len(a) < 30:
                        continue
                    test = diebold_mariano(a, b, horizon=h)
                    rows.append((model, proxy, h, test.statistic, test.pvalue))
    return pd.DataFrame(rows, columns=["model", "proxy", "horizon", "dm", "p"])


def calibration(
    forecasts: Forecasts, datasets: dict[str, DailyData], models: list[str]
) -> pd.DataFrame:
    rows = []
    for ticker, item in forecasts.items():
        data = datasets[ticker]
        nxt = item.origin_positions + 1
        inside = nxt < len(data)
        for model in models:
            paths = item.sigma2.get(model)
            if paths is None:
                continue
            ok = inside & np.isfinite(paths[:, 0])
            returns = data.returns_pct[nxt[ok]]
            sigma2 = paths[ok, 0]
            t = horizon_targets(data, item.origin_positions, paths, 1, "range")
            mz = mincer_zarnowitz(t.realized, t.forecast)
            record = {"model": model, "mz_r2": mz.detail["r2"], "mz_b": mz.detail["b"]}
            for coverage in (0.95, 0.99):
                hits = var_exceedances(returns, sigma2, coverage)
                record[f"rate_{coverage}"] = hits.mean()
                record[f"kupiec_reject_{coverage}"] = kupiec(hits, coverage).pvalue < 0.05
                record[f"cc_reject_{coverage}"] = christoffersen(hits, coverage).pvalue < 0.05
                # The same days, judged after the filtered VaR's first year of quantiles; a
                # ticker without more days than that is left out of both (NaN).
                for prefix in ("later_", "fhs_"):
                    record[f"{prefix}rate_{coverage}"] = np.nan
                    record[f"{prefix}kupiec_reject_{coverage}"] = np.nan
                if len(returns) <= FHS_WARMUP:
                    continue
                filtered = filtered_var_exceedances(returns, sigma2, coverage, warmup=FHS_WARMUP)
                for prefix, flags in (("later_", hits[FHS_WARMUP:]), ("fhs_", filtered)):
                    record[f"{prefix}rate_{coverage}"] = flags.mean()
                    record[f"{prefix}kupiec_reject_{coverage}"] = float(
                        kupiec(flags, coverage).pvalue < 0.05
                    )
            rows.append(record)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_draw_arguments(parser)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--save", type=Path, help="write the loss table here (.parquet)")
    add_markdown_argument(parser)
    parser.add_argument(
        "--readme",
        type=Path,
        metavar="PATH",
        help="also rewrite the headline table between the accuracy markers of this README",
    )
    args = parser.parse_args()
    check_readme(parser, args)
    argv = list(sys.argv)
    title = f"Accuracy: {args.period} period, {args.tickers} tickers drawn with seed {args.seed}"
    with results_page(title, args.markdown) as page:
        ratios, count = report(args, page)
    if args.readme is not None:
        replace_section(args.readme, "accuracy", readme_table(ratios, count, args, argv))
        print(f"wrote the accuracy table of {args.readme}")


def check_readme(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a ``--readme`` the run could not write, before the hour it takes."""
    if args.readme is None:
        return
    if args.period != "test":
        parser.error("--readme: only the test period's run writes the README's table")
    if args.markdown is None:
        parser.error("--readme needs --markdown: the README's table links to the run's page")
    try:
        split_at_markers(args.readme, "accuracy")
    except (OSError, ValueError) as error:
        parser.error(str(error))


def headline(ratios: pd.DataFrame) -> pd.DataFrame:
    """The README's rows of the relative QLIKE table, on the range-based proxy.

    GARCH(1,1), the best single model, the LSTM, the best combination (a name with ``+``),
    best by the mean ratio over the horizons, and what a request naming no model is served
    (the champion rule, ``served``); a row whose model the run has not is left out.
    """
    table = ratios.loc["range", list(HORIZONS)]
    mean = table.mean(axis=1).drop(SERVED, errors="ignore")
    combined = mean.index.str.contains("+", regex=False)
    singles, combinations = mean[~combined].drop("garch", errors="ignore"), mean[combined]
    picks = {
        "GARCH(1,1), the yardstick": "garch",
        "best single model": singles.idxmin() if len(singles) else None,
        "LSTM": "lstm",
        "best combination": combinations.idxmin() if len(combinations) else None,
        "served by default (each ticker's champion)": SERVED,
    }
    if picks["best single model"] == "lstm":
        del picks["LSTM"]  # one row for it, not two
    rows = {role: model for role, model in picks.items() if model in table.index}
    found = table.loc[list(rows.values())].rename(columns=lambda h: f"{h} d")
    found.insert(0, "model", found.index)
    return found.set_axis(pd.Index(list(rows), name=""))


def readme_table(
    ratios: pd.DataFrame, count: int, args: argparse.Namespace, argv: list[str]
) -> str:
    """The headline table and a line on the run that measured it, linking its page."""
    train_end, test_end = PERIODS[args.period].train_end, PERIODS[args.period].test_end
    page = Path(os.path.relpath(args.markdown.resolve(), args.readme.resolve().parent))
    return (
        f"{markdown_table(headline(ratios))}\n\n"
        f"Median across {count} tickers (drawn with seed {args.seed}) of QLIKE over GARCH(1,1)'s "
        "on the range-based proxy, at 1, 5 and 22 days (lower is better), forecasting from "
        f"every trading day after {train_end} through {test_end}; commit {revision()}, written by "
        f"`{command(argv)}`. All the models, tests and both proxies: "
        f"[the accuracy page]({page.as_posix()})."
    )


def report(args: argparse.Namespace, page: ResultsPage) -> tuple[pd.DataFrame, int]:
    """Backtest, then print the tables; the page keeps them.

    Returns the relative QLIKE table and the number of tickers.
    """
    models = [m.strip() for m in args.models.split(",")]
    if missing_candidates(models):
        print(f"also backtested for the {SERVED} row: {', '.join(missing_candidates(models))}")
        models += missing_candidates(models)
    prices, tickers = draw(args)
    period = PERIODS[args.period]
    config = BacktestConfig(period.train_end, period.test_end, tuple(models), refit_every=21)
    print(f"{len(tickers)} tickers (seed {args.seed}), models {', '.join(models)}")
    print(
        f"train through {config.train_end}, origins to {config.test_end}, "
        f"refit every {config.refit_every} trading days; LSTM with the defaults "
        f"({LstmConfig()}), {config.lstm_refit_epochs} warm epochs per refit"
    )
    datasets, _ = daily_data_by_ticker(prices, QualitySettings(), tickers)
    forecasts, seconds, failures = backtest_with_cache(
        prices, datasets, tickers, config, args.cache, workers=args.workers,
        pool_all=args.pool_all,
    )  # fmt: skip
    print(f"backtest: {seconds:.0f} s, {failures} failed fits")
    before = first_windows(
        prices, datasets, config, cache=args.cache, key=cache_key(tickers, config)
    )
    add_served(forecasts, datasets, [first for first, _ in blocks(config)], before)
    models.append(SERVED)
    models += [m + LEARNED for m in models if combination_members(m)]
    losses = losses_of(forecasts, datasets)
    if args.save:
        losses.to_parquet(args.save)

    pd.set_option("display.width", 160)
    pd.set_option("display.max_rows", 200)
    ratios = relative_qlike(losses, "garch")
    by_model = ratios.unstack("proxy").swaplevel(axis=1).reindex(columns=list(PROXIES), level=0)
    page.table(
        "Median across tickers of QLIKE / QLIKE of GARCH(1,1)-normal (lower is better)",
        ratios.round(3),
        by_model.rename(columns=lambda h: f"{h} d", level=1).reindex(models),
    )

    dm = significance(forecasts, datasets, models)
    summary = dm.groupby(["proxy", "model", "horizon"]).agg(
        better=("dm", lambda s: float(np.mean((s < 0) & (dm.loc[s.index, "p"] < 0.05)))),
        median_p=("p", "median"),
    )
    page.table(
        "Diebold-Mariano against GARCH: share of tickers significantly better at 5 %, "
        "median p-value",
        summary.unstack("horizon").round(3),
    )

    calib = calibration(forecasts, datasets, models).groupby("model").mean()
    tails = [c for c in calib.columns if c.startswith(("later_", "fhs_"))]
    page.table(
        "Calibration (1 day): Mincer-Zarnowitz R² and slope on the range proxy; VaR "
        "exceedance rate and share of tickers rejected by Kupiec / Christoffersen",
        calib.drop(columns=tails).round(3),
    )
    page.table(
        f"VaR after the first {FHS_WARMUP} days of the test period, normal quantile (later_) "
        "and filtered historical simulation (fhs_: the quantile of the model's own past "
        "standardized returns): exceedance rate and share of tickers Kupiec rejects at 5 %",
        calib[tails].round(3),
    )
    subs = sub_period_ratios(forecasts, datasets, period, models)
    page.table(
        "By sub-period (origins dated in it): median across tickers of QLIKE / QLIKE of "
        "GARCH(1,1)-normal",
        subs.round(3),
        subs.unstack("proxy")
        .swaplevel(axis=1)
        .reindex(columns=list(PROXIES), level=0)
        .rename(columns=lambda h: f"{h} d", level=1)
        .round(3),
    )
    anchor = relative_qlike(losses, "gjr-garch-t") if "gjr-garch-t" in models else None
    if anchor is not None:
        page.table(
            "Against the stronger anchor: median across tickers of QLIKE / QLIKE of "
            "GJR-GARCH(1,1,1) with Student-t errors",
            anchor.round(3),
            anchor.loc["range"].rename(columns=lambda h: f"{h} d").reindex(models).round(3),
        )
    page.table(
        "Model confidence set (arch.bootstrap.MCS, 90 %, range proxy): share of tickers whose "
        "set holds each model",
        mcs_table(forecasts, datasets, models, HORIZONS).round(3),
    )
    risk = risk_table(forecasts, datasets, SERVED, config, args.workers)
    print_single_model_targets(ratios, models)
    if anchor is not None:
        # On the served row's own origins: a block another model failed to forecast (an
        # explosive EGARCH in 2008) drops its origins from the common table above.
        judged = ["garch", "gjr-garch-t", SERVED]
        own = losses_of(forecasts, datasets, judged)
        targets = robustness_targets(
            relative_qlike(own, "garch"),
            sub_period_ratios(forecasts, datasets, period, judged),
            relative_qlike(own, "gjr-garch-t"),
            SERVED,
        )
        print_robustness(targets, SERVED)
    print_risk(page, risk)
    return ratios, len(tickers)


def losses_of(
    forecasts: Forecasts, datasets: dict[str, DailyData], models: list[str] | None = None
) -> pd.DataFrame:
    """``loss_table`` of every ticker, on the origins all of ``models`` (default: all) forecast."""
    return pd.concat(
        [
            loss_table(datasets[t], item.origin_positions,
                       {m: p for m, p in item.sigma2.items() if models is None or m in models})
            for t, item in forecasts.items()
            if len(item.origin_positions)
        ],
        ignore_index=True,
    )  # fmt: skip


if __name__ == "__main__":
    main()
