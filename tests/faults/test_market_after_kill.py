"""The market series after killed ingests: it always equals a recompute from the stored prices."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from tests.factories import clean_prices
from tests.faults.conftest import Cli
from tests.integration.servers import clean_env
from volforecast.cli import ExitCode
from volforecast.data.repositories.market import MarketRepository
from volforecast.data.repositories.prices import PriceRepository
from volforecast.jobs.market import market_from_prices, refresh_market
from volforecast.settings import QualitySettings

pytestmark = pytest.mark.slow

CHUNK = "20000"
"""Rows per ingest transaction here, so that a kill lands between many of them."""


def assert_market_equals_a_recompute(engine: Engine) -> None:
    stored = MarketRepository(engine).load()
    everything = market_from_prices(PriceRepository(engine).load(), QualitySettings())
    assert MarketRepository(engine).stale() is None, "a refresh mark was left behind"
    assert stored.index.equals(everything.index)
    np.testing.assert_allclose(stored.to_numpy(), everything["log_rv"].to_numpy(), rtol=1e-12)


def _small_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.csv"
    clean_prices("SMALL", 30, start=pd.Timestamp("2018-06-01").date()).to_csv(path, index=False)
    return path


@pytest.mark.shared_data
@pytest.mark.parametrize("boundary", ["ingest.after_chunk", "ingest.after_prices"])
def test_a_kill_at_a_stage_boundary_is_repaired_by_the_next_ingest(
    cli: Cli, engine: Engine, sp500_file: Path, tmp_path: Path, boundary: str
) -> None:
    killed = cli(
        "ingest", "--file", str(sp500_file), ingest_chunk_rows=CHUNK,
        VOLFORECAST_FAULT_AT=boundary,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert PriceRepository(engine).count() > 0, "the kill came after committed prices"
    assert MarketRepository(engine).stale() is not None

    done = cli("ingest", "--file", str(_small_file(tmp_path)))
    assert done.returncode == ExitCode.OK, done.stderr
    assert_market_equals_a_recompute(engine)


@pytest.mark.shared_data
def test_a_kill_at_a_random_moment_is_repaired_too(
    database_url: str, engine: Engine, sp500_file: Path, tmp_path: Path, cli: Cli
) -> None:
    env = clean_env(home=str(tmp_path / "var"), database_url=database_url,
                    ingest_chunk_rows=CHUNK)  # fmt: skip
    load = subprocess.Popen(
        [sys.executable, "-m", "volforecast", "ingest", "--file", str(sp500_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while PriceRepository(engine).count() < 200_000 and time.monotonic() < deadline:
        time.sleep(0.5)
    load.kill()
    load.wait(timeout=30)
    assert 0 < PriceRepository(engine).count() < 1_693_389

    done = cli("ingest", "--file", str(_small_file(tmp_path)))
    assert done.returncode == ExitCode.OK, done.stderr
    assert_market_equals_a_recompute(engine)


@pytest.mark.shared_data
def test_a_complete_load_after_a_killed_one_equals_a_recompute(
    cli: Cli, engine: Engine, sp500_file: Path
) -> None:
    killed = cli("ingest", "--file", str(sp500_file), ingest_chunk_rows=CHUNK,
                 VOLFORECAST_FAULT_AT="ingest.after_chunk")  # fmt: skip
    assert killed.returncode == -signal.SIGKILL
    done = cli("ingest", "--file", str(sp500_file))
    assert done.returncode in {ExitCode.OK, ExitCode.PARTIAL}, done.stderr
    assert PriceRepository(engine).count() > 1_600_000
    assert_market_equals_a_recompute(engine)


def test_a_refresh_that_read_older_prices_stores_nothing_and_keeps_the_mark(
    engine: Engine,
) -> None:
    # Refresh A reads the mark, prices change and refresh B stores them: A's series, computed
    # from the prices before, must not overwrite B's, nor clear a mark it did not answer.
    now = dt.datetime.now(dt.UTC)
    prices = PriceRepository(engine)
    market = MarketRepository(engine)
    prices.upsert(clean_prices("AAA", 200), ingested_at=now)
    assert refresh_market(engine, QualitySettings()) > 0
    prices.upsert(clean_prices("BBB", 200, seed=1), ingested_at=now)
    read_by_a = market.stale()
    assert read_by_a is not None
    before_b = market_from_prices(prices.load(), QualitySettings())
    prices.upsert(clean_prices("CCC", 200, seed=2), ingested_at=now)
    assert refresh_market(engine, QualitySettings()) > 0  # B
    stored_by_b = market.load()
    days = market.replace(before_b["log_rv"], before_b["tickers"], computed_at=now,
                          clears=read_by_a)  # fmt: skip
    assert days == 0, "A's older series is not stored"
    assert market.load().equals(stored_by_b)
    prices.upsert(clean_prices("DDD", 200, seed=3), ingested_at=now)
    mark = market.stale()
    assert mark is not None
    assert mark.revision > read_by_a.revision, "a revision is never counted twice"
    assert_market_equals_a_recompute_after(engine)


def assert_market_equals_a_recompute_after(engine: Engine) -> None:
    refresh_market(engine, QualitySettings())
    assert_market_equals_a_recompute(engine)
