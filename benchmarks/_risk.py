"""The accuracy benchmark's risk figures: VaR and ES backtests, FZ0, and the one-year QLIKE.

Judged from the test period's second year (the first fills each model's pool of standardized
returns): every origin from ``FHS_WARMUP`` trading days after the period's start. Three
methods per ticker, each computed by :func:`volforecast.core.tail_risk.tail_risk`, the
function the service and the daily job call:

- ``served``: the served row's walk-forward paths with its own tails: the standardized returns
  of its own one-day forecasts over the up to 1,000 days before the origin (from the period's
  start), 10 days simulated along its path (10,000 paths), as the service does for HAR, the
  LSTM and the combinations, which have no variance recursion;
- ``garch``: GARCH(1,1) exactly as served: fitted at each refit on the days before it, moved
  to each origin with its parameters frozen, and :meth:`~volforecast.models.base.
  VolatilityModel.tail_risk` on its own pool of 1,000 standardized residuals, each simulated
  shock feeding its recursion;
- ``garch-normal``: the same GARCH forecasts with normal quantiles, the yardstick of FZ0.

Per ticker: the one-day exceedance rate at 95, 97.5 and 99 % with Kupiec's and
Christoffersen's tests; the ten-day 99 % VaR's exceedance rate on overlapping windows, and
Kupiec's test on every tenth of them (neighbouring windows share nine days); the
Acerbi-Szekely Z2 test of the 97.5 % ES against draws from each day's own distribution; the
FZ0 loss against GARCH(1,1)-normal with a Diebold-Mariano test; and the QLIKE of the mean
variance over the next 126 and 252 days, each path carried to a year by the term-structure
rule of the served model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from volforecast.core.features import DailyData
from volforecast.core.tail_risk import RISK_LEVELS, EmpiricalShocks, tail_risk
from volforecast.core.term_structure import decay_persistence, extend_path
from volforecast.evaluation.backtest import BacktestConfig, TickerForecasts, blocks
from volforecast.evaluation.risk_backtests import acerbi_szekely_z2, fz0_loss
from volforecast.evaluation.stats import christoffersen, diebold_mariano, kupiec
from volforecast.models.base import TAIL_POOL_DAYS
from volforecast.models.catalog import build_model

FHS_WARMUP = 250
"""Origins at the period's start whose standardized returns only fill the pools."""
METHODS = ("served", "garch", "garch-normal")
ES_LEVEL = 0.975
TERM_HORIZONS = (126, 252)
Z2_DRAWS = 2_000
SEED = 20_190_102


@dataclass
class _Series:
    """One method's VaR and ES of each judged origin, by level, at 1 and 10 days."""

    var1: dict[float, np.ndarray]
    es1: dict[float, np.ndarray]
    var10: np.ndarray
    """The 99 % ten-day VaR."""
    draws: np.ndarray
    """``(Z2_DRAWS, origins)``: one-day returns drawn from each origin's own distribution."""


def _empty(n: int) -> _Series:
    nan = np.full(n, np.nan)
    return _Series({q: nan.copy() for q in RISK_LEVELS}, {q: nan.copy() for q in RISK_LEVELS},
                   nan.copy(), np.full((Z2_DRAWS, n), np.nan))  # fmt: skip


def _store(series: _Series, i: int, risks: list, shocks: object, sigma1: float,
           rng: np.random.Generator) -> None:  # fmt: skip
    for r in risks:
        if r.days == 1:
            series.var1[r.level][i], series.es1[r.level][i] = r.var_pct, r.es_pct
        elif r.level == 0.99:
            series.var10[i] = r.var_pct
    series.draws[:, i] = sigma1 * shocks.draw(rng, (Z2_DRAWS,))  # type: ignore[attr-defined]


def _served(data: DailyData, positions: np.ndarray, paths: np.ndarray, judged: np.ndarray,
            rng: np.random.Generator) -> _Series:  # fmt: skip
    """The served row's figures from its own one-day forecasts' standardized returns."""
    z = np.full(len(positions), np.nan)
    inside = positions + 1 < len(data)  # the last origin forecasts a day not in the data
    z[inside] = data.returns_pct[positions[inside] + 1] / np.sqrt(paths[inside, 0])
    out = _empty(len(judged))
    for i, k in enumerate(judged):
        pool = z[max(0, k - TAIL_POOL_DAYS) : k]
        pool = pool[np.isfinite(pool)]
        if len(pool) < 100 or not np.isfinite(paths[k, :10]).all():
            continue
        shocks = EmpiricalShocks(pool)
        risks = tail_risk(paths[k, :10], shocks, rng=rng)
        _store(out, i, risks, shocks, math.sqrt(paths[k, 0]), rng)
    return out


