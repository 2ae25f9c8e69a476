"""A local journal of prediction rows that could not be written to the database yet.

Each :meth:`PredictionJournal.append` writes one file of rows under ``<home>/journal/``: to a
hidden temporary name first, synced to disk, then renamed to its final name, so a file that
carries the final name is complete. Files are never changed after the rename: a reader only
reads them, writes their rows to the database and then removes them. Two processes sharing a
home may therefore replay the same file at the same time; the rows' upsert is keyed, so the
second write replaces the first with the same values, and the second removal finds nothing.

A file is one JSON document, ``{"format": 1, "rows": [...]}``: a file cut short anywhere no
longer parses, so a truncation is always noticed. Dates are ISO dates, the timestamp an ISO
datetime with its offset, the volatility the shortest decimal that reads back as the same
float, and a missing run id ``null``. A file that cannot be read back is moved to
``journal/broken/`` for a look by hand, never deleted.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from volforecast.data.repositories.predictions import PredictionRow
from volforecast.errors import JournalError

log = logging.getLogger(__name__)

INTERRUPTED_AFTER_S = 60.0
"""A temporary file this old belongs to a writer that died mid-write, not to one writing now."""

_NAME = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{12}-\d{6}-(?P<rows>\d+)\.json$")


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    format: Literal[1]
    rows: list[PredictionRow]


@dataclass(frozen=True)
class JournalFile:
    """A complete journal file waiting to be written to the database, and its row count."""

    path: Path
    rows: int


class PredictionJournal:
    """Prediction rows kept on local disk until the database takes them.

    ``directory`` is where the files live (``<home>/journal``); created on the first append.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.broken = directory / "broken"
        # One generation per journal object: names stay unique across processes and restarts.
        self._generation = uuid.uuid4().hex[:12]
        self._sequence = itertools.count(1)

    def append(self, rows: Sequence[PredictionRow]) -> JournalFile:
        """Write ``rows`` as a new file, durably: on disk before this returns.

        Raises
        ------
        OSError
            When the file cannot be written (disk full, read-only home); nothing is left
            under a final name then.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{self._generation}-{next(self._sequence):06d}-{len(rows)}.json"
        final = self.directory / name
        temporary = self.directory / f".{name}.tmp"
        payload = _File(format=1, rows=list(rows)).model_dump_json().encode()
        try:
            with temporary.open("wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(final)
        except OSError:
            temporary.unlink(missing_ok=True)
            raise
        _sync_directory(self.directory)
        return JournalFile(final, len(rows))

    def waiting(self) -> list[JournalFile]:
        """The complete files, oldest first (names start with the UTC time of writing)."""
        try:
            names = sorted(entry.name for entry in os.scandir(self.directory) if entry.is_file())
        except FileNotFoundError:
            return []
        return [
            JournalFile(self.directory / name, int(match["rows"]))
            for name in names
            if (match := _NAME.match(name)) is not None
        ]

    def read(self, path: Path) -> list[PredictionRow]:
        """The rows of one file.

        Raises
        ------
        FileNotFoundError
            When another process replayed and removed the file first.
        JournalError
            When the file is not a complete journal file (truncated, or edited by hand).
        """
        payload = path.read_bytes()
        try:
            rows = _File.model_validate_json(payload).rows
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            msg = f"{path.name}: {first['msg']}{f' at {where}' if where else ''}"
            raise JournalError(msg) from exc
        naive = next((r for r in rows if r.prediction_timestamp.utcoffset() is None), None)
        if naive is not None:
            msg = f"{path.name}: prediction_timestamp {naive.prediction_timestamp} has no offset"
            raise JournalError(msg)
        return rows

    def remove(self, path: Path) -> None:
        """Forget a file whose rows are committed to the database."""
        path.unlink(missing_ok=True)  # another process may have replayed it first

    def set_aside(self, path: Path) -> Path | None:
        """Move a file that cannot be read to ``broken/``; None when it is gone already."""
        self.broken.mkdir(parents=True, exist_ok=True)
        target = self.broken / path.name
        try:
            path.replace(target)
        except FileNotFoundError:
            return None
        return target

    def adopt_interrupted(self, older_than_s: float = INTERRUPTED_AFTER_S) -> int:
        """Give temporary files left by a writer that died mid-write their final names.

        Their rows were answered to clients, so they are read like any other file: a complete
        one is replayed, a cut-short one is set aside by the reader. A writer that is only
        slow loses nothing either: its rename fails and it keeps its rows to write again.
        Returns how many files were adopted.
        """
        adopted = 0
        cutoff = time.time() - older_than_s
        for temporary in self.directory.glob(".*.json.tmp"):
            try:
                if temporary.stat().st_mtime > cutoff:
                    continue
                temporary.replace(self.directory / temporary.name[1:].removesuffix(".tmp"))
            except FileNotFoundError:
                continue
            log.warning("journal file %s was left unfinished by a writer that stopped; "
                        "adopted, to be read back", temporary.name)  # fmt: skip
            adopted += 1
        return adopted


def _sync_directory(directory: Path) -> None:
    # The rename is durable only once the directory itself is on disk (POSIX).
    if os.name != "posix":  # pragma: no cover - volforecast runs on Linux and macOS
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
