"""The service's prediction writer: batched database writes, and a journal while it is away.

Every prediction a client was answered with is, at any moment, in one of three places: in
memory, queued or being written; in a journal file under ``<home>/journal``; or committed to
``ml.volatility_predictions``. Two threads move rows along:

- the *writer* writes, every ``interval_s``, the journal's files (oldest first, each removed
  once its rows are committed) and then what is queued, ``batch`` rows per transaction; a
  failed write backs off up to 30 s and moves what is queued to the journal at once;
- the *keeper* moves what is in memory to the journal, checking twice every ``interval_s``,
  while the database is away (after a failed write, or while one write has been hanging for
  longer than ``interval_s``: a server that does not answer, a lock another writer holds) and
  while it falls behind (a row has waited an interval in the queue). It also takes the queue
  past ``max_pending`` rows, so memory stays bounded.

Nothing is dropped. A SIGKILL loses only what was in memory: the rows answered since the last
write or journal file, at most the last ``interval_s`` of answers while the database is away.
When it hangs rather than fails, or answers but falls behind, it is up to three times that:
the keeper notices a hang, or a row that waited an interval, up to half an interval late, and
the batch a hanging write holds was queued up to ``interval_s`` before it began.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import DataError, IntegrityError

from volforecast.data.journal import PredictionJournal
from volforecast.data.repositories.predictions import PredictionRepository, PredictionRow
from volforecast.errors import JournalError
from volforecast.jobs.predict import CACHE_LIMIT, Prediction

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


@dataclass
class WriterStats:
    """What a :class:`PredictionWriter` has done, and what waits."""

    written: int = 0
    pending: int = 0
    """Rows in memory: queued, or in the write under way."""
    journaled: int = 0
    """Rows in the journal's files, this process's and any other's, waiting for the database."""
    set_aside: int = 0
    """Journal files that could not be read back, moved to ``journal/broken``."""
    failures: int = 0
    last_error: str | None = None

    @property
    def waiting(self) -> int:
        """Rows answered but not in the database yet, in memory or in the journal."""
        return self.pending + self.journaled


