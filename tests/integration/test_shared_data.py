"""The shared S&P 500 file, whole: every ticker loads, and loading it again changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from volforecast.data.repositories.prices import PriceRepository
from volforecast.data.sources import load_file
from volforecast.jobs.ingest import ingest
from volforecast.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def test_the_whole_file_loads_and_a_second_load_changes_nothing(
    engine: Engine, settings: Settings, sp500_file: Path
) -> None:
    batch = load_file(sp500_file)
    first = ingest(batch, engine=engine, settings=settings)
    quality = first.quality
    assert quality.rows_received == len(batch.frame) > 1_600_000
    tickers = batch.frame["ticker"].nunique()
    loaded = quality.with_status("ok") + quality.with_status("partial")
    assert len(loaded) == tickers, f"tickers rejected whole: {quality.with_status('rejected')}"
    # Real data has a few bad prints, forward-filled halts and series breaks; they are rejected
    # and reported, and they stay a tiny share of the file.
    assert first.status == "partial"
    assert 0 < len(batch.frame) - quality.rows_accepted < 0.005 * len(batch.frame)

    repository = PriceRepository(engine)
    count = repository.count()
    assert count == quality.rows_accepted == first.counts.inserted
    assert len(repository.summary()) == tickers

    second = ingest(batch, engine=engine, settings=settings)
    assert second.counts.inserted == 0
    assert second.counts.updated == 0
    assert second.counts.unchanged == count
    assert repository.count() == count
