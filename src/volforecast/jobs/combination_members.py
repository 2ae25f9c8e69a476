"""The members a combination is built from: versions trained on the run's prices.

A combination (``har+lstm``) pins one registered version of each member: the one this run
trained (held in memory with its test-window paths), or else the latest registered version
that converged and was trained on exactly the prices this run loaded (its data-hash tag).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from volforecast.core.features import DailyData
from volforecast.data.repositories.prices import PriceRepository
from volforecast.evaluation.test_window import (
    Evaluated,
    evaluate,
    evaluate_paths,
    window_origins,
    window_steps,
)
from volforecast.models.base import VolatilityModel
from volforecast.models.catalog import is_pooled, registered_members
from volforecast.models.combination import CombinationModel
from volforecast.models.ensemble import equal_weight
from volforecast.registry import names
from volforecast.registry.fingerprint import data_hash
from volforecast.registry.serving import download_models

if TYPE_CHECKING:
    from volforecast.jobs.train import Trainer

SEARCHED_VERSIONS = 20
"""Newest versions of a member looked at for one trained on the run's prices."""


@dataclass(frozen=True)
class Member:
    """One member version a combination pins."""

    model_name: str
    """Its catalog name (``har``)."""
    registered: str
    """Its registered model (``har_volatility_aapl``, ``lstm_volatility_pooled``)."""
    version: str
    fingerprint: str
    model: VolatilityModel | None = None
    """The fitted model, when this run trained it (else it is downloaded)."""
    paths: np.ndarray | None = None
    """Its test-window variance paths, when this run evaluated it."""


def wanted(models: tuple[str, ...], model_name: str) -> bool:
    """Whether a combination among ``models`` (a training's) has ``model_name`` as a member."""
    return any(model_name in registered_members(m) for m in models)


def remember(trainer: Trainer, ticker: str, member: Member) -> None:
    """Keep a member this run trained (converged) for the combinations trained after it."""
    if wanted(trainer.config.models, member.model_name):
        trainer.fresh[(member.model_name, ticker)] = member


class MemberFinder:
    """Looks up member versions for one training, each registry answer and download once."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self._versions: dict[str, list[Any]] = {}
        self._hashes: dict[tuple[str, str], str] = {}
        self._models: dict[tuple[str, str], dict[str, VolatilityModel]] = {}

    def find(self, model_name: str, ticker: str) -> Member | None:
        """The member of ``ticker`` trained in this run, else the latest on the same prices."""
        fresh = self.trainer.fresh.get((model_name, ticker))
        if fresh is not None:
            return fresh
        name = names.registered_model_name(model_name, ticker)
        if name not in self._versions:
            self._versions[name] = self.trainer.client.search_model_versions(
                f"name = '{name}'", max_results=SEARCHED_VERSIONS,
                order_by=["version_number DESC"],
            )  # fmt: skip
        for version in self._versions[name]:
            tags = version.tags or {}
            if tags.get(names.TAG_CONVERGED) != "true" or tags.get(names.TAG_DECISION) in {
                names.PENDING, names.ABANDONED,
            }:  # fmt: skip
                continue
            if tags.get(names.TAG_DATA_HASH) == self._expected_hash(model_name, ticker, tags):
                return Member(model_name, name, str(version.version),
                              tags.get(names.TAG_FINGERPRINT, ""))  # fmt: skip
        return None

    def model(self, member: Member, ticker: str) -> VolatilityModel:
        """The member's fitted model of ``ticker``: held, or downloaded once per version."""
        if member.model is not None:
            return member.model
        key = (member.registered, member.version)
        if key not in self._models:
            self._models[key] = download_models(*key)
        return self._models[key][ticker]

    def _expected_hash(self, model_name: str, ticker: str, tags: dict[str, str]) -> str | None:
        """The hash a version trained on this run's prices carries (None: it cannot have)."""
        if not is_pooled(model_name):
            return data_hash(self.trainer.rows_by_ticker[ticker])
        served = [t for t in tags.get(names.TAG_TICKERS, "").split(",") if t]
        if ticker not in served:
            return None
        # The pooled training hashed its tickers' rows in ticker order (load_datasets's).
        key = (",".join(sorted(served)), tags.get(names.TAG_DATA_END, ""))
        if key not in self._hashes:
            self._hashes[key] = data_hash(self._rows(sorted(served)))
        return self._hashes[key]

    def _rows(self, tickers: list[str]) -> pd.DataFrame:
        """The stored price rows of ``tickers``: this run's, the others read from the store."""
        held = self.trainer.rows_by_ticker
        missing = [t for t in tickers if t not in held]
        if missing:
            engine = self.trainer.metrics_store.engine
            loaded = PriceRepository(engine).load(missing)
            held = held | {str(t): r for t, r in loaded.groupby("ticker", sort=False)}
        return pd.concat([held[t] for t in tickers if t in held])


def production_losses(
    trainer: Trainer, model_name: str, name: str, version: str,
    served: Mapping[str, VolatilityModel], datasets: Mapping[str, DailyData],
) -> pd.DataFrame:  # fmt: skip
    """Decision losses of production ``version`` of ``name`` on the test windows it serves.

    ``model_name`` is its catalog name; ``served`` its models by ticker.
    """
    return pd.concat(
        _evaluate_production(trainer, model_name, name, version, served[t], d).decision_losses
        for t, d in datasets.items()
        if t in served
    )


def _evaluate_production(
    trainer: Trainer, model_name: str, name: str, version: str, model: VolatilityModel,
    data: DailyData,
) -> Evaluated:  # fmt: skip
    """Production on ``data``'s test window, its paths kept when it is a member.

    A combination averages its members' kept paths where this run has evaluated the versions
    it pins: its members' stages judged those same versions as their production, so the
    weekly retrain forecasts no member's window twice.
    """
    if not isinstance(model, CombinationModel):
        evaluated = evaluate(model, data, trainer.settings)
        if wanted(trainer.config.models, model_name):
            trainer.member_paths[(name, version, data.ticker)] = evaluated.paths
        return evaluated
    origins, steps = window_origins(data), window_steps(trainer.settings)
    paths = []
    for member in model.members:  # in the order of its weights
        key = (
            names.registered_model_name(member, data.ticker),
            model.member_versions[member],
            data.ticker,
        )
        kept = trainer.member_paths.get(key)
        if kept is None or kept.shape != (len(origins), steps):
            kept = model.member_models[member].forecast_paths(data, origins, steps)
        paths.append(kept)
    return evaluate_paths(model.kind, data, origins, equal_weight(paths, model.weights),
                          trainer.settings)  # fmt: skip
