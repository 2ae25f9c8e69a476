"""Freshness: the last stored close judged against the NYSE session a run is for."""

from __future__ import annotations

import datetime as dt

import pytest

from volforecast.data.sources import load_sample
from volforecast.errors import StalePricesError
from volforecast.jobs.freshness import judge, latest_closed_session, session_on_or_before

D = dt.date


@pytest.mark.parametrize(
    ("last_close", "as_of", "session", "behind"),
    [
        # Same day: the run's own session is stored.
        (D(2018, 12, 31), D(2018, 12, 31), D(2018, 12, 31), 0),
        # A weekend asks for Friday's close.
        (D(2018, 12, 28), D(2018, 12, 30), D(2018, 12, 28), 0),
        # Christmas Day is a holiday: Monday 24 December is the session.
        (D(2018, 12, 24), D(2018, 12, 25), D(2018, 12, 24), 0),
        # New Year's Day 2019 as well: 31 December 2018 is enough.
        (D(2018, 12, 31), D(2019, 1, 1), D(2018, 12, 31), 0),
        # One session behind: Friday's close on Monday.
        (D(2018, 12, 28), D(2018, 12, 31), D(2018, 12, 31), 1),
        # Over the holiday: 24 December's close on 26 December is one session behind, not two.
        (D(2018, 12, 24), D(2018, 12, 26), D(2018, 12, 26), 1),
        # The day of mourning for President Bush (5 December 2018) is no session either.
        (D(2018, 12, 3), D(2018, 12, 6), D(2018, 12, 6), 2),
        # A close later than the run's session (a backfill of a past date) is fresh.
        (D(2018, 12, 31), D(2018, 6, 29), D(2018, 6, 29), 0),
    ],
    ids=[
        "same-day",
        "weekend",
        "christmas",
        "new-year",
        "one-behind",
        "over-holiday",
        "mourning-day",
        "backfill",
    ],
)
def test_judge_counts_the_nyse_sessions_missing(
    last_close: dt.date, as_of: dt.date, session: dt.date, behind: int
) -> None:
    judged = judge(last_close, as_of)
    assert judged.session == session
    assert judged.sessions_behind == behind, judged
    assert judged.fresh is (behind == 0)


def test_stale_prices_say_which_close_is_last_and_since_when() -> None:
    judged = judge(D(2018, 12, 28), D(2019, 1, 2))
    assert judged.stale_since == D(2018, 12, 31)
    assert "the last stored close is 2018-12-28, 2 sessions behind" in judged.message
    assert "NYSE session of 2019-01-02" in judged.message
    assert "--allow-stale" in judged.message
    assert judged.health_detail.startswith("stale since 2018-12-31: last close 2018-12-28")
    with pytest.raises(StalePricesError, match="last stored close is 2018-12-28"):
        judged.raise_if_stale()
    judge(D(2019, 1, 2), D(2019, 1, 2)).raise_if_stale()  # fresh: nothing raised


def test_no_stored_close_is_stale_from_the_session_itself() -> None:
    judged = judge(None, D(2018, 12, 31))
    assert not judged.fresh
    assert judged.stale_since == D(2018, 12, 31)
    assert "no stored close on or before 2018-12-31" in judged.message
    # Before the calendar starts, the weekday on or before stands for the session.
    assert session_on_or_before(D(1990, 1, 1)) == D(1990, 1, 1)
    assert not judge(None, D(1990, 1, 1)).fresh
    assert session_on_or_before(D(1989, 12, 31)) == D(1989, 12, 29)


@pytest.mark.parametrize(
    ("now_utc", "expected"),
    [
        # Monday 31 December 2018, 15:59 in New York (EST, UTC-5): Friday's session.
        (dt.datetime(2018, 12, 31, 20, 59, tzinfo=dt.UTC), D(2018, 12, 28)),
        # 16:00 in New York: Monday's session has closed.
        (dt.datetime(2018, 12, 31, 21, 0, tzinfo=dt.UTC), D(2018, 12, 31)),
        # Already 1 January in UTC, still 31 December in New York.
        (dt.datetime(2019, 1, 1, 3, 0, tzinfo=dt.UTC), D(2018, 12, 31)),
        # A Sunday in summer (EDT, UTC-4): Friday's session.
        (dt.datetime(2018, 7, 1, 12, 0, tzinfo=dt.UTC), D(2018, 6, 29)),
    ],
)
def test_the_default_date_is_the_latest_session_closed_in_new_york(
    now_utc: dt.datetime, expected: dt.date
) -> None:
    assert latest_closed_session(now_utc) == expected


def test_the_bundled_sample_ends_on_the_session_make_run_passes() -> None:
    # `make run` and the CLI tests forecast as of this date; it must be the sample's last.
    assert load_sample().frame["date"].max().date() == D(2018, 12, 31)
