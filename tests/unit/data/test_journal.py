"""The prediction journal: exact round trips, whole files only, and nothing deleted unread."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from volforecast.data import db
from volforecast.data.journal import PredictionJournal
from volforecast.data.repositories.predictions import (
    PREDICTIONS,
    PredictionRepository,
    PredictionRow,
)
from volforecast.errors import JournalError
from volforecast.jobs.writer import PredictionWriter

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def _rows(ticker: str = "AAPL", steps: int = 3) -> list[PredictionRow]:
    made = dt.datetime(2024, 1, 12, 17, 3, 4, 123_456, tzinfo=dt.UTC)
    return [
        PredictionRow(ticker, "GJR-GARCH-T", dt.date(2024, 1, 12), step,
                      dt.date(2024, 1, 12) + dt.timedelta(days=step), 1.0 + step / 3, "12",
                      None if step % 2 else f"run{step}", made)
        for step in range(1, steps + 1)
    ]  # fmt: skip


def test_every_field_reads_back_exactly(tmp_path: Path) -> None:
    journal = PredictionJournal(tmp_path / "journal")
    awkward = PredictionRow("^GSPC", "HAR", dt.date(2019, 12, 31), 30, dt.date(2020, 2, 12),
                            0.1 + 0.2, "3", None, dt.datetime(2024, 2, 29, 23, 59, 59, 999_999,
                                                              tzinfo=IST))  # fmt: skip
    rows = [*_rows(), awkward]
    written = journal.append(rows)
    assert written.rows == 4
    assert [f.path for f in journal.waiting()] == [written.path]
    back = journal.read(written.path)
    assert back == rows
    assert back[-1].predicted_volatility.hex() == (0.1 + 0.2).hex(), "the same float, bit for bit"
    assert back[-1].prediction_timestamp.utcoffset() == dt.timedelta(hours=5, minutes=30)
    assert back[-1].prediction_timestamp.microsecond == 999_999
    assert back[0].run_id is None
    assert back[1].run_id == "run2"
    assert type(back[0].origin_date) is dt.date


def test_a_challengers_rows_keep_what_they_were_served_as_and_older_files_are_productions(
    tmp_path: Path,
) -> None:
    journal = PredictionJournal(tmp_path / "journal")
    challenger = [dataclasses.replace(r, served_as="challenger") for r in _rows()]
    assert [r.served_as for r in journal.read(journal.append(challenger).path)] == [
        "challenger"
    ] * 3
    # A file journaled before rows said what they were served as reads as production's
    written = journal.append(_rows(steps=1))
    written.path.write_text(written.path.read_text().replace(',"served_as":"production"', ""))
    assert "served_as" not in written.path.read_text()
    assert [r.served_as for r in journal.read(written.path)] == ["production"]


def test_files_are_listed_oldest_first_and_a_half_written_one_is_not_listed(
    tmp_path: Path,
) -> None:
    journal = PredictionJournal(tmp_path / "journal")
    first = journal.append(_rows("AAPL"))
    second = PredictionJournal(journal.directory).append(_rows("MSFT", steps=2))
    # What a writer killed between the write and the rename leaves behind.
    (journal.directory / f".{second.path.name.replace('-2.json', '-9.json')}.tmp").write_text("{")
    assert [(f.path, f.rows) for f in journal.waiting()] == [(first.path, 3), (second.path, 2)]
    journal.remove(first.path)
    journal.remove(first.path)  # a second replay of the same file finds nothing: no error
    assert [f.path for f in journal.waiting()] == [second.path]


def test_an_unfinished_file_is_adopted_only_once_its_writer_is_surely_gone(
    tmp_path: Path,
) -> None:
    journal = PredictionJournal(tmp_path / "journal")
    written = journal.append(_rows())
    unfinished = written.path.with_name(f".{written.path.name}.tmp")
    written.path.replace(unfinished)
    assert journal.adopt_interrupted() == 0, "a minute old at least: it may be being written"
    an_hour_ago = time.time() - 3600
    os.utime(unfinished, (an_hour_ago, an_hour_ago))
    assert journal.adopt_interrupted() == 1
    assert journal.read(written.path) == _rows()


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda text: text[: len(text) // 2], "Invalid JSON"),
        (lambda text: text.replace('"step":2', '"step":"two"'), "rows.1.step"),
        (lambda text: text.replace("Z", ""), "has no offset"),
        (lambda text: text.replace('"format":1', '"format":2'), "format"),
    ],
    ids=["cut-short", "edited", "naive-time", "unknown-format"],
)
def test_a_damaged_file_is_refused_with_the_reason(
    tmp_path: Path, damage: Callable[[str], str], says: str
) -> None:
    journal = PredictionJournal(tmp_path / "journal")
    written = journal.append(_rows())
    written.path.write_text(damage(written.path.read_text()))
    with pytest.raises(JournalError, match=says):
        journal.read(written.path)


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(PREDICTIONS)).scalar_one())


def test_a_new_writer_stores_what_an_earlier_one_journaled_and_sets_bad_files_aside(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db.ensure_schema(engine)
    earlier = PredictionJournal(tmp_path / "journal")
    earlier.append(_rows("AAPL"))
    earlier.append(_rows("MSFT", steps=2))
    damaged = earlier.append(_rows("NVDA"))
    damaged.path.write_text(damaged.path.read_text()[:-7])
    earlier.append(_rows("AAPL"))  # the same rows twice: stored once
    # Readable, but the database refuses it (volatility must be positive): retried, it would
    # keep every later file from being written.
    refused = earlier.append([dataclasses.replace(_rows("TSLA")[0], predicted_volatility=-1.0)])
    with caplog.at_level(logging.ERROR):
        restarted = PredictionJournal(earlier.directory)
        writer = PredictionWriter(PredictionRepository(engine), restarted, interval_s=0.05)
        deadline = time.monotonic() + 30
        while earlier.waiting() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.close() == 0
    assert earlier.waiting() == [], "each readable file removed after its rows were committed"
    assert _count(engine) == 3 + 2
    set_aside = earlier.broken / damaged.path.name
    assert set_aside.exists(), "never deleted: moved aside for a look by hand"
    assert (earlier.broken / refused.path.name).exists()
    assert writer.stats.set_aside == 2
    assert "refused by the database" in caplog.text
    assert f"moved to {set_aside}" in caplog.text
    assert "NOT in the database" in caplog.text
