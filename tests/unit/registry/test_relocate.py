"""A moved local MLflow store points its artifact locations at their new place."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mlflow import MlflowClient

from volforecast.registry.relocate import local_path, relocate_store


def _store(tmp_path: Path, old_root: Path) -> tuple[str, MlflowClient]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    for name in ("volforecast-garch", "volforecast-har"):
        client.create_experiment(name, artifact_location=(old_root / name).as_uri())
    # An experiment of someone else's, whose path only looks alike ("_" is no wildcard here).
    client.create_experiment("other", artifact_location=(old_root / "volforecast-garch_x").as_uri())
    return uri, client


def test_locations_under_the_old_root_move_to_the_new_one(tmp_path: Path) -> None:
    old_root, new_root = tmp_path / "old_a" / "mlartifacts", tmp_path / "new" / "mlartifacts"
    uri, client = _store(tmp_path, old_root)
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
