"""The ingest job against real databases: idempotence, rejection, and a database that dies."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, create_engine, literal_column, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from tests.conftest import make_settings
from tests.factories import clean_prices, with_row
from volforecast.data import db
from volforecast.data.quality.gate import run_gate
from volforecast.data.repositories.market import MarketRepository
from volforecast.data.repositories.prices import PriceRepository, _copy_out
from volforecast.data.sources import PriceBatch, load_sample
from volforecast.errors import DatabaseUnavailableError
from volforecast.jobs.ingest import ingest
from volforecast.jobs.market import market_from_prices
from volforecast.jobs.quality import check_stored
from volforecast.settings import Settings


def batch(*frames: pd.DataFrame, source: str = "test") -> PriceBatch:
    return PriceBatch(pd.concat(frames, ignore_index=True), source=source)


def planted_faults() -> pd.DataFrame:
    """Two good tickers and the faults of the issue: negative price, high < low, a duplicate
    date with other prices, a 30-day gap, and a ticker of garbage symbols."""
    bad = clean_prices("BAD", seed=2)
    bad = with_row(bad, 250, low=-5.0)
    high, low = bad.loc[260, "high"], bad.loc[260, "low"]
    bad = with_row(bad, 260, high=low, low=high)
    duplicate = bad.loc[[270]].assign(close=lambda f: f["low"], adj_close=lambda f: f["low"])
    bad = pd.concat([bad.drop(index=range(100, 130)), duplicate])
    return pd.concat(
        [
            clean_prices("GOOD1", seed=0),
            clean_prices("GOOD2", seed=1),
            bad,
            clean_prices("#$%@!", 50, seed=3),
        ],
        ignore_index=True,
    )


def stored(engine: Engine) -> pd.DataFrame:
    return PriceRepository(engine).load()


def test_the_sample_loads_once_and_only_once(engine: Engine, settings: Settings) -> None:
    first = ingest(load_sample(), engine=engine, settings=settings)
    assert first.status == "complete"
    assert first.counts.inserted == 10_062
    second = ingest(load_sample(), engine=engine, settings=settings)
    assert second.counts.inserted == 0
    assert second.counts.updated == 0
    assert second.counts.unchanged == 10_062
    assert PriceRepository(engine).count() == 10_062
    # Each stage is timed, and together they are the job, bar the migration check.
    for report in (first, second):
        assert set(report.stage_seconds) == {"gate", "prices", "market"}
        assert all(s > 0 for s in report.stage_seconds.values())
        assert sum(report.stage_seconds.values()) <= report.seconds
        assert report.to_dict()["stage_seconds"].keys() == report.stage_seconds.keys()


def test_stored_prices_read_back_exactly_whatever_the_filter(engine: Engine) -> None:
    # PostgreSQL reads through COPY and arrow, SQLite row by row: both must give the same.
    frames = [clean_prices(t, 60, seed=i) for i, t in enumerate(("BRK.B", "^GSPC", "A"))]
    frames[0].loc[20, "volume"] = np.nan  # a missing volume stays missing
    given = pd.concat(frames, ignore_index=True).assign(source="O'Brien's feed")
    repository = PriceRepository(engine)
    # One source for a whole chunk, and then two (PostgreSQL copies them differently).
    repository.upsert(given, ingested_at=pd.Timestamp("2024-01-01", tz="UTC"))
    given.loc[given["ticker"] == "^GSPC", "source"] = "other's file"
    given.loc[given["ticker"] == "^GSPC", "close"] *= 1.01
    counts = repository.upsert(given, ingested_at=pd.Timestamp("2024-01-02", tz="UTC"))
    assert (counts.inserted, counts.updated) == (0, 60)
    start, end = given["date"].iloc[10].date(), given["date"].iloc[40].date()
    read = repository.load(["BRK.B", "^GSPC"], start=start, end=end)
    expected = (
        given[given["ticker"].isin(["BRK.B", "^GSPC"]) & given["date"].between(
            pd.Timestamp(start), pd.Timestamp(end))]
        .sort_values(["ticker", "date"])
        .reset_index(drop=True)
    )  # fmt: skip
    assert list(read.columns) == list(expected.columns)
    assert str(read["ticker"].dtype) == "string"
    assert read["date"].dtype == "datetime64[ns]"
    assert read["ticker"].tolist() == expected["ticker"].tolist()
    assert (read["date"] == expected["date"]).all()
    for column in ("open", "high", "low", "close", "adj_close", "volume"):
        assert read[column].dtype == "float64"
        np.testing.assert_array_equal(read[column], expected[column].astype("float64"))
    assert read["volume"].isna().sum() == 1
    assert read["source"].tolist() == expected["source"].tolist()
    assert repository.load(["NOPE"]).empty
    assert len(repository.load()) == len(given)


def test_planted_faults_load_the_good_and_store_no_bad_row(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    frame = planted_faults()
    report = ingest(
        batch(frame), engine=engine, settings=settings, rejects_path=tmp_path / "rejects.csv"
    )
    assert report.status == "partial"
    quality = report.quality
    assert quality.with_status("ok") == ["GOOD1", "GOOD2"]
    assert quality.with_status("partial") == ["BAD"]
    assert quality.with_status("rejected") == ["#$%@!"]
    checks = {f.check for f in quality.tickers["BAD"].findings}
    assert checks == {"non_positive_price", "high_below_low", "duplicate_date", "gap"}

    rows = stored(engine)
    assert set(rows["ticker"]) == {"GOOD1", "GOOD2", "BAD"}
    assert (rows[["open", "high", "low", "close", "adj_close"]] > 0).all().all()
    assert (rows["high"] >= rows["low"]).all()
    assert not rows.duplicated(["ticker", "date"]).any()
    assert run_gate(rows, settings.quality).report.clean, "stored rows pass the gate again"

    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert len(rejects) == report.quality.rows_received - report.quality.rows_accepted
    assert set(rejects["check"]) == checks | {"bad_ticker"}


def test_a_bad_reload_loses_no_stored_row(engine: Engine, settings: Settings) -> None:
    good = clean_prices("AAA")
    ingest(batch(good), engine=engine, settings=settings)
    before = stored(engine)
    # The same days again, one of them corrupted, plus one new day further on.
    later = clean_prices("AAA", 1, start=good["date"].iloc[-1].date(), seed=9)
    corrupt = with_row(good, 10, close=np.nan)
    report = ingest(batch(corrupt, later), engine=engine, settings=settings)
    assert report.status == "partial"
    assert report.counts.inserted == 1
    after = stored(engine)
    assert len(after) == len(before) + 1
    kept = after[after["date"] == good["date"].iloc[10]]
    assert kept["close"].item() == pytest.approx(good["close"].iloc[10], rel=1e-12)


def test_changed_prices_replace_the_stored_ones(engine: Engine, settings: Settings) -> None:
    good = clean_prices("AAA")
    ingest(batch(good), engine=engine, settings=settings)
    revised = good.copy()
    revised["adj_close"] = revised["adj_close"] * 0.98  # a dividend adjusts the history
    revised["source"] = "revised"
    report = ingest(batch(revised, source="revised"), engine=engine, settings=settings)
    assert (report.counts.inserted, report.counts.updated) == (0, len(good))
    rows = stored(engine)
    np.testing.assert_allclose(rows["adj_close"], revised["adj_close"], rtol=1e-12)
    assert set(rows["source"]) == {"revised"}


def test_stored_prices_can_be_checked_again(engine: Engine, settings: Settings) -> None:
    ingest(
        batch(clean_prices("AAA"), clean_prices("BBB", seed=1)), engine=engine, settings=settings
    )
    assert check_stored(engine, settings.quality).clean
    # A stricter gap threshold finds nothing either: the series have no holes.
    strict = settings.quality.model_copy(update={"max_gap_trading_days": 1})
    assert check_stored(engine, strict, ["AAA"]).clean


@pytest.mark.postgres
def test_a_database_that_dies_mid_load_keeps_its_rows_and_the_rerun_finishes(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = make_settings(home=tmp_path, database_url=postgres_url, ingest_chunk_rows=1_000)
    engine = db.create_db_engine(settings)
    name = make_url(postgres_url).database
    admin = create_engine(
        make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )

    def cut_the_database(done: int, total: int) -> None:
        if done == 2_000:  # two chunks committed: refuse new connections, end the open ones
            with admin.connect() as connection:
                connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )

    prices = pd.concat([clean_prices(f"T{i}", 500, seed=i) for i in range(10)])
    with pytest.raises(DatabaseUnavailableError, match="2000 of 5000 rows were committed"):
        ingest(batch(prices), engine=engine, settings=settings, progress=cut_the_database)

    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    assert PriceRepository(engine).count() == 2_000
    report = ingest(batch(prices), engine=engine, settings=settings)
    assert (report.counts.inserted, report.counts.unchanged) == (3_000, 2_000)
    assert PriceRepository(engine).count() == 5_000
    engine.dispose()
    admin.dispose()


def test_a_failed_copy_raises_as_sqlalchemy_raises(postgres_url: str, tmp_path: Path) -> None:
    # COPY runs on psycopg's own cursor: its errors must still reach `reachable` and the
    # API's handlers as SQLAlchemy's (a lost server as OperationalError: 503, not 500).
    engine = db.create_db_engine(make_settings(home=tmp_path, database_url=postgres_url))
    missing = select(literal_column("x")).select_from(table("no_such_table"))
    with engine.connect() as connection, pytest.raises(ProgrammingError, match="no_such_table"):
        _copy_out(connection, missing)
    with engine.connect() as connection:
        admin = create_engine(make_url(postgres_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as other:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
        with pytest.raises(OperationalError):
            _copy_out(connection, select(literal_column("1").label("x")))
        connection.invalidate()  # the server ended it: nothing to roll back
    engine.dispose()


def test_ingest_on_an_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where a directory should be")
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'blocked' / 'x.db'}", home=tmp_path
    )
    with pytest.raises(DatabaseUnavailableError, match="unable to open database file"):
        ingest(batch(clean_prices("AAA")), engine=db.create_db_engine(settings), settings=settings)


def test_progress_reports_every_chunk(engine: Engine, tmp_path: Path, database_url: str) -> None:
    settings = make_settings(home=tmp_path, database_url=database_url, ingest_chunk_rows=1_000)
    seen: list[tuple[int, int]] = []
    prices = pd.concat([clean_prices(f"T{i}", 500, seed=i) for i in range(5)])
    ingest(
        batch(prices),
        engine=engine,
        settings=settings,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1_000, 2_500), (2_000, 2_500), (2_500, 2_500)]


def test_an_empty_file_fails(engine: Engine, settings: Settings) -> None:
    report = ingest(batch(clean_prices("AAA").iloc[:0]), engine=engine, settings=settings)
    assert report.status == "failed"
    assert PriceRepository(engine).count() == 0


def test_ingest_keeps_the_market_series_of_every_stored_ticker(
    engine: Engine, settings: Settings
) -> None:
    sample = load_sample().frame
    cut = sorted(sample["date"].unique())[-300]
    first = ingest(batch(sample[sample["date"] < cut]), engine=engine, settings=settings)
    second = ingest(batch(sample[sample["date"] >= cut]), engine=engine, settings=settings)
    assert second.market_days == 300
    everything = market_from_prices(PriceRepository(engine).load(), settings.quality)
    assert first.market_days + second.market_days == len(everything)
    stored = MarketRepository(engine).load()
    # Refreshing the days of a batch alone gives what computing from all prices gives.
    assert stored.index.equals(everything.index)
    np.testing.assert_allclose(stored.to_numpy(), everything["log_rv"].to_numpy(), rtol=1e-12)

    again = ingest(load_sample(), engine=engine, settings=settings)
    assert again.counts.unchanged == len(sample)
    assert MarketRepository(engine).load().equals(stored)


def test_the_first_ingest_after_an_upgrade_computes_the_whole_market_series(
    engine: Engine, settings: Settings
) -> None:
    sample = load_sample().frame
    cut = sorted(sample["date"].unique())[-5]
    # Prices stored before the series existed: nothing refreshed it.
    ingested_at = pd.Timestamp.now(tz="UTC").to_pydatetime()
    PriceRepository(engine).upsert(sample[sample["date"] < cut], ingested_at=ingested_at)
    assert MarketRepository(engine).count() == 0
    report = ingest(batch(sample[sample["date"] >= cut]), engine=engine, settings=settings)
    assert report.market_days == sample["date"].nunique() - 1  # the first day anchors returns
    assert MarketRepository(engine).load().index.min() == sorted(sample["date"].unique())[1]


def test_market_writers_at_the_same_moment_neither_collide_nor_lose_days(engine: Engine) -> None:
    days = pd.bdate_range("2018-01-02", periods=200)
    log_rv = pd.Series(np.linspace(0.0, 1.0, len(days)), index=days)
    tickers = pd.Series(3, index=days)
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    repository = MarketRepository(engine)
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def write(first: int) -> None:
        for _ in range(15):
            barrier.wait()
            try:
                repository.replace(log_rv.iloc[first:], tickers, computed_at=now)
            except Exception as exc:  # noqa: BLE001  (collected and asserted on below)
                errors.append(exc)

    threads = [threading.Thread(target=write, args=(first,)) for first in (0, 50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    assert repository.load().index.equals(days)
