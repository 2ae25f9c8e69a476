"""A moved local MLflow store points its artifact locations at their new place."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from volforecast.registry.relocate import local_path, relocate_store


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres, id="postgresql"),
    ]
)
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty MLflow database store: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mlflow.db'}"
        return
    server = make_url(request.getfixturevalue("postgres_server_url"))
    admin = create_engine(server.set(drivername="postgresql+psycopg"),
                          isolation_level="AUTOCOMMIT")  # fmt: skip
    name = f"mlflow_relocate_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(drivername="postgresql+psycopg", database=name).render_as_string(
        hide_password=False
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _store(uri: str, old_root: Path) -> tuple[str, MlflowClient]:
    client = MlflowClient(tracking_uri=uri)
    for name in ("volforecast-garch", "volforecast-har"):
        client.create_experiment(name, artifact_location=(old_root / name).as_uri())
    # An experiment of someone else's, whose path only looks alike ("_" is no wildcard here).
    client.create_experiment("other", artifact_location=(old_root / "volforecast-garch_x").as_uri())
    return uri, client


def test_locations_under_the_old_root_move_to_the_new_one(store_uri: str, tmp_path: Path) -> None:
    old_root, new_root = tmp_path / "old_a" / "mlartifacts", tmp_path / "new" / "mlartifacts"
    uri, client = _store(store_uri, old_root)
    garch = client.get_experiment_by_name("volforecast-garch")
    assert garch is not None
    run = client.create_run(garch.experiment_id)
    (new_root / "volforecast-garch").mkdir(parents=True)  # har's folder did not come along

    moved = relocate_store(uri, new_root)

    assert moved == {(old_root / "volforecast-garch").as_uri():
                     (new_root / "volforecast-garch").as_uri()}  # fmt: skip
    artifact_uri = str(client.get_run(run.info.run_id).info.artifact_uri)
    assert (
        local_path(artifact_uri) == new_root / "volforecast-garch" / run.info.run_id / "artifacts"
    )
    har = client.get_experiment_by_name("volforecast-har")
    other = client.get_experiment_by_name("other")
    assert har is not None
    assert other is not None
    assert har.artifact_location == (old_root / "volforecast-har").as_uri()
    assert other.artifact_location == (old_root / "volforecast-garch_x").as_uri()
    assert relocate_store(uri, new_root) == {}, "a store in place is left as it is"


def test_a_store_that_cannot_be_read_is_left_to_its_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        moved = relocate_store("postgresql+psycopg://nobody@127.0.0.1:1/none", Path("/x"))
    assert moved == {}
    assert "could not check where the MLflow store's artifacts are" in caplog.text
    assert relocate_store("file:///tmp/mlruns", Path("/x")) == {}
