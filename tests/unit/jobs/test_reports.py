"""The JSON forms of the job reports: what ``--report-json`` writes and the DAGs read."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pandas as pd
import pytest

from volforecast.errors import ConfigurationError
from volforecast.evaluation.backtest import BacktestConfig
from volforecast.jobs.backfill import run_dates
from volforecast.jobs.backtest import progress_total
from volforecast.jobs.monitor import ReplayReport
from volforecast.jobs.train import Outcome, TrainReport
from volforecast.jobs.train_summary import summarize
from volforecast.models.catalog import build_model
from volforecast.monitoring.drift import Alert

OUTCOMES = [
    Outcome("AAA", "garch", ok=True, message="", promoted=True, qlike=1.2),
    Outcome("BBB", "garch", ok=True, message="", qlike=1.0),
    Outcome("CCC", "garch", ok=False, message="too short"),
    Outcome("AAA", "lstm", ok=True, message="", promoted=True, qlike=1.1),
    Outcome("BBB", "lstm", ok=True, message="", qlike=1.3),
    Outcome("CCC", "lstm", ok=True, message="", qlike=0.9),
]


def test_a_training_report_carries_its_outcomes_and_the_families_compared() -> None:
    # Given a training in which GARCH failed for one ticker and both families ran on three
    payload = json.loads(json.dumps(TrainReport(OUTCOMES, stage_seconds={"fit": 2.0}).to_dict()))
    # Then the report holds every outcome, and the summary the training DAG logs
    assert payload["complete"] is False
    assert [(o["ticker"], o["model"], o["ok"]) for o in payload["outcomes"]] == [
        (o.ticker, o.model, o.ok) for o in OUTCOMES
    ]
    assert payload["stage_seconds"] == {"fit": 2.0}
    assert payload["summary"] == {
        "garch": {"trained": 2, "promoted": 1, "failed": ["CCC"],
                  "median_qlike_h1_range": pytest.approx(1.1)},
        "lstm": {"trained": 3, "promoted": 1, "failed": [], "median_qlike_h1_range": 1.1},
        "lstm_better_than_garch": "1 of 2 tickers",  # AAA yes, BBB no, CCC has no GARCH
    }  # fmt: skip


def test_the_dag_summarizes_several_reports_as_the_job_does() -> None:
    # Given the outcomes of two training tasks (two GARCH chunks and the LSTM, say)
    first = TrainReport(OUTCOMES[:2]).to_dict()["outcomes"]
    second = TrainReport(OUTCOMES[2:]).to_dict()["outcomes"]
    # When the DAG hands them together to the project's environment
    done = subprocess.run(
        [sys.executable, "-m", "volforecast.jobs.train_summary"],
        input=json.dumps(first + second), capture_output=True, text=True, check=True,
    )  # fmt: skip
    # Then it gets the summary one report of them all would carry
    assert json.loads(done.stdout) == json.loads(json.dumps(summarize(first + second)))
    assert (
        json.loads(done.stdout)
        == json.loads(json.dumps(TrainReport(OUTCOMES).to_dict()))["summary"]
    )


def test_a_training_of_nothing_is_not_complete_in_its_json_either() -> None:
    # `complete` means what the exit code says; only the CLI's empty queue is complete.
    payload = TrainReport([]).to_dict()
    assert (payload["complete"], payload["outcomes"]) == (False, [])
    assert TrainReport([]).complete is False


def test_a_replay_report_lists_its_alerts_and_retrains_with_iso_dates() -> None:
    day = dt.date(2008, 10, 6)
    alert = Alert("^GSPC", "garch", "cusum", day, statistic=5.5, threshold=4.0, detail={})
    report = ReplayReport(dt.date(2008, 9, 1), dt.date(2008, 10, 31), "garch", alerts=[alert],
                          retrains=[("^GSPC", day)], tickers=1, days=44)  # fmt: skip
    assert json.loads(json.dumps(report.to_dict())) == {
        "start": "2008-09-01", "end": "2008-10-31", "model": "garch", "tickers": 1, "days": 44,
        "alerts": [{"ticker": "^GSPC", "detector": "cusum", "observed_on": "2008-10-06",
                    "statistic": 5.5, "threshold": 4.0}],
        "retrains": [["^GSPC", "2008-10-06"]], "failures": {},
    }  # fmt: skip


WEEKEND = BacktestConfig(dt.date(2018, 12, 29), dt.date(2018, 12, 30), ("lstm",))


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        (lambda: build_model("prophet"), "unknown model 'prophet'"),
        (lambda: BacktestConfig(dt.date(2018, 1, 1), dt.date(2017, 1, 1)), "must end after"),
        (lambda: run_dates(dt.date(2018, 12, 31), dt.date(2018, 12, 1)), "is before --from"),
        (
            lambda: progress_total(pd.DataFrame({"ticker": ["A"]}), WEEKEND, None),
            "no trading day between",
        ),
    ],
    ids=["unknown-model", "reversed-backtest", "reversed-backfill", "weekend-backtest"],
)
def test_configuration_mistakes_are_configuration_errors(mistake: object, message: str) -> None:
    # A ValueError too, so that code catching bad values keeps catching them.
    with pytest.raises(ConfigurationError, match=message) as raised:
        mistake()  # type: ignore[operator]
    assert isinstance(raised.value, ValueError)
