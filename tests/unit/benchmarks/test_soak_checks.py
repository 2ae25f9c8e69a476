"""The soak's own logic: the paths a day must hold, the alias replay, its fault list, its page.

A check that could not fail would prove nothing about the month it reads, so each is shown
here catching what it is there to catch.
"""

from __future__ import annotations

import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import soak
import soak_checks
import soak_report
from soak_checks import Day, expected_paths, replay


def test_a_day_needs_one_path_per_ticker_from_each_serving_version() -> None:
    serving = {"garch_volatility_aapl": "3", "garch_volatility_gspc": "1",
               "lstm_volatility_pooled": "7", "har_volatility_gone": "2",
               "har_lstm_volatility_aapl": "4"}  # fmt: skip
    wanted = expected_paths(serving, ["AAPL", "^GSPC"])
    assert wanted == {
        ("AAPL", "GARCH", "3"),
        ("^GSPC", "GARCH", "1"),
        ("AAPL", "LSTM", "7"),
        ("^GSPC", "LSTM", "7"),
        ("AAPL", "HAR+LSTM", "4"),  # stored under its catalog name, registered as har_lstm
    }  # fmt: skip (a model of a ticker outside the soak asks for nothing)


def test_the_replay_follows_logged_moves_and_the_implied_challenger_removal() -> None:
    rows = [
        ("garch_volatility_aapl", 1, "challenger", "register", "1", None),
        ("garch_volatility_aapl", 2, "production", "promote", "1", None),
        ("garch_volatility_aapl", 3, "challenger", "register", "2", None),
        ("garch_volatility_aapl", 4, "production", "reject", "1", "1"),
    ]
    state, broken = replay(rows)
    assert broken == []
    assert state == {("garch_volatility_aapl", "challenger"): "2",
                     ("garch_volatility_aapl", "production"): "1"}  # fmt: skip


def test_the_replay_names_a_move_whose_previous_version_the_log_never_set() -> None:
    rows = [
        ("har_volatility_msft", 1, "production", "promote", "1", None),
        # An alias moved outside volforecast to v5, then a logged move found it there.
        ("har_volatility_msft", 2, "production", "promote", "6", "5"),
    ]
    state, broken = replay(rows)
    assert state[("har_volatility_msft", "production")] == "6"
    assert broken == ["har_volatility_msft seq 2 production promote: previous 5, the log had 1"]


def test_the_replay_keeps_a_challenger_that_was_not_the_promoted_version() -> None:
    rows = [
        ("x", 1, "challenger", "register", "2", None),
        ("x", 2, "production", "promote", "1", None),  # by hand, another version
    ]
    state, _ = replay(rows)
    assert state[("x", "challenger")] == "2"


def test_each_champion_must_be_where_its_logged_changes_put_it() -> None:
    rows = [
        ("champion/AAPL", 1, "champion", "promote", "GARCH", None),
        ("champion/AAPL", 2, "champion", "promote", "HAR", "GARCH"),
        ("champion/MSFT", 1, "champion", "promote", "HAR", None),
    ]
    ok, lines = soak_checks.champions_explained(rows, {"AAPL": "HAR", "MSFT": "HAR"})
    assert ok, lines
    ok, lines = soak_checks.champions_explained(rows, {"AAPL": "GARCH", "MSFT": "HAR"})
    assert not ok
    assert lines == ["UNEXPLAINED: champion/AAPL is GARCH in the table, HAR by the log"]
    ok, lines = soak_checks.champions_explained(rows[:1] + rows[2:], {"MSFT": "HAR"})
    assert not ok, "a champion the table lost"
    assert not soak_checks.champions_explained([], {})[0], "no champion decided at all"


@pytest.mark.parametrize("text", ["postgres:3,bogus:4", "train:x", "scheduler"])
def test_a_bad_fault_list_stops_the_soak_with_its_grammar(text: str) -> None:
    with pytest.raises(SystemExit, match="KIND:DAY"):
        soak.parse_faults(text)


def test_the_fault_list_reads_each_kind_and_day() -> None:
    assert soak.parse_faults("postgres:3,train:12,") == {"postgres": 3, "train": 12}


def test_the_results_page_shows_each_check_the_faults_and_a_timeline_row_a_day() -> None:
    days = [
        Day("2008-09-15", 2.5, {"AAPL": ["cusum", "psi"]}, 1, 1, ["aapl->v2"], ["postgres"]),
        Day("2008-09-16", 1.0, {}, 0, 0, [], []),
    ]
    checks = {"paths": (True, ["2008-09-15: 2 paths of 2 expected"]),
              "aliases": (False, ["UNEXPLAINED: x@production"])}  # fmt: skip
    page = soak_report.markdown({"start": "2008-09-15"}, ["AAPL"], checks, days,
                                {"postgres": {"day": "2008-09-15", "at": "t"}})  # fmt: skip
    assert "### PASS: paths" in page
    assert "### FAIL: aliases" in page
    assert "CHECKS FAILED" in page
    assert "postgres on 2008-09-15" in page
    assert "| 2008-09-15 | 2.5 | AAPL: cusum+psi | 1 | 1 | aapl->v2 | postgres |" in page
    assert "| 2008-09-16 | 1.0 | – | 0 | 0 | – | – |" in page
    assert "3.5 min over the days" in page
    quiet = soak_report.markdown({}, ["AAPL"], {"paths": (True, [])}, days[1:], {})
    assert "none struck" in quiet
    assert "every check passed" in quiet


def test_a_day_line_counts_each_detector_that_alerted() -> None:
    day = Day("2008-09-15", 2.0, {"AAPL": ["cusum", "psi"], "MSFT": ["psi"]}, 2, 1, [], [])
    assert day.alert_count == 3
    assert "alerts 3 [AAPL:cusum+psi, MSFT:psi]" in day.line()


def test_a_fault_whose_moment_never_came_fails_the_soak() -> None:
    ok, lines = soak_checks.check_faults(
        {"scheduler": 3, "train": 4}, {"scheduler": {"day": "2008-09-24", "at": "t"}}
    )
    assert not ok
    assert lines == ["scheduler: asked for day 3, struck on 2008-09-24",
                     "train: asked for day 4, NEVER STRUCK"]  # fmt: skip
    assert soak_checks.check_faults({}, {}) == (True, ["no faults asked for"])
