"""Fresh data or a loud stop, through the command line: the drop folder, predict's stop.

On SQLite and PostgreSQL (``cli_env``): the daily load from the drop folder moves each file
aside, a bad one without stopping the others; ``volforecast predict`` refuses a date whose
NYSE close is not stored (exit code 5, naming the last close) unless ``--allow-stale``, and
``--from/--to`` stores every session's forecasts once however often it runs.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path

import pytest

from tests.integration import test_cli
from tests.integration.test_cli import SAMPLE_END, invoke
from volforecast.cli import ExitCode
from volforecast.data.db import create_db_engine
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.data.sources import load_sample
from volforecast.settings import get_settings

D = dt.date
cli_env = test_cli.cli_env  # the fixture: commands in an empty folder, on the test's database


def _sample_csv(path: Path, *, after: str | None = None, until: str | None = None) -> None:
    frame = load_sample().frame.drop(columns=["source"])
    if after is not None:
        frame = frame[frame["date"] > after]
    if until is not None:
        frame = frame[frame["date"] <= until]
    frame.to_csv(path, index=False)


def test_the_drop_folder_loads_each_file_once_and_moves_a_bad_one_aside(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop = cli_env / "incoming"
    drop.mkdir()
    monkeypatch.setenv("VOLFORECAST_INGEST__DROP_DIR", str(drop))
    get_settings.cache_clear()
    _sample_csv(drop / "first-half.csv", until="2018-06-29")
    (drop / "broken.csv").write_text("a,b\n1,2\n")
    (drop / "notes.md").write_text("not prices\n")
    (drop / "upload.csv.part").write_text("still being written\n")

    code, output = invoke("ingest", "--configured", "--as-of", "2018-07-02",
                          "--report-json", "r.json")  # fmt: skip
    assert code == ExitCode.PARTIAL, output  # one file failed, the other loaded
    report = json.loads((cli_env / "r.json").read_text())
    by_name = {f["name"]: f for f in report["files"]}
    assert set(by_name) == {"first-half.csv", "broken.csv"}, "only price files are picked up"
    assert by_name["first-half.csv"]["status"] == "loaded"
    assert by_name["first-half.csv"]["inserted"] > 9000
    assert by_name["broken.csv"]["status"] == "failed"
    assert "no column for date" in by_name["broken.csv"]["message"]
    assert [p.name for p in (drop / "loaded").iterdir()] == [
        Path(by_name["first-half.csv"]["moved_to"]).name
    ]
    failed = sorted(p.name for p in (drop / "failed").iterdir())
    assert len(failed) == 2, failed
    assert failed[1].endswith("broken.csv.error.txt"), failed
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == ["notes.md", "upload.csv.part"]
    # Judged for the run's date: Monday 2 July 2018 needs its own close; Friday's is last.
    assert report["freshness"] == report["freshness"] | {
        "as_of": "2018-07-02", "session": "2018-07-02", "last_close": "2018-06-29", "fresh": False
    }  # fmt: skip
    assert "prices stale since 2018-07-02: last close 2018-06-29" in output

    # A rerun finds nothing new: nothing loads twice, nothing fails.
    code, output = invoke("ingest", "--configured", "--as-of", "2018-07-02")
    assert code == ExitCode.OK, output
    assert "no price file waiting" in output

    # The rest of the year arrives, in a folder named on the command line.
    other = cli_env / "other"
    other.mkdir()
    _sample_csv(other / "second-half.csv", after="2018-06-29")
    code, output = invoke("ingest", "--configured", "--drop-dir", str(other),
                          "--as-of", SAMPLE_END)  # fmt: skip
    assert code == ExitCode.OK, output
    assert "prices fresh: last close 2018-12-31" in output

    # Yahoo Finance, chosen but not installed: one sentence, and nothing loaded.
    monkeypatch.setenv("VOLFORECAST_INGEST__SOURCE", "yfinance")
    get_settings.cache_clear()
    if importlib.util.find_spec("yfinance") is None:  # installed, it would need the network
        code, output = invoke("ingest", "--configured", "--as-of", SAMPLE_END)
        assert code == ExitCode.ERROR, output
        assert "pip install 'volforecast[yfinance]'" in " ".join(output.split())
    monkeypatch.setenv("VOLFORECAST_INGEST__SOURCE", "drop")
    get_settings.cache_clear()

    # Only bad files: the load failed.
    (other / "bad.parquet").write_text("not parquet")
    code, output = invoke("ingest", "--configured", "--drop-dir", str(other))
    assert code == ExitCode.ERROR, output
    assert "--as-of" in invoke("ingest", "--sample", "--as-of", SAMPLE_END)[1]


@pytest.mark.slow
def test_predict_stops_on_stale_prices_and_backfills_every_session_once(cli_env: Path) -> None:
    assert invoke("ingest", "--sample")[0] == ExitCode.OK
    code, output = invoke("train", "--all", "--models", "garch", "--no-plots")
    assert code == ExitCode.OK, output
    engine = create_db_engine(get_settings())
    stored = PredictionRepository(engine)

    # Today's session (the default) and 2 January 2019 both need closes the sample lacks.
    for args in ([], ["--as-of", "2019-01-02"]):
        code, output = invoke(
            "predict", "--all", "--horizon", "2", *args, "--report-json", "p.json"
        )
        assert code == ExitCode.STALE, output
        assert "prices are stale: the last stored close is 2018-12-31" in " ".join(output.split())
        report = json.loads((cli_env / "p.json").read_text())
        assert report["rows"] == 0
        assert report["stale"][0].startswith(
            "prices are stale: the last stored close is 2018-12-31"
        )
    assert stored.find("^GSPC").total == 0, "nothing stored from stale prices"

    # --allow-stale forecasts from the last close anyway (a backfill over a known gap).
    code, output = invoke("predict", "--all", "--horizon", "2", "--as-of", "2019-01-02",
                          "--allow-stale")  # fmt: skip
    assert code == ExitCode.OK, output
    assert {r.origin_date for r in stored.find("^GSPC").rows} == {D(2018, 12, 31)}

    # A backfill of every session from 20 to 31 December 2018 (24th a half day, 25th shut).
    sessions = [D(2018, 12, d) for d in (20, 21, 24, 26, 27, 28, 31)]
    for _ in range(2):
        code, output = invoke("predict", "--all", "--horizon", "2", "--from", "2018-12-20",
                              "--to", "2018-12-31", "--report-json", "b.json")  # fmt: skip
        assert code == ExitCode.OK, output
        assert "28 rows and 154 risk rows stored for 7 sessions, 2018-12-20 to 2018-12-31" in output
        rows = stored.find("^GSPC", limit=1000).rows
        assert sorted({r.origin_date for r in rows}) == sessions
        assert len(rows) == 2 * len(sessions), "every session once, however often it runs"
    dates = json.loads((cli_env / "b.json").read_text())["dates"]
    assert [d["as_of"] for d in dates] == [s.isoformat() for s in sessions]
    assert all(d["fresh"] and d["paths"] == 2 for d in dates)

    # Past the sample's end: the fresh sessions are stored, the stale ones refused by date.
    code, output = invoke("predict", "--all", "--horizon", "2", "--from", "2018-12-28",
                          "--to", "2019-01-03")  # fmt: skip
    assert code == ExitCode.STALE, output
    assert "2 of 4 dates refused" in output
    # A ticker no model serves is its own failure, not a stale store.
    code, output = invoke("predict", "--tickers", "NOPE", "--as-of", SAMPLE_END)
    assert code == ExitCode.ERROR, output
    assert "NOPE: no production model serves it" in output
    assert invoke("predict", "--all", "--to", "2018-12-31")[0] == ExitCode.USAGE
    assert invoke("predict", "--all", "--from", "2018-12-22", "--to", "2018-12-23")[0] == (
        ExitCode.USAGE
    )
    engine.dispose()
