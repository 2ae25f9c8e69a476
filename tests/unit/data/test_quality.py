"""The data-quality gate, check by check, and its idempotence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import clean_prices, with_row
from volforecast.data.quality.gate import run_gate
from volforecast.settings import QualitySettings

CONFIG = QualitySettings()


def gate(*frames: pd.DataFrame, config: QualitySettings = CONFIG):  # type: ignore[no-untyped-def]
    return run_gate(pd.concat(frames, ignore_index=True), config)


def findings(result, ticker: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {f.check: f.rows for f in result.report.tickers[ticker].findings}


def test_clean_prices_pass_untouched() -> None:
    frame = clean_prices("AAA")
    result = gate(frame)
    assert result.report.clean
    assert result.rejected.empty
    assert len(result.accepted) == len(frame)
    assert result.report.tickers["AAA"].status == "ok"


@pytest.mark.parametrize(
    ("values", "check"),
    [
        ({"close": np.nan}, "missing_value"),
        ({"adj_close": np.nan}, "missing_value"),
        ({"low": -1.0}, "non_positive_price"),
        ({"open": 0.0}, "non_positive_price"),
        ({"volume": -5.0}, "non_positive_price"),
        ({"high": 90.0, "low": 95.0, "open": 92.0, "close": 92.0}, "high_below_low"),
        ({"high": 101.0, "low": 99.0, "open": 103.0, "close": 100.0}, "open_outside_range"),
        ({"high": 101.0, "low": 99.0, "open": 100.0, "close": 98.0}, "close_outside_range"),
    ],
)
def test_a_bad_row_is_rejected_alone(values: dict[str, float], check: str) -> None:
    frame = with_row(clean_prices("AAA", price=100.0, vol_pct=0.1), 150, **values)
    if "close" in values and not np.isnan(values["close"]):
        frame.loc[frame.index[150], "adj_close"] = values["close"]
    result = gate(frame)
    assert findings(result, "AAA") == {check: 1}
    assert result.rejected["check"].tolist() == [check]
    assert len(result.accepted) == len(frame) - 1
    assert result.report.tickers["AAA"].status == "partial"
    assert result.report.tickers["AAA"].findings[0].examples, "a finding shows an example"


def test_a_missing_date_is_rejected() -> None:
    frame = with_row(clean_prices("AAA"), 10, date=pd.NaT)  # type: ignore[arg-type]
    assert findings(gate(frame), "AAA") == {"missing_value": 1}


@pytest.mark.parametrize("symbol", ["#$%@!", "", "TOO-LONG-TICKER-NAME", "A B"])
def test_a_garbage_ticker_is_rejected_whole(symbol: str) -> None:
    result = gate(clean_prices("GOOD"), clean_prices(symbol, seed=1))
    assert result.report.tickers[symbol].status == "rejected"
    assert findings(result, symbol) == {"bad_ticker": 300}
    assert result.report.tickers["GOOD"].status == "ok"
    assert set(result.accepted["ticker"]) == {"GOOD"}


@pytest.mark.parametrize("symbol", ["BRK.B", "BF-B", "^GSPC", "EURUSD=X", "A"])
def test_real_ticker_shapes_are_accepted(symbol: str) -> None:
    assert gate(clean_prices(symbol)).report.clean


def test_identical_duplicates_collapse_to_one() -> None:
    frame = clean_prices("AAA")
    result = gate(frame, frame.iloc[[20]])
    assert findings(result, "AAA") == {"duplicate_date": 1}
    assert len(result.accepted) == len(frame)
    assert not result.accepted.duplicated(["ticker", "date"]).any()


def test_conflicting_duplicates_are_all_rejected() -> None:
    frame = clean_prices("AAA")
    other = frame.iloc[[20]].assign(close=lambda f: f["close"] * 1.001)
    other["adj_close"] = other["close"]
    other["high"] = other[["high", "close"]].max(axis=1)
    result = gate(frame, other)
    assert findings(result, "AAA") == {"duplicate_date": 2}
    assert frame["date"].iloc[20] not in set(result.accepted["date"])


def test_stale_closes_keep_the_first_and_reject_the_repeats() -> None:
    frame = clean_prices("AAA")
    rows = frame.index[100:106]  # six equal closes, as a forward-filled feed shows them
    frame.loc[rows, ["open", "high", "low", "close", "adj_close"]] = frame.loc[rows[0], "close"]
    result = gate(frame)
    assert findings(result, "AAA") == {"stale_price": 5}
    assert (result.accepted["date"] == frame.loc[rows[0], "date"]).any()
    assert "6 days" in result.report.tickers["AAA"].findings[0].examples[0]


def test_a_short_run_of_equal_closes_is_fine() -> None:
    frame = clean_prices("AAA")
    rows = frame.index[100:104]
    frame.loc[rows, ["open", "high", "low", "close", "adj_close"]] = frame.loc[rows[0], "close"]
    assert gate(frame).report.clean


def test_a_spike_undone_the_next_day_is_rejected() -> None:
    frame = clean_prices("AAA", vol_pct=0.5)
    day = frame.index[200]
    frame.loc[day, ["open", "high", "low", "close", "adj_close"]] *= 2.0
    result = gate(frame)
    assert findings(result, "AAA") == {"price_spike": 1}
    example = result.report.tickers["AAA"].findings[0].examples[0]
    assert example.startswith(frame.loc[day, "date"].date().isoformat())
    assert "+69." in example, "the move is ln 2 = +69.3 % plus one day's noise"


def test_a_gap_breaks_the_series_and_keeps_the_recent_part() -> None:
    frame = clean_prices("AAA").drop(index=range(100, 130))
    result = gate(frame)
    assert findings(result, "AAA") == {"gap": 100}
    accepted = result.accepted
    assert accepted["date"].min() == frame["date"].iloc[100]
    assert "30 NYSE sessions" in result.report.tickers["AAA"].findings[0].detail


def test_a_jump_that_stays_breaks_the_series() -> None:
    frame = clean_prices("AAA", vol_pct=0.5)
    later = frame.index[150:]
    frame.loc[later, ["open", "high", "low", "close", "adj_close"]] /= 3.0  # -109.9 %
    result = gate(frame)
    assert findings(result, "AAA") == {"implausible_return": 150}


def test_a_real_crash_within_the_bound_is_kept() -> None:
    frame = clean_prices("AAA", vol_pct=0.5)
    frame.loc[frame.index[150:], ["open", "high", "low", "close", "adj_close"]] *= 0.4  # -91.6 %
    assert gate(frame).report.clean


def split_on(frame: pd.DataFrame, position: int, ratio: float, *, reflected: bool) -> pd.DataFrame:
    out = frame.copy()
    later = out.index[position:]
    out.loc[later, ["open", "high", "low", "close"]] /= ratio
    out.loc[out.index[position], "split_coefficient"] = ratio
    if reflected:
        out.loc[out.index[:position], "adj_close"] /= ratio
    else:
        out.loc[later, "adj_close"] /= ratio
    return out


def test_an_unreflected_split_breaks_the_series() -> None:
    frame = split_on(clean_prices("AAA", vol_pct=0.5), 120, 1.5, reflected=False)
    result = gate(frame)
    assert findings(result, "AAA") == {"unreflected_split": 120}
    assert "split 1.5:1" in result.report.tickers["AAA"].findings[0].detail


def test_a_reflected_split_passes() -> None:
    frame = split_on(clean_prices("AAA", vol_pct=0.5), 120, 2.0, reflected=True)
    assert gate(frame).report.clean


def test_one_bad_ticker_never_touches_the_others() -> None:
    good = clean_prices("GOOD")
    bad = with_row(clean_prices("BAD", seed=1), 5, low=-1.0)
    result = gate(good, bad)
    assert result.report.with_status("ok") == ["GOOD"]
    assert result.report.with_status("partial") == ["BAD"]
    accepted_good = result.accepted[result.accepted["ticker"] == "GOOD"].reset_index(drop=True)
    pd.testing.assert_frame_equal(accepted_good, good.reset_index(drop=True))


def test_the_report_is_json_ready() -> None:
    result = gate(with_row(clean_prices("AAA"), 3, close=np.nan))
    payload = json.loads(json.dumps(result.report.to_dict()))
    assert payload["tickers"]["AAA"]["findings"][0]["check"] == "missing_value"
    assert payload["rows_received"] == 300


def test_thresholds_come_from_the_settings() -> None:
    frame = clean_prices("AAA").drop(index=range(100, 104))  # a 4-session gap
    assert gate(frame).report.clean
    strict = QualitySettings(max_gap_trading_days=3)
    assert findings(gate(frame, config=strict), "AAA") == {"gap": 100}


FAULTS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=199),
        st.sampled_from(["negative", "nan", "swap", "spike", "drop", "stale", "dup", "jump"]),
    ),
    max_size=8,
)


def plant(frame: pd.DataFrame, faults: list[tuple[int, str]]) -> pd.DataFrame:
    out = frame.copy()
    prices = ["open", "high", "low", "close", "adj_close"]
    extra = []
    for wanted, fault in faults:
        position = wanted % len(out)  # earlier drops shorten the frame
        row = out.index[position]
        if fault == "negative":
            out.loc[row, "low"] = -1.0
        elif fault == "nan":
            out.loc[row, "close"] = np.nan
        elif fault == "swap":
            out.loc[row, ["high", "low"]] = out.loc[row, ["low", "high"]].to_numpy()
        elif fault == "spike":
            out.loc[row, prices] *= 3.0
        elif fault == "drop":
            out = out.drop(index=out.index[position : position + 15], errors="ignore")
        elif fault == "stale":
            out.loc[out.index[position : position + 8], prices] = out.loc[row, "close"]
        elif fault == "dup":
            extra.append(out.loc[[row]].assign(close=lambda f: f["close"] * 1.01))
        elif fault == "jump":
            out.loc[out.index[position:], prices] /= 4.0
    return pd.concat([out, *extra], ignore_index=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(faults=FAULTS)
def test_the_gate_accepts_its_own_output_unchanged(faults: list[tuple[int, str]]) -> None:
    frame = plant(clean_prices("AAA", 200, vol_pct=0.8), faults)
    first = run_gate(frame, CONFIG)
    second = run_gate(first.accepted, CONFIG)
    assert second.rejected.empty, second.report.to_dict()
    assert len(first.accepted) + len(first.rejected) == len(frame), "no row vanishes unreported"


def test_a_frame_of_the_wrong_layout_is_a_bug_not_bad_data() -> None:
    frame = clean_prices("AAA").astype({"date": "string"})
    with pytest.raises(ValueError, match="not in the raw price layout: date"):
        run_gate(frame, CONFIG)
