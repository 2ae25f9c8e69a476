"""The daily detector suite over a simulated ticker: alerts at a known break, few without."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from volforecast.core.calendar import sessions
from volforecast.core.tail_risk import EmpiricalShocks, rolling_var_pct
from volforecast.models.base import TAIL_POOL_DAYS
from volforecast.monitoring.drift import VAR_COVERAGES, MonitorSeries, scan
from volforecast.settings import MonitoringSettings

CONFIG = MonitoringSettings()
DAYS = 750
BREAK = 600
"""The monitored period starts at 250; in the break tests volatility jumps on day 600."""


def simulated(rng: np.random.Generator, *, jump: float) -> MonitorSeries:
    """A ticker whose model forecasts its true variance, until the truth jumps by ``jump``×.

    Its VaR is the one it serves: its own past standardized returns' quantile.
    """
    dates = sessions()[-DAYS:]
    truth = np.ones(DAYS)
    truth[BREAK:] *= jump**2
    returns = np.sqrt(truth) * rng.standard_normal(DAYS)
    # A range-based estimate: the true variance times a log-normal measurement error
    rv = truth * np.exp(0.5 * rng.standard_normal(DAYS) - 0.125)
    sigma2 = np.ones(DAYS)
    var_pct = {c: rolling_var_pct(returns, sigma2, EmpiricalShocks, c, pool_days=TAIL_POOL_DAYS)
               for c in VAR_COVERAGES}  # fmt: skip
    return MonitorSeries("SIM", "garch", pd.DatetimeIndex(dates), returns, rv, sigma2, var_pct,
                         start=CONFIG.reference_days)  # fmt: skip


def test_a_volatility_break_raises_alerts_within_days() -> None:
    # Volatility five times the forecast: 1 % a day becoming 5 %, as in October 2008, an
    # error of 4 points, beyond the RMSE trigger of 3
    result = scan(simulated(np.random.default_rng(1), jump=5.0), CONFIG)
    break_day = sessions()[-DAYS:][BREAK].date()
    after = [a for a in result.alerts if a.observed_on >= break_day]
    fired = {a.detector for a in after}
    assert {"level_shift", "cusum", "kupiec_95", "kupiec_99", "rmse"} <= fired
    first = min(a.observed_on for a in after)
    assert (first - break_day).days <= 7, f"first alert on {first}, break on {break_day}"
    cusum = next(a for a in after if a.detector == "cusum")
    assert cusum.detail["direction"] == 1.0  # realized above the forecast
    # Each alert names what fired, the statistic and the threshold it crossed
    assert all(a.ticker == "SIM" and a.statistic >= a.threshold for a in after
               if a.detector != "cusum")  # fmt: skip


def test_a_persistent_regime_is_one_alert_per_detector_not_one_a_day() -> None:
    result = scan(simulated(np.random.default_rng(2), jump=3.0), CONFIG)
    after_break = [a for a in result.alerts if a.detector == "level_shift"
                   and a.observed_on >= sessions()[-DAYS:][BREAK].date()]  # fmt: skip
    assert len(after_break) == 1
    # It is still firing on the last day: the latest checks say so
    latest = {c.detector: c for c in result.latest}
    assert latest["level_shift"].fired
    assert set(latest) == {"level_shift", "kupiec_95", "kupiec_99", "ljung_box", "psi",
                           "rmse", "cusum"}  # fmt: skip


def test_without_a_break_alerts_are_rare() -> None:
    # 500 calm monitored days and 7 detectors: alpha 0.001 each (0.01 for Kupiec) and a
    # 20-day quiet period allow a handful of alerts at most; one a day would be 500.
    counts = [len(scan(simulated(np.random.default_rng(seed), jump=1.0), CONFIG).alerts)
              for seed in range(10)]  # fmt: skip
    assert float(np.mean(counts)) < 4, counts


def test_a_detector_that_fired_before_a_retrain_stays_quiet_across_it() -> None:
    series = simulated(np.random.default_rng(3), jump=3.0)
    first = scan(series, CONFIG)
    level_days = first.fired["level_shift"]
    # Given the detector fired yesterday under the previous model, it raises no new alert
    # on the same regime today
    later = scan(series, CONFIG, {"level_shift": level_days[0] - dt.timedelta(days=1)})
    assert [a for a in later.alerts if a.detector == "level_shift"
            and a.observed_on == level_days[0]] == []  # fmt: skip


def test_scan_needs_the_reference_window() -> None:
    series = simulated(np.random.default_rng(4), jump=1.0)
    short = MonitorSeries(series.ticker, series.model_type, series.dates, series.returns_pct,
                          series.rv_sigma2, series.sigma2, series.var_pct, start=100)  # fmt: skip
    with pytest.raises(ValueError, match="reference days"):
        scan(short, CONFIG)