def _garch(data: DailyData, positions: np.ndarray, judged: np.ndarray, config: BacktestConfig,
           rng: np.random.Generator) -> tuple[_Series, _Series, np.ndarray]:  # fmt: skip
    """GARCH(1,1) as served, its normal-quantile twin, and its paths carried to a year."""
    own, normal = _empty(len(judged)), _empty(len(judged))
    year = np.full((len(judged), max(TERM_HORIZONS)), np.nan)
    dates = data.dates[positions[judged]]
    z = {q: stats.norm.ppf(q) for q in RISK_LEVELS}
    for first, last in blocks(config):
        inside = np.flatnonzero((dates >= first) & (dates <= last))
        if not len(inside):
            continue
        try:
            model = build_model("garch").fit(data.until(first - pd.Timedelta(days=1)))
        except (ValueError, ArithmeticError):
            continue
        for i in inside:
            origin = int(positions[judged[i]])
            model.update(data.head(origin + 1))
            path = model.forecast(30).sigma2
            shocks = model.tail_shocks()  # what model.tail_risk draws from, made once here
            risks = tail_risk(path[:10], shocks, rng=rng, recursion=model.variance_recursion())
            _store(own, i, risks, shocks, math.sqrt(path[0]), rng)
            sigma, sigma10 = math.sqrt(path[0]), math.sqrt(path[:10].sum())
            for q in RISK_LEVELS:
                normal.var1[q][i] = z[q] * sigma
                normal.es1[q][i] = stats.norm.pdf(z[q]) / (1 - q) * sigma
            normal.var10[i] = z[0.99] * sigma10
            normal.draws[:, i] = sigma * rng.standard_normal(Z2_DRAWS)
            long_run = model.long_run_sigma2()
            year[i] = extend_path(path, long_run, model.term_persistence(path, long_run),
                                  max(TERM_HORIZONS))  # fmt: skip
    return own, normal, year


def _served_year(data: DailyData, positions: np.ndarray, paths: np.ndarray, judged: np.ndarray,
                 config: BacktestConfig) -> np.ndarray:  # fmt: skip
    """The served paths carried to a year toward the mean proxy of the days before each refit."""
    year = np.full((len(judged), max(TERM_HORIZONS)), np.nan)
    dates = data.dates[positions[judged]]
    for first, last in blocks(config):
        inside = np.flatnonzero((dates >= first) & (dates <= last))
        long_run = float(np.mean(data.until(first - pd.Timedelta(days=1)).rv_sigma2))
        for i in inside:
            path = paths[judged[i]]
            if np.isfinite(path).all() and (path > 0).all():
                year[i] = extend_path(path, long_run, decay_persistence(path, long_run),
                                      max(TERM_HORIZONS))  # fmt: skip
    return year


def ten_day_rejected(hits: np.ndarray, level: float = 0.99) -> float:
    """Kupiec's 5 % test of ten-day exceedances on non-overlapping windows, 1.0 if it rejects.

    Windows that step a day share nine days, so one bad fortnight counts up to ten times and
    a binomial test of them all rejects a right VaR about a third of the time; every tenth
    window is independent of the others when the VaR is right.
    """
    return float(kupiec(hits[::10], level).pvalue < 0.05)


def _judge(
    returns1: np.ndarray, returns10: np.ndarray, series: _Series, garch_normal: _Series
) -> dict[str, float]:
    """One method's per-ticker figures."""
    row: dict[str, float] = {}
    # Days both this method and the FZ0 yardstick forecast (a failed GARCH fit has neither).
    ok = (np.isfinite(series.var1[0.99]) & np.isfinite(returns1)
          & np.isfinite(garch_normal.var1[ES_LEVEL]))  # fmt: skip
    for q in RISK_LEVELS:
        hits = returns1[ok] < -series.var1[q][ok]
        row[f"rate {q:.1%}"] = 100 * hits.mean()
        row[f"kupiec {q:.1%}"] = float(kupiec(hits, q).pvalue < 0.05)
        row[f"cc {q:.1%}"] = float(christoffersen(hits, q).pvalue < 0.05)
    ten = ok & np.isfinite(returns10) & np.isfinite(series.var10)
    hits10 = returns10[ten] < -series.var10[ten]
    row["rate 10 d 99%"] = 100 * hits10.mean()
    row["10 d rejected"] = ten_day_rejected(hits10)
    test = acerbi_szekely_z2(returns1[ok], series.var1[ES_LEVEL][ok], series.es1[ES_LEVEL][ok],
                             ES_LEVEL, simulated_pct=series.draws[:, ok])  # fmt: skip
    row["z2 rejected"] = float(test.pvalue < 0.05)
    own = fz0_loss(returns1[ok], series.var1[ES_LEVEL][ok], series.es1[ES_LEVEL][ok], ES_LEVEL)
    base = fz0_loss(returns1[ok], garch_normal.var1[ES_LEVEL][ok],
                    garch_normal.es1[ES_LEVEL][ok], ES_LEVEL)  # fmt: skip
    row["fz0 diff"] = float(np.mean(own - base))
    row["fz0 dm p"] = diebold_mariano(own, base).pvalue if np.any(own != base) else 1.0
    return row


