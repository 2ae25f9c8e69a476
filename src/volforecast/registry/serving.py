"""The models in production, loaded from the registry and kept current.

A prediction service or job asks :class:`ProductionModels` for "the production GARCH of AAPL";
it answers from memory. :meth:`ProductionModels.refresh` reads where every ``production``
alias points, loads only the versions it does not hold yet, and then swaps the whole table
in one assignment, so a reader sees either the old table or the new one, never a half-loaded
model. When the registry cannot be reached the table it has keeps serving.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModel

from volforecast.errors import ModelFilesMissingError
from volforecast.models.base import VolatilityModel
from volforecast.registry.names import (
    CHALLENGER,
    LIVE,
    PRODUCTION,
    TAG_CONVERGED,
    TAG_DECISION,
    TAG_MODEL_TYPE,
    TAG_TICKER,
    TAG_TICKERS,
    Alias,
    registered_model_name,
)
from volforecast.registry.pyfunc import ARTIFACT_KEY, load_models
from volforecast.registry.relocate import local_path
from volforecast.registry.tracking import paged

log = logging.getLogger(__name__)

MODEL_NAME_FILTER = "name LIKE '%_volatility_%'"


def download_models(name: str, version: str) -> dict[str, VolatilityModel]:
    """The models of a registered version, read straight from its artifacts.

    The same files and the same loader (:func:`~volforecast.registry.pyfunc.load_models`)
    as ``mlflow.pyfunc.load_model`` uses, without building MLflow's pyfunc wrapper around
    them, which reads and checks the model's YAML three times per version. Whatever the
    logged model is called (``garch_aapl``, or ``model`` as versions logged before were), its
    saved model is the one folder under ``artifacts``. Artifacts on this machine's disk are
    read where they are (copying them first took half the time of loading two thousand
    versions); others are downloaded to a temporary folder.

    Raises
    ------
    ModelFilesMissingError
        When files the version needs are not where the registry records them: the message
        names them.
    """
    uri = MlflowClient().get_model_version_download_uri(name, version)
    where = local_path(uri)
    if where is not None:
        if not where.is_dir():
            raise ModelFilesMissingError(_missing(name, version, where, where))
        return _read(name, version, where, where)
    with tempfile.TemporaryDirectory(prefix="volforecast-model-") as folder:
        root = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder))
        return _read(name, version, root, None)


def _read(name: str, version: str, root: Path, where: Path | None) -> dict[str, VolatilityModel]:
    """The saved model under ``root/artifacts``; ``where``: the registry's copy, when local."""
    try:
        saved = [p for p in (root / "artifacts").iterdir() if p.is_dir()]
        if not saved and where is not None:
            raise FileNotFoundError(2, "no saved model", str(root / "artifacts" / ARTIFACT_KEY))
        if len(saved) != 1:
            msg = f"{name} v{version} is not a volforecast model (no saved model in artifacts)"
            raise TypeError(msg)
        return load_models(saved[0])
    except FileNotFoundError as exc:
        if where is None or exc.filename is None:
            raise
        missing = Path(exc.filename)
        stored = where / missing.relative_to(root) if missing.is_relative_to(root) else missing
        raise ModelFilesMissingError(_missing(name, version, stored, where)) from exc


def _missing(name: str, version: str, missing: Path, where: Path) -> str:
    what = f"its model files are missing: {where} does not exist" if missing == where else (
        f"a model file is missing: {missing}")  # fmt: skip
    return (
        f"{name} v{version}: {what} (VOLFORECAST_HOME moved without its mlartifacts folder, "
        "or files deleted): restore them, or train again with --force"
    )


def registered_models(client: MlflowClient) -> Iterator[RegisteredModel]:
    """Every volforecast registered model."""
    return paged(client.search_registered_models, filter_string=MODEL_NAME_FILTER)


def live_versions(client: MlflowClient) -> set[tuple[str, str]]:
    """(name, version) of every version tagged as waiting for live evidence, in one search."""
    found = paged(client.search_model_versions, f"tags.`{TAG_DECISION}` = '{LIVE}'")
    return {(str(v.name), str(v.version)) for v in found}


@dataclass(frozen=True)
class Served:
    """One registered model's production version, loaded."""

    name: str
    version: str
    model_type: str
    models: dict[str, VolatilityModel]
    """By ticker: one for a per-ticker model, every served ticker for a pooled one."""
    run_id: str | None
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)
    """Held while one of ``models`` moves its origin and forecasts (that changes its state)."""


@dataclass(frozen=True)
class RefreshReport:
    """What one look at the registry found."""

    served: int
    loaded: list[str]
    failed: dict[str, str]