class PredictionWriter:
    """Writes predictions to ``ml.volatility_predictions`` off the request path, in batches.

    :meth:`submit` only queues rows (steps already queued for the same path are skipped, so
    a path asked for a thousand times is written once). While the database is away the rows
    go to ``journal`` instead, and from there to the database when it returns, this process's
    and those an earlier process left; :meth:`close` writes or journals what is left.
    """

    def __init__(
        self,
        repository: PredictionRepository,
        journal: PredictionJournal,
        *,
        batch: int = 500,
        interval_s: float = 0.5,
        max_pending: int = 100_000,
        on_write: Callable[[int], None] | None = None,
    ) -> None:
        self.repository = repository
        self.journal = journal
        self.batch = batch
        self.interval_s = interval_s
        self.max_pending = max_pending
        self.on_write = on_write
        self.stats = WriterStats()
        self._pending: collections.deque[PredictionRow] = collections.deque()
        self._queued: dict[tuple[str, str, dt.date, str], int] = {}
        self._in_flight: list[PredictionRow] = []
        # Rows ever queued, and ever taken from the queue (to be written or journaled): the
        # queue is first in, first out, so taken < queued-as-of-a-tick means a row has waited.
        self._queued_total = 0
        self._taken_total = 0
        self._in_flight_journaled = False
        self._call_started: float | None = None
        self._healthy = True
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._nudge = threading.Event()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write, name="prediction-writer", daemon=True)
        self._keeper = threading.Thread(target=self._keep, name="prediction-journal", daemon=True)
        self._writer.start()
        self._keeper.start()

    def submit(self, prediction: Prediction, horizon: int, made_at: dt.datetime) -> int:
        """Queue steps 1 to ``horizon`` of a path; returns how many rows were new."""
        key = (prediction.ticker, prediction.model_type, prediction.origin_date,
               prediction.model_version)  # fmt: skip
        with self._lock:
            done = self._queued.get(key, 0)
            if done >= horizon:
                return 0
            if len(self._queued) >= CACHE_LIMIT:
                self._queued.clear()  # forgetting only means an idempotent write again
            self._queued[key] = horizon
            rows = prediction.rows(horizon, made_at, first_step=done + 1)
            self._pending.extend(rows)
            self._queued_total += len(rows)
            queued = len(self._pending)
            self.stats.pending = self._in_memory()
        if queued > self.max_pending:
            self._nudge.set()  # to the journal now, not at the next tick
        elif queued >= self.batch and self._healthy:
            self._wake.set()
        return len(rows)

    def flush(self) -> int:
        """Write the journal's files, then everything queued; returns rows written.

        Raises when the database fails; what was being written is queued again then.
        """
        with self._flushing:  # one flush at a time: it owns the write under way
            written = self._replay()
            while True:
                with self._lock:
                    size = min(self.batch, len(self._pending))
                    chunk = [self._pending.popleft() for _ in range(size)]
                    self._taken_total += size
                    self._in_flight, self._in_flight_journaled = chunk, False
                if not chunk:
                    return written
                try:
                    self._upsert(chunk)
                except Exception:
                    with self._lock:
                        # Back in front, in order; unless the keeper journaled them meanwhile.
                        if not self._in_flight_journaled:
                            self._pending.extendleft(reversed(chunk))
                            self._taken_total -= len(chunk)
                    raise
                finally:
                    with self._lock:
                        self._in_flight = []
                        self.stats.pending = self._in_memory()
                written += len(chunk)

    def _replay(self) -> int:
        written = 0
        for waiting in self.journal.waiting():
            try:
                rows = self.journal.read(waiting.path)
            except FileNotFoundError:
                continue  # another process sharing the home replayed it first
            except JournalError as exc:
                self._set_aside(waiting.path, "cannot be read", exc)
                continue
            try:
                for start in range(0, len(rows), self.batch):
                    self._upsert(rows[start : start + self.batch])
            except (IntegrityError, DataError) as exc:
                # The database answers but refuses these rows: retrying would block every file.
                self._set_aside(waiting.path, "refused by the database", exc)
                continue
            self.journal.remove(waiting.path)  # only now: every chunk of it is committed
            written += len(rows)
            log.info("wrote %d journaled predictions from %s", len(rows), waiting.path.name)
        self.stats.journaled = sum(f.rows for f in self.journal.waiting())
        return written

    def _set_aside(self, path: Path, why: str, exc: Exception) -> None:
        moved = self.journal.set_aside(path)
        if moved is not None:
            self.stats.set_aside += 1
            log.error("journal file %s, moved to %s; its rows are NOT in the database, restore "
                      "them by hand: %s", why, moved, _first_line(exc))  # fmt: skip

    def _upsert(self, rows: Sequence[PredictionRow]) -> None:
        self._call_started = time.monotonic()
        try:
            self.repository.upsert(rows)
        except Exception as exc:
            with self._lock:
                self.stats.failures += 1
                self.stats.last_error = _first_line(exc)
            raise
        finally:
            self._call_started = None
        with self._lock:
            self.stats.written += len(rows)
            self.stats.last_error = None
        if self.on_write is not None:
            self.on_write(len(rows))

    def _spill(self, *, in_flight: bool = False) -> int:
        """Move what is queued (and, if asked, a copy of the write under way) to the journal."""
        with self._lock:
            rows = list(self._pending)
            self._pending.clear()
            self._taken_total += len(rows)
            if in_flight and self._in_flight and not self._in_flight_journaled:
                # A copy: if the hanging write commits after all, replaying it changes nothing.
                rows = self._in_flight + rows
                self._in_flight_journaled = True
        if not rows:
            return 0
        try:
            written = self.journal.append(rows)
        except OSError as exc:
            with self._lock:
                self._pending.extendleft(reversed(rows))
                self._taken_total -= len(rows)
                self.stats.pending = self._in_memory()
            log.error("journal not writable, %d predictions kept in memory: %s", len(rows), exc)
            return 0
        with self._lock:
            self.stats.pending = self._in_memory()
            self.stats.journaled += written.rows
        log.debug("%d predictions journaled to %s", written.rows, written.path.name)
        return written.rows

    def _in_memory(self) -> int:
        # Called under the lock. A write under way that the keeper journaled is on disk.
        return len(self._pending) + (0 if self._in_flight_journaled else len(self._in_flight))

    def _hanging(self) -> bool:
        started = self._call_started
        return started is not None and time.monotonic() - started >= self.interval_s

    def _write(self) -> None:
        self.journal.adopt_interrupted()
        # Files an earlier process left are written at once; otherwise, the first tick.
        pause = 0.0 if self.journal.waiting() else self.interval_s
        while not self._stop.is_set():
            self._wake.wait(pause)
            self._wake.clear()
            if self._stop.is_set():
                return  # close() takes over
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001  (journaled and retried; the error is in stats)
                self._healthy = False
                pause = min(max(pause * 2, self.interval_s), MAX_BACKOFF_S)
                self._spill()
                log.warning("predictions not written yet (%d journaled, retry in %.0f s): %s",
                            self.stats.journaled, pause, _first_line(exc))  # fmt: skip
            else:
                self._healthy = True
                pause = self.interval_s

    def _last_write(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001  (close() journals what is left)
            log.warning("predictions not written at shutdown, journaled for the next start: %s",
                        _first_line(exc))  # fmt: skip

    def _keep(self) -> None:
        queued_before = 0  # rows queued as of the tick before last
        queued_last = 0
        while not self._stop.is_set():
            # Two ticks an interval: a row queued just after one is judged two ticks later.
            self._nudge.wait(self.interval_s / 2)
            self._nudge.clear()
            hanging = self._hanging()
            with self._lock:
                # A database that answers but cannot keep up leaves rows waiting too.
                waited = self._taken_total < queued_before
                queued_before, queued_last = queued_last, self._queued_total
                crowded = len(self._pending) > self.max_pending
            if not self._healthy or hanging or waited or crowded:
                self._spill(in_flight=hanging)
            # Recounted from the files: another process sharing the home may replay ours.
            self.stats.journaled = sum(f.rows for f in self.journal.waiting())

    def close(self, timeout_s: float = 10.0) -> int:
        """Stop, write what is left if the database answers, and journal whatever is not.

        Returns the rows neither written nor journaled (only when the journal cannot be
        written either); they are logged.
        """
        deadline = time.monotonic() + timeout_s
        self._stop.set()
        self._wake.set()
        self._nudge.set()
        self._keeper.join(timeout_s)
        self._writer.join(max(deadline - time.monotonic(), 0.0))
        if not self._writer.is_alive() and self._healthy:
            # On a thread of its own, so that a database that hangs cannot hold the shutdown
            # past ``timeout_s``: what it has not committed by then is journaled below.
            last = threading.Thread(target=self._last_write, name="prediction-writer-last",
                                    daemon=True)  # fmt: skip
            last.start()
            last.join(max(deadline - time.monotonic(), 0.0))
            if last.is_alive():
                log.warning("the database did not answer within %.0f s: predictions journaled "
                            "for the next start", timeout_s)  # fmt: skip
        self._spill(in_flight=True)
        left = len(self._pending)
        if left:
            log.error("%d predictions could neither be written nor journaled", left)
        return left


def _first_line(exc: BaseException) -> str:
    # A driver's message goes on with the statement and every parameter; the first line says it.
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
