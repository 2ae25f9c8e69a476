"""The prediction writer: batched, deduplicated, patient with a database that is away."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence

import pytest

from volforecast.data.repository import PredictionRow
from volforecast.errors import UnknownModelTypeError
from volforecast.jobs.predict import Prediction, PredictionWriter, model_key

MADE_AT = dt.datetime(2024, 1, 12, 17, tzinfo=dt.UTC)


def _prediction(ticker: str = "AAPL", version: str = "1") -> Prediction:
    dates = tuple(dt.date(2024, 1, 15) + dt.timedelta(days=i) for i in range(30))
    return Prediction(
        ticker=ticker, model_type="GARCH", registered_model="garch_volatility_aapl",
        model_version=version, run_id="r1", origin_date=dt.date(2024, 1, 12),
        forecast_dates=dates, vol_pct=tuple(1.0 + i / 100 for i in range(30)),
    )  # fmt: skip


class _Store:
    """Rows written, and a switch that makes every write fail as a dead database would."""

    def __init__(self) -> None:
        self.rows: list[PredictionRow] = []
        self.calls = 0
        self.down = False
        self.lock = threading.Lock()

    def upsert(self, rows: Sequence[PredictionRow]) -> int:
        with self.lock:
            self.calls += 1
            if self.down:
                msg = "connection refused"
                raise ConnectionError(msg)
            self.rows.extend(rows)
            return len(rows)


def _writer(store: _Store, **options: float) -> PredictionWriter:
    return PredictionWriter(store, **{"interval_s": 0.05, **options})  # type: ignore[arg-type]


def _wait_for(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_path_asked_for_many_times_is_written_once_up_to_the_longest_horizon() -> None:
    store = _Store()
    writer = _writer(store)
    prediction = _prediction()
    new = [writer.submit(prediction, h, MADE_AT) for h in (5, 5, 3, 10, 10)]
    assert writer.close() == 0
    assert new == [5, 0, 0, 5, 0], "only steps not queued before are new"
    assert sorted(r.step for r in store.rows) == list(range(1, 11))
    assert store.rows[0].predicted_volatility == pytest.approx(1.0)
    assert store.rows[0].forecast_date == dt.date(2024, 1, 15)


def test_rows_wait_while_the_database_is_down_and_are_written_when_it_returns() -> None:
    store = _Store()
    store.down = True
    writer = _writer(store)
    writer.submit(_prediction(), 30, MADE_AT)
    _wait_for(lambda: store.calls >= 2)
    assert writer.stats.pending == 30
    assert writer.stats.last_error is not None
    assert "connection refused" in writer.stats.last_error
    store.down = False
    _wait_for(lambda: writer.stats.pending == 0, timeout_s=10)
    assert len(store.rows) == 30, "every row written once, none lost"
    assert writer.stats.last_error is None
    assert writer.close() == 0


def test_close_writes_what_is_queued() -> None:
    store = _Store()
    writer = _writer(store, interval_s=60.0)  # the thread would not write for a minute
    writer.submit(_prediction("AAPL"), 7, MADE_AT)
    writer.submit(_prediction("MSFT"), 4, MADE_AT)
    assert store.rows == []
    assert writer.close() == 0
    assert len(store.rows) == 11


def test_close_reports_rows_it_could_not_write() -> None:
    store = _Store()
    store.down = True
    writer = _writer(store)
    writer.submit(_prediction(), 3, MADE_AT)
    assert writer.close(timeout_s=0.5) == 3


def test_past_the_limit_the_oldest_rows_are_dropped_and_counted() -> None:
    store = _Store()
    store.down = True
    writer = _writer(store, max_pending=10)
    writer.submit(_prediction("AAPL"), 8, MADE_AT)
    writer.submit(_prediction("MSFT"), 8, MADE_AT)
    assert writer.stats.dropped == 6
    store.down = False
    assert writer.close() == 0
    assert [r.ticker for r in store.rows].count("MSFT") == 8, "the newest rows were kept"


def test_batches_hold_at_most_batch_rows() -> None:
    store = _Store()
    writer = _writer(store, batch=7, interval_s=60.0)
    writer.submit(_prediction(), 30, MADE_AT)
    assert writer.close() == 0
    assert store.calls == 5  # 7 + 7 + 7 + 7 + 2


@pytest.mark.parametrize(("given", "key"), [("GARCH", "garch"), (" lstm ", "lstm"),
                                            ("GJR-GARCH-T", "gjr-garch-t")])  # fmt: skip
def test_model_types_are_case_insensitive(given: str, key: str) -> None:
    assert model_key(given) == key


def test_an_unknown_model_type_names_the_known_ones() -> None:
    with pytest.raises(UnknownModelTypeError, match="choose from garch"):
        model_key("prophet")