class ProductionModels:
    """Every registered model's ``production`` version, in memory, from ``client``'s registry.

    With ``alias="challenger"``: every challenger that waits for live evidence (tagged
    ``volforecast.decision = live``), the versions the daily job forecasts beside production.
    """

    def __init__(self, client: MlflowClient, alias: Alias = PRODUCTION) -> None:
        self.client = client
        self.alias = alias
        self._by_name: dict[str, Served] = {}
        self._refreshing = threading.Lock()
        self.last_refresh: dt.datetime | None = None
        self.last_error: str | None = None
        self.load_errors: dict[str, str] = {}
        self.unserved: frozenset[str] = frozenset()
        """Registered models none of whose versions holds the alias (none was ever promoted)."""

    def __len__(self) -> int:
        return len(self._by_name)

    def served(self) -> list[Served]:
        """The loaded production versions, by name."""
        return sorted(self._by_name.values(), key=lambda s: s.name)

    def find(self, model_type: str, ticker: str) -> tuple[Served, VolatilityModel] | None:
        """The production model of ``model_type`` (``garch``, ``lstm``, ...) for ``ticker``."""
        served = self._by_name.get(registered_model_name(model_type, ticker))
        if served is None:
            return None
        model = served.models.get(ticker)
        return None if model is None else (served, model)

    def refresh(self) -> RefreshReport:
        """Load what the ``production`` aliases point at now; keep serving on any failure.

        Raises
        ------
        mlflow.exceptions.MlflowException, OSError
            When the registry cannot be listed; the models held stay as they were.
        """
        with self._refreshing:
            try:
                listed = list(registered_models(self.client))
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                raise
            table: dict[str, Served] = {}
            todo: dict[str, str] = {}
            unserved = {m.name for m in listed if self.alias not in (m.aliases or {})}
            # Of the challengers, only those waiting for live evidence: one query for all.
            live = live_versions(self.client) if self.alias == CHALLENGER else None
            for model in listed:
                aliases = model.aliases or {}
                version = aliases.get(self.alias)
                if version is None or (live is not None and (model.name, str(version)) not in live):
                    continue
                if live is not None and aliases.get(PRODUCTION) == version:
                    continue  # production already (a promotion the daily job has yet to settle)
                held = self._by_name.get(model.name)
                if held is not None and held.version == str(version):
                    table[model.name] = held
                else:
                    todo[model.name] = str(version)
            loaded: list[str] = []
            failed: dict[str, str] = {}
            for name, version in todo.items():
                try:
                    table[name] = self._load(name, version)
                    loaded.append(f"{name} v{version}")
                except Exception as exc:  # noqa: BLE001  (one unreadable version must not stop the others)
                    failed[name] = f"v{version}: {type(exc).__name__}: {exc}"[:600]
                    log.warning("cannot load %s v%s: %s", name, version, exc)
                    held = self._by_name.get(name)
                    if held is not None:
                        table[name] = held  # the version before keeps serving
            self._by_name = table  # one assignment: readers see the old table or the new one
            self.unserved = frozenset(unserved)
            self.load_errors = failed
            self.last_error = None
            self.last_refresh = dt.datetime.now(dt.UTC)
        if loaded:
            log.info("loaded %d %s versions: %s", len(loaded), self.alias, ", ".join(loaded[:10]))
        return RefreshReport(len(table), loaded, failed)

    def _load(self, name: str, version: str) -> Served:
        details: Any = self.client.get_model_version(name, version)
        tags = details.tags or {}
        model_type = tags.get(TAG_MODEL_TYPE) or name.split("_volatility_", maxsplit=1)[0].upper()
        models = download_models(name, version)
        return Served(name, version, str(model_type), models, details.run_id)


@dataclass(frozen=True)
class VersionInfo:
    """A registered version as the service lists it."""

    name: str
    version: str
    alias: str
    """``production``, ``challenger``, or ``none`` for a latest version that holds neither."""
    model_type: str
    tickers: list[str]
    metrics: dict[str, float]
    converged: bool | None
    created_at: dt.datetime | None


def list_versions(client: MlflowClient) -> list[VersionInfo]:
    """Every registered model's aliased versions (its latest when none is aliased), by name."""
    infos = []
    for model in registered_models(client):
        aliases = {str(v): a for a, v in (model.aliases or {}).items()}
        latest = max((int(v.version) for v in model.latest_versions or []), default=None)
        shown = dict(aliases) or ({str(latest): "none"} if latest is not None else {})
        for version, alias in sorted(shown.items(), key=lambda item: int(item[0])):
            details: Any = client.get_model_version(model.name, version)
            tags = details.tags or {}
            tickers = [t for t in (tags.get(TAG_TICKERS) or tags.get(TAG_TICKER) or "").split(",")
                       if t]  # fmt: skip
            metrics = {}
            for key, value in tags.items():
                if key.startswith("metric."):
                    try:
                        metrics[key.removeprefix("metric.")] = float(value)
                    except ValueError:
                        continue
            converged = tags.get(TAG_CONVERGED)
            created = details.creation_timestamp
            infos.append(
                VersionInfo(
                    name=model.name,
                    version=version,
                    alias=alias,
                    model_type=str(tags.get(TAG_MODEL_TYPE)
                                   or model.name.split("_volatility_", maxsplit=1)[0].upper()),
                    tickers=tickers,
                    metrics=metrics,
                    converged=None if converged is None else converged.lower() == "true",
                    created_at=None if created is None
                    else dt.datetime.fromtimestamp(created / 1000, dt.UTC),
                )
            )  # fmt: skip
    return sorted(infos, key=lambda i: (i.name, int(i.version)))
