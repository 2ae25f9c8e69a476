"""A local MLflow store that moved with ``VOLFORECAST_HOME`` finds its model files again.

MLflow's database store records absolute artifact locations (``file:///old/home/mlartifacts/
volforecast-garch/...``) in its experiments, runs, logged models and model versions. After
``mv $HOME_A $HOME_B`` every one of them points at the old place. When the store is opened,
each volforecast experiment whose recorded folder is not the one under the current artifact
root, while that one exists, has the old prefix replaced by the new one in every row, in one
transaction: loading, the MLflow UI and new runs then all use the files where they are now.
An experiment whose folder is not under the current root either is left alone; loading its
models then fails with the paths of the missing files
(:class:`~volforecast.errors.ModelFilesMissingError`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from volforecast.registry.names import EXPERIMENT_PREFIX

log = logging.getLogger(__name__)

LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)
"""Where MLflow's database store records artifact locations."""
DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "mysql", "mssql"})


def local_path(uri: str) -> Path | None:
    """The path of a ``file:`` URI or plain path; None for any other scheme."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "" and uri.startswith("/"):
        return Path(uri)
    return None


def moved_prefixes(connection: Connection, artifact_root: Path) -> dict[str, str]:
    """Recorded experiment locations that now lie under ``artifact_root``, old to new."""
    rows = connection.execute(
        text("SELECT name, artifact_location FROM experiments WHERE name LIKE :prefix"),
        {"prefix": f"{EXPERIMENT_PREFIX}%"},
    ).all()
    moves = {}
    for name, location in rows:
        recorded = local_path(str(location or ""))
        here = artifact_root / str(name)
        if recorded is None or recorded == here or not here.is_dir():
            continue
        moves[str(location).rstrip("/")] = here.as_uri()
    return moves


def relocate_store(store_uri: str, artifact_root: Path) -> dict[str, str]:
    """Point a moved database store's artifact locations under ``artifact_root``.

    Returns the prefixes replaced, old to new (empty when nothing moved or there is no store
    yet). Safe to run at every start: a store already in place is only read.
    """
    if urlsplit(store_uri).scheme.split("+")[0] not in DATABASE_SCHEMES:
        return {}  # a file store keeps no locations in a database
    engine = create_engine(store_uri)
    try:
        moves = _relocate(engine, artifact_root)
    except SQLAlchemyError as exc:
        # The store's own client meets the same problem next and reports it; models that
        # stay unfound are named when they are loaded.
        log.warning("could not check where the MLflow store's artifacts are: %s",
                    str(exc).splitlines()[0])  # fmt: skip
        return {}
    finally:
        engine.dispose()
    for old, new in moves.items():
        log.warning("the MLflow store moved: artifact locations %s now read %s", old, new)
    return moves


def _relocate(engine: Engine, artifact_root: Path) -> dict[str, str]:
    """Rewrite the moved prefixes in one transaction; the prefixes, old to new."""
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        if "experiments" not in tables:
            return {}
        moves = moved_prefixes(connection, artifact_root)
    if not moves:
        return {}
    with engine.begin() as connection:
        for old, new in moves.items():
            for table, column in LOCATION_COLUMNS:
                if table not in tables:
                    continue
                # The exact prefix, up to a "/" (a LIKE pattern would read "_" as a wildcard);
                # table and column names come from LOCATION_COLUMNS, never from input.
                connection.execute(
                    text(
                        f"UPDATE {table} SET {column} = :new || substr({column}, :rest) "
                        f"WHERE {column} = :old OR substr({column}, 1, :n) = :old_slash"
                    ),
                    {"new": new, "rest": len(old) + 1, "old": old, "n": len(old) + 1,
                     "old_slash": old + "/"},
                )  # fmt: skip
    return moves
