"""The prediction writer: batched, deduplicated, journaling while the database is away."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from volforecast.data.journal import PredictionJournal
from volforecast.data.repositories.predictions import PredictionRow
from volforecast.jobs.predict import Prediction
from volforecast.jobs.writer import PredictionWriter

MADE_AT = dt.datetime(2024, 1, 12, 17, tzinfo=dt.UTC)


def _prediction(ticker: str = "AAPL", version: str = "1") -> Prediction:
    dates = tuple(dt.date(2024, 1, 15) + dt.timedelta(days=i) for i in range(30))
    return Prediction(
        ticker=ticker, model_type="GARCH", registered_model="garch_volatility_aapl",
        model_version=version, run_id="r1", origin_date=dt.date(2024, 1, 12),
        forecast_dates=dates, vol_pct=tuple(1.0 + i / 100 for i in range(30)),
    )  # fmt: skip


class _Store:
    """Rows written, a switch that makes every write fail as a dead database would, and one
    that makes a write hang, as a server that does not answer does."""

    def __init__(self) -> None:
        self.rows: list[PredictionRow] = []
        self.calls = 0
        self.down = False
        self.delay_s = 0.0
        self.answer = threading.Event()
        self.answer.set()
        self.lock = threading.Lock()

    def upsert(self, rows: Sequence[PredictionRow]) -> int:
        with self.lock:
            self.calls += 1
        self.answer.wait()
        time.sleep(self.delay_s)
        with self.lock:
            if self.down:
                msg = "connection refused"
                raise ConnectionError(msg)
            self.rows.extend(rows)
            return len(rows)


@pytest.fixture
def journal(tmp_path: Path) -> PredictionJournal:
    return PredictionJournal(tmp_path / "journal")


def _writer(store: _Store, journal: PredictionJournal, **options: float) -> PredictionWriter:
    return PredictionWriter(store, journal, **{"interval_s": 0.05, **options})  # type: ignore[arg-type]


def _wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _journaled(journal: PredictionJournal) -> int:
    return sum(f.rows for f in journal.waiting())


def test_a_path_asked_for_many_times_is_written_once_up_to_the_longest_horizon(
    journal: PredictionJournal,
) -> None:
    store = _Store()
    writer = _writer(store, journal)
    prediction = _prediction()
    new = [writer.submit(prediction, h, MADE_AT) for h in (5, 5, 3, 10, 10)]
    assert writer.close() == 0
    assert new == [5, 0, 0, 5, 0], "only steps not queued before are new"
    assert sorted(r.step for r in store.rows) == list(range(1, 11))
    assert store.rows[0].predicted_volatility == pytest.approx(1.0)
    assert store.rows[0].forecast_date == dt.date(2024, 1, 15)


def test_while_the_database_is_down_rows_go_to_the_journal_and_then_to_the_database(
    journal: PredictionJournal,
) -> None:
    store = _Store()
    store.down = True
    writer = _writer(store, journal)
    writer.submit(_prediction(), 30, MADE_AT)
    # The journal file is renamed into place just before the count of pending rows drops.
    _wait_for(lambda: _journaled(journal) == 30 and writer.stats.pending == 0)
    assert writer.stats.last_error is not None
    assert "connection refused" in writer.stats.last_error
    store.down = False
    _wait_for(lambda: len(store.rows) == 30, timeout_s=10)
    _wait_for(lambda: journal.waiting() == [])
    assert sorted(r.step for r in store.rows) == list(range(1, 31)), "each row once, none lost"
    assert writer.stats.last_error is None
    assert writer.close() == 0


def test_close_writes_what_is_queued(journal: PredictionJournal) -> None:
    store = _Store()
    writer = _writer(store, journal, interval_s=60.0)  # the thread would not write for a minute
    writer.submit(_prediction("AAPL"), 7, MADE_AT)
    writer.submit(_prediction("MSFT"), 4, MADE_AT)
    assert store.rows == []
    assert writer.close() == 0
    assert len(store.rows) == 11
    assert journal.waiting() == [], "written, so not left in the journal"


def test_close_journals_what_it_cannot_write_and_the_next_writer_writes_it(
    journal: PredictionJournal,
) -> None:
    store = _Store()
    store.down = True
    writer = _writer(store, journal)
    writer.submit(_prediction(), 3, MADE_AT)
    assert writer.close(timeout_s=0.5) == 0, "nothing lost"
    assert _journaled(journal) == 3
    store.down = False
    after_restart = _writer(store, PredictionJournal(journal.directory))
    _wait_for(lambda: len(store.rows) == 3)
    assert after_restart.close() == 0
    assert journal.waiting() == []
    assert len(store.rows) == 3


def test_past_the_limit_rows_go_to_the_journal_none_dropped(journal: PredictionJournal) -> None:
    store = _Store()
    store.down = True
    writer = _writer(store, journal, max_pending=10, interval_s=60.0)
    writer.submit(_prediction("AAPL"), 8, MADE_AT)
    assert _journaled(journal) == 0, "under the limit, rows stay in memory"
    writer.submit(_prediction("MSFT"), 8, MADE_AT)
    _wait_for(lambda: _journaled(journal) == 16)
    assert writer.stats.pending == 0
    store.down = False
    assert writer.close() == 0
    assert sorted(r.ticker for r in store.rows) == ["AAPL"] * 8 + ["MSFT"] * 8


def test_a_write_that_hangs_does_not_keep_rows_in_memory_only(
    journal: PredictionJournal,
) -> None:
    store = _Store()
    store.answer.clear()  # the next write waits for an answer that does not come
    writer = _writer(store, journal)
    writer.submit(_prediction("AAPL"), 5, MADE_AT)
    _wait_for(lambda: store.calls == 1)
    writer.submit(_prediction("MSFT"), 5, MADE_AT)
    # The write under way (AAPL) is journaled as a copy, the queue (MSFT) is moved.
    _wait_for(lambda: _journaled(journal) == 10)
    assert writer.stats.pending == 0
    store.answer.set()  # it answers after all: the copy is written again, harmlessly
    _wait_for(lambda: journal.waiting() == [])
    assert writer.close() == 0
    keys = [(r.ticker, r.step) for r in store.rows]
    assert set(keys) == {(t, s) for t in ("AAPL", "MSFT") for s in range(1, 6)}


def test_batches_hold_at_most_batch_rows(journal: PredictionJournal) -> None:
    store = _Store()
    writer = _writer(store, journal, batch=7, interval_s=60.0)
    writer.submit(_prediction(), 30, MADE_AT)
    assert writer.close() == 0
    assert store.calls == 5  # 7 + 7 + 7 + 7 + 2


def test_a_database_that_answers_but_falls_behind_leaves_no_row_waiting_in_memory(
    journal: PredictionJournal,
) -> None:
    store = _Store()
    store.delay_s = 0.02  # answers every write, but 5 rows take 20 ms: it cannot keep up
    writer = _writer(store, journal, batch=5)
    seen_journaled = 0
    for n in range(40):
        writer.submit(_prediction(f"T{n:02d}"), 30, MADE_AT)
        time.sleep(0.01)
        seen_journaled = max(seen_journaled, _journaled(journal) + writer.stats.journaled)
    assert seen_journaled > 0, "rows that waited an interval went to the journal"
    assert writer.stats.last_error is None, "no write failed"
    assert writer.close(timeout_s=30) == 0
    keys = [(r.ticker, r.step) for r in store.rows]
    assert set(keys) == {(f"T{n:02d}", s) for n in range(40) for s in range(1, 31)}
