"""Schema and migrations on SQLite and PostgreSQL, and the database's own constraints."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, create_engine, insert, inspect, text
from sqlalchemy.exc import IntegrityError

from tests.conftest import make_settings, skip_or_fail
from volforecast.data import db
from volforecast.data.local_postgres import LocalPostgres, find_postgres_bin
from volforecast.data.repositories.predictions import PredictionRepository
from volforecast.data.tables import Base, ModelMetric, StockPrice, VolatilityPrediction
from volforecast.errors import DatabaseUnavailableError

NOW = dt.datetime(2024, 1, 2, 17, 0, tzinfo=dt.UTC)
BAR = {
    "ticker": "AAA",
    "date": dt.date(2024, 1, 2),
    "open": 10.0,
    "high": 11.0,
    "low": 9.0,
    "close": 10.5,
    "adj_close": 10.5,
    "volume": 100,
    "source": "test",
    "ingested_at": NOW,
}


def table_names(engine: Engine) -> set[str]:
    inspector = inspect(engine)
    if engine.dialect.name == "sqlite":
        return set(inspector.get_table_names())
    return {f"{s}.{t}" for s in ("market", "ml") for t in inspector.get_table_names(schema=s)}


def test_migrations_go_down_and_up_again(engine: Engine) -> None:
    assert db.current_revision(engine) == db.head_revision()
    expected = (
        {"stock_prices", "volatility_predictions", "model_metrics"}
        if engine.dialect.name == "sqlite"
        else {"market.stock_prices", "ml.volatility_predictions", "ml.model_metrics"}
    )
    assert expected <= table_names(engine)
    db.downgrade(engine, "base")
    assert db.current_revision(engine) is None
    assert not expected & table_names(engine)
    db.upgrade(engine)
    assert expected <= table_names(engine)


def test_the_tables_match_the_migrations(engine: Engine) -> None:
    metadata = Base.metadata
    if engine.dialect.name == "sqlite":  # no schemas there: compare against a schema-less copy
        metadata = MetaData()
        for table in Base.metadata.sorted_tables:
            table.to_metadata(metadata, schema=None)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": engine.dialect.name == "postgresql",
                "compare_type": True,
                "version_table": db.VERSION_TABLE,
            },
        )
        assert compare_metadata(context, metadata) == []


@pytest.mark.parametrize(
    ("change", "constraint"),
    [
        ({"low": -1.0}, "low_positive"),
        ({"high": 8.0}, "high_not_below_low"),
        ({"adj_close": 0.0}, "adj_close_positive"),
        ({"volume": -1}, "volume_not_negative"),
    ],
)
def test_the_database_itself_refuses_bad_prices(
    engine: Engine, change: dict[str, float], constraint: str
) -> None:
    with pytest.raises(IntegrityError, match=constraint), engine.begin() as connection:
        connection.execute(insert(StockPrice), [{**BAR, **change}])


def test_a_second_price_for_the_same_day_is_refused(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(insert(StockPrice), [BAR])
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(StockPrice), [BAR])


def test_a_prediction_step_is_unique_per_model_version(engine: Engine) -> None:
    row = {
        "ticker": "AAA",
        "model_type": "GARCH",
        "origin_date": dt.date(2024, 1, 2),
        "step": 1,
        "forecast_date": dt.date(2024, 1, 3),
        "predicted_volatility": 1.3,
        "model_version": "1",
        "run_id": "abc",
        "prediction_timestamp": NOW,
    }
    with engine.begin() as connection:
        connection.execute(insert(VolatilityPrediction), [row, {**row, "model_version": "2"}])
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(VolatilityPrediction), [{**row, "predicted_volatility": 2.0}])


def test_forecasts_stored_before_served_as_are_productions_after_the_upgrade(
    engine: Engine,
) -> None:
    # Given a database at revision 0008 holding a stored forecast step
    db.downgrade(engine, "0008")
    table = (
        "volatility_predictions" if engine.dialect.name == "sqlite" else "ml.volatility_predictions"
    )
    columns = ("ticker, model_type, origin_date, step, forecast_date, predicted_volatility,"
               " model_version, run_id, prediction_timestamp")  # fmt: skip
    values = ":" + ", :".join(c.strip() for c in columns.split(","))
    old = {"ticker": "AAA", "model_type": "GARCH", "origin_date": dt.date(2024, 1, 2), "step": 1,
           "forecast_date": dt.date(2024, 1, 3), "predicted_volatility": 1.3,
           "model_version": "1", "run_id": None, "prediction_timestamp": NOW}  # fmt: skip
    with engine.begin() as connection:
        connection.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), old)
    # When it is upgraded
    db.upgrade(engine)
    # Then the row is production's, as the model's readers see it
    repository = PredictionRepository(engine)
    (row,) = repository.find("AAA").rows
    assert (row.model_version, row.served_as, row.predicted_volatility) == ("1", "production", 1.3)
    # and a waiting challenger's step of version 2 is stored beside it, read only when asked
    repository.upsert([dataclasses.replace(row, model_version="2", served_as="challenger")])
    assert [r.model_version for r in repository.find("AAA").rows] == ["1"]
    assert [r.model_version for r in repository.find("AAA", served_as="challenger").rows] == ["2"]
    assert repository.find("AAA", served_as=None).total == 2
    assert set(repository.frame(["AAA"])["served_as"]) == {"production"}


def test_a_metric_is_unique_per_run(engine: Engine) -> None:
    row = {
        "ticker": "AAA",
        "model_type": "GARCH",
        "metric_name": "rmse",
        "metric_value": 1.2,
        "run_id": "abc",
        "model_version": "1",
        "created_at": NOW,
    }
    with engine.begin() as connection:
        connection.execute(insert(ModelMetric), [row, {**row, "metric_name": "mae"}])
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(ModelMetric), [row])


def test_a_fresh_database_is_created_on_first_use(tmp_path: Path) -> None:
    engine = db.create_db_engine(make_settings(home=tmp_path / "fresh"))
    assert db.current_revision(engine) is None
    db.ensure_schema(engine)
    assert db.current_revision(engine) == db.head_revision()
    assert (tmp_path / "fresh" / "volforecast.db").is_file()


def test_a_database_behind_the_code_is_not_migrated_behind_the_users_back(
    tmp_path: Path,
) -> None:
    engine = db.create_db_engine(make_settings(home=tmp_path))
    db.upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"UPDATE {db.VERSION_TABLE} SET version_num = 'old'")
    with pytest.raises(DatabaseUnavailableError, match="run `volforecast db upgrade`"):
        db.ensure_schema(engine)


def test_an_unreachable_database_is_one_clear_error() -> None:
    url = "postgresql+psycopg://vf:secret@127.0.0.1:9/volforecast"
    engine = db.create_db_engine(make_settings(database_url=url))
    with pytest.raises(DatabaseUnavailableError, match=r"vf:\*\*\*@127.0.0.1:9.*unavailable"):
        db.check_connection(engine)


@pytest.mark.postgres
def test_a_throwaway_postgres_server_starts_and_stops() -> None:
    if find_postgres_bin() is None:
        skip_or_fail("PostgreSQL is not installed", "VOLFORECAST_TEST_REQUIRE_POSTGRES")
    with LocalPostgres(durable=False) as server:
        engine = db.create_db_engine(make_settings(database_url=server.url))
        db.check_connection(engine)
        engine.dispose()
        data_dir = server._dir
        assert data_dir is not None
        assert data_dir.exists()
    assert not data_dir.exists(), "the server's directory is removed on exit"


@pytest.mark.postgres
def test_a_kept_postgres_cluster_survives_stop_restart_and_a_second_start() -> None:
    if find_postgres_bin() is None:
        skip_or_fail("PostgreSQL is not installed", "VOLFORECAST_TEST_REQUIRE_POSTGRES")
    # Not under tmp_path: as root the server runs as `postgres`, which must reach the folder.
    folder = Path(tempfile.mkdtemp(prefix="volforecast-kept-pg-"))
    (folder / "data.partial").mkdir()  # what an initdb killed half-way leaves
    server = LocalPostgres(durable=False, folder=folder).start()
    try:
        engine = create_engine(server.url_of("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("CREATE DATABASE kept"))
        engine.dispose()
        server.restart()
        assert server.healthy()
        port = server.port
        server.stop()
        assert not server.healthy()
        assert (folder / "data" / "PG_VERSION").exists(), "a kept cluster is not deleted"
        assert not (folder / "data.partial").exists()
        again = LocalPostgres(durable=False, folder=folder, port=port).start()
        with psycopg.connect(again.dsn("kept")) as connection:
            assert connection.execute("SELECT current_database()").fetchone() == ("kept",)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
