"""Shared fixtures: settings, and a fresh migrated database per test on SQLite and PostgreSQL.

PostgreSQL comes from ``VOLFORECAST_TEST_POSTGRES_URL`` (a role allowed to create databases;
`.ci/run` points it at Debian's server) or, when that is unset, from a throwaway server the
session starts from the installed binaries. Without either, PostgreSQL tests are skipped, unless
``VOLFORECAST_TEST_REQUIRE_POSTGRES=1`` turns the skip into a failure (CI sets it, so a broken
server can never pass as "skipped"). ``VOLFORECAST_TEST_REQUIRE_SHARED=1`` does the same for
tests that read ``../shared/data``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from volforecast.core.features import DailyData
from volforecast.data import db
from volforecast.data.local_postgres import LocalPostgres, find_postgres_bin
from volforecast.data.sources import load_sample
from volforecast.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SP500_FILE = SHARED_DATA / "sp500_daily_1999_2018.parquet"


def _required(name: str) -> bool:
    return os.environ.get(name, "") not in {"", "0", "false", "no"}


def skip_or_fail(reason: str, flag: str) -> None:
    """Skip, or fail when the environment says this must not be skipped."""
    if _required(flag):
        pytest.fail(f"{reason} ({flag} is set)")
    pytest.skip(reason)


class IsolatedSettings(Settings):
    """Settings from arguments only: the developer's .env and VOLFORECAST_* are ignored."""

    @classmethod
    def settings_customise_sources(  # type: ignore[override]
        cls, settings_cls: type[Settings], init_settings: Any, *args: Any, **kwargs: Any
    ) -> tuple[Any, ...]:
        return (init_settings,)


def make_settings(**overrides: Any) -> Settings:
    """Settings built from the given values and the defaults alone."""
    return IsolatedSettings(**overrides)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server on which the tests may create databases."""
    given = os.environ.get("VOLFORECAST_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    if find_postgres_bin() is None:
        skip_or_fail("PostgreSQL is not installed", "VOLFORECAST_TEST_REQUIRE_POSTGRES")
    with LocalPostgres(durable=False) as server:
        yield server.url


def _admin(url: str) -> Engine:
    return create_engine(
        make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )


@pytest.fixture(scope="session")
def postgres_template(postgres_server_url: str) -> Iterator[str]:
    """Name of a migrated database that each test's database is copied from."""
    name = f"volforecast_template_{uuid.uuid4().hex[:8]}"
    admin = _admin(postgres_server_url)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    engine = db.create_db_engine(make_settings(database_url=url))
    db.upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test's database is copied from."""
    path = tmp_path_factory.mktemp("sqlite-template") / "volforecast.db"
    engine = db.create_db_engine(make_settings(database_url=f"sqlite:///{path}"))
    db.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database, dropped after the test."""
    template = request.getfixturevalue("postgres_template")
    name = f"volforecast_test_{uuid.uuid4().hex[:12]}"
    admin = _admin(postgres_server_url)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite database in the test's directory."""
    path = tmp_path / "volforecast.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres, id="postgresql"),
    ]
)
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database, once on SQLite and once on PostgreSQL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test's database, with state under the test's directory."""
    return make_settings(home=tmp_path / "var", database_url=database_url)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """An engine on the test's database."""
    engine = db.create_db_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def sp500_file() -> Path:
    """The shared S&P 500 file; skipped when ../shared/data is not beside the repository."""
    if not SP500_FILE.is_file():
        skip_or_fail(f"{SP500_FILE} is missing", "VOLFORECAST_TEST_REQUIRE_SHARED")
    return SP500_FILE


@pytest.fixture(scope="session")
def gspc() -> DailyData:
    """The S&P 500, 1999-2018, as features."""
    frame = load_sample().frame
    return DailyData.from_prices(frame[frame["ticker"] == "^GSPC"])


@pytest.fixture(scope="session")
def ixic() -> DailyData:
    """The NASDAQ Composite, 1999-2018, as features."""
    frame = load_sample().frame
    return DailyData.from_prices(frame[frame["ticker"] == "^IXIC"])
