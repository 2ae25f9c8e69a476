"""Realized-variance estimators: hand-computed values and unbiasedness on a simulated process."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from volforecast.core import realized
from volforecast.core.realized import (
    ESTIMATORS,
    close_to_close,
    garman_klass,
    garman_klass_yang_zhang,
    parkinson,
    realized_variance,
    rogers_satchell,
    yang_zhang,
    yang_zhang_k,
)

PCT2 = 1e4
# Three days of prices, written out so every value below can be checked with a pencil.
OPEN = [100.0, 104.0, 101.0]
HIGH = [106.0, 107.0, 103.5]
LOW = [98.0, 101.0, 97.0]
CLOSE = [103.0, 102.0, 99.0]


def ln(x: float) -> float:
    return math.log(x)


class TestHandComputed:
    def test_parkinson_of_a_range_of_e_is_one_over_four_ln2(self) -> None:
        # ln(H/LOW) = 1 exactly, so the estimate is 100² / (4 ln 2).
        got = parkinson([math.e], [1.0])
        assert_allclose(got, [PCT2 / (4 * math.log(2))], rtol=1e-12)

    def test_garman_klass_with_open_equal_close_is_half_the_squared_range(self) -> None:
        got = garman_klass([50.0], [50.0 * math.e], [50.0], [50.0])
        assert_allclose(got, [0.5 * PCT2], rtol=1e-12)

    def test_rogers_satchell_with_open_equal_close_is_u2_plus_d2(self) -> None:
        # u = ln(H/OPEN) = 0.3, d = ln(L/OPEN) = -0.2, c = 0: RS = u*u + d*d.
        o = 10.0
        got = rogers_satchell([o], [o * math.exp(0.3)], [o * math.exp(-0.2)], [o])
        assert_allclose(got, [PCT2 * (0.09 + 0.04)], rtol=1e-12)

    def test_close_to_close_by_hand(self) -> None:
        expected = [math.nan, PCT2 * ln(102 / 103) ** 2, PCT2 * ln(99 / 102) ** 2]
        assert_allclose(close_to_close(CLOSE), expected, rtol=1e-12)

    def test_parkinson_by_hand(self) -> None:
        expected = [PCT2 * ln(h / lo) ** 2 / (4 * ln(2)) for h, lo in zip(HIGH, LOW, strict=True)]
        assert_allclose(parkinson(HIGH, LOW), expected, rtol=1e-12)

    def test_garman_klass_by_hand(self) -> None:
        expected = [
            PCT2 * (0.5 * ln(h / lo) ** 2 - (2 * ln(2) - 1) * ln(c / o) ** 2)
            for o, h, lo, c in zip(OPEN, HIGH, LOW, CLOSE, strict=True)
        ]
        assert_allclose(garman_klass(OPEN, HIGH, LOW, CLOSE), expected, rtol=1e-12)

    def test_rogers_satchell_by_hand(self) -> None:
        expected = [
            PCT2 * (ln(h / c) * ln(h / o) + ln(lo / c) * ln(lo / o))
            for o, h, lo, c in zip(OPEN, HIGH, LOW, CLOSE, strict=True)
        ]
        assert_allclose(rogers_satchell(OPEN, HIGH, LOW, CLOSE), expected, rtol=1e-12)

    def test_garman_klass_yang_zhang_by_hand(self) -> None:
        expected = [math.nan] + [
            PCT2 * (ln(o / c_prev) ** 2 + 0.5 * ln(h / lo) ** 2 - (2 * ln(2) - 1) * ln(c / o) ** 2)
            for c_prev, o, h, lo, c in zip(
                CLOSE[:-1], OPEN[1:], HIGH[1:], LOW[1:], CLOSE[1:], strict=True
            )
        ]
        assert_allclose(garman_klass_yang_zhang(OPEN, HIGH, LOW, CLOSE), expected, rtol=1e-12)

    def test_yang_zhang_k_for_a_two_day_window(self) -> None:
        # n = 2: (n+1)/(n-1) = 3, so k = 0.34 / 4.34.
        assert yang_zhang_k(2) == pytest.approx(0.34 / 4.34, rel=1e-15)

    def test_yang_zhang_by_hand(self) -> None:
        # Window of 2 ending on day 3: overnight returns of days 2 and 3, open-to-close of both.
        overnight = [ln(104 / 103), ln(101 / 102)]
        open_close = [ln(102 / 104), ln(99 / 101)]
        rs = [
            ln(h / c) * ln(h / o) + ln(lo / c) * ln(lo / o)
            for o, h, lo, c in zip(OPEN[1:], HIGH[1:], LOW[1:], CLOSE[1:], strict=True)
        ]
        k = 0.34 / 4.34
        expected = PCT2 * (
            statistics.variance(overnight)
            + k * statistics.variance(open_close)
            + (1 - k) * statistics.fmean(rs)
        )
        got = yang_zhang(OPEN, HIGH, LOW, CLOSE, window=2)
        assert np.isnan(got[:2]).all(), "no estimate before a full window with overnight returns"
        assert got[2] == pytest.approx(expected, rel=1e-12)

    def test_rogers_satchell_is_never_negative(self) -> None:
        rng = np.random.default_rng(7)
        o = rng.uniform(90, 110, 1000)
        c = rng.uniform(90, 110, 1000)
        h = np.maximum(o, c) * rng.uniform(1.0, 1.05, 1000)
        lo = np.minimum(o, c) * rng.uniform(0.95, 1.0, 1000)
        assert (rogers_satchell(o, h, lo, c) >= 0).all()


class TestValidation:
    @pytest.mark.parametrize("bad", [0.0, -1.0])
    def test_non_positive_prices_are_refused(self, bad: float) -> None:
        with pytest.raises(ValueError, match="positive prices"):
            parkinson([10.0, bad], [9.0, 9.0])

    def test_yang_zhang_needs_two_days(self) -> None:
        with pytest.raises(ValueError, match="at least 2 days"):
            yang_zhang(OPEN, HIGH, LOW, CLOSE, window=1)

    def test_unknown_estimator_is_named_in_the_error(self) -> None:
        frame = pd.DataFrame({"open": OPEN, "high": HIGH, "low": LOW, "close": CLOSE})
        with pytest.raises(ValueError, match="unknown estimator 'vix'"):
            realized_variance(frame, "vix")  # type: ignore[arg-type]

    @pytest.mark.parametrize("estimator", ESTIMATORS)
    def test_frame_wrapper_keeps_the_index(self, estimator: realized.Estimator) -> None:
        index = pd.date_range("2020-01-02", periods=3, freq="B")
        frame = pd.DataFrame({"open": OPEN, "high": HIGH, "low": LOW, "close": CLOSE}, index=index)
        out = realized_variance(frame, estimator, window=2)
        assert out.index.equals(index)
        assert out.name == estimator


def simulate_ohlc(
    rng: np.random.Generator,
    *,
    days: int,
    intraday_var: float,
    overnight_var: float,
    drift_per_day: float = 0.0,
    steps: int = 50,
) -> pd.DataFrame:
    """Daily OHLC of a Brownian motion with exact intraday extremes.

    Between two grid points ``a`` and ``b`` of variance ``s2`` the maximum of the Brownian
    bridge is ``(a + b + sqrt((b - a)² - 2 s2 ln U)) / 2`` with ``U`` uniform, so the high and
    low are those of the continuous path (each step's extremes drawn independently; the
    day's high and low almost never fall in the same step).
    """
    s2 = intraday_var / steps
    overnight = rng.normal(0.0, math.sqrt(overnight_var), days)
    increments = rng.normal(drift_per_day / steps, math.sqrt(s2), (days, steps))
    opens = np.empty(days)
    closes = np.empty(days)
    highs = np.empty(days)
    lows = np.empty(days)
    previous_close = 0.0
    for day in range(days):
        path = previous_close + overnight[day] + np.concatenate(([0.0], increments[day].cumsum()))
        a, b = path[:-1], path[1:]
        span = (b - a) ** 2
        top = (a + b + np.sqrt(span - 2 * s2 * np.log(rng.uniform(size=steps)))) / 2
        bottom = (a + b - np.sqrt(span - 2 * s2 * np.log(rng.uniform(size=steps)))) / 2
        opens[day], closes[day] = path[0], path[-1]
        highs[day], lows[day] = top.max(), bottom.min()
        previous_close = path[-1]
    return pd.DataFrame(
        {
            "open": np.exp(opens),
            "high": np.exp(highs),
            "low": np.exp(lows),
            "close": np.exp(closes),
        }
    )


INTRADAY_VAR = 0.012**2  # 1.2 % per trading session
OVERNIGHT_VAR = 0.006**2  # 0.6 % overnight


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate_ohlc(
        np.random.default_rng(20240601),
        days=6000,
        intraday_var=INTRADAY_VAR,
        overnight_var=OVERNIGHT_VAR,
    )


def assert_unbiased(estimates: np.ndarray, truth: float) -> None:
    values = estimates[np.isfinite(estimates)]
    mean = values.mean()
    se = values.std(ddof=1) / math.sqrt(len(values))
    assert abs(mean - truth) < 4 * se, (
        f"mean {mean:.5f} vs true {truth:.5f}: {abs(mean - truth) / se:.1f} standard errors"
    )


class TestUnbiasedOnSimulatedConstantVolatility:
    @pytest.mark.parametrize("estimator", ["parkinson", "garman_klass", "rogers_satchell"])
    def test_range_estimators_measure_the_session_variance(
        self, simulated: pd.DataFrame, estimator: realized.Estimator
    ) -> None:
        estimates = realized_variance(simulated, estimator).to_numpy()
        assert_unbiased(estimates, PCT2 * INTRADAY_VAR)

    @pytest.mark.parametrize("estimator", ["close_to_close", "garman_klass_yang_zhang"])
    def test_daily_whole_day_estimators_measure_the_whole_day(
        self, simulated: pd.DataFrame, estimator: realized.Estimator
    ) -> None:
        estimates = realized_variance(simulated, estimator).to_numpy()
        assert_unbiased(estimates, PCT2 * (INTRADAY_VAR + OVERNIGHT_VAR))

    def test_yang_zhang_measures_the_whole_day(self, simulated: pd.DataFrame) -> None:
        window = 20
        estimates = realized_variance(simulated, "yang_zhang", window=window).to_numpy()
        # Windows overlap; every `window`-th estimate gives independent draws for the error bar.
        assert_unbiased(estimates[window::window], PCT2 * (INTRADAY_VAR + OVERNIGHT_VAR))

    def test_range_estimators_beat_the_squared_return_in_efficiency(
        self, simulated: pd.DataFrame
    ) -> None:
        log = np.log(simulated)
        open_close = PCT2 * (log["close"] - log["open"]) ** 2
        for estimator in ("parkinson", "garman_klass"):
            spread = realized_variance(simulated, estimator).var()
            assert spread < open_close.var() / 3, f"{estimator} should be far less noisy"

    def test_drift_biases_parkinson_but_not_rogers_satchell(self) -> None:
        # A drift of 3 session standard deviations a day widens the range; RS corrects for it.
        drifting = simulate_ohlc(
            np.random.default_rng(11),
            days=4000,
            intraday_var=INTRADAY_VAR,
            overnight_var=0.0,
            drift_per_day=3 * math.sqrt(INTRADAY_VAR),
        )
        assert_unbiased(
            realized_variance(drifting, "rogers_satchell").to_numpy(), PCT2 * INTRADAY_VAR
        )
        parkinson_mean = realized_variance(drifting, "parkinson").mean()
        assert parkinson_mean > 1.5 * PCT2 * INTRADAY_VAR
