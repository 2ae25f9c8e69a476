"""Dates are read in one format for the whole column, never guessed row by row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.factories import clean_prices
from tests.faults.conftest import Cli
from volforecast.cli import ExitCode
from volforecast.data.quality.gate import run_gate
from volforecast.data.sources import load_file
from volforecast.errors import DataSourceError
from volforecast.settings import QualitySettings


def _csv(tmp_path: Path, frame: pd.DataFrame, date_format: str | None = None) -> Path:
    out = frame.copy()
    if date_format is not None:
        out["date"] = out["date"].dt.strftime(date_format)
    path = tmp_path / "prices.csv"
    out.to_csv(path, index=False)
    return path


def test_day_first_dates_load_every_row_with_the_right_day(tmp_path: Path) -> None:
    frame = clean_prices("AAA", 300)  # days past the 12th make the order certain
    batch = load_file(_csv(tmp_path, frame, "%d/%m/%Y"))
    assert batch.frame["date"].tolist() == frame["date"].tolist()
    result = run_gate(batch.frame, QualitySettings(), batch.unreadable)
    assert result.report.clean
    assert len(result.accepted) == 300


def test_month_first_dates_load_too(tmp_path: Path) -> None:
    frame = clean_prices("AAA", 300)
    batch = load_file(_csv(tmp_path, frame, "%m/%d/%Y"))
    assert batch.frame["date"].tolist() == frame["date"].tolist()


def test_an_ambiguous_column_is_refused_with_a_sentence_naming_the_option(tmp_path: Path) -> None:
    frame = clean_prices("AAA", 8)  # 2 to 11 January: every day could be a month
    with pytest.raises(DataSourceError, match=r"ambiguous.*give --date-format") as caught:
        load_file(_csv(tmp_path, frame, "%d/%m/%Y"))
    assert "\n" not in str(caught.value)
    batch = load_file(_csv(tmp_path, frame, "%d/%m/%Y"), date_format="%d/%m/%Y")
    assert batch.frame["date"].tolist() == frame["date"].tolist()


def test_dates_in_no_known_format_are_refused(tmp_path: Path) -> None:
    frame = clean_prices("AAA", 8).astype({"date": object})
    frame["date"] = "sometime"
    with pytest.raises(DataSourceError, match="give --date-format"):
        load_file(_csv(tmp_path, frame))


def test_a_date_that_does_not_read_in_the_column_s_format_is_rejected_alone(
    tmp_path: Path,
) -> None:
    frame = clean_prices("AAA", 50)
    text = frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d"))
    text.loc[20, "date"] = "21/02/2018"
    batch = load_file(_csv(tmp_path, text))
    result = run_gate(batch.frame, QualitySettings(), batch.unreadable)
    (finding,) = result.report.tickers["AAA"].findings
    assert finding.check == "bad_date"
    assert finding.examples == ("row 21: date '21/02/2018'",)
    assert len(result.accepted) == 49


def test_a_given_format_that_reads_no_date_is_an_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, clean_prices("AAA", 20))
    with pytest.raises(DataSourceError, match="no date is in the format"):
        load_file(path, date_format="%d.%m.%Y")


@pytest.mark.parametrize(
    ("day", "weekday"),
    [("2018-01-06", "Saturday"), ("2018-12-25", "Tuesday"), ("2012-10-29", "Monday")],
    ids=["weekend", "holiday", "hurricane-sandy"],
)
def test_a_day_that_was_no_nyse_session_is_rejected_as_its_own_check(
    day: str, weekday: str
) -> None:
    frame = clean_prices("AAA", 60, start=pd.Timestamp(day).date() - pd.Timedelta(days=30))
    frame = pd.concat([frame, frame.iloc[[0]].assign(date=pd.Timestamp(day))], ignore_index=True)
    result = run_gate(frame.drop_duplicates("date", keep="last"), QualitySettings())
    findings = {f.check: f for f in result.report.tickers["AAA"].findings}
    assert findings["not_a_session"].rows == 1
    assert findings["not_a_session"].examples == (f"{day}: no NYSE session ({weekday})",)


def test_a_date_beyond_what_a_timestamp_holds_is_rejected_not_a_traceback(
    tmp_path: Path, cli: Cli
) -> None:
    frame = clean_prices("AAA", 50)
    text = frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d"))
    text.loc[30, "date"] = "2300-01-04"
    text.to_csv(tmp_path / "prices.csv", index=False)
    done = cli("ingest", "--file", "prices.csv")
    assert done.returncode == ExitCode.PARTIAL, done.stderr
    assert "Traceback" not in done.stderr
    assert "date_out_of_range" in done.stdout
    assert "49 rows inserted" in done.stdout


def test_the_command_line_reads_day_first_dates_with_date_format(tmp_path: Path, cli: Cli) -> None:
    _csv(tmp_path, clean_prices("AAA", 8), "%d/%m/%Y")
    refused = cli("ingest", "--file", "prices.csv")
    assert refused.returncode == ExitCode.ERROR
    assert "--date-format" in refused.stderr
    assert "Traceback" not in refused.stderr
    done = cli("ingest", "--file", "prices.csv", "--date-format", "%d/%m/%Y")
    assert done.returncode == ExitCode.OK, done.stderr
    assert "8 rows inserted" in done.stdout


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo"])
def test_a_parquet_column_of_dates_with_a_time_zone_reads_the_exchange_s_days(
    tmp_path: Path, zone: str
) -> None:
    frame = clean_prices("AAA", 30)
    frame["date"] = frame["date"].dt.tz_localize(zone)
    frame.to_parquet(tmp_path / "prices.parquet")
    batch = load_file(tmp_path / "prices.parquet")
    assert batch.frame["date"].tolist() == clean_prices("AAA", 30)["date"].tolist()


def test_text_dates_with_offsets_across_a_change_of_summer_time_read_their_days(
    tmp_path: Path,
) -> None:
    # As Yahoo writes them: midnight New York, -05:00 in winter and -04:00 from 11 March.
    frame = clean_prices("AAA", 30, start=pd.Timestamp("2018-02-28").date())
    local = frame["date"].dt.tz_localize("America/New_York")
    text = frame.assign(date=local.map(lambda t: t.isoformat(sep=" ")))
    assert text["date"].str.endswith("-05:00").any()
    assert text["date"].str.endswith("-04:00").any()
    batch = load_file(_csv(tmp_path, text))
    assert batch.frame["date"].tolist() == frame["date"].tolist()