def _term_qlike(data: DailyData, origins: np.ndarray, year: np.ndarray) -> dict[int, float]:
    """Mean QLIKE of the mean variance over the next 126 and 252 days (range proxy)."""
    out = {}
    for h in TERM_HORIZONS:
        losses = []
        for i, origin in enumerate(origins):
            if origin + h >= len(data) or not np.isfinite(year[i, :h]).all():
                continue
            realized = float(np.mean(data.rv_sigma2[origin + 1 : origin + h + 1]))
            forecast = float(np.mean(year[i, :h]))
            losses.append(realized / forecast - math.log(realized / forecast) - 1)
        out[h] = float(np.mean(losses)) if losses else math.nan
    return out


def ticker_risk(data: DailyData, item: TickerForecasts, served: str,
                config: BacktestConfig) -> list[dict[str, object]]:  # fmt: skip
    """Every method's figures for one ticker, one row each."""
    rng = np.random.default_rng([SEED, sum(map(ord, data.ticker))])
    positions = item.origin_positions
    judged = np.arange(FHS_WARMUP, len(positions))
    judged = judged[positions[judged] + 1 < len(data)]
    if not len(judged) or served not in item.sigma2:
        return []
    origins = positions[judged]
    returns1 = data.returns_pct[origins + 1]
    cumulative = np.concatenate([[0.0], np.cumsum(data.returns_pct)])
    ends = origins + 10
    returns10 = np.where(ends < len(data), cumulative[np.minimum(ends, len(data) - 1) + 1]
                         - cumulative[origins + 1], np.nan)  # fmt: skip
    paths = item.sigma2[served]
    series = {"served": _served(data, positions, paths, judged, rng)}
    series["garch"], series["garch-normal"], garch_year = _garch(
        data, positions, judged, config, rng
    )
    years = {"served": _served_year(data, positions, paths, judged, config), "garch": garch_year}
    rows = []
    for method in METHODS:
        row: dict[str, object] = {"ticker": data.ticker, "method": method}
        row |= _judge(returns1, returns10, series[method], series["garch-normal"])
        if method in years:
            row |= {f"qlike {h} d": v for h, v in _term_qlike(data, origins, years[method]).items()}
        rows.append(row)
    return rows


def risk_table(forecasts: dict[str, TickerForecasts], datasets: dict[str, DailyData],
               served: str, config: BacktestConfig, workers: int) -> pd.DataFrame:  # fmt: skip
    """:func:`ticker_risk` of every ticker, in ``workers`` processes."""
    tickers = sorted(forecasts)
    with ProcessPoolExecutor(max_workers=max(workers, 1)) as pool:
        done = pool.map(ticker_risk, [datasets[t] for t in tickers],
                        [forecasts[t] for t in tickers], [served] * len(tickers),
                        [config] * len(tickers))  # fmt: skip
        return pd.DataFrame([row for rows in done for row in rows])


@dataclass(frozen=True)
class RiskTarget:
    """One target of the risk figures (issue 25), and whether it holds."""

    what: str
    value: float
    low: float
    high: float

    @property
    def met(self) -> bool:
        return self.low <= self.value <= self.high


def risk_targets(table: pd.DataFrame, method: str) -> Iterator[RiskTarget]:
    """The issue's targets for one method, over its tickers."""
    rows = table[table["method"] == method]
    for q in RISK_LEVELS:
        nominal = 100 * (1 - q)
        yield RiskTarget(
            f"1 d {q:.1%} median exceedance rate, %",
            float(rows[f"rate {q:.1%}"].median()),
            0.8 * nominal,
            1.25 * nominal,
        )
        yield RiskTarget(
            f"1 d {q:.1%} Kupiec rejects, share", float(rows[f"kupiec {q:.1%}"].mean()), 0.0, 0.08
        )
        yield RiskTarget(f"1 d {q:.1%} Christoffersen rejects, share",
                         float(rows[f"cc {q:.1%}"].mean()), 0.0, 0.12)  # fmt: skip
    yield RiskTarget(
        "10 d 99% median exceedance rate, %", float(rows["rate 10 d 99%"].median()), 0.5, 2.0
    )
    yield RiskTarget("ES 97.5% Z2 rejects, share", float(rows["z2 rejected"].mean()), 0.0, 0.10)
    if method != "garch-normal":
        yield RiskTarget(
            "FZ0 below GARCH-normal's, share of tickers",
            float((rows["fz0 diff"] < 0).mean()),
            0.8,
            1.0,
        )


