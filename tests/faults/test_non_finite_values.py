"""Non-finite prices: refused by the gate and by the database, and harmless once stored."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from tests.factories import clean_prices, with_row
from tests.faults.conftest import Cli
from volforecast.cli import ExitCode
from volforecast.data import db
from volforecast.data.quality.gate import run_gate
from volforecast.data.repositories.market import MarketRepository
from volforecast.data.repositories.predictions import PredictionRepository, PredictionRow
from volforecast.data.repositories.prices import PRICES, STORED_COLUMNS, PriceRepository
from volforecast.data.sources import load_file
from volforecast.settings import QualitySettings

NUMBER_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume", "split_coefficient")


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
        return path
    # pandas would write a NaN as Parquet's null; a writer that keeps NaN apart is pyarrow's.
    columns = {
        name: pa.array(values.to_numpy(), from_pandas=values.dtype == object)
        for name, values in frame.items()
    }
    pq.write_table(pa.table(columns), path)
    return path


# pandas writes a float NaN into a CSV as an empty cell: a missing value, tested below.
WRITTEN = [
    pytest.param(
        suffix, written, as_text, id=f"{suffix[1:]}-{'text' if as_text else 'float'}-{written}"
    )
    for suffix in (".csv", ".parquet")
    for as_text in (True, False)
    for written in ("inf", "-inf", "nan", "Infinity")
    if as_text or suffix == ".parquet" or written != "nan"
]


@pytest.mark.parametrize(("suffix", "written", "as_text"), WRITTEN)
@pytest.mark.parametrize("column", NUMBER_COLUMNS)
def test_a_non_finite_number_is_rejected_with_its_own_check_row_and_date(
    tmp_path: Path, suffix: str, written: str, as_text: bool, column: str
) -> None:
    frame = clean_prices("AAA", 40)
    if as_text:
        frame[column] = frame[column].map(repr).astype(object)
        frame.loc[17, column] = written
    else:
        frame.loc[17, column] = float(written)
    batch = load_file(_write(frame, tmp_path / f"prices{suffix}"))
    result = run_gate(batch.frame, QualitySettings(), batch.unreadable)
    findings = result.report.tickers["AAA"].findings
    assert [(f.check, f.rows) for f in findings] == [("non_finite_value", 1)]
    day = frame.loc[17, "date"].date().isoformat()
    (example,) = findings[0].examples
    assert example.startswith(f"row 18, {day}: {column} "), example
    assert result.rejected["check"].tolist() == ["non_finite_value"]
    assert len(result.accepted) == 39


def test_an_empty_cell_is_still_a_missing_value(tmp_path: Path) -> None:
    frame = clean_prices("AAA", 40).astype({"close": object})
    frame.loc[5, "close"] = None
    batch = load_file(_write(frame, tmp_path / "prices.csv"))
    result = run_gate(batch.frame, QualitySettings(), batch.unreadable)
    assert [f.check for f in result.report.tickers["AAA"].findings] == ["missing_value"]


def test_text_that_is_no_number_is_rejected_as_such(tmp_path: Path) -> None:
    frame = clean_prices("AAA", 40).astype({"low": object})
    frame.loc[9, "low"] = "12,5"
    batch = load_file(_write(frame, tmp_path / "prices.csv"))
    result = run_gate(batch.frame, QualitySettings(), batch.unreadable)
    (finding,) = result.report.tickers["AAA"].findings
    assert finding.check == "not_a_number"
    assert finding.examples[0].endswith("low '12,5'")


def test_the_gate_rejects_infinity_in_a_frame_from_anywhere() -> None:
    # Stored rows come back without the source's notes: the gate sees the value itself.
    frame = with_row(clean_prices("AAA", 40), 11, high=math.inf)
    result = run_gate(frame, QualitySettings())
    (finding,) = result.report.tickers["AAA"].findings
    assert (finding.check, finding.rows) == ("non_finite_value", 1)
    assert finding.examples[0].endswith("high inf")


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_the_database_refuses_non_finite_prices_forecasts_and_market_days(
    engine: Engine, value: float
) -> None:
    now = dt.datetime.now(dt.UTC)
    prices = PriceRepository(engine)
    with pytest.raises(IntegrityError):
        prices.upsert(with_row(clean_prices("AAA", 5), 2, high=value), ingested_at=now)
    assert prices.count() == 0
    prices.upsert(clean_prices("AAA", 5), ingested_at=now)  # a failed write leaves no debris
    assert prices.count() == 5
    row = PredictionRow("AAA", "GARCH", dt.date(2018, 1, 2), 1, dt.date(2018, 1, 3), value, "1",
                        None, now)  # fmt: skip
    with pytest.raises(IntegrityError):
        PredictionRepository(engine).upsert([row])
    day = pd.DatetimeIndex([pd.Timestamp("2018-01-02")])
    with pytest.raises(IntegrityError):
        MarketRepository(engine).replace(
            pd.Series([value], index=day), pd.Series([3], index=day), computed_at=now
        )


def _store_as_an_older_version_did(settings_url: str, frame: pd.DataFrame) -> None:
    """Prices written at schema 0004, whose checks let infinity in, then the upgrade."""
    from tests.conftest import make_settings  # noqa: PLC0415

    engine = db.create_db_engine(make_settings(database_url=settings_url))
    db.downgrade(engine, "0004")
    rows = frame.assign(date=frame["date"].dt.date, ingested_at=dt.datetime.now(dt.UTC))
    with engine.begin() as connection:
        connection.execute(insert(PRICES), rows.loc[:, list(STORED_COLUMNS)].to_dict("records"))
    db.upgrade(engine)
    engine.dispose()


@pytest.mark.slow
def test_a_bad_value_stored_by_an_older_version_sinks_no_other_ticker(
    cli: Cli, database_url: str, engine: Engine
) -> None:
    bad = [with_row(clean_prices("BAD", 600, seed=1), 300, high=math.inf)]
    if engine.dialect.name == "postgresql":  # SQLite stores NaN as NULL, which NOT NULL refuses
        bad.append(with_row(clean_prices("NAN", 600, seed=3), 200, close=math.nan))
    good = clean_prices("GOOD", 600, seed=2)
    _store_as_an_older_version_did(database_url, pd.concat([*bad, good], ignore_index=True))
    assert PriceRepository(engine).count() == 600 * (len(bad) + 1), "the upgrade keeps them"

    ingest = cli("ingest", "--sample")
    assert ingest.returncode == ExitCode.OK, ingest.stderr
    quality = cli("quality")
    assert quality.returncode == ExitCode.PARTIAL, quality.stdout
    assert "non_finite_value" in quality.stdout
    assert "BAD" in quality.stdout

    assert quality.stdout.count("non_finite_value") == len(bad), quality.stdout

    train = cli("train", "--all", "--models", "garch", "--no-plots")
    assert train.returncode == ExitCode.PARTIAL, train.stderr
    assert train.stdout.count("not a finite number") == len(bad), train.stdout
    assert "garch_volatility_good v1" in train.stdout
    assert "garch_volatility_bad" not in train.stdout
    assert "garch_volatility_nan" not in train.stdout


def test_a_file_with_one_infinity_loads_the_rest_and_reports_it(cli: Cli, tmp_path: Path) -> None:
    frame = clean_prices("AAA", 300).astype({"high": object})
    frame.loc[120, "high"] = "inf"
    frame.to_csv(tmp_path / "prices.csv", index=False)
    done = cli("ingest", "--file", "prices.csv", "--report-json", "report.json")
    assert done.returncode == ExitCode.PARTIAL, done.stderr
    assert "non_finite_value" in done.stdout
    assert "299 rows inserted" in done.stdout
    again = cli("ingest", "--sample")
    assert again.returncode == ExitCode.OK, again.stderr
    assert np.isfinite(pd.read_json(tmp_path / "report.json", typ="series")["inserted"])


def test_unreadable_text_in_an_optional_column_is_a_missing_value(tmp_path: Path) -> None:
    frame = clean_prices("AAA", 40).astype({"volume": object})
    frame.loc[9, "volume"] = "1,234,500"
    batch = load_file(_write(frame, tmp_path / "prices.csv"))
    result = run_gate(batch.frame, QualitySettings(), batch.unreadable)
    assert result.report.clean
    assert np.isnan(result.accepted.loc[9, "volume"])
