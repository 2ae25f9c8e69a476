"""The embedded MLflow store runs in WAL mode, its connections on NORMAL sync; others are left."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from volforecast.registry.local_store import sqlite_file, use_wal

NORMAL, FULL = 1, 2


def _pragma(uri: str, name: str) -> object:
    engine = create_engine(uri)
    try:
        with engine.connect() as connection:
            return connection.execute(text(f"PRAGMA {name}")).scalar()
    finally:
        engine.dispose()


def test_the_store_file_is_put_in_wal_mode_and_its_connections_on_normal_sync(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'var' / 'mlflow.db'}"

    use_wal(store)

    assert _pragma(store, "journal_mode") == "wal"
    assert _pragma(store, "synchronous") == NORMAL
    assert _pragma(store, "busy_timeout") == 30000


def test_another_sqlite_file_keeps_its_own_settings(tmp_path: Path) -> None:
    use_wal(f"sqlite:///{tmp_path / 'mlflow.db'}")
    other = f"sqlite:///{tmp_path / 'other.db'}"

    assert _pragma(other, "journal_mode") == "delete"
    assert _pragma(other, "synchronous") == FULL


def test_a_server_or_another_database_is_not_a_store_file() -> None:
    assert sqlite_file("http://localhost:5000") is None
    assert sqlite_file("postgresql://u@h/db") is None
    assert sqlite_file("sqlite:///:memory:") is None
    use_wal("http://localhost:5000")  # nothing to do, nothing raised
