"""NYSE trading days: weekends, holidays and one-off closures are skipped."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from volforecast.core.calendar import (
    calendar_end,
    is_trading_day,
    missing_sessions_between,
    trading_days_after,
)

D = dt.date


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        # New Year's Day 2019 is a holiday.
        (D(2018, 12, 31), [D(2019, 1, 2), D(2019, 1, 3), D(2019, 1, 4), D(2019, 1, 7)]),
        # The market stayed shut from 11 to 14 September 2001.
        (D(2001, 9, 10), [D(2001, 9, 17), D(2001, 9, 18), D(2001, 9, 19), D(2001, 9, 20)]),
        # Hurricane Sandy closed it on 29 and 30 October 2012.
        (D(2012, 10, 26), [D(2012, 10, 31), D(2012, 11, 1), D(2012, 11, 2), D(2012, 11, 5)]),
        # Day of mourning for President Bush, 5 December 2018; a Saturday origin works too.
        (D(2018, 12, 1), [D(2018, 12, 3), D(2018, 12, 4), D(2018, 12, 6), D(2018, 12, 7)]),
    ],
)
def test_forecast_dates_skip_closures(origin: dt.date, expected: list[dt.date]) -> None:
    assert trading_days_after(origin, 4) == expected


def test_a_thirty_day_path_has_thirty_distinct_weekdays() -> None:
    days = trading_days_after(D(2024, 12, 20), 30)
    assert len(set(days)) == 30
    assert all(day.weekday() < 5 for day in days)
    assert D(2024, 12, 25) not in days
    assert D(2025, 1, 9) not in days, "national day of mourning for President Carter"


def test_is_trading_day() -> None:
    assert is_trading_day(D(2018, 12, 31))
    assert not is_trading_day(D(2019, 1, 1))
    assert not is_trading_day(D(2019, 1, 5))


def test_bad_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        trading_days_after(D(2020, 1, 2), 0)
    with pytest.raises(ValueError, match="calendar's end"):
        trading_days_after(calendar_end(), 1)
    with pytest.raises(ValueError, match="before the calendar starts"):
        trading_days_after(D(1980, 1, 2), 1)


def test_missing_sessions_count_only_trading_days() -> None:
    dates = np.array(
        ["2018-12-28", "2018-12-31", "2019-01-02", "2019-01-10", "2019-01-10"],
        dtype="datetime64[ns]",
    )
    # 31 Dec follows 28 Dec (weekend); 2 Jan follows 31 Dec (holiday);
    # 3, 4, 7, 8, 9 Jan are missing before the 10th; a repeated date misses nothing.
    assert missing_sessions_between(dates).tolist() == [0, 0, 0, 5, 0]


def test_missing_sessions_before_the_calendar_count_weekdays() -> None:
    dates = np.array(["1985-01-07", "1985-01-14"], dtype="datetime64[ns]")
    assert missing_sessions_between(dates).tolist() == [0, 4]
