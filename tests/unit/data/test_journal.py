"""The prediction journal: exact round trips, whole files only, and nothing deleted unread."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from volforecast.data.journal import PredictionJournal
from volforecast.data.repository import PredictionRow
from volforecast.errors import JournalError

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