def print_risk(page: object, table: pd.DataFrame) -> list[RiskTarget]:
    """The per-method medians and shares, then each target of the served row and GARCH."""
    by = table.groupby("method", sort=False)
    rates = [c for c in table.columns if c.startswith("rate")]
    shares = [c for c in table.columns if c.startswith(("kupiec", "cc ", "10 d rej", "z2"))]
    summary = pd.concat([by[rates].median(), by[shares].mean()], axis=1)
    summary["FZ0 below GARCH-normal"] = by["fz0 diff"].apply(lambda s: float((s < 0).mean()))
    summary["FZ0 DM p (median)"] = by["fz0 dm p"].median()
    page.table(  # type: ignore[attr-defined]
        "VaR and ES on every origin of the period's later years: median exceedance rate (%), "
        "share of tickers each test rejects at 5 %, and the FZ0 loss (97.5 %) against "
        "GARCH(1,1)-normal's",
        summary.reindex(list(METHODS)).round(3),
    )
    terms = table.pivot_table(index="ticker", columns="method",
                              values=[f"qlike {h} d" for h in TERM_HORIZONS])  # fmt: skip
    ratio = pd.DataFrame({f"{h} d": [float((terms[(f"qlike {h} d", "served")]
                                            / terms[(f"qlike {h} d", "garch")]).median())]
                          for h in TERM_HORIZONS}, index=["served / garch"])  # fmt: skip
    page.table(  # type: ignore[attr-defined]
        "Term structure: median across tickers of the QLIKE of the mean variance over the "
        "next 126 and 252 days (range proxy), served over GARCH(1,1)",
        ratio.round(3),
    )
    targets = []
    print("\nTargets of the risk figures (issue 25)")
    for method in ("served", "garch"):
        for target in risk_targets(table, method):
            verdict = "met" if target.met else "NOT met"
            print(f"  {method}: {target.what} {target.value:.3f} "
                  f"(within {target.low:g}-{target.high:g}: {verdict})")  # fmt: skip
            targets.append(target)
    for h in TERM_HORIZONS:
        value = float(ratio[f"{h} d"].iloc[0])
        target = RiskTarget(f"{h}-day QLIKE, served over GARCH", value, 0.0, 1.0)
        print(f"  served: {target.what} {value:.3f} (<= 1.0: {'met' if target.met else 'NOT met'})")
        targets.append(target)
    held = sum(t.met for t in targets)
    print(f"  risk: {held} of {len(targets)} hold")
    return targets


def mcs_table(
    forecasts: dict[str, TickerForecasts],
    datasets: dict[str, DailyData],
    models: list[str],
    horizons: tuple[int, ...],
    reps: int = 500,
) -> pd.DataFrame:
    """Share of tickers in whose 90 % model confidence set each model is, per horizon.

    The set is ``arch.bootstrap.MCS`` over each origin's QLIKE (range proxy) on the origins
    every model forecast, with a block bootstrap as long as the horizon (at least 5 days).
    """
    from arch.bootstrap import MCS  # noqa: PLC0415

    from volforecast.core.losses import qlike_losses  # noqa: PLC0415
    from volforecast.evaluation.metrics import horizon_targets  # noqa: PLC0415

    counts = {(m, h): 0 for m in models for h in horizons}
    judged = dict.fromkeys(horizons, 0)
    for ticker, item in forecasts.items():
        data = datasets[ticker]
        present = [m for m in models if m in item.sigma2]
        if len(present) < 2:
            continue
        for h in horizons:
            targets = {m: horizon_targets(data, item.origin_positions, item.sigma2[m], h, "range")
                       for m in present}  # fmt: skip
            common = targets[present[0]].rows
            for t in targets.values():
                common = np.intersect1d(common, t.rows)
            if len(common) < 100:
                continue
            losses = pd.DataFrame({m: qlike_losses(t.realized[np.isin(t.rows, common)],
                                                   t.forecast[np.isin(t.rows, common)])
                                   for m, t in targets.items()})  # fmt: skip
            # Models that forecast alike (the served row when one family served throughout)
            # have no loss difference to bootstrap: one stands for all in the set.
            twin = {m: next(k for k in losses if losses[k].equals(losses[m])) for m in losses}
            unique = losses[sorted(set(twin.values()), key=list(losses).index)]
            if unique.shape[1] > 1:
                mcs = MCS(unique, size=0.10, reps=reps, block_size=max(h, 5), method="R",
                          seed=SEED)  # fmt: skip
                mcs.compute()
                included = set(mcs.included)
            else:
                included = set(unique)
            judged[h] += 1
            for m in losses:
                counts[(m, h)] += twin[m] in included
    return pd.DataFrame({f"{h} d": [counts[(m, h)] / max(judged[h], 1) for m in models]
                         for h in horizons}, index=models)  # fmt: skip
